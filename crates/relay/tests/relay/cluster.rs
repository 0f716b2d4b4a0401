//! Two relay processes sharing one PostgreSQL database, as behind a
//! round-robin load balancer: clients of either talk to clients of the
//! other, writers on both keep `seq` gap-free, and a relay killed with
//! SIGKILL loses nothing acknowledged and has its visitors expire.

use std::collections::HashSet;

use kefu_protocol::agent::{AgentEvent, AgentRequest, ConversationStatus, Role};
use kefu_protocol::visitor::{VisitorEvent, VisitorRequest};
use kefu_protocol::{AgentState, AuthorKind, PresenceKind};
use kefu_testkit::{Client, RelayProcess, TestDatabase, accounts};

use crate::longpoll::PollVisitor;
use crate::revocation::{REVOKED_WITHIN, revoked};
use crate::summaries::summaries_before;
use crate::support::{KEFU_RELAY, run_cli};

/// Heartbeats every 0.3 s: a dead relay is noticed within about a second.
/// The tests pipeline a thousand frames before reading, so the per-client
/// queue is raised above what slow-client protection would otherwise allow.
const FAST: &[&str] = &[
    "--cluster-heartbeat",
    "0.3",
    "--presence-grace",
    "0.2",
    "--outbound-queue",
    "20000",
];

pub(crate) struct Cluster {
    pub database: TestDatabase,
    pub a: RelayProcess,
    pub b: RelayProcess,
    pub token: String,
}

impl Cluster {
    pub(crate) async fn start() -> Option<Cluster> {
        let database = TestDatabase::create().await?;
        // Opening the store migrates the new database.
        let token = accounts::add_agent(&database.url, "alice", Role::Agent).await;
        let a = RelayProcess::start(KEFU_RELAY, &database.url, FAST).await;
        let b = RelayProcess::start(KEFU_RELAY, &database.url, FAST).await;
        Some(Cluster {
            database,
            a,
            b,
            token,
        })
    }

    pub(crate) async fn agent_on_b(&self) -> Client<AgentEvent> {
        signed_in(&self.b, &self.token).await
    }

    pub(crate) async fn stop(self) {
        self.a.kill().await;
        self.b.kill().await;
        self.database.drop_database().await;
    }
}

async fn signed_in(relay: &RelayProcess, token: &str) -> Client<AgentEvent> {
    let mut agent = relay.agent().await;
    agent.hello(token).await;
    agent
}

async fn hello(
    visitor: &mut Client<VisitorEvent>,
    token: Option<&str>,
    after_seq: Option<u64>,
) -> String {
    visitor.hello(token, after_seq).await.token
}

/// An agent's own read mark reaches its connections on the other relay,
/// and a peek at a waiting chat shows the visitor nothing there either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_read_reaches_its_connections_on_every_relay() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let mut on_a = signed_in(&cluster.a, &cluster.token).await;
    let mut on_b = cluster.agent_on_b().await;
    let mut visitor = cluster.a.visitor().await;
    hello(&mut visitor, None, None).await;
    let conversation = visitor.say("v1", "anyone there?").await.conversation_id;
    on_b.next_message().await;

    on_a.send(&AgentRequest::Read {
        conversation_id: conversation.clone(),
        up_to_seq: 1,
    })
    .await;
    let mark = on_b
        .until(|event| match event {
            AgentEvent::ReadMark(mark) => Some(mark),
            _ => None,
        })
        .await;
    assert_eq!(
        (
            mark.conversation_id.as_str(),
            mark.up_to_seq,
            mark.visitor_messages
        ),
        (conversation.as_str(), 1, 1)
    );
    // The typing that follows reaches the visitor after anything the read
    // sent it: the peek showed it nothing.
    on_b.send(&AgentRequest::Typing {
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
    assert!(matches!(first, VisitorEvent::Typing(_)), "{first:?}");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_different_relays_chat_type_read_and_see_presence() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let mut agent = cluster.agent_on_b().await;
    let mut visitor = cluster.a.visitor().await;
    hello(&mut visitor, None, None).await;

    let ack = visitor.say("v1", "hello from relay A").await;
    let conversation = ack.conversation_id.clone();
    let message = agent.next_message().await;
    assert_eq!(
        (message.text.as_str(), message.seq),
        ("hello from relay A", 1)
    );

    agent.reply(&conversation, "a1", "hello from relay B").await;
    let reply = visitor.next_message().await;
    assert_eq!((reply.text.as_str(), reply.seq), ("hello from relay B", 2));

    visitor.send(&VisitorRequest::Typing { active: true }).await;
    let typing = agent
        .until(|event| match event {
            AgentEvent::Typing(typing) => Some(typing),
            _ => None,
        })
        .await;
    assert_eq!(typing.author.kind, AuthorKind::Visitor);

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
    assert_eq!(typing.author.name, "alice");

    visitor.send(&VisitorRequest::Read { up_to_seq: 2 }).await;
    let receipt = agent
        .until(|event| match event {
            AgentEvent::Read(receipt) => Some(receipt),
            _ => None,
        })
        .await;
    assert_eq!(
        (receipt.reader, receipt.up_to_seq),
        (AuthorKind::Visitor, 2)
    );

    // Availability on B reaches visitors on A.
    agent
        .send(&AgentRequest::Status {
            state: AgentState::Away,
        })
        .await;
    visitor
        .until(|event| match event {
            VisitorEvent::Presence(p) if p.agents_online == Some(0) => Some(()),
            _ => None,
        })
        .await;
    agent
        .send(&AgentRequest::Status {
            state: AgentState::Available,
        })
        .await;
    visitor
        .until(|event| match event {
            VisitorEvent::Presence(p) if p.agents_online == Some(1) => Some(()),
            _ => None,
        })
        .await;
    cluster.stop().await;
}

/// Every relay applies every commit, so an agent on one relay is sent the
/// summaries of a colleague's conversation on the other as on a lone relay:
/// the claim at once, the message counts coalesced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_on_another_relay_gets_a_claim_at_once_and_counts_coalesced() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let bob_token = accounts::add_agent(&cluster.database.url, "bob", Role::Agent).await;
    let mut alice = cluster.agent_on_b().await;
    let mut bob = signed_in(&cluster.a, &bob_token).await;
    let mut visitor = cluster.a.visitor().await;
    hello(&mut visitor, None, None).await;
    let mut ticks = cluster.b.visitor().await;
    hello(&mut ticks, None, None).await;

    let conversation = visitor.say("v1", "hi").await.conversation_id;
    bob.next_message().await;
    alice.claim(&conversation).await;
    visitor.say("v2", "a question").await;
    ticks.say("t1", "tick 1").await;
    // A relay reads a summary when it hears of a commit, so the claim's may
    // already count the message; either way, one summary and not two.
    let to_bob = summaries_before(&mut bob, &conversation, "tick 1").await;
    let active = to_bob
        .iter()
        .filter(|s| s.status == ConversationStatus::Active)
        .count();
    assert_eq!(active, 1, "the claim at once, the message not: {to_bob:?}");
    // hi (1), the claim's timeline event (2), the question (3).
    bob.summary_where(&conversation, |s| s.last_seq == 3).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_agent_loses_its_connections_on_every_relay() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let mut on_a = signed_in(&cluster.a, &cluster.token).await;
    let mut on_b = cluster.agent_on_b().await;
    let output = run_cli(
        &[
            "agent",
            "disable",
            "alice",
            "--database",
            &cluster.database.url,
        ],
        &[],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let disabled_at = tokio::time::Instant::now();
    for agent in [&mut on_a, &mut on_b] {
        let took = revoked(agent, disabled_at).await;
        assert!(took < REVOKED_WITHIN, "revoked after {took:?}");
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_racing_on_both_relays_keep_seq_gap_free() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let mut agent = cluster.agent_on_b().await;
    let mut visitor = cluster.a.visitor().await;
    hello(&mut visitor, None, None).await;
    let conversation = visitor.say("v0", "start").await.conversation_id;
    agent.next_message().await;
    agent
        .send(&AgentRequest::Claim {
            conversation_id: conversation.clone(),
        })
        .await;

    // 500 sends through relay A and 500 through relay B, all in flight at once.
    const EACH: usize = 500;
    for i in 0..EACH {
        visitor
            .send(&VisitorRequest::Send {
                attachments: Vec::new(),
                client_id: format!("v{}", i + 1),
                text: format!("visitor {i}"),
            })
            .await;
        agent
            .send(&AgentRequest::Send {
                attachments: Vec::new(),
                conversation_id: conversation.clone(),
                client_id: format!("a{i}"),
                text: format!("agent {i}"),
                internal: false,
                link: None,
            })
            .await;
    }
    let visitor_side = tokio::spawn(async move {
        let (mut acks, mut seen) = (0, Vec::new());
        while acks < EACH || seen.len() < EACH {
            match visitor.next().await {
                VisitorEvent::Ack(_) => acks += 1,
                VisitorEvent::Message(m) if m.author.kind == AuthorKind::Agent => seen.push(m.seq),
                VisitorEvent::Error(e) => panic!("visitor send refused: {e:?}"),
                _ => {}
            }
        }
        seen
    });
    let mut acks = 0;
    while acks < EACH {
        match agent.next().await {
            AgentEvent::Ack(_) => acks += 1,
            AgentEvent::Error(e) => panic!("agent send refused: {e:?}"),
            _ => {}
        }
    }
    let seen_by_visitor = visitor_side.await.expect("visitor");
    assert!(
        seen_by_visitor.windows(2).all(|w| w[0] < w[1]),
        "relay A delivered relay B's messages in seq order"
    );

    // The whole conversation, paged backwards: 1..=1002 once each (the
    // claim's timeline event is one of them).
    let mut seqs = Vec::new();
    let mut client_ids = HashSet::new();
    let mut before = None;
    loop {
        let page = agent.history(&conversation, before, 200).await;
        let Some(first) = page.first() else { break };
        before = Some(first.seq);
        for message in page.iter().rev() {
            seqs.push(message.seq);
            assert!(client_ids.insert((message.author.kind, message.client_id.clone())));
        }
        if first.seq == 1 {
            break;
        }
    }
    seqs.reverse();
    assert_eq!(seqs, (1..=(2 * EACH as u64 + 2)).collect::<Vec<_>>());
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_relay_loses_nothing_and_its_visitors_go_offline() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let mut agent = cluster.agent_on_b().await;
    let mut visitor = cluster.a.visitor().await;
    let token = hello(&mut visitor, None, None).await;
    let mut acked = Vec::new();
    for i in 0..20 {
        acked.push(visitor.say(&format!("m{i}"), &format!("message {i}")).await);
    }
    let conversation = acked[0].conversation_id.clone();
    agent
        .summary_where(&conversation, |s| s.last_seq == 20 && s.visitor.online)
        .await;

    let Cluster { database, a, b, .. } = cluster;
    a.kill().await;
    drop(visitor);
    // B notices A's silence and the visitor is gone.
    let presence = agent
        .until(|event| match event {
            AgentEvent::Presence(p) if p.kind == PresenceKind::Visitor => Some(p),
            _ => None,
        })
        .await;
    assert!(!presence.online, "the visitor went offline with relay A");

    // The visitor comes back through B and finds everything.
    let mut visitor = b.visitor().await;
    hello(&mut visitor, Some(&token), Some(0)).await;
    let mut replayed = Vec::new();
    while replayed.len() < acked.len() {
        replayed.push(visitor.next_message().await);
    }
    for (message, ack) in replayed.iter().zip(&acked) {
        assert_eq!((message.seq, &message.id), (ack.seq, &ack.id));
    }
    let presence = agent
        .until(|event| match event {
            AgentEvent::Presence(p) if p.kind == PresenceKind::Visitor => Some(p),
            _ => None,
        })
        .await;
    assert!(presence.online, "back online through relay B");
    let resumed = visitor.say("m20", "still here").await;
    assert_eq!(resumed.seq, 21);
    assert_eq!(agent.next_message().await.text, "still here");

    b.kill().await;
    database.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polling_needs_no_sticky_sessions() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let mut agent = cluster.agent_on_b().await;
    let (a, b) = (cluster.a.addr, cluster.b.addr);
    // Hello through A, then every other request through B.
    let visitor = PollVisitor::hello(a, None).await.via(b);
    let (status, body) = visitor
        .post(serde_json::json!({"type": "send", "client_id": "p1", "text": "hello via B"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let conversation = agent.next_message().await.conversation_id;
    agent.reply(&conversation, "a1", "answered").await;
    let messages = visitor.via(a).messages_until(0, 2).await;
    assert_eq!(
        messages.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["hello via B", "answered"]
    );
    cluster.stop().await;
}
