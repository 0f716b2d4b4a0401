//! How the relay treats a client its frames wait for: a burst the relay
//! produces itself is taken in by an agent that reads, however slowly,
//! with each conversation's latest summary; a client that stops reading is
//! told to resync once its oldest frame has waited the configured time.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kefu_protocol::agent::{AgentEvent, ConversationStatus, ConversationSummary, Role};
use kefu_protocol::visitor::{VisitorEvent, VisitorRequest};
use kefu_protocol::{PresenceKind, Seq};
use kefu_testkit::{Client, TestRelay};
use tokio::sync::Notify;
use tokio::time::Instant;

const CONVERSATIONS: usize = 1_000;

/// What an agent was told of one conversation.
#[derive(Default)]
struct Seen {
    /// The `seq`s of its `message` frames, in order of arrival.
    messages: Vec<Seq>,
    latest: Option<ConversationSummary>,
}

/// Reads an agent's frames until every one of [`CONVERSATIONS`]
/// conversations has both its messages and a summary counting both.
/// Panics if the relay closes the connection first, or if a summary ever
/// comes before a message it counts.
async fn read_burst(agent: &mut Client<AgentEvent>) -> HashMap<String, Seen> {
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut complete = HashSet::new();
    while complete.len() < CONVERSATIONS {
        let Some(event) = agent.try_next().await else {
            let complete = complete.len();
            panic!("the relay disconnected the agent after {complete} conversations");
        };
        match event {
            AgentEvent::Message(message) => {
                let entry = seen.entry(message.conversation_id).or_default();
                entry.messages.push(message.seq);
            }
            AgentEvent::Conversation(frame) => {
                let summary = frame.summary;
                let entry = seen.entry(summary.id.clone()).or_default();
                let received = entry.messages.last().copied().unwrap_or(0);
                assert!(
                    summary.last_seq <= received,
                    "a summary at seq {} came before message {}",
                    summary.last_seq,
                    summary.last_seq
                );
                if summary.last_seq == 2 && entry.messages.len() == 2 {
                    complete.insert(summary.id.clone());
                }
                entry.latest = Some(summary);
            }
            AgentEvent::Reconnect(reconnect) => panic!("told to reconnect: {reconnect:?}"),
            _ => {}
        }
    }
    seen
}

/// A new visitor's conversation: a long first message, then a short one.
/// Its id, and the visitor (kept connected).
async fn open_conversation(relay: &TestRelay, n: usize) -> (String, Client<VisitorEvent>) {
    let (mut visitor, _) = relay.new_visitor().await;
    let first = format!("{n} {}", "x".repeat(3_000));
    let conversation = visitor.say("first", &first).await.conversation_id;
    visitor.say("second", &format!("second {n}")).await;
    (conversation, visitor)
}

/// The default outbound limits, as shipped; only the per-address limits
/// (connections, sockets, new conversations) are raised: in the test a thousand
/// visitors share one address, on a site they would not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_reads_slowly_stays_connected_through_a_burst_of_new_conversations() {
    let relay = TestRelay::with_config(|config| {
        config.limits.connections_per_ip = 2 * CONVERSATIONS as u32;
        config.limits.sockets_per_ip = 2 * CONVERSATIONS as u32;
        config.limits.new_conversations_per_minute = 2 * CONVERSATIONS as u32;
    })
    .await;
    assert_eq!(
        kefu_relay::Limits::default().outbound_max_wait,
        Duration::from_secs(5),
        "the wait this test stays within"
    );
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;

    // The agent pauses while the burst starts (at most 2 s, well within the
    // 5 s wait), so that thousands of frames queue for it, then reads.
    let opened = Arc::new(Notify::new());
    let reader = tokio::spawn({
        let opened = opened.clone();
        async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), opened.notified()).await;
            read_burst(&mut agent).await
        }
    });
    let relay = Arc::new(relay);
    let visitors: Vec<_> = (0..CONVERSATIONS)
        .map(|n| {
            let relay = relay.clone();
            tokio::spawn(async move { open_conversation(&relay, n).await })
        })
        .collect();
    let mut conversations = HashMap::new();
    let mut connected = Vec::new();
    for (n, visitor) in visitors.into_iter().enumerate() {
        let (conversation, visitor) = visitor.await.expect("visitor task");
        conversations.insert(conversation, n);
        connected.push(visitor);
    }
    opened.notify_one();
    let seen = reader.await.expect("reader task");

    assert_eq!(seen.len(), CONVERSATIONS);
    for (conversation, n) in &conversations {
        let seen = &seen[conversation];
        assert_eq!(seen.messages, [1, 2], "every message, in order");
        let latest = seen.latest.as_ref().expect("a summary");
        assert_eq!(latest.last_seq, 2);
        assert_eq!(latest.unread, 2);
        assert_eq!(latest.status, ConversationStatus::Waiting);
        assert_eq!(latest.preview, format!("second {n}"));
    }
}

/// Visitors in waiting conversations (which every agent follows) sending
/// large messages until one of them hears that agent `agent_id` went
/// offline; when that was.
async fn flood_until_offline(relay: &TestRelay, agent_id: &str) -> Instant {
    const VISITORS: usize = 4;
    let text = "y".repeat(6_000);
    let mut floods = Vec::new();
    for _ in 0..VISITORS {
        let (mut visitor, _) = relay.new_visitor().await;
        let text = text.clone();
        let agent_id = agent_id.to_owned();
        floods.push(tokio::spawn(async move {
            for n in 0.. {
                let client_id = format!("c{n}");
                visitor
                    .send(&VisitorRequest::Send {
                        attachments: Vec::new(),
                        client_id: client_id.clone(),
                        text: text.clone(),
                    })
                    .await;
                loop {
                    match visitor.next().await {
                        VisitorEvent::Ack(ack) if ack.client_id == client_id => break,
                        VisitorEvent::Presence(presence)
                            if presence.kind == PresenceKind::Agent
                                && presence.id == agent_id
                                && !presence.online =>
                        {
                            return Instant::now();
                        }
                        VisitorEvent::Error(error) => panic!("send refused: {error:?}"),
                        _ => {}
                    }
                }
            }
            unreachable!("the flood ends when the agent is dropped")
        }));
    }
    let (first, _, others) = futures_util::future::select_all(floods).await;
    for other in others {
        other.abort();
    }
    first.expect("flood task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_stops_reading_is_told_to_resync_after_the_wait() {
    const WAIT: Duration = Duration::from_secs(1);
    let relay = TestRelay::with_config(|config| config.limits.outbound_max_wait = WAIT).await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let alice = relay.agent_id("alice").await;
    let mut stalled = relay.signed_in_agent(&token).await;
    let stopped_reading = Instant::now();

    let dropped_at = flood_until_offline(&relay, &alice).await;
    assert!(
        dropped_at - stopped_reading >= WAIT,
        "not before its oldest frame waited {WAIT:?}"
    );

    let frames = stalled.drain().await;
    assert!(
        matches!(frames.last(), Some(AgentEvent::Reconnect(r)) if r.reason.as_deref() == Some("resync")),
        "told to resync, got {:?}",
        frames.last()
    );
    // What it was sent before is intact: each conversation's messages in
    // order, with no gap, up to where the relay gave up.
    let mut last_seq: HashMap<String, Seq> = HashMap::new();
    for frame in &frames {
        if let AgentEvent::Message(message) = frame {
            let last = last_seq.entry(message.conversation_id.clone()).or_default();
            assert_eq!(message.seq, *last + 1, "no gap before the cut");
            *last = message.seq;
        }
    }
    assert!(!last_seq.is_empty(), "frames flowed before the cut");

    // Operators see why (the counter is the process's, shared by tests).
    let metrics = kefu_testkit::http::get(relay.addr, "/metrics")
        .await
        .expect("metrics");
    let dropped = metrics
        .body
        .lines()
        .find_map(|line| line.strip_prefix("kefu_slow_clients_total{reason=\"wait\"} "))
        .and_then(|value| value.trim().parse::<f64>().ok());
    assert!(
        dropped.is_some_and(|count| count >= 1.0),
        "counted: {dropped:?}"
    );
}
