//! The phase of a run, which every connection task watches: connecting,
//! sending from an instant on, stopped; and stopping them all.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long connection tasks get to close politely once the run stops.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a run is; every connection task watches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connecting,
    /// Visitors send from this instant on.
    Sending(Instant),
    /// Close and end.
    Stopped,
}

/// Waits for the start of sending; `None` if the run stopped first.
pub(crate) async fn sending_starts(phase: &mut watch::Receiver<Phase>) -> Option<Instant> {
    let now = phase
        .wait_for(|phase| *phase != Phase::Connecting)
        .await
        .ok()?;
    match *now {
        Phase::Sending(start) => Some(start),
        Phase::Connecting | Phase::Stopped => None,
    }
}

/// Resolves once the run stops (or its controller is gone).
pub(crate) async fn stopped(phase: &mut watch::Receiver<Phase>) {
    // The guard `wait_for` returns must not live across an await.
    let _ = phase.wait_for(|phase| *phase == Phase::Stopped).await;
}

/// Tells every connection to close, and waits a little for them to do so.
pub(crate) async fn stop(phase: watch::Sender<Phase>, mut tasks: JoinSet<()>) {
    let _ = phase.send(Phase::Stopped);
    let all_closed = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(CLOSE_TIMEOUT, all_closed)
        .await
        .is_err()
    {
        tasks.abort_all();
    }
}
