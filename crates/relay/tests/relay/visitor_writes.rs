//! Visitors' store writes take turns (`visitor_writes_in_flight`, in all);
//! agents' writes take none, and the store's writer takes them ahead of
//! visitors' queued (`store::lanes`, unit-tested there). So of the
//! visitors' writes waiting while an agent replies, at most the one the
//! writer already holds is committed before the reply: a crowd of
//! visitors cannot queue ahead of the agents.

use kefu_protocol::agent::{AgentRequest, Role};
use kefu_protocol::visitor::{VisitorEvent, VisitorRequest};
use kefu_testkit::{PATIENCE, TestRelay, http};

use crate::metrics::{parse_prometheus, value_of};

/// Returns once `kefu_visitor_writes_waiting` reads `waiting`. The gauge is
/// the process's, shared by every relay in it; only this test's relay, with
/// its single turn, ever has a visitor wait.
async fn until_waiting(relay: &TestRelay, waiting: f64) {
    let poll = async {
        loop {
            let metrics = http::get(relay.addr, "/metrics").await.expect("metrics");
            let samples = parse_prometheus(&metrics.body);
            if value_of(&samples, "kefu_visitor_writes_waiting", &[]) == Some(waiting) {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(PATIENCE, poll)
        .await
        .unwrap_or_else(|_| panic!("never {waiting} visitors' writes waiting"));
}

fn send(client_id: &str) -> VisitorRequest {
    VisitorRequest::Send {
        attachments: Vec::new(),
        client_id: client_id.to_owned(),
        text: "are you there?".into(),
    }
}

fn agent_send(conversation_id: &str, client_id: &str) -> AgentRequest {
    AgentRequest::Send {
        attachments: Vec::new(),
        conversation_id: conversation_id.to_owned(),
        client_id: client_id.to_owned(),
        text: "yes, how can I help?".into(),
        internal: false,
        link: None,
    }
}

#[tokio::test]
async fn a_visitor_waiting_for_a_write_turn_is_committed_after_an_agents_reply() {
    let relay = TestRelay::with_config(|config| config.limits.visitor_writes_in_flight = 1).await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let (mut agent, _) = relay.welcomed_agent(&token).await;
    let (mut visitors, mut conversations) = (Vec::new(), Vec::new());
    for name in ["first", "second", "probe"] {
        let (mut visitor, _) = relay.new_visitor().await;
        let opened = visitor.say(&format!("{name}-1"), "hello").await;
        visitors.push(visitor);
        conversations.push(opened.conversation_id);
    }
    let mut probe = visitors.pop().expect("the probe");
    let probed = conversations.pop().expect("the probe's conversation");
    agent.reply(&probed, "taken", "with you in a moment").await;

    // Hold the database's write lock: the store's writer waits for it (up
    // to its 5 s busy timeout) with whatever write it took.
    let database = rusqlite::Connection::open(relay.dir.path().join("kefu.db")).expect("open");
    database.execute_batch("BEGIN IMMEDIATE").expect("lock");
    // One visitor's write takes the one turn and waits in the writer; the
    // other's waits for the turn.
    for visitor in &mut visitors {
        visitor.send(&send("again")).await;
    }
    until_waiting(&relay, 1.0).await;
    // The agent answers both, then types to the probe. An agent's requests
    // about different conversations start in the order they came, each
    // handing its write to the store when it starts: once the probe sees
    // the agent typing, both replies are queued at the writer.
    for (conversation, reply) in conversations.iter().zip(["reply-0", "reply-1"]) {
        agent.send(&agent_send(conversation, reply)).await;
    }
    agent
        .send(&AgentRequest::Typing {
            conversation_id: probed,
            active: true,
        })
        .await;
    probe
        .until(|event| matches!(event, VisitorEvent::Typing(_)).then_some(()))
        .await;
    database.execute_batch("ROLLBACK").expect("unlock");

    let mut visitor_seqs = Vec::new();
    for visitor in &mut visitors {
        visitor_seqs.push(visitor.ack_for("again").await.seq);
    }
    let mut reply_seqs = Vec::new();
    for reply in ["reply-0", "reply-1"] {
        let ack = agent.ack_for(reply).await;
        reply_seqs.push(
            ack.unwrap_or_else(|error| panic!("reply refused: {error:?}"))
                .seq,
        );
    }
    // The visitor who waited for the turn is committed after the reply in
    // its conversation, although they sent theirs first; the one holding
    // the turn may be either side, as the writer had taken the write
    // before the lock or left it queued behind the replies. With one
    // queue and no turns both visitors' messages would come first.
    let replied_first = reply_seqs
        .iter()
        .zip(&visitor_seqs)
        .filter(|(reply, visitor)| reply < visitor)
        .count();
    assert!(
        replied_first >= 1,
        "visitors' seqs {visitor_seqs:?}, replies' {reply_seqs:?}"
    );
    until_waiting(&relay, 0.0).await;
}
