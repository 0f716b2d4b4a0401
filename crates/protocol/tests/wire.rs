//! The JSON on the wire is a contract with clients we do not control: these
//! tests pin the shapes documented in docs/protocol.md.

use kefu_protocol::agent::{AgentEvent, AgentRequest};
use kefu_protocol::visitor::{VisitorEvent, VisitorRequest};
use kefu_protocol::{Author, AuthorKind, ErrorCode, ErrorFrame, Message, TimelineEvent};
use serde_json::json;
use time::macros::datetime;

#[test]
fn visitor_requests_parse_from_their_documented_json() {
    let hello: VisitorRequest = serde_json::from_value(json!({
        "type": "hello",
        "token": "v1.abc.sig",
        "after_seq": 12,
        "profile": {"name": "Ming", "page_url": "https://shop.example/"}
    }))
    .expect("hello");
    let VisitorRequest::Hello {
        token,
        after_seq,
        profile,
    } = hello
    else {
        panic!("not a hello");
    };
    assert_eq!(token.as_deref(), Some("v1.abc.sig"));
    assert_eq!(after_seq, Some(12));
    assert_eq!(profile.and_then(|p| p.name).as_deref(), Some("Ming"));

    let bare: VisitorRequest =
        serde_json::from_value(json!({"type": "hello"})).expect("bare hello");
    assert_eq!(
        bare,
        VisitorRequest::Hello {
            token: None,
            after_seq: None,
            profile: None
        }
    );

    let send: VisitorRequest =
        serde_json::from_value(json!({"type": "send", "client_id": "c1", "text": "hi"}))
            .expect("send");
    assert_eq!(
        send,
        VisitorRequest::Send {
            attachments: Vec::new(),
            client_id: "c1".into(),
            text: "hi".into()
        }
    );
}

#[test]
fn unknown_types_and_missing_fields_are_rejected() {
    for bad in [
        json!({"type": "teleport"}),
        json!({"type": "send", "text": "no client id"}),
        json!({"client_id": "c1", "text": "no type"}),
    ] {
        assert!(
            serde_json::from_value::<VisitorRequest>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn agent_send_defaults_to_a_public_reply() {
    let send: AgentRequest = serde_json::from_value(json!({
        "type": "send", "conversation_id": "k1", "client_id": "c1", "text": "hello"
    }))
    .expect("send");
    assert!(matches!(
        send,
        AgentRequest::Send {
            internal: false,
            link: None,
            ..
        }
    ));
}

#[test]
fn a_message_frame_has_the_documented_shape_for_both_roles() {
    let message = Message {
        attachments: Vec::new(),
        conversation_id: "k1".into(),
        seq: 3,
        id: "m1".into(),
        client_id: "c1".into(),
        author: Author {
            kind: AuthorKind::Agent,
            id: "a1".into(),
            name: "Alice".into(),
        },
        text: "Hello".into(),
        at: datetime!(2026-11-23 10:00:00.123 UTC),
        internal: false,
        event: None,
        link: None,
    };
    let expected = json!({
        "type": "message",
        "conversation_id": "k1",
        "seq": 3,
        "id": "m1",
        "client_id": "c1",
        "author": {"kind": "agent", "id": "a1", "name": "Alice"},
        "text": "Hello",
        "at": "2026-11-23T10:00:00.123Z",
        "internal": false
    });
    let for_visitor = serde_json::to_value(VisitorEvent::Message(message.clone())).expect("encode");
    let for_agent = serde_json::to_value(AgentEvent::Message(message)).expect("encode");
    assert_eq!(for_visitor, expected);
    assert_eq!(for_agent, expected, "one encoding serves both roles");
}

#[test]
fn a_timeline_event_has_the_documented_shape() {
    let agent = |id: &str, name: &str| Author {
        kind: AuthorKind::Agent,
        id: id.into(),
        name: name.into(),
    };
    let event = TimelineEvent::Transferred {
        by: agent("a1", "alice"),
        to: agent("a2", "bob"),
    };
    let json = json!({
        "type": "message",
        "conversation_id": "k1",
        "seq": 4,
        "id": "m4",
        "client_id": "m4",
        "author": {"kind": "system", "id": "kefu", "name": "kefu"},
        "text": "alice transferred the conversation to bob",
        "at": "2026-11-23T10:02:00Z",
        "internal": true,
        "event": {"kind": "transferred",
                  "by": {"kind": "agent", "id": "a1", "name": "alice"},
                  "to": {"kind": "agent", "id": "a2", "name": "bob"}}
    });
    let AgentEvent::Message(message) = serde_json::from_value(json.clone()).expect("decode") else {
        panic!("a message frame");
    };
    assert_eq!(message.event.as_deref(), Some(&event));
    assert_eq!(message.text, event.describe());
    assert_eq!(
        serde_json::to_value(AgentEvent::Message(message)).expect("encode"),
        json
    );
    // The other kinds, by their names.
    for (event, kind) in [
        (
            TimelineEvent::Claimed {
                by: agent("a1", "alice"),
            },
            "claimed",
        ),
        (
            TimelineEvent::Resolved {
                by: agent("a1", "alice"),
            },
            "resolved",
        ),
        (
            TimelineEvent::Reopened {
                by: agent("v1", "Ming"),
            },
            "reopened",
        ),
    ] {
        assert_eq!(serde_json::to_value(&event).expect("encode")["kind"], kind);
    }
}

#[test]
fn errors_carry_code_message_and_ref() {
    let error = ErrorFrame::new(ErrorCode::RateLimited, "slow down").with_ref("c9");
    assert_eq!(
        serde_json::to_value(VisitorEvent::Error(error)).expect("encode"),
        json!({"type": "error", "code": "rate_limited", "message": "slow down", "ref": "c9"})
    );
}

#[test]
fn read_marks_are_per_agent_and_give_its_own_unread_count() {
    use kefu_protocol::agent::{AgentReadMark, AgentWelcome, ConversationSummary};

    let frame: AgentEvent = serde_json::from_value(json!({
        "type": "read_mark", "conversation_id": "k9", "up_to_seq": 6, "visitor_messages": 4
    }))
    .expect("read_mark");
    let AgentEvent::ReadMark(mark) = frame else {
        panic!("not a read_mark");
    };
    let summary: ConversationSummary = serde_json::from_value(json!({
        "id": "k9", "visitor": {"id": "v7", "name": "Ming", "online": true},
        "status": "waiting", "last_seq": 9, "unread": 5, "visitor_messages": 7,
        "preview": "hello?", "visitor_read_seq": 6, "updated_at": "2026-11-23T10:00:00.123Z"
    }))
    .expect("summary");
    assert_eq!(summary.unread_for(Some(&mark)), 3);
    assert_eq!(summary.unread_for(None), 7, "never read: all of them");
    let stale = AgentReadMark {
        visitor_messages: 9,
        ..mark
    };
    assert_eq!(summary.unread_for(Some(&stale)), 0, "never negative");

    // A relay from before read marks sends neither field.
    let welcome: AgentWelcome = serde_json::from_value(json!({
        "agent": {"id": "a1", "name": "alice", "role": "agent"},
        "agents": [], "conversations": []
    }))
    .expect("old welcome");
    assert!(welcome.read_marks.is_empty());
}

#[test]
fn call_frames_have_their_documented_shapes() {
    let signal: VisitorRequest = serde_json::from_value(json!({
        "type": "call_signal", "call_id": "c5", "to": "p2", "kind": "offer", "data": "v=0"
    }))
    .expect("call_signal");
    assert!(matches!(signal, VisitorRequest::CallSignal(ref s) if s.to == "p2"));
    let accept: VisitorRequest =
        serde_json::from_value(json!({"type": "call_accept", "call_id": "c5"})).expect("accept");
    assert_eq!(
        accept,
        VisitorRequest::CallAccept {
            call_id: "c5".into()
        }
    );
    let joined = VisitorEvent::CallJoined(kefu_protocol::call::CallPeerChange {
        call_id: "c5".into(),
        peer: kefu_protocol::call::CallPeer {
            peer: "v7".into(),
            who: Author {
                kind: AuthorKind::Visitor,
                id: "v7".into(),
                name: "Ming".into(),
            },
        },
    });
    assert_eq!(
        serde_json::to_value(&joined).expect("json"),
        json!({"type": "call_joined", "call_id": "c5", "peer": "v7",
               "who": {"kind": "visitor", "id": "v7", "name": "Ming"}})
    );
    let ended = TimelineEvent::CallEnded {
        call_id: "c5".into(),
        duration_secs: 94,
        reason: kefu_protocol::call::CallEndReason::HungUp,
        by: Author {
            kind: AuthorKind::Visitor,
            id: "v7".into(),
            name: "Ming".into(),
        },
    };
    assert_eq!(
        serde_json::to_value(&ended).expect("json")["kind"],
        json!("call_ended")
    );
    assert_eq!(ended.describe(), "the call ended (hung up) after 1m 34s");
    let invite: AgentRequest =
        serde_json::from_value(json!({"type": "call_invite", "conversation_id": "k9"}))
            .expect("call_invite");
    assert_eq!(
        invite,
        AgentRequest::CallInvite {
            conversation_id: "k9".into()
        }
    );
    let link: AgentEvent = serde_json::from_value(json!({
        "type": "call_link", "call_id": "c5", "conversation_id": "k9",
        "path": "/assist#code=a1.x", "expires_at": "2026-11-23T10:07:00Z"
    }))
    .expect("call_link without url");
    assert!(matches!(link, AgentEvent::CallLink(ref l) if l.url.is_none()));
}

#[test]
fn bulk_resolve_frames_have_their_documented_shapes() {
    use kefu_protocol::agent::bulk::{ResolveWaitingRequest, ResolvedWaiting};

    let request: AgentRequest = serde_json::from_value(json!({
        "type": "resolve_waiting", "address": "203.0.113.0/24", "older_than_secs": 600
    }))
    .expect("resolve_waiting");
    assert_eq!(
        request,
        AgentRequest::ResolveWaiting(ResolveWaitingRequest {
            address: Some("203.0.113.0/24".into()),
            older_than_secs: Some(600),
            dry_run: false,
        })
    );
    let answer = AgentEvent::ResolvedWaiting(ResolvedWaiting {
        matched: 40,
        resolved: 0,
        dry_run: true,
    });
    assert_eq!(
        serde_json::to_value(&answer).expect("encode"),
        json!({"type": "resolved_waiting", "matched": 40, "resolved": 0, "dry_run": true})
    );
}
