//! Timeline events end to end: a claim, a transfer, a resolve and a reopen
//! reach the agents following the conversation live (each before the
//! summary it left), come back in order in history, across a restart and
//! in pages, exactly once, and never reach the visitor.

use kefu_protocol::agent::{AgentEvent, AgentRequest, ConversationStatus};
use kefu_protocol::{AuthorKind, Message, TimelineEvent};
use kefu_testkit::{Client, TestRelay};

use kefu_protocol::agent::Role;

/// The next timeline event of `conversation` as it arrives live, which
/// must be `seq`; fails if the summary it left comes first.
async fn live_event(agent: &mut Client<AgentEvent>, conversation: &str, seq: u64) -> Message {
    let event = agent
        .until(|frame| match frame {
            AgentEvent::Message(message)
                if message.conversation_id == conversation && message.is_event() =>
            {
                Some(message)
            }
            AgentEvent::Conversation(frame)
                if frame.summary.id == conversation && frame.summary.last_seq >= seq =>
            {
                panic!("the summary came before its event: {frame:?}")
            }
            _ => None,
        })
        .await;
    assert_eq!(event.seq, seq, "{event:?}");
    agent
        .summary_where(conversation, |s| s.last_seq == seq)
        .await;
    event
}

/// What each message of a history is: its text, or its event's kind.
fn timeline(messages: &[Message]) -> Vec<String> {
    (messages.iter())
        .map(|message| match message.event.as_deref() {
            Some(TimelineEvent::Claimed { by }) => format!("claimed by {}", by.name),
            Some(TimelineEvent::Transferred { by, to }) => {
                format!("transferred to {} by {}", to.name, by.name)
            }
            Some(TimelineEvent::Resolved { by }) => format!("resolved by {}", by.name),
            Some(TimelineEvent::Reopened { by }) => format!("reopened by {:?}", by.kind),
            Some(other) => other.describe(),
            None => message.text.clone(),
        })
        .collect()
}

#[tokio::test]
async fn claim_transfer_resolve_and_reopen_stay_in_the_timeline() {
    let relay = TestRelay::start().await;
    let alice_token = relay.add_agent("alice", Role::Agent).await;
    let bob_token = relay.add_agent("bob", Role::Agent).await;
    let bob_id = relay.agent_id("bob").await;
    let mut alice = relay.signed_in_agent(&alice_token).await;
    let mut bob = relay.signed_in_agent(&bob_token).await;
    let (mut visitor, welcome) = relay.new_visitor().await;
    let conversation = visitor.say("v1", "hi").await.conversation_id;

    alice
        .send(&AgentRequest::Claim {
            conversation_id: conversation.clone(),
        })
        .await;
    let claimed = live_event(&mut alice, &conversation, 2).await;
    assert!(claimed.internal);
    assert_eq!(claimed.author.kind, AuthorKind::System);
    alice.reply(&conversation, "a1", "hello").await;
    alice
        .send(&AgentRequest::Transfer {
            conversation_id: conversation.clone(),
            to_agent: bob_id.clone(),
        })
        .await;
    // Bob has it now, and hears of it with the event.
    live_event(&mut bob, &conversation, 4).await;
    bob.send(&AgentRequest::Resolve {
        conversation_id: conversation.clone(),
    })
    .await;
    live_event(&mut bob, &conversation, 5).await;

    // The visitor writes again: waiting, so every agent sees the reopen,
    // then the message. The visitor got the reply, no event.
    let (ack, got) = visitor.say_noting_messages("v2", "one more thing").await;
    assert_eq!(ack.seq, 7);
    assert_eq!(timeline(&got), ["hello"], "{got:?}");
    // Both changes come at once, so the reopen's own summary may be
    // coalesced into the message's: wait for the latest, and see the event
    // and the message before it, in order.
    for agent in [&mut alice, &mut bob] {
        let mut seen = Vec::new();
        agent
            .until(|event| match event {
                AgentEvent::Message(message) if message.conversation_id == conversation => {
                    seen.push(message);
                    None
                }
                AgentEvent::Conversation(frame)
                    if frame.summary.id == conversation && frame.summary.last_seq >= 7 =>
                {
                    Some(frame.summary.last_seq)
                }
                _ => None,
            })
            .await;
        assert_eq!(seen.iter().map(|m| m.seq).collect::<Vec<_>>(), [6, 7]);
        assert!(matches!(
            seen[0].event.as_deref(),
            Some(TimelineEvent::Reopened { .. })
        ));
    }

    let expected = [
        "hi",
        "claimed by alice",
        "hello",
        "transferred to bob by alice",
        "resolved by bob",
        "reopened by Visitor",
        "one more thing",
    ];
    let history = bob.history(&conversation, None, 50).await;
    assert_eq!(timeline(&history), expected);

    // After a restart: the same history, and paged back two at a time,
    // every message and event exactly once.
    drop((alice, bob, visitor));
    let relay = TestRelay::reopen(relay.stop().await).await;
    let mut bob = relay.signed_in_agent(&bob_token).await;
    assert_eq!(bob.history(&conversation, None, 50).await, history);
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = bob.history(&conversation, before, 2).await;
        let Some(first) = page.first() else { break };
        before = Some(first.seq);
        paged.splice(0..0, page);
    }
    assert_eq!(paged, history);

    // The visitor resuming from the start is replayed the public messages.
    let mut visitor = relay.visitor().await;
    visitor.hello(Some(&welcome.token), Some(0)).await;
    let (ack, replayed) = visitor.say_noting_messages("v3", "still there?").await;
    assert_eq!(ack.seq, 8);
    assert_eq!(timeline(&replayed), ["hi", "hello", "one more thing"]);
}

/// The hub auto-assigns a conversation when the visitor's write opens it,
/// new or reopened; a reopen now publishes its event first, which must
/// still count as that write.
#[tokio::test]
async fn auto_assignment_takes_a_reopened_conversation_and_says_so() {
    let relay = TestRelay::with_config(|config| config.auto_assign = true).await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut alice = relay.signed_in_agent(&token).await;
    let (mut visitor, _) = relay.new_visitor().await;
    let conversation = visitor.say("v1", "hi").await.conversation_id;
    alice
        .summary_where(&conversation, |s| s.status == ConversationStatus::Active)
        .await;
    alice
        .send(&AgentRequest::Resolve {
            conversation_id: conversation.clone(),
        })
        .await;
    alice
        .summary_where(&conversation, |s| s.status == ConversationStatus::Resolved)
        .await;

    assert_eq!(visitor.say("v2", "again").await.seq, 5);
    let taken = alice
        .summary_where(&conversation, |s| s.status == ConversationStatus::Active)
        .await;
    assert_eq!(taken.last_seq, 6, "the claim's event follows the message");
    let history = alice.history(&conversation, None, 50).await;
    assert_eq!(
        timeline(&history),
        [
            "hi",
            "claimed by alice",
            "resolved by alice",
            "reopened by Visitor",
            "again",
            "claimed by alice",
        ]
    );
}
