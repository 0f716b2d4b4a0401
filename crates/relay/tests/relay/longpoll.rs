//! The long-poll transport at the HTTP level: same frames as the WebSocket,
//! first-class for agents, gap-free for visitors.

use std::net::SocketAddr;
use std::time::Duration;

use kefu_protocol::agent::{AgentRequest, ConversationStatus, Role};
use kefu_protocol::visitor::{VisitorEvent, VisitorWelcome};
use kefu_protocol::{ErrorCode, Message};
use kefu_testkit::http::{self, Method};
use kefu_testkit::{PATIENCE, TestRelay};
use serde_json::json;

/// A visitor speaking long-poll through a real HTTP client.
pub struct PollVisitor {
    http: http::Client,
    addr: SocketAddr,
    welcome: VisitorWelcome,
}

impl PollVisitor {
    pub async fn hello(addr: SocketAddr, token: Option<&str>) -> PollVisitor {
        // Long polls are held open by the relay before they answer.
        let http = http::Client::with_patience(PATIENCE * 4);
        let (status, body) = request(
            &http,
            addr,
            "POST",
            "/api/visitor/hello",
            None,
            json!({"type": "hello", "token": token, "profile": {"name": "Poller"}}).to_string(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let VisitorEvent::Welcome(welcome) = serde_json::from_str(&body).expect("welcome") else {
            panic!("expected welcome: {body}");
        };
        assert!(
            welcome.session.is_some(),
            "long-poll welcomes name a session"
        );
        PollVisitor {
            http,
            addr,
            welcome,
        }
    }

    /// Sends the following requests to another relay, as a load balancer
    /// without sticky sessions may.
    pub fn via(mut self, addr: SocketAddr) -> PollVisitor {
        self.addr = addr;
        self
    }

    pub fn visitor_id(&self) -> &str {
        &self.welcome.visitor_id
    }

    /// The visitor token, for the file endpoints.
    pub fn token(&self) -> &str {
        &self.welcome.token
    }

    fn session(&self) -> &str {
        self.welcome.session.as_deref().expect("session")
    }

    pub async fn post(&self, frame: serde_json::Value) -> (u16, String) {
        let path = format!("/api/visitor/send?session={}", self.session());
        request(
            &self.http,
            self.addr,
            "POST",
            &path,
            Some(&self.welcome.token),
            frame.to_string(),
        )
        .await
    }

    pub async fn events(&self, after_seq: u64) -> Vec<VisitorEvent> {
        let (status, body) = self.poll(after_seq).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("an array of frames")
    }

    /// One poll's status and body, whatever they are.
    pub async fn poll(&self, after_seq: u64) -> (u16, String) {
        let path = format!(
            "/api/visitor/events?session={}&after_seq={after_seq}",
            self.session()
        );
        request(
            &self.http,
            self.addr,
            "GET",
            &path,
            Some(&self.welcome.token),
            String::new(),
        )
        .await
    }

    /// Polls until a message with `seq` arrives; returns every message seen.
    pub async fn messages_until(&self, after_seq: u64, seq: u64) -> Vec<Message> {
        let mut seen = Vec::new();
        let mut after = after_seq;
        while seen.last().map(|m: &Message| m.seq) != Some(seq) {
            for event in self.events(after).await {
                if let VisitorEvent::Message(message) = event {
                    after = after.max(message.seq);
                    seen.push(message);
                }
            }
        }
        seen
    }
}

async fn request(
    http: &http::Client,
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: String,
) -> (u16, String) {
    let bearer = token.map(|token| format!("Bearer {token}"));
    let mut headers = vec![
        ("content-type", "application/json"),
        ("user-agent", "kefu-tests/longpoll"),
    ];
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer));
    }
    let method = Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let response = http
        .request(method, addr, path, &headers, body)
        .await
        .expect("HTTP response in time");
    (response.status, response.body)
}

#[tokio::test]
async fn a_long_poll_visitor_chats_like_a_websocket_one() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let visitor = PollVisitor::hello(relay.addr, None).await;
    assert_eq!(visitor.welcome.agents_online, 1);

    let (status, body) = visitor
        .post(json!({"type": "send", "client_id": "p1", "text": "hello over HTTP"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let VisitorEvent::Ack(ack) = serde_json::from_str(&body).expect("ack") else {
        panic!("expected ack: {body}");
    };
    assert_eq!(ack.seq, 1);
    let (_, again) = visitor
        .post(json!({"type": "send", "client_id": "p1", "text": "hello over HTTP"}))
        .await;
    assert_eq!(again, body, "a resend gets the same ack");

    let message = agent.next_message().await;
    assert_eq!(message.text, "hello over HTTP");
    assert_eq!(message.author.name, "Poller");
    let conversation = message.conversation_id;

    // A poll that is waiting returns as soon as the agent answers.
    let waiting = tokio::spawn(async move {
        let messages = visitor.messages_until(1, 2).await;
        (visitor, messages)
    });
    agent.reply(&conversation, "a1", "hello, poller").await;
    let (visitor, messages) = waiting.await.expect("poll");
    assert_eq!(
        messages.last().map(|m| m.text.as_str()),
        Some("hello, poller")
    );

    // From zero, the visitor's own message is included: history is complete.
    let all = visitor.messages_until(0, 2).await;
    assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);

    // Typing and read receipts travel too.
    let (status, _) = visitor
        .post(json!({"type": "typing", "active": true}))
        .await;
    assert_eq!(status, 204);
    let typing = agent
        .until(|event| match event {
            kefu_protocol::agent::AgentEvent::Typing(typing) => Some(typing),
            _ => None,
        })
        .await;
    assert!(typing.active);
    let (status, _) = visitor.post(json!({"type": "read", "up_to_seq": 2})).await;
    assert_eq!(status, 204);
    agent
        .summary_where(&conversation, |s| s.visitor_read_seq == 2)
        .await;

    // The agent sees the long-poll visitor like any other.
    agent
        .send(&AgentRequest::Resolve {
            conversation_id: conversation.clone(),
        })
        .await;
    let summary = agent
        .summary_where(&conversation, |s| s.status == ConversationStatus::Resolved)
        .await;
    assert!(summary.visitor.online);
    assert_eq!(
        summary.visitor.user_agent.as_deref(),
        Some("kefu-tests/longpoll")
    );
}

#[tokio::test]
async fn the_email_left_while_offline_is_saved_on_the_profile() {
    let relay = TestRelay::start().await;
    let visitor = PollVisitor::hello(relay.addr, None).await;
    assert_eq!(visitor.welcome.agents_online, 0, "nobody is online");
    let (status, _) = visitor
        .post(json!({"type": "profile", "email": "ming@example.com"}))
        .await;
    assert_eq!(status, 204);
    visitor
        .post(json!({"type": "send", "client_id": "p1", "text": "please call me back"}))
        .await;

    let token = relay.add_agent("alice", Role::Agent).await;
    let (_agent, welcome) = relay.welcomed_agent(&token).await;
    let summary = &welcome.conversations[0];
    assert_eq!(summary.visitor.email.as_deref(), Some("ming@example.com"));
    assert_eq!(summary.preview, "please call me back");
}

#[tokio::test]
async fn long_poll_requests_need_the_visitors_token_and_session() {
    let relay = TestRelay::start().await;
    let visitor = PollVisitor::hello(relay.addr, None).await;
    let other = PollVisitor::hello(relay.addr, None).await;
    let http = &visitor.http;
    let send = json!({"type": "send", "client_id": "x", "text": "hi"}).to_string();
    let path = format!("/api/visitor/send?session={}", visitor.session());

    let (status, body) = request(http, relay.addr, "POST", &path, None, send.clone()).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = request(
        http,
        relay.addr,
        "POST",
        &path,
        Some("v1.forged.AAAA"),
        send.clone(),
    )
    .await;
    assert_eq!(status, 401);
    // Another visitor's token does not open this visitor's session.
    let (status, _) = request(
        http,
        relay.addr,
        "POST",
        &path,
        Some(&other.welcome.token),
        send.clone(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = request(
        http,
        relay.addr,
        "POST",
        "/api/visitor/send?session=nope",
        Some(&visitor.welcome.token),
        send,
    )
    .await;
    assert_eq!(status, 404);

    let (status, body) = visitor.post(json!({"type": "warp"})).await;
    assert_eq!(status, 400);
    let VisitorEvent::Error(error) = serde_json::from_str(&body).expect("error frame") else {
        panic!("expected an error frame: {body}");
    };
    assert_eq!(error.code, ErrorCode::BadRequest);

    // Resuming with the token finds the same visitor.
    let resumed = PollVisitor::hello(relay.addr, Some(&visitor.welcome.token)).await;
    assert_eq!(resumed.welcome.visitor_id, visitor.welcome.visitor_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_poll_ends_the_one_in_flight_at_once() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let visitor = std::sync::Arc::new(PollVisitor::hello(relay.addr, None).await);
    let (status, _) = visitor
        .post(json!({"type": "send", "client_id": "p1", "text": "hi"}))
        .await;
    assert_eq!(status, 200);
    let conversation = agent.next_message().await.conversation_id;

    // Two polls on one session: whichever began first answers `[]` at once
    // (not after the 25 s hold), the other stays and gets the reply.
    let started = tokio::time::Instant::now();
    let mut first = tokio::spawn({
        let visitor = visitor.clone();
        async move { visitor.events(1).await }
    });
    let mut second = tokio::spawn({
        let visitor = visitor.clone();
        async move { visitor.events(1).await }
    });
    let (ended, held) = tokio::select! {
        ended = &mut first => (ended, second),
        ended = &mut second => (ended, first),
    };
    let ended = ended.expect("poll");
    assert!(ended.is_empty(), "{ended:?}");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "ended after {took:?}, not at once"
    );

    agent.reply(&conversation, "a1", "hello").await;
    let frames = held.await.expect("poll");
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, VisitorEvent::Message(m) if m.text == "hello")),
        "{frames:?}"
    );
}

#[tokio::test]
async fn long_poll_hello_spam_locks_out_neither_websockets_nor_agents() {
    let relay = TestRelay::with_config(|config| config.limits.connections_per_ip = 3).await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(PollVisitor::hello(relay.addr, None).await);
    }
    let http = http::Client::new();
    let (status, body) = request(
        &http,
        relay.addr,
        "POST",
        "/api/visitor/hello",
        None,
        json!({"type": "hello"}).to_string(),
    )
    .await;
    assert_eq!(status, 429, "{body}");

    // The same address still chats over WebSockets, and its agents sign in:
    // more agents than the per-address budget, since a signed-in agent
    // gives its slot back.
    let (mut visitor, _) = relay.new_visitor().await;
    assert_eq!(visitor.say("w1", "over a socket").await.seq, 1);
    let mut agents = Vec::new();
    for _ in 0..4 {
        agents.push(relay.signed_in_agent(&token).await);
    }
}
