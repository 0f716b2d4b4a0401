//! The hub task's loop: one task owns the [`HubState`] and is woken by
//! committed changes, commands, the cluster, its heartbeat and its two
//! timers (presence expiry and the summary flush), in that order of
//! priority. After each step it reaps the connections that fell behind.

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::HubState;
use crate::cluster::{ClusterEvent, ClusterInput};
use crate::hub::Command;
use crate::store::Change;

pub(in crate::hub) async fn run(
    mut state: HubState,
    mut commands: mpsc::Receiver<Command>,
    mut changes: mpsc::Receiver<Change>,
    mut cluster: Option<mpsc::Receiver<ClusterInput>>,
) {
    let mut changes_open = true;
    let mut beat = tokio::time::interval(state.peers.heartbeat().every);
    if cluster.is_some() {
        state.peers.publish(ClusterEvent::Hello);
    }
    loop {
        let deadline = state.presence.next_deadline();
        let flush_at = state.throttle.flush_at();
        let unanswered_at = state.calls.next_deadline();
        tokio::select! {
            // Committed changes first: the store publishes a change before it
            // answers the write, so whatever a client asks after its ack
            // (e.g. a metrics scrape) finds the change applied.
            biased;
            change = changes.recv(), if changes_open => match change {
                Some(change) => state.apply(change),
                None => changes_open = false,
            },
            command = commands.recv() => match command {
                Some(command) => state.handle(command),
                None => break,
            },
            input = recv_cluster(&mut cluster), if cluster.is_some() => match input {
                Some(input) => state.hear(input),
                None => cluster = None,
            },
            _ = beat.tick(), if cluster.is_some() => state.beat(Instant::now()),
            () = sleep_until(deadline), if deadline.is_some() => state.expire(Instant::now()),
            () = sleep_until(flush_at), if flush_at.is_some() => state.flush(),
            () = sleep_until(unanswered_at), if unanswered_at.is_some() => {
                state.calls_due(Instant::now());
            }
        }
        state.reap();
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline).await;
    }
}

async fn recv_cluster(cluster: &mut Option<mpsc::Receiver<ClusterInput>>) -> Option<ClusterInput> {
    match cluster {
        Some(incoming) => incoming.recv().await,
        None => std::future::pending().await,
    }
}
