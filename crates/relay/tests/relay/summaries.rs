//! Which agents get a conversation's `conversation` frames, and when: those
//! who see it (everybody while it waits, then its assignee and whoever opened
//! it) at once; the others at once for changes that move it in the queue and
//! coalesced, every couple of seconds, for its per-message counts.
//!
//! "At once" and "not at once" are shown by order: every agent sees a waiting
//! visitor's messages as soon as they are committed, so such a message
//! written after a change is a tick that comes after the change's summary if
//! that was sent at once, and before it if it was held back. That assumes the
//! few commits a test makes in a row take less than the 2 s coalescing delay.

use kefu_protocol::agent::{
    AgentEvent, AgentRequest, ConversationStatus, ConversationSummary, Role,
};
use kefu_protocol::visitor::VisitorEvent;
use kefu_testkit::{Client, TestRelay};

/// Reads `agent`'s frames up to the first that `stop` accepts; returns the
/// summaries of `conversation_id` that came before it.
async fn summaries_until(
    agent: &mut Client<AgentEvent>,
    conversation_id: &str,
    stop: impl Fn(&AgentEvent) -> bool,
) -> Vec<ConversationSummary> {
    let mut summaries = Vec::new();
    loop {
        match agent.next().await {
            event if stop(&event) => return summaries,
            AgentEvent::Conversation(frame) if frame.summary.id == conversation_id => {
                summaries.push(frame.summary);
            }
            _ => {}
        }
    }
}

/// [`summaries_until`] the tick whose text is `tick`.
pub async fn summaries_before(
    agent: &mut Client<AgentEvent>,
    conversation_id: &str,
    tick: &str,
) -> Vec<ConversationSummary> {
    summaries_until(
        agent,
        conversation_id,
        |event| matches!(event, AgentEvent::Message(message) if message.text == tick),
    )
    .await
}

fn seqs(summaries: &[ConversationSummary]) -> Vec<u64> {
    summaries.iter().map(|s| s.last_seq).collect()
}

/// Alice and Bob signed in; a visitor's conversation that Alice claimed; and
/// a waiting visitor whose messages are the ticks.
struct Claimed {
    relay: TestRelay,
    alice: Client<AgentEvent>,
    bob: Client<AgentEvent>,
    visitor: Client<VisitorEvent>,
    ticks: Client<VisitorEvent>,
    conversation: String,
}

async fn claimed_by_alice() -> Claimed {
    let relay = TestRelay::start().await;
    let alice = relay.add_agent("alice", Role::Agent).await;
    let bob = relay.add_agent("bob", Role::Agent).await;
    let mut alice = relay.signed_in_agent(&alice).await;
    let mut bob = relay.signed_in_agent(&bob).await;
    let (mut visitor, _) = relay.new_visitor().await;
    let (mut ticks, _) = relay.new_visitor().await;
    let conversation = visitor.say("v1", "hi").await.conversation_id;
    // Read before the next change: a summary still queued for Bob would be
    // replaced by the next one (coalesced), as a slow reader's is.
    let waiting = bob.summary_where(&conversation, |_| true).await;
    assert_eq!(waiting.status, ConversationStatus::Waiting);
    alice.claim(&conversation).await;
    ticks.say("t0", "tick 0").await;
    // The claim reached Bob at once, too.
    let to_bob = summaries_before(&mut bob, &conversation, "tick 0").await;
    let statuses: Vec<_> = to_bob.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [ConversationStatus::Active]);
    Claimed {
        relay,
        alice,
        bob,
        visitor,
        ticks,
        conversation,
    }
}

#[tokio::test]
async fn others_get_a_conversations_counts_coalesced_and_its_owner_at_once() {
    let Claimed {
        relay: _relay,
        mut alice,
        mut bob,
        mut visitor,
        mut ticks,
        conversation,
    } = claimed_by_alice().await;

    visitor.say("v2", "first question").await;
    // Alice reads as it comes (a summary left queued would be replaced by
    // the next one).
    let first = alice.summary_where(&conversation, |_| true).await;
    visitor.say("v3", "second question").await;
    ticks.say("t1", "tick 1").await;
    let mut to_alice = vec![first];
    to_alice.extend(summaries_before(&mut alice, &conversation, "tick 1").await);
    // (seq 2 is the claim's timeline event)
    assert_eq!(seqs(&to_alice), [3, 4], "the owner: one per message");
    let to_bob = summaries_before(&mut bob, &conversation, "tick 1").await;
    assert_eq!(to_bob, [], "nothing for Bob at once");

    // Then one summary with both messages counted: the owner's latest.
    let coalesced = bob.summary_where(&conversation, |_| true).await;
    assert_eq!(Some(&coalesced), to_alice.last());
    assert_eq!(coalesced.preview, "second question");
    // Alice, who had it already, is not sent it again.
    ticks.say("t2", "tick 2").await;
    let to_alice = summaries_before(&mut alice, &conversation, "tick 2").await;
    assert_eq!(to_alice, []);
}

#[tokio::test]
async fn opening_someone_elses_conversation_brings_its_summary_up_to_date() {
    let Claimed {
        relay: _relay,
        alice: _alice,
        mut bob,
        mut visitor,
        mut ticks,
        conversation,
    } = claimed_by_alice().await;

    visitor.say("v2", "a question").await;
    bob.send(&AgentRequest::History {
        conversation_id: conversation.clone(),
        before_seq: None,
        limit: None,
    })
    .await;
    // The summary may come before or after the page, but before the tick.
    let mut to_bob = summaries_until(&mut bob, &conversation, |event| {
        matches!(event, AgentEvent::History(_))
    })
    .await;
    ticks.say("t1", "tick 1").await;
    to_bob.extend(summaries_before(&mut bob, &conversation, "tick 1").await);
    // (seq 2 is the claim's timeline event)
    assert_eq!(seqs(&to_bob), [3], "the current summary, on opening");

    // Following it now, Bob gets its summaries at once.
    visitor.say("v3", "another question").await;
    ticks.say("t2", "tick 2").await;
    let to_bob = summaries_before(&mut bob, &conversation, "tick 2").await;
    assert_eq!(seqs(&to_bob), [4]);
}

#[tokio::test]
async fn a_transfer_and_a_resolve_reach_every_agent_at_once() {
    let Claimed {
        relay,
        mut alice,
        mut bob,
        mut visitor,
        mut ticks,
        conversation,
    } = claimed_by_alice().await;
    let carol = relay.add_agent("carol", Role::Agent).await;
    let mut carol = relay.signed_in_agent(&carol).await;
    let carol_id = relay.agent_id("carol").await;

    visitor.say("v2", "a question").await;
    alice
        .send(&AgentRequest::Transfer {
            conversation_id: conversation.clone(),
            to_agent: carol_id.clone(),
        })
        .await;
    carol
        .summary_where(&conversation, |s| s.assignee.as_ref() == Some(&carol_id))
        .await;
    ticks.say("t1", "tick 1").await;
    // Bob was owed the message's counts; the transfer brings them along.
    let to_bob = summaries_before(&mut bob, &conversation, "tick 1").await;
    let seen: Vec<_> = to_bob
        .iter()
        .map(|s| (s.last_seq, s.assignee.as_deref()))
        .collect();
    // hi (1), the claim (2), the question (3) and the transfer (4).
    assert_eq!(seen, [(4, Some(carol_id.as_str()))]);

    carol
        .send(&AgentRequest::Resolve {
            conversation_id: conversation.clone(),
        })
        .await;
    carol
        .summary_where(&conversation, |s| s.status == ConversationStatus::Resolved)
        .await;
    ticks.say("t2", "tick 2").await;
    let to_bob = summaries_before(&mut bob, &conversation, "tick 2").await;
    let statuses: Vec<_> = to_bob.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [ConversationStatus::Resolved]);
}
