//! The conversation flows of protocol v1, end to end over real sockets.

use std::time::Duration;

use kefu_protocol::agent::{AgentEvent, AgentRequest, ConversationStatus, Role};
use kefu_protocol::visitor::{VisitorEvent, VisitorRequest};
use kefu_protocol::{AgentState, AuthorKind, ErrorCode, PresenceKind};
use kefu_testkit::{Client, TestRelay, assert_error};

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
            conversation_id: conversation.clone(),
            client_id: "a1".into(),
            text: "Yes! How can I help?".into(),
            internal: false,
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
async fn exactly_one_of_racing_agents_wins_a_claim() {
    let relay = TestRelay::start().await;
    const NAMES: [&str; 4] = ["a", "b", "c", "d"];
    let mut agents = Vec::new();
    for name in NAMES {
        let token = relay.add_agent(name, Role::Agent).await;
        agents.push(relay.signed_in_agent(&token).await);
    }
    let (mut visitor, _) = relay.new_visitor().await;
    let conversation = visitor.say("v1", "help").await.conversation_id;
    for agent in &mut agents {
        agent.next_message().await;
    }

    // Every claim is on the wire before any answer is read.
    for agent in &mut agents {
        agent
            .send(&AgentRequest::Claim {
                conversation_id: conversation.clone(),
            })
            .await;
    }
    let mut winners = Vec::new();
    let mut losers = 0;
    for (index, agent) in agents.iter_mut().enumerate() {
        // The winner's claim reaches every agent, a loser possibly before
        // its own refusal: only a summary naming this agent is a win.
        let id = relay.agent_id(NAMES[index]).await;
        let outcome = agent
            .until(|event| match event {
                AgentEvent::Error(error) => Some(Err(error)),
                AgentEvent::Conversation(frame)
                    if frame.summary.status == ConversationStatus::Active
                        && frame.summary.assignee.as_deref() == Some(id.as_str()) =>
                {
                    Some(Ok(frame.summary))
                }
                _ => None,
            })
            .await;
        match outcome {
            Err(error) => {
                assert_error(&error, ErrorCode::Conflict);
                assert_eq!(error.reference.as_deref(), Some(conversation.as_str()));
                losers += 1;
            }
            Ok(summary) => winners.push((index, summary.assignee)),
        }
    }
    assert_eq!(losers, 3, "all but one claim lose");
    assert_eq!(winners.len(), 1);
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

/// An agent may send requests without waiting for answers. Those about one
/// conversation take effect in the order sent, and every answer comes back
/// in request order, also past the 16 the relay works on at once.
#[tokio::test]
async fn pipelined_agent_requests_keep_their_order() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let mut conversations = Vec::new();
    for i in 0..3 {
        let (mut visitor, _) = relay.new_visitor().await;
        conversations.push(visitor.say(&format!("v{i}"), "hi").await.conversation_id);
    }
    let send = |conversation: &str, client_id: &str| AgentRequest::Send {
        conversation_id: conversation.to_owned(),
        client_id: client_id.to_owned(),
        text: format!("reply {client_id}"),
        internal: false,
    };
    let mut sent = Vec::new();
    for i in 0..30 {
        let client_id = format!("a{i}");
        agent.send(&send(&conversations[i % 3], &client_id)).await;
        sent.push(client_id);
    }
    // Resolving, then replying again, reopens it as the agent's.
    agent
        .send(&AgentRequest::Resolve {
            conversation_id: conversations[0].clone(),
        })
        .await;
    agent.send(&send(&conversations[0], "after")).await;
    sent.push("after".to_owned());

    let mut acked = Vec::new();
    while acked.len() < sent.len() {
        match agent.next().await {
            AgentEvent::Ack(ack) => acked.push(ack.client_id),
            AgentEvent::Error(error) => panic!("refused: {error:?}"),
            _ => {}
        }
    }
    assert_eq!(acked, sent, "answers in request order");

    let stored: Vec<String> = agent
        .history(&conversations[0], None, 50)
        .await
        .into_iter()
        .map(|message| message.client_id)
        .collect();
    let mut expected = vec!["v0".to_owned()];
    expected.extend((0..30).step_by(3).map(|i| format!("a{i}")));
    expected.push("after".to_owned());
    assert_eq!(stored, expected, "one conversation's requests in order");
    let (_late, welcome) = relay.welcomed_agent(&token).await;
    let first = welcome
        .conversations
        .iter()
        .find(|summary| summary.id == conversations[0])
        .expect("reopened by the reply after resolve");
    assert_eq!(first.status, ConversationStatus::Active);
    assert_eq!(first.last_seq, 12);
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
    assert_eq!(ack.seq, 3);
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
async fn transfer_hands_the_conversation_over() {
    let relay = TestRelay::start().await;
    let alice_token = relay.add_agent("alice", Role::Agent).await;
    let bob_token = relay.add_agent("bob", Role::Agent).await;
    let carol_token = relay.add_agent("carol", Role::Agent).await;
    let mut alice = relay.signed_in_agent(&alice_token).await;
    let mut bob = relay.signed_in_agent(&bob_token).await;
    let mut carol = relay.signed_in_agent(&carol_token).await;
    let (mut visitor, _) = relay.new_visitor().await;
    let conversation = visitor.say("v1", "hi").await.conversation_id;
    alice.reply(&conversation, "a1", "hello").await;
    let claimed = bob
        .summary_where(&conversation, |s| s.status == ConversationStatus::Active)
        .await;
    let alice_id = claimed.assignee.clone().expect("assigned");

    // Bob cannot reply to, transfer or resolve Alice's conversation.
    let refused = bob
        .send_message(&conversation, "b1", "me too", false)
        .await
        .expect_err("not his");
    assert_error(&refused, ErrorCode::Conflict);
    bob.send(&AgentRequest::Resolve {
        conversation_id: conversation.clone(),
    })
    .await;
    assert_error(&bob.next_error().await, ErrorCode::Forbidden);

    // Alice hands it to Carol, who can now answer; Alice no longer can.
    let carol_id = relay.agent_id("carol").await;
    alice
        .send(&AgentRequest::Transfer {
            conversation_id: conversation.clone(),
            to_agent: carol_id.clone(),
        })
        .await;
    let moved = carol
        .summary_where(&conversation, |s| {
            s.assignee.as_deref() == Some(carol_id.as_str())
        })
        .await;
    assert_eq!(moved.status, ConversationStatus::Active);
    assert_ne!(alice_id, carol_id);
    carol.reply(&conversation, "c1", "Carol here").await;
    assert_eq!(visitor.next_message().await.text, "hello");
    assert_eq!(visitor.next_message().await.text, "Carol here");
    let refused = alice
        .send_message(&conversation, "a2", "still me?", false)
        .await
        .expect_err("transferred away");
    assert_error(&refused, ErrorCode::Conflict);

    // Transferring to nobody is refused.
    carol
        .send(&AgentRequest::Transfer {
            conversation_id: conversation.clone(),
            to_agent: "no-such-agent".into(),
        })
        .await;
    assert_error(&carol.next_error().await, ErrorCode::NotFound);
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
async fn presence_follows_visitors_after_the_grace_and_agents_availability() {
    let relay = TestRelay::with_config(|config| {
        config.presence_grace = Duration::from_millis(200);
    })
    .await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let (mut visitor, welcome) = relay.new_visitor().await;
    visitor.say("v1", "hi").await;
    agent.next_message().await;

    drop(visitor);
    let presence = agent
        .until(|event| match event {
            AgentEvent::Presence(p) if p.kind == PresenceKind::Visitor => Some(p),
            _ => None,
        })
        .await;
    assert_eq!(presence.id, welcome.visitor_id);
    assert!(!presence.online);

    let mut visitor = relay.visitor().await;
    visitor.hello(Some(&welcome.token), None).await;
    let presence = agent
        .until(|event| match event {
            AgentEvent::Presence(p) if p.kind == PresenceKind::Visitor => Some(p),
            _ => None,
        })
        .await;
    assert_eq!(
        presence.id, welcome.visitor_id,
        "only visitors with a conversation are announced"
    );
    assert!(presence.online);

    // An away agent is not counted as online for visitors.
    agent
        .send(&AgentRequest::Status {
            state: AgentState::Away,
        })
        .await;
    let presence = visitor
        .until(|event| match event {
            VisitorEvent::Presence(p) => Some(p),
            _ => None,
        })
        .await;
    assert_eq!(presence.agents_online, Some(0));
    assert_eq!(presence.state, Some(AgentState::Away));
    let (_, newcomer) = relay.new_visitor().await;
    assert_eq!(newcomer.agents_online, 0);
}

#[tokio::test]
async fn admins_broadcast_to_online_visitors_and_agents_may_not() {
    let relay = TestRelay::start().await;
    let admin = relay.add_agent("root", Role::Admin).await;
    let plain = relay.add_agent("alice", Role::Agent).await;
    let mut admin = relay.signed_in_agent(&admin).await;
    let mut plain = relay.signed_in_agent(&plain).await;
    let (mut first, _) = relay.new_visitor().await;
    let (mut second, _) = relay.new_visitor().await;

    plain
        .send(&AgentRequest::Broadcast {
            text: "not allowed".into(),
        })
        .await;
    assert_error(&plain.next_error().await, ErrorCode::Forbidden);

    admin
        .send(&AgentRequest::Broadcast {
            text: "We close at 18:00 today".into(),
        })
        .await;
    for visitor in [&mut first, &mut second] {
        let broadcast = visitor
            .until(|event| match event {
                VisitorEvent::Broadcast(b) => Some(b),
                _ => None,
            })
            .await;
        assert_eq!(broadcast.text, "We close at 18:00 today");
    }
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

#[tokio::test]
async fn auto_assignment_hands_new_conversations_to_available_agents_in_turn() {
    let relay = TestRelay::with_config(|config| config.auto_assign = true).await;
    let alice = relay.add_agent("alice", Role::Agent).await;
    let bob = relay.add_agent("bob", Role::Agent).await;
    let mut alice = relay.signed_in_agent(&alice).await;
    let _bob = relay.signed_in_agent(&bob).await;

    let mut assignees = Vec::new();
    for _ in 0..2 {
        assignees.push(assignee_of_a_new_visitor(&relay, &mut alice).await);
    }
    assert_ne!(assignees[0], assignees[1], "each agent in turn");

    // An away agent gets none.
    alice
        .send(&AgentRequest::Status {
            state: AgentState::Away,
        })
        .await;
    alice
        .until(|event| match event {
            AgentEvent::Presence(p) if p.state == Some(AgentState::Away) => Some(()),
            _ => None,
        })
        .await;
    let bob_id = relay.agent_id("bob").await;
    for _ in 0..2 {
        let assignee = assignee_of_a_new_visitor(&relay, &mut alice).await;
        assert_eq!(assignee, bob_id);
    }
}

/// A new visitor writes; whom auto-assignment gave the conversation to,
/// as `agent` sees it.
async fn assignee_of_a_new_visitor(relay: &TestRelay, agent: &mut Client<AgentEvent>) -> String {
    let (mut visitor, _) = relay.new_visitor().await;
    let conversation = visitor.say("v1", "hello").await.conversation_id;
    let summary = agent
        .summary_where(&conversation, |s| s.status == ConversationStatus::Active)
        .await;
    summary.assignee.expect("assigned")
}
