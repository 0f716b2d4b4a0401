//! The conversation flows of protocol v1, end to end over real sockets.

use kefu_protocol::agent::{AgentEvent, AgentRequest, ConversationStatus, Role};
use kefu_protocol::visitor::{VisitorEvent, VisitorProfile, VisitorRequest};
use kefu_protocol::{AuthorKind, ErrorCode};
use kefu_testkit::{TestRelay, assert_error};

#[tokio::test]
async fn visitor_and_agent_chat_both_ways() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;

    let (mut visitor, welcome) = relay.new_visitor().await;
    assert_eq!(
        welcome.conversation_id, None,
        "no conversation before the first send"
    );
    assert_eq!(welcome.agents_online, 1);
    assert!(!welcome.greeting.is_empty());

    let ack = visitor.say("v1", "Hello, is anyone there?").await;
    assert_eq!(ack.seq, 1);
    let conversation = ack.conversation_id.clone();

    // A waiting conversation reaches every agent.
    let message = agent.next_message().await;
    assert_eq!(message.text, "Hello, is anyone there?");
    assert_eq!(message.author.kind, AuthorKind::Visitor);
    assert_eq!(message.id, ack.id);
    let summary = agent.summary_where(&conversation, |_| true).await;
    assert_eq!(summary.status, ConversationStatus::Waiting);
    assert_eq!(summary.unread, 1);
    assert!(summary.visitor.online);

    // Replying claims it. The store publishes before it answers, so the
    // new summary may come before the ack as well as after it.
    agent
        .send(&AgentRequest::Send {
            attachments: Vec::new(),
            conversation_id: conversation.clone(),
            client_id: "a1".into(),
            text: "Yes! How can I help?".into(),
            internal: false,
            link: None,
        })
        .await;
    let (mut reply, mut summary) = (None, None);
    while reply.is_none() || summary.is_none() {
        match agent.next().await {
            AgentEvent::Ack(ack) if ack.client_id == "a1" => reply = Some(ack),
            AgentEvent::Conversation(frame)
                if frame.summary.id == conversation
                    && frame.summary.status == ConversationStatus::Active =>
            {
                summary = Some(frame.summary);
            }
            _ => {}
        }
    }
    let (reply, summary) = (reply.expect("ack"), summary.expect("summary"));
    assert_eq!(reply.seq, 2);
    assert_eq!(summary.assignee, Some(relay.agent_id("alice").await));
    assert_eq!(summary.unread, 0, "replying marks read");

    let received = visitor.next_message().await;
    assert_eq!(received.text, "Yes! How can I help?");
    assert_eq!(received.author.name, "alice");
    assert_eq!(received.seq, 2);
    assert!(!received.internal);
}

#[tokio::test]
async fn a_page_view_writes_nothing() {
    let relay = TestRelay::start().await;
    let (visitor, welcome) = relay.new_visitor().await;
    assert!(!welcome.token.is_empty());
    drop(visitor);
    let stopped = relay.stop().await;

    let pool = sqlx::SqlitePool::connect(&stopped.database)
        .await
        .expect("open db");
    for table in ["visitors", "conversations", "messages"] {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(rows, 0, "{table} after a page view");
    }
}

#[tokio::test]
async fn internal_notes_never_reach_the_visitor() {
    let relay = TestRelay::start().await;
    let alice = relay.add_agent("alice", Role::Agent).await;
    let bob = relay.add_agent("bob", Role::Agent).await;
    let mut alice = relay.signed_in_agent(&alice).await;
    let mut bob = relay.signed_in_agent(&bob).await;
    let (mut visitor, welcome) = relay.new_visitor().await;
    let conversation = visitor.say("v1", "my order is late").await.conversation_id;
    alice.reply(&conversation, "a1", "Let me check").await;

    // Bob opens the conversation, so he follows it from now on.
    let history = bob.history(&conversation, None, 50).await;
    assert_eq!(history.len(), 2);

    let note = alice
        .send_message(&conversation, "note", "VIP customer, refund at once", true)
        .await
        .expect("note stored");
    assert_eq!(note.seq, 3);
    let seen_by_bob = bob.next_message().await;
    assert!(seen_by_bob.internal);
    assert_eq!(seen_by_bob.text, "VIP customer, refund at once");

    alice.reply(&conversation, "a2", "Refunded!").await;
    // The visitor's next message is the public reply: the note was skipped.
    let next = visitor.next_message().await;
    assert_eq!((next.seq, next.text.as_str()), (2, "Let me check"));
    let next = visitor.next_message().await;
    assert_eq!((next.seq, next.text.as_str()), (4, "Refunded!"));

    // Nor is it replayed on resume.
    let mut again = relay.visitor().await;
    again.hello(Some(&welcome.token), Some(0)).await;
    let mut replayed = Vec::new();
    for _ in 0..3 {
        replayed.push(again.next_message().await);
    }
    assert!(replayed.iter().all(|m| !m.internal));
    assert_eq!(
        replayed.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![1, 2, 4]
    );

    // The preview agents see is the last public message, never the note.
    let summary = bob.summary_where(&conversation, |s| s.last_seq == 4).await;
    assert_eq!(summary.preview, "Refunded!");
}

#[tokio::test]
async fn resume_has_no_gap_and_no_duplicate_while_messages_keep_coming() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let (mut visitor, welcome) = relay.new_visitor().await;
    let conversation = visitor.say("v1", "hi").await.conversation_id;
    agent.next_message().await;
    drop(visitor);

    // The agent writes while the visitor reconnects, so some messages land
    // before the resume, some during the replay and some after.
    const REPLIES: u64 = 200;
    let writer = tokio::spawn(async move {
        for i in 0..REPLIES {
            agent
                .reply(&conversation, &format!("a{i}"), &format!("reply {i}"))
                .await;
        }
        agent
    });
    let mut visitor = relay.visitor().await;
    visitor.hello(Some(&welcome.token), Some(1)).await;
    let mut seqs = Vec::new();
    while seqs.last() != Some(&(REPLIES + 1)) {
        seqs.push(visitor.next_message().await.seq);
    }
    let expected: Vec<u64> = (2..=REPLIES + 1).collect();
    assert_eq!(seqs, expected, "every reply exactly once, in order");
    writer.await.expect("writer");
}

#[tokio::test]
async fn a_resent_client_id_returns_the_original_ack_and_stores_nothing() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let (mut visitor, _) = relay.new_visitor().await;

    let first = visitor.say("same-id", "hello").await;
    let again = visitor.say("same-id", "hello").await;
    assert_eq!(first, again, "the resend gets the original ack");
    let next = visitor.say("other-id", "second").await;
    assert_eq!(next.seq, 2, "the resend took no seq");

    let conversation = first.conversation_id.clone();
    let reply = agent.reply(&conversation, "r1", "hi").await;
    let reply_again = agent.reply(&conversation, "r1", "hi").await;
    assert_eq!(reply, reply_again);

    let history = agent.history(&conversation, None, 50).await;
    let texts: Vec<&str> = history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["hello", "second", "hi"]);
}

#[tokio::test]
async fn resolved_conversations_reopen_as_waiting_when_the_visitor_writes() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let (mut visitor, _) = relay.new_visitor().await;
    let conversation = visitor.say("v1", "hi").await.conversation_id;
    agent.reply(&conversation, "a1", "hello").await;
    agent
        .send(&AgentRequest::Resolve {
            conversation_id: conversation.clone(),
        })
        .await;
    agent
        .summary_where(&conversation, |s| s.status == ConversationStatus::Resolved)
        .await;

    let ack = visitor.say("v2", "one more thing").await;
    assert_eq!(ack.conversation_id, conversation, "same conversation");
    // After hi (1), hello (2) and the events resolved (3) and reopened (4).
    assert_eq!(ack.seq, 5);
    let summary = agent
        .summary_where(&conversation, |s| s.status == ConversationStatus::Waiting)
        .await;
    assert_eq!(summary.assignee, None);
    assert!(summary.waiting_since.is_some());

    // A new agent session lists it among the open conversations.
    let (_late, welcome) = relay.welcomed_agent(&token).await;
    assert_eq!(welcome.conversations.len(), 1);
    assert_eq!(welcome.conversations[0].id, conversation);
}

#[tokio::test]
async fn typing_and_read_receipts_cross_over_and_reads_persist() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let (mut visitor, _) = relay.new_visitor().await;
    let conversation = visitor.say("v1", "first").await.conversation_id;
    visitor.say("v2", "second").await;
    let unread = agent.summary_where(&conversation, |s| s.unread == 2).await;
    assert_eq!(unread.last_seq, 2);

    visitor.send(&VisitorRequest::Typing { active: true }).await;
    let typing = agent
        .until(|event| match event {
            AgentEvent::Typing(typing) => Some(typing),
            _ => None,
        })
        .await;
    assert_eq!(typing.author.kind, AuthorKind::Visitor);
    assert!(typing.active);
    assert_eq!(typing.conversation_id, conversation);

    // The visitor sees "seen" from the agent answering them (a peek at a
    // waiting chat shows nothing: see desk.rs), so the agent claims first.
    agent.claim(&conversation).await;
    agent
        .send(&AgentRequest::Read {
            conversation_id: conversation.clone(),
            up_to_seq: 2,
        })
        .await;
    let receipt = visitor
        .until(|event| match event {
            VisitorEvent::Read(receipt) => Some(receipt),
            _ => None,
        })
        .await;
    assert_eq!((receipt.reader, receipt.up_to_seq), (AuthorKind::Agent, 2));
    agent.summary_where(&conversation, |s| s.unread == 0).await;

    agent.reply(&conversation, "a1", "hi").await;
    agent
        .send(&AgentRequest::Typing {
            conversation_id: conversation.clone(),
            active: true,
        })
        .await;
    let typing = visitor
        .until(|event| match event {
            VisitorEvent::Typing(typing) => Some(typing),
            _ => None,
        })
        .await;
    assert_eq!(typing.author.kind, AuthorKind::Agent);
    assert_eq!(typing.author.name, "alice");

    visitor.send(&VisitorRequest::Read { up_to_seq: 3 }).await;
    let receipt = agent
        .until(|event| match event {
            AgentEvent::Read(receipt) => Some(receipt),
            _ => None,
        })
        .await;
    assert_eq!(
        (receipt.reader, receipt.up_to_seq),
        (AuthorKind::Visitor, 3)
    );

    // Read marks survive a restart of the relay.
    drop((agent, visitor));
    let relay = TestRelay::reopen(relay.stop().await).await;
    let (_agent, welcome) = relay.welcomed_agent(&token).await;
    let summary = &welcome.conversations[0];
    assert_eq!((summary.unread, summary.visitor_read_seq), (0, 3));
}

#[tokio::test]
async fn history_pages_backwards_without_overlap() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let (mut visitor, _) = relay.new_visitor().await;
    let conversation = visitor.say("m1", "message 1").await.conversation_id;
    for i in 2..=25 {
        visitor.say(&format!("m{i}"), &format!("message {i}")).await;
    }

    let newest = agent.history(&conversation, None, 10).await;
    assert_eq!(
        newest.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (16..=25).collect::<Vec<_>>()
    );
    let older = agent.history(&conversation, Some(16), 10).await;
    assert_eq!(
        older.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (6..=15).collect::<Vec<_>>()
    );
    let oldest = agent.history(&conversation, Some(6), 10).await;
    assert_eq!(
        oldest.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=5).collect::<Vec<_>>()
    );
    assert_eq!(oldest[0].text, "message 1");

    agent
        .send(&AgentRequest::History {
            conversation_id: "nope".into(),
            before_seq: None,
            limit: None,
        })
        .await;
    assert_error(&agent.next_error().await, ErrorCode::NotFound);
}

#[tokio::test]
async fn shutdown_asks_every_client_to_reconnect_and_keeps_what_was_acked() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let (mut visitor, welcome) = relay.new_visitor().await;
    let ack = visitor.say("v1", "before shutdown").await;

    let dir = relay.stop().await;
    for frames in [
        visitor.drain().await.into_iter().map(|e| matches!(e, VisitorEvent::Reconnect(r) if r.reason.as_deref() == Some("shutdown"))).collect::<Vec<_>>(),
        agent.drain().await.into_iter().map(|e| matches!(e, AgentEvent::Reconnect(r) if r.reason.as_deref() == Some("shutdown"))).collect(),
    ] {
        assert_eq!(frames.last(), Some(&true), "the last frame is a reconnect");
    }

    let relay = TestRelay::reopen(dir).await;
    let mut visitor = relay.visitor().await;
    visitor.hello(Some(&welcome.token), None).await;
    let message = visitor.next_message().await;
    assert_eq!((message.seq, message.id), (ack.seq, ack.id));
}

/// Two tabs of one visitor: each connection's writes carry only what that
/// connection learned and has not stored yet, so a tab opened earlier
/// does not put back the name and e-mail another tab changed since.
#[tokio::test]
async fn a_tab_opened_earlier_does_not_undo_another_tabs_newer_profile() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let mut first_tab = relay.visitor().await;
    let opened_with = VisitorProfile {
        name: Some("Ming".into()),
        email: Some("ming@old.example".into()),
        ..Default::default()
    };
    let welcome = first_tab
        .hello_with_profile(None, None, Some(opened_with))
        .await;
    let conversation = first_tab.say("first-1", "hello").await.conversation_id;
    agent
        .summary_where(&conversation, |s| s.visitor.name == "Ming")
        .await;

    let mut second_tab = relay.visitor().await;
    second_tab.hello(Some(&welcome.token), None).await;
    second_tab
        .send(&VisitorRequest::Profile(VisitorProfile {
            name: Some("Ming Li".into()),
            email: Some("ming@new.example".into()),
            ..Default::default()
        }))
        .await;
    agent
        .summary_where(&conversation, |s| s.visitor.name == "Ming Li")
        .await;

    let ack = first_tab.say("first-2", "still there?").await;
    let message = agent
        .until(|event| match event {
            AgentEvent::Message(message) if message.seq == ack.seq => Some(message),
            _ => None,
        })
        .await;
    assert_eq!(message.author.name, "Ming Li", "the newer name");
    let summary = agent
        .summary_where(&conversation, |s| s.last_seq == ack.seq)
        .await;
    assert_eq!(summary.visitor.name, "Ming Li");
    assert_eq!(summary.visitor.email.as_deref(), Some("ming@new.example"));

    // A change from the first tab changes what it says, nothing else.
    first_tab
        .send(&VisitorRequest::Profile(VisitorProfile {
            lang: Some("zh-CN".into()),
            ..Default::default()
        }))
        .await;
    let summary = agent
        .summary_where(&conversation, |s| {
            s.visitor.lang.as_deref() == Some("zh-CN")
        })
        .await;
    assert_eq!(summary.visitor.name, "Ming Li");
    assert_eq!(summary.visitor.email.as_deref(), Some("ming@new.example"));
}
