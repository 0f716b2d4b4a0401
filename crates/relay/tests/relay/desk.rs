//! What agents do with conversations and with each other, end to end over
//! real sockets: claims, transfers, auto-assignment, pipelined requests,
//! presence and broadcasts.

use std::time::Duration;

use kefu_protocol::agent::AgentReadMark;
use kefu_protocol::agent::{AgentEvent, AgentRequest, ConversationStatus, Role};
use kefu_protocol::visitor::VisitorEvent;
use kefu_protocol::{AgentState, AuthorKind, ErrorCode, PresenceKind, TimelineEvent};
use kefu_testkit::{Client, TestRelay, assert_error};

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

/// Read state is per agent (issue 16, repro 3): a colleague who opens a
/// waiting chat clears only their own count and shows the visitor no
/// "seen"; the assignee's read does. Marks survive a relay restart.
#[tokio::test]
async fn each_agent_reads_for_itself_and_the_visitor_sees_the_assignee() {
    let relay = TestRelay::start().await;
    let alice_token = relay.add_agent("alice", Role::Agent).await;
    let bob_token = relay.add_agent("bob", Role::Agent).await;
    let mut alice = relay.signed_in_agent(&alice_token).await;
    let mut bob = relay.signed_in_agent(&bob_token).await;
    let (mut visitor, _) = relay.new_visitor().await;
    let conversation = visitor.say("v1", "first").await.conversation_id;
    visitor.say("v2", "second").await;
    for agent in [&mut alice, &mut bob] {
        agent
            .summary_where(&conversation, |s| s.visitor_messages == 2)
            .await;
    }

    // Bob peeks at the waiting chat.
    read(&mut bob, &conversation, 2).await;
    let mark = own_mark(&mut bob).await;
    assert_eq!((mark.up_to_seq, mark.visitor_messages), (2, 2));
    // Whatever the read sent is queued before bob's typing, which the
    // visitor and alice see (the chat is waiting).
    bob.send(&AgentRequest::Typing {
        conversation_id: conversation.clone(),
        active: true,
    })
    .await;
    let first = visitor
        .until(|event| match event {
            VisitorEvent::Read(_) | VisitorEvent::Typing(_) => Some(event),
            _ => None,
        })
        .await;
    assert!(
        matches!(first, VisitorEvent::Typing(_)),
        "a peek showed the visitor {first:?}"
    );
    let first = alice
        .until(|event| match event {
            AgentEvent::Typing(_) | AgentEvent::ReadMark(_) | AgentEvent::Read(_) => Some(event),
            AgentEvent::Conversation(ref frame) if frame.summary.unread != 2 => Some(event),
            _ => None,
        })
        .await;
    assert!(
        matches!(first, AgentEvent::Typing(_)),
        "bob's peek reached alice: {first:?}"
    );

    // Alice takes the chat and reads it: now the visitor sees "seen".
    alice.claim(&conversation).await;
    read(&mut alice, &conversation, 2).await;
    let receipt = visitor
        .until(|event| match event {
            VisitorEvent::Read(receipt) => Some(receipt),
            _ => None,
        })
        .await;
    assert_eq!((receipt.reader, receipt.up_to_seq), (AuthorKind::Agent, 2));
    assert_eq!(own_mark(&mut alice).await.up_to_seq, 2);
    alice.summary_where(&conversation, |s| s.unread == 0).await;

    // Bob's count is his own, and survives a restart.
    visitor.say("v3", "third").await;
    // Alice's reply moves her own mark (seq 5, after the claim's timeline
    // event at 3 and "third" at 4, covers 3 of the visitor's).
    alice
        .send(&AgentRequest::Send {
            attachments: Vec::new(),
            conversation_id: conversation.clone(),
            client_id: "a1".into(),
            text: "Hello!".into(),
            internal: false,
            link: None,
        })
        .await;
    let mark = own_mark(&mut alice).await;
    assert_eq!((mark.up_to_seq, mark.visitor_messages), (5, 3));
    drop((alice, bob, visitor));
    let relay = TestRelay::reopen(relay.stop().await).await;
    let (_bob, welcome) = relay.welcomed_agent(&bob_token).await;
    let summary = &welcome.conversations[0];
    assert_eq!(welcome.read_marks.len(), 1);
    assert_eq!(summary.unread_for(welcome.read_marks.first()), 1);
    assert_eq!(summary.unread, 0, "the assignee replied after the third");
}

async fn read(agent: &mut Client<AgentEvent>, conversation_id: &str, up_to_seq: u64) {
    agent
        .send(&AgentRequest::Read {
            conversation_id: conversation_id.to_owned(),
            up_to_seq,
        })
        .await;
}

async fn own_mark(agent: &mut Client<AgentEvent>) -> AgentReadMark {
    agent
        .until(|event| match event {
            AgentEvent::ReadMark(mark) => Some(mark),
            _ => None,
        })
        .await
}

/// An agent may send requests without waiting for answers. Those about one
/// conversation take effect in the order sent, and every answer comes back
/// in request order, also past the 128 the relay works on at once.
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
        attachments: Vec::new(),
        conversation_id: conversation.to_owned(),
        client_id: client_id.to_owned(),
        text: format!("reply {client_id}"),
        internal: false,
        link: None,
    };
    let mut sent = Vec::new();
    const REPLIES: usize = 150;
    for i in 0..REPLIES {
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

    // The resolve's timeline event sits between the replies.
    let stored: Vec<String> = agent
        .history(&conversations[0], None, 100)
        .await
        .into_iter()
        .map(|message| match message.event.as_deref() {
            Some(TimelineEvent::Resolved { .. }) => "(resolved)".to_owned(),
            _ => message.client_id,
        })
        .collect();
    let mut expected = vec!["v0".to_owned()];
    expected.extend((0..REPLIES).step_by(3).map(|i| format!("a{i}")));
    expected.push("(resolved)".to_owned());
    expected.push("after".to_owned());
    assert_eq!(stored, expected, "one conversation's requests in order");
    let (_late, welcome) = relay.welcomed_agent(&token).await;
    let first = welcome
        .conversations
        .iter()
        .find(|summary| summary.id == conversations[0])
        .expect("reopened by the reply after resolve");
    assert_eq!(first.status, ConversationStatus::Active);
    assert_eq!(first.last_seq, 53, "52 messages and the resolve's event");
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
