//! Bad input gets a clear error and changes nothing; limits hold; a slow
//! client cannot hold the others back.

use std::time::Duration;

use futures_util::FutureExt;
use kefu_protocol::agent::{AgentEvent, AgentRequest, Role};
use kefu_protocol::visitor::{VisitorEvent, VisitorRequest};
use kefu_protocol::{ErrorCode, Message, PresenceKind};
use kefu_testkit::{TestDatabase, TestRelay, assert_error};

#[tokio::test]
async fn malformed_and_unknown_frames_are_bad_requests_and_the_connection_lives_on() {
    let relay = TestRelay::start().await;
    let (mut visitor, _) = relay.new_visitor().await;
    for garbage in [
        "{not json",
        "[]",
        r#"{"no_type": 1}"#,
        r#"{"type": "launch_missiles"}"#,
        r#"{"type": "send", "client_id": 5}"#,
        "\u{0}\u{1}",
    ] {
        visitor.send_raw(garbage).await;
        let error = visitor.next_error().await;
        assert_error(&error, ErrorCode::BadRequest);
    }
    // Still usable, and nothing was stored by the garbage.
    let ack = visitor.say("ok", "still here").await;
    assert_eq!(ack.seq, 1);
}

#[tokio::test]
async fn empty_and_overlong_messages_are_refused_with_their_client_id() {
    let relay = TestRelay::with_config(|config| config.limits.max_message_chars = 100).await;
    let (mut visitor, _) = relay.new_visitor().await;

    visitor
        .send(&VisitorRequest::Send {
            attachments: Vec::new(),
            client_id: "long".into(),
            text: "字".repeat(101),
        })
        .await;
    let error = visitor.next_error().await;
    assert_error(&error, ErrorCode::TooLarge);
    assert_eq!(error.reference.as_deref(), Some("long"));

    visitor
        .send(&VisitorRequest::Send {
            attachments: Vec::new(),
            client_id: "blank".into(),
            text: " \n ".into(),
        })
        .await;
    assert_error(&visitor.next_error().await, ErrorCode::BadRequest);

    // Exactly at the limit is fine.
    let ack = visitor.say("fits", &"字".repeat(100)).await;
    assert_eq!(ack.seq, 1, "refused sends took no seq");
}

/// U+0000, which PostgreSQL's text cannot hold, is refused in any frame,
/// alike on both backends and before the store: on PostgreSQL a send with
/// it failed there (and with batches, failed everybody's writes in its
/// batch before each was made again alone), and a search, a page view's
/// title or a profile field with it answered `internal`. The text of the
/// escape (a backslash, then `u0000`) is ordinary text.
async fn nul_is_refused_in_every_frame(relay: &TestRelay) {
    let mut visitor = relay.visitor().await;
    visitor
        .send_raw(r#"{"type":"hello","profile":{"name":"Ann\u0000a"}}"#)
        .await;
    assert_error(&visitor.next_error().await, ErrorCode::BadRequest);
    visitor
        .send_raw(r#"{"type":"hello","profile":{"name":"Ann \\u0000"}}"#)
        .await;
    visitor
        .until(|event| matches!(event, VisitorEvent::Welcome(_)).then_some(()))
        .await;
    for refused in [
        r#"{"type":"send","client_id":"nul","text":"a\u0000b"}"#,
        r#"{"type":"send","client_id":"\u0000","text":"ab"}"#,
        r#"{"type":"page_view","url":"https://example.com/","title":"\u0000"}"#,
    ] {
        visitor.send_raw(refused).await;
        assert_error(&visitor.next_error().await, ErrorCode::BadRequest);
    }
    let ack = visitor.say("fine", "hello").await;
    assert_eq!(ack.seq, 1, "the refused sends took no seq");

    let token = relay.add_agent("nel", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    for refused in [
        r#"{"type":"search","request_id":"s","query":"hel\u0000"}"#,
        r#"{"type":"search","request_id":"s","query":"hello","visitor_id":"\u0000"}"#,
        r#"{"type":"claim","conversation_id":"\u0000"}"#,
    ] {
        agent.send_raw(refused).await;
        let error = agent
            .until(|event| match event {
                AgentEvent::Error(error) => Some(error),
                _ => None,
            })
            .await;
        assert_error(&error, ErrorCode::BadRequest);
    }
    // Ids in a query string or a path are not frames: one with U+0000
    // names nothing there (on PostgreSQL it answered `internal`).
    let bearer = format!("Bearer {token}");
    let client = kefu_testkit::http::Client::new();
    let upload = client
        .post(
            relay.addr,
            "/api/files?conversation_id=%00&name=a.txt",
            &[("authorization", bearer.as_str())],
            b"hi".to_vec(),
        )
        .await
        .expect("upload");
    assert_eq!(upload.status, 404, "{}", upload.body);
    let link = client
        .request(
            hyper::Method::GET,
            relay.addr,
            "/api/files/%00/link",
            &[("authorization", bearer.as_str())],
            Vec::new(),
        )
        .await
        .expect("link");
    assert_eq!(link.status, 404, "{}", link.body);
    // The visitor's name kept the text of the escape, and the store works.
    let (_, welcome) = relay.welcomed_agent(&token).await;
    let summary = welcome
        .conversations
        .iter()
        .find(|summary| summary.id == ack.conversation_id)
        .expect("the visitor's conversation");
    assert_eq!(summary.visitor.name, "Ann \\u0000");
}

#[tokio::test]
async fn nul_is_refused_alike_on_sqlite() {
    nul_is_refused_in_every_frame(&TestRelay::start().await).await;
}

#[tokio::test]
async fn nul_is_refused_alike_on_postgres() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let relay = TestRelay::on_database(&database.url, |_| {}).await;
    nul_is_refused_in_every_frame(&relay).await;
    drop(relay.stop().await);
    database.drop_database().await;
}

#[tokio::test]
async fn oversized_frames_get_too_large_and_huge_ones_close_the_connection() {
    let relay = TestRelay::with_config(|config| config.limits.max_frame_bytes = 1024).await;
    let (mut visitor, _) = relay.new_visitor().await;

    let big = format!(
        r#"{{"type":"send","client_id":"x","text":"{}"}}"#,
        "a".repeat(2000)
    );
    visitor.send_raw(&big).await;
    assert_error(&visitor.next_error().await, ErrorCode::TooLarge);
    assert_eq!(visitor.say("after", "fine").await.seq, 1);

    let huge = format!(
        r#"{{"type":"send","client_id":"y","text":"{}"}}"#,
        "a".repeat(10_000)
    );
    visitor.send_raw(&huge).await;
    let rest = visitor.drain().await;
    assert!(
        rest.iter()
            .all(|event| !matches!(event, VisitorEvent::Ack(_))),
        "nothing of the huge frame was stored: {rest:?}"
    );
}

#[tokio::test]
async fn protocol_violations_close_with_the_codes_of_rfc_6455() {
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    let relay = TestRelay::with_config(|config| config.limits.max_frame_bytes = 1024).await;
    // A text frame that is not UTF-8: 1007 (invalid frame payload data).
    let (mut visitor, _) = relay.new_visitor().await;
    let not_utf8 = Frame::message(
        &b"{\"type\":\"typing\",\xff}"[..],
        OpCode::Data(Data::Text),
        true,
    );
    visitor.send_ws(WsMessage::Frame(not_utf8)).await;
    assert_eq!(visitor.close_code().await, Some(1007));

    // A frame past the hard limit (4x the frame limit): 1009 (too big).
    let (mut visitor, _) = relay.new_visitor().await;
    visitor.send_raw(&"a".repeat(10_000)).await;
    assert_eq!(visitor.close_code().await, Some(1009));
}

/// The error frame in an HTTP answer's body.
fn error_in(response: &kefu_testkit::http::Response) -> kefu_protocol::ErrorFrame {
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{response:?}"
    );
    match serde_json::from_str(&response.body) {
        Ok(VisitorEvent::Error(error)) => error,
        other => panic!("not an error frame: {other:?} in {response:?}"),
    }
}

#[tokio::test]
async fn every_visitor_api_refusal_is_an_error_frame() {
    use kefu_testkit::http;
    let relay = TestRelay::with_config(|config| config.limits.max_frame_bytes = 1024).await;
    let json = [("content-type", "application/json")];

    // Past the hard limit the body is not even read.
    let huge = http::post(relay.addr, "/api/visitor/hello", &json, "a".repeat(10_000))
        .await
        .expect("an answer");
    assert_eq!(huge.status, 413);
    assert_error(&error_in(&huge), ErrorCode::TooLarge);

    let cases = [
        (
            "/api/visitor/events?session=s&after_seq=soon",
            400,
            ErrorCode::BadRequest,
        ),
        ("/api/visitor/events", 400, ErrorCode::BadRequest),
        ("/api/visitor/launch", 404, ErrorCode::NotFound),
        ("/api/visitor/hello", 405, ErrorCode::BadRequest),
    ];
    for (path, status, code) in cases {
        let answer = http::get(relay.addr, path).await.expect("an answer");
        assert_eq!(answer.status, status, "{path}: {answer:?}");
        assert_error(&error_in(&answer), code);
    }
}

#[tokio::test]
async fn with_a_public_url_the_host_header_is_not_trusted() {
    use kefu_testkit::http;
    let relay = TestRelay::with_config(|config| {
        config.public_url = Some("https://support.example".into());
    })
    .await;
    let hello = |origin: &'static str| async move {
        let headers = [
            ("host", "evil.example"),
            ("origin", origin),
            ("content-type", "application/json"),
        ];
        http::post(
            relay.addr,
            "/api/visitor/hello",
            &headers,
            r#"{"type":"hello"}"#,
        )
        .await
        .expect("an answer")
    };
    let spoofed = hello("http://evil.example").await;
    assert_eq!(spoofed.status, 403, "{spoofed:?}");
    assert_error(&error_in(&spoofed), ErrorCode::Forbidden);
    assert_eq!(hello("https://support.example").await.status, 200);
}

#[tokio::test]
async fn bad_tokens_are_unauthorized_and_closed() {
    let relay = TestRelay::start().await;

    let mut agent = relay.agent_socket().await;
    agent
        .send(&AgentRequest::Hello {
            token: "kefu_forged".into(),
        })
        .await;
    let frames = agent.drain().await;
    assert!(
        matches!(frames.as_slice(), [AgentEvent::Error(e)] if e.code == ErrorCode::Unauthorized),
        "{frames:?}"
    );

    let mut visitor = relay.visitor().await;
    visitor
        .send(&VisitorRequest::Hello {
            token: Some("v1.someone.AAAA".into()),
            after_seq: None,
            profile: None,
        })
        .await;
    let frames = visitor.drain().await;
    assert!(
        matches!(frames.as_slice(), [VisitorEvent::Error(e)] if e.code == ErrorCode::Unauthorized),
        "{frames:?}"
    );
}

#[tokio::test]
async fn a_disabled_agent_cannot_sign_in() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("mallory", Role::Agent).await;
    relay.signed_in_agent(&token).await;
    let store = kefu_relay::store::open(&relay.database, None)
        .await
        .expect("open");
    store.disable_agent("mallory").await.expect("disable");
    store.close().await;

    let mut agent = relay.agent_socket().await;
    agent.send(&AgentRequest::Hello { token }).await;
    assert_error(&agent.next_error().await, ErrorCode::Unauthorized);
}

#[tokio::test]
async fn the_first_frame_must_be_hello_and_come_in_time() {
    let relay = TestRelay::with_config(|config| {
        config.limits.hello_timeout = Duration::from_millis(300);
    })
    .await;

    let mut visitor = relay.visitor().await;
    visitor
        .send(&VisitorRequest::Send {
            attachments: Vec::new(),
            client_id: "early".into(),
            text: "hi".into(),
        })
        .await;
    let frames = visitor.drain().await;
    assert!(
        matches!(frames.as_slice(), [VisitorEvent::Error(e)] if e.code == ErrorCode::BadRequest),
        "{frames:?}"
    );

    let mut silent = relay.visitor().await;
    let frames = silent.drain().await;
    assert!(
        matches!(frames.as_slice(), [VisitorEvent::Error(e)] if e.message.contains("hello")),
        "{frames:?}"
    );
}

#[tokio::test]
async fn floods_are_rate_limited_per_connection() {
    let relay = TestRelay::with_config(|config| {
        config.limits.frames_per_second = 1;
        config.limits.frame_burst = 3;
    })
    .await;
    let (mut flooder, _) = relay.new_visitor().await;
    // hello used one token of the burst; two more sends pass, the rest do not.
    for i in 0..10 {
        flooder
            .send(&VisitorRequest::Send {
                attachments: Vec::new(),
                client_id: format!("f{i}"),
                text: "spam".into(),
            })
            .await;
    }
    let mut acks = 0;
    let mut limited = 0;
    while acks + limited < 10 {
        match flooder.next().await {
            VisitorEvent::Ack(_) => acks += 1,
            VisitorEvent::Error(e) => {
                assert_error(&e, ErrorCode::RateLimited);
                limited += 1;
            }
            _ => {}
        }
    }
    assert!((2..=3).contains(&acks), "acks: {acks}");
    assert!(limited >= 7, "limited: {limited}");

    // Another visitor is not affected.
    let (mut calm, _) = relay.new_visitor().await;
    assert_eq!(calm.say("c1", "hello").await.seq, 1);
}

#[tokio::test]
async fn connections_per_ip_are_capped() {
    let relay = TestRelay::with_config(|config| config.limits.connections_per_ip = 2).await;
    let _first = relay.visitor().await;
    let _second = relay.visitor().await;
    let refused = tokio_tungstenite::connect_async(relay.url("/ws/visitor")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
        }
        other => panic!("expected HTTP 429, got {other:?}"),
    }
    drop(_first);
    // The slot is freed once the first connection is gone.
    let mut again = None;
    for _ in 0..100 {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(relay.url("/ws/visitor")).await {
            again = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "a freed slot is reusable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_that_stops_reading_is_cut_off_and_others_keep_flowing() {
    // No presence grace: agents hear the moment the relay drops a visitor.
    // Room for 32 of the broadcasts below: the reader, never more than a
    // few behind, stays well within it.
    let relay = TestRelay::with_config(|config| {
        config.limits.outbound_max_bytes = 256 * 1024;
        config.presence_grace = Duration::ZERO;
    })
    .await;
    let admin = relay.add_agent("root", Role::Admin).await;
    let mut admin = relay.signed_in_agent(&admin).await;
    let watcher = relay.add_agent("watcher", Role::Agent).await;
    let mut watcher = relay.signed_in_agent(&watcher).await;
    let (mut stalled, welcome) = relay.new_visitor().await;
    // A conversation, so that agents follow the stalled visitor's presence.
    stalled.say("s1", "hello").await;
    let (mut reader, _) = relay.new_visitor().await;

    // Enough data to fill the stalled visitor's socket buffers and queue.
    // The admin sends a few broadcasts at a time, the next few only once the
    // reader has them, so the reader is never more than a few behind: only
    // the stalled visitor is. Sending stops once the watcher hears the
    // stalled visitor is gone: from then on the relay waits at most its
    // write timeout for the stalled client to take the resync notice, so
    // the test must read it soon, however loaded the machine.
    const BROADCASTS: usize = 3_000;
    const IN_FLIGHT: usize = 8;
    let text = "x".repeat(8_000);
    let dropped = |event: AgentEvent| {
        matches!(event, AgentEvent::Presence(presence)
            if presence.kind == PresenceKind::Visitor
                && presence.id == welcome.visitor_id
                && !presence.online)
    };
    let mut sent = 0;
    'sending: while sent < BROADCASTS {
        for _ in 0..IN_FLIGHT {
            admin
                .send(&AgentRequest::Broadcast { text: text.clone() })
                .await;
        }
        sent += IN_FLIGHT;
        for _ in 0..IN_FLIGHT {
            reader
                .until(|event| match event {
                    VisitorEvent::Broadcast(_) => Some(()),
                    _ => None,
                })
                .await;
        }
        // What the watcher has by now, without waiting for more.
        while let Some(Some(event)) = watcher.try_next().now_or_never() {
            if dropped(event) {
                break 'sending;
            }
        }
    }

    let frames = stalled.drain().await;
    let broadcasts = frames
        .iter()
        .filter(|f| matches!(f, VisitorEvent::Broadcast(_)))
        .count();
    assert!(broadcasts < sent, "the stalled visitor was cut off");
    assert!(
        matches!(frames.last(), Some(VisitorEvent::Reconnect(r)) if r.reason.as_deref() == Some("resync")),
        "told to resync, got {:?}",
        frames.last()
    );
}

#[tokio::test]
async fn profile_fields_are_stored_with_the_first_message_and_shown_to_agents() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let mut visitor = relay.visitor().await;
    visitor
        .send(&VisitorRequest::Hello {
            token: None,
            after_seq: None,
            profile: Some(kefu_protocol::visitor::VisitorProfile {
                name: Some("Ming <script>".into()),
                email: Some("ming@example.com".into()),
                page_url: Some("https://shop.example/cart".into()),
                lang: Some("zh-CN".into()),
                ..Default::default()
            }),
        })
        .await;
    visitor.next().await;
    let ack = visitor.say("v1", "你好").await;
    let message: Message = agent.next_message().await;
    assert_eq!(
        message.author.name, "Ming <script>",
        "stored as text, verbatim"
    );
    let summary = agent.summary_where(&ack.conversation_id, |_| true).await;
    assert_eq!(summary.visitor.email.as_deref(), Some("ming@example.com"));
    assert_eq!(
        summary.visitor.page_url.as_deref(),
        Some("https://shop.example/cart")
    );
    assert_eq!(summary.visitor.lang.as_deref(), Some("zh-CN"));
    assert!(
        summary.visitor.user_agent.is_some(),
        "the browser is recorded"
    );
}

#[tokio::test]
async fn visitors_holding_every_slot_of_an_address_do_not_refuse_its_agents() {
    let relay = TestRelay::with_config(|config| config.limits.connections_per_ip = 2).await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let _held = [relay.visitor().await, relay.visitor().await];
    let refused = tokio_tungstenite::connect_async(relay.url("/ws/visitor")).await;
    assert!(refused.is_err(), "the visitors' budget is spent");
    relay.signed_in_agent(&token).await;
}

/// A new visitor from `source` says hello and sends its first message;
/// returns what the relay answered to it.
async fn first_message_from(relay: &TestRelay, source: &str, text: &str) -> VisitorEvent {
    let url = relay.url("/ws/visitor");
    let source = source.parse().expect("an address");
    let mut visitor = kefu_testkit::Client::<VisitorEvent>::connect_from(&url, source).await;
    visitor.hello(None, None).await;
    visitor
        .send(&VisitorRequest::Send {
            attachments: Vec::new(),
            client_id: "first".into(),
            text: text.into(),
        })
        .await;
    visitor
        .until(|event| match event {
            VisitorEvent::Ack(_) | VisitorEvent::Error(_) => Some(event),
            _ => None,
        })
        .await
}

#[tokio::test]
async fn a_conversation_flood_from_one_address_is_refused_and_others_chat() {
    let relay =
        TestRelay::with_config(|config| config.limits.new_conversations_per_minute = 3).await;
    for n in 0..3 {
        let answer = first_message_from(&relay, "127.0.0.1", &format!("spam {n}")).await;
        assert!(matches!(answer, VisitorEvent::Ack(_)), "{answer:?}");
    }
    let refused = first_message_from(&relay, "127.0.0.1", "spam 3").await;
    let VisitorEvent::Error(error) = refused else {
        panic!("expected a refusal: {refused:?}");
    };
    assert_error(&error, ErrorCode::RateLimited);
    assert_eq!(error.reference.as_deref(), Some("first"));

    // Another address is not affected.
    let other = first_message_from(&relay, "127.0.0.2", "a real customer").await;
    assert!(matches!(other, VisitorEvent::Ack(_)), "{other:?}");

    // Nothing of the refused one was stored.
    let store = kefu_relay::store::open(&relay.database, None)
        .await
        .expect("open");
    let open = store.open_conversations().await.expect("conversations");
    store.close().await;
    let mut previews: Vec<_> = open.iter().map(|c| c.preview.as_str()).collect();
    previews.sort_unstable();
    assert_eq!(previews, ["a real customer", "spam 0", "spam 1", "spam 2"]);
}

#[tokio::test]
async fn past_the_waiting_cap_new_conversations_are_refused() {
    let relay = TestRelay::with_config(|config| config.limits.max_waiting = 2).await;
    for (source, text) in [("127.0.0.1", "one"), ("127.0.0.2", "two")] {
        let answer = first_message_from(&relay, source, text).await;
        assert!(matches!(answer, VisitorEvent::Ack(_)), "{answer:?}");
    }
    let refused = first_message_from(&relay, "127.0.0.3", "three").await;
    let VisitorEvent::Error(error) = refused else {
        panic!("expected a refusal: {refused:?}");
    };
    assert_error(&error, ErrorCode::RateLimited);
    assert!(error.message.contains("waiting"), "{}", error.message);
}
