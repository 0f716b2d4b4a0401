//! `resolve_waiting`: an admin resolves a flood of waiting conversations
//! from one address range in bulk; each is resolved as by `resolve`
//! (durable, in the timeline, every agent's queue hears of it), and a
//! visitor from elsewhere keeps waiting and chatting.

use std::collections::HashSet;

use kefu_protocol::agent::bulk::{ResolveWaitingRequest, ResolvedWaiting};
use kefu_protocol::agent::{AgentEvent, AgentRequest, ConversationStatus, Role};
use kefu_protocol::visitor::VisitorEvent;
use kefu_protocol::{ErrorCode, ErrorFrame, TimelineEvent};
use kefu_testkit::{Client, TestRelay, accounts, assert_error};

use crate::cluster::Cluster;

/// Conversations the flood starts (under the default 20 a minute per
/// address, which would refuse more).
const FLOOD: usize = 5;

/// Sends `resolve_waiting`; its answer, or the error.
async fn resolve_waiting(
    admin: &mut Client<AgentEvent>,
    address: Option<&str>,
    older_than_secs: Option<u64>,
    dry_run: bool,
) -> Result<ResolvedWaiting, ErrorFrame> {
    admin
        .send(&AgentRequest::ResolveWaiting(ResolveWaitingRequest {
            address: address.map(str::to_owned),
            older_than_secs,
            dry_run,
        }))
        .await;
    admin
        .until(|event| match event {
            AgentEvent::ResolvedWaiting(answer) => Some(Ok(answer)),
            AgentEvent::Error(error) => Some(Err(error)),
            _ => None,
        })
        .await
}

/// A visitor from `source` who has started a conversation; its id.
async fn waiting_from(url: &str, source: &str) -> (Client<VisitorEvent>, String) {
    let source = source.parse().expect("an address");
    let mut visitor = Client::<VisitorEvent>::connect_from(url, source).await;
    visitor.hello(None, None).await;
    let ack = visitor.say("first", "hello").await;
    (visitor, ack.conversation_id)
}

#[tokio::test]
async fn a_flood_from_one_range_is_resolved_in_bulk_and_others_chat_on() {
    // The default `visitor_address = truncated` keeps /24 networks.
    let relay = TestRelay::start().await;
    let root = relay.add_agent("root", Role::Admin).await;
    let alice = relay.add_agent("alice", Role::Agent).await;
    let mut admin = relay.signed_in_agent(&root).await;
    let mut agent = relay.signed_in_agent(&alice).await;
    let url = relay.url("/ws/visitor");
    let mut flood = Vec::new();
    for _ in 0..FLOOD {
        flood.push(waiting_from(&url, "127.0.1.9").await);
    }
    let (mut other, other_id) = waiting_from(&url, "127.0.0.3").await;

    let refused = resolve_waiting(&mut agent, Some("127.0.1.0/24"), None, false).await;
    assert_error(&refused.expect_err("admins only"), ErrorCode::Forbidden);
    for (address, older) in [(None, None), (Some("127.0.1.9"), None)] {
        let refused = resolve_waiting(&mut admin, address, older, false).await;
        // Nothing to filter by; narrower than the /24 the relay keeps.
        assert_error(&refused.expect_err("refused"), ErrorCode::BadRequest);
    }
    let young = resolve_waiting(&mut admin, Some("127.0.1.0/24"), Some(3600), false).await;
    assert_eq!(young.expect("answered").matched, 0, "both filters hold");
    let counted = resolve_waiting(&mut admin, Some("127.0.1.0/24"), None, true).await;
    let counted = counted.expect("a dry run");
    assert_eq!((counted.matched, counted.resolved), (FLOOD as u64, 0));

    let done = resolve_waiting(&mut admin, Some("127.0.1.0/24"), None, false).await;
    let done = done.expect("resolved");
    assert_eq!(
        (done.matched, done.resolved),
        (FLOOD as u64, FLOOD as u64),
        "the dry run resolved nothing"
    );
    // Every agent's queue hears of each resolve; the visitor sees it.
    let mut left: HashSet<String> = flood.iter().map(|(_, id)| id.clone()).collect();
    while !left.is_empty() {
        let summary = agent
            .until(|event| match event {
                AgentEvent::Conversation(frame) => Some(frame.summary),
                _ => None,
            })
            .await;
        assert_ne!(summary.id, other_id, "the other conversation is untouched");
        if summary.status == ConversationStatus::Resolved {
            left.remove(&summary.id);
        }
    }
    // Durable, and in the timeline like any resolve.
    let (_, first) = &flood[0];
    let history = agent.history(first, None, 50).await;
    let resolved_by = history
        .iter()
        .find_map(|message| match message.event.as_deref() {
            Some(TimelineEvent::Resolved { by }) => Some(by.name.clone()),
            _ => None,
        });
    assert_eq!(resolved_by.as_deref(), Some("root"));

    // The other visitor still waits, and chats on.
    let ack = other.say("again", "still waiting").await;
    let summary = agent
        .summary_where(&other_id, |s| s.last_seq == ack.seq)
        .await;
    assert_eq!(summary.status, ConversationStatus::Waiting);
    agent.reply(&other_id, "r1", "here now").await;
    assert_eq!(other.next_message().await.text, "here now");
}

/// On a cluster the resolves reach the agents of every relay, as any
/// resolve does, whichever relay the admin asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_resolve_on_one_relay_reaches_the_agents_of_another() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let root = accounts::add_agent(&cluster.database.url, "root", Role::Admin).await;
    let mut admin = cluster.a.agent().await;
    admin.hello(&root).await;
    let mut agent = cluster.agent_on_b().await;
    let on_b = format!("ws://{}/ws/visitor", cluster.b.addr);
    let (_flood, flood_id) = waiting_from(&on_b, "127.0.1.9").await;
    let (_other, _) = waiting_from(&on_b, "127.0.0.3").await;

    let done = resolve_waiting(&mut admin, Some("127.0.1.0/24"), None, false).await;
    assert_eq!(done.expect("resolved").resolved, 1);
    agent
        .summary_where(&flood_id, |s| s.status == ConversationStatus::Resolved)
        .await;
    cluster.stop().await;
}
