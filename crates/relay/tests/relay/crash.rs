//! Nothing acknowledged is lost: a relay process killed with SIGKILL in the
//! middle of a burst, restarted on the same file, still has every acked
//! message exactly once, with `seq` gap-free.

use std::collections::HashMap;

use kefu_protocol::visitor::{VisitorEvent, VisitorRequest};
use kefu_testkit::{Client, RelayProcess};

use crate::support::{KEFU_RELAY, sqlite_url};

/// Pipelines `count` sends (`m{i}`: "{word} {i}") without waiting for acks.
async fn send_burst(visitor: &mut Client<VisitorEvent>, count: usize, word: &str) {
    for i in 0..count {
        visitor
            .send(&VisitorRequest::Send {
                attachments: Vec::new(),
                client_id: format!("m{i}"),
                text: format!("{word} {i}"),
            })
            .await;
    }
}

/// Pipelines a burst of `count` sends, SIGKILLs `relay` once `kill_after`
/// are acked, and returns every ack by `client_id`: those already on the
/// wire when the process died count too.
pub(crate) async fn kill_mid_burst(
    relay: RelayProcess,
    visitor: &mut Client<VisitorEvent>,
    (count, kill_after): (usize, usize),
    word: &str,
) -> HashMap<String, u64> {
    send_burst(visitor, count, word).await;
    let mut acked: HashMap<String, u64> = HashMap::new();
    while acked.len() < kill_after {
        if let VisitorEvent::Ack(ack) = visitor.next().await {
            acked.insert(ack.client_id, ack.seq);
        }
    }
    relay.kill().await;
    while let Some(event) = visitor.try_next().await {
        if let VisitorEvent::Ack(ack) = event {
            acked.insert(ack.client_id, ack.seq);
        }
    }
    assert!(acked.len() < count, "the kill happened mid-burst");
    acked
}

#[tokio::test]
async fn acked_messages_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("kefu.db");
    let relay = RelayProcess::start(KEFU_RELAY, &sqlite_url(&database), &[]).await;

    let (mut visitor, welcome) = relay.new_visitor().await;

    // Pipeline a burst, and kill the relay once part of it is acked.
    const BURST: usize = 2_000;
    const KILL_AFTER_ACKS: usize = 300;
    let acked = kill_mid_burst(relay, &mut visitor, (BURST, KILL_AFTER_ACKS), "message").await;

    let relay = RelayProcess::start(KEFU_RELAY, &sqlite_url(&database), &[]).await;
    let mut visitor = relay.visitor().await;
    visitor
        .send(&VisitorRequest::Hello {
            token: Some(welcome.token.clone()),
            after_seq: Some(0),
            profile: None,
        })
        .await;
    let VisitorEvent::Welcome(resumed) = visitor.next().await else {
        panic!("expected welcome");
    };
    assert_eq!(resumed.visitor_id, welcome.visitor_id);

    // The replay holds a gap-free prefix containing every acked message once.
    // Stop reading at the first frame after the replay: our own marker send.
    visitor
        .send(&VisitorRequest::Send {
            attachments: Vec::new(),
            client_id: "marker".into(),
            text: "after restart".into(),
        })
        .await;
    let mut stored: Vec<(u64, String)> = Vec::new();
    let marker = loop {
        match visitor.next().await {
            VisitorEvent::Message(message) => stored.push((message.seq, message.client_id)),
            VisitorEvent::Ack(ack) if ack.client_id == "marker" => break ack,
            _ => {}
        }
    };
    let seqs: Vec<u64> = stored.iter().map(|(seq, _)| *seq).collect();
    let expected: Vec<u64> = (1..=stored.len() as u64).collect();
    assert_eq!(seqs, expected, "seq is gap-free after the crash");
    assert_eq!(marker.seq, stored.len() as u64 + 1);
    let by_client: HashMap<&str, u64> = stored
        .iter()
        .map(|(seq, client_id)| (client_id.as_str(), *seq))
        .collect();
    assert_eq!(by_client.len(), stored.len(), "no client_id twice");
    for (client_id, seq) in &acked {
        assert_eq!(
            by_client.get(client_id.as_str()),
            Some(seq),
            "acked {client_id} is stored at its acked seq"
        );
    }

    // Resending the whole burst after the crash duplicates nothing.
    send_burst(&mut visitor, BURST, "message").await;
    let mut resent = HashMap::new();
    while resent.len() < BURST {
        if let VisitorEvent::Ack(ack) = visitor.next().await {
            resent.insert(ack.client_id, ack.seq);
        }
    }
    for (client_id, seq) in &acked {
        assert_eq!(
            resent.get(client_id),
            Some(seq),
            "resend of {client_id} got the original ack"
        );
    }
    let max_seq = resent.values().copied().max().unwrap_or(0);
    assert_eq!(
        max_seq,
        BURST as u64 + 1,
        "every message once, plus the marker"
    );
    relay.kill().await;
}
