//! kefu-bench: a load generator that speaks kefu's protocol v1 to a relay
//! and measures it — connections held, messages acked per second,
//! end-to-end latency, memory per idle connection — and checks that every
//! acked message arrived exactly once.
//!
//! # Layout
//! - [`config`]: what a run is asked to do ([`Config`]), including the relay
//!   address and the `I/N` shard this process drives.
//! - [`cli`]: the command line and agent tokens, turned into a [`Config`].
//! - [`net`]: client sockets spread over loopback source addresses, the
//!   WebSocket handshake with small buffers, frames to JSON and back.
//! - [`visitor`] and [`agent`]: what one connection of each role does;
//!   [`longpoll`]: visitors over HTTP long-poll instead of WebSocket.
//! - [`chat`] and [`idle`]: the two kinds of run, start to finish.
//! - [`ledger`]: the loss check — every message sent, acked and delivered.
//! - [`report`]: the shared [`report::Recorder`] (ledger, HDR histograms,
//!   error counts) and the [`Report`] it becomes.
//!
//! Everything runs on one tokio runtime with one task per connection; the
//! only shared state is the recorder behind a short std mutex.

pub mod agent;
pub mod chat;
pub mod cli;
pub mod config;
pub mod idle;
pub mod ledger;
pub mod longpoll;
pub mod net;
pub mod report;
pub mod visitor;

use std::fmt;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use config::{Config, Mode};
pub use report::Report;

use crate::report::Recorder;

/// How long connection tasks get to close politely once the run stops.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often progress is checked while connecting.
const CONNECT_POLL: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("shard {shard} has visitors but no agent to answer them: pass more agent tokens")]
    NoAgents { shard: config::Shard },
    #[error("cannot read the resident memory of process {pid} from /proc")]
    Rss {
        pid: u32,
        #[source]
        source: Option<std::io::Error>,
    },
}

/// Where a run is; every connection task watches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connecting,
    /// Visitors send from this instant on.
    Sending(Instant),
    /// Close and end.
    Stopped,
}

/// Runs what `config` asks and reports what it measured.
pub async fn run(config: &Config) -> Result<Report, BenchError> {
    match &config.mode {
        Mode::Chat(chat) => chat::run(config, chat).await,
        Mode::Idle(idle) => idle::run(config, idle).await,
    }
}

/// Waits for the start of sending; `None` if the run stopped first.
async fn sending_starts(phase: &mut watch::Receiver<Phase>) -> Option<Instant> {
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
async fn stopped(phase: &mut watch::Receiver<Phase>) {
    // The guard `wait_for` returns must not live across an await.
    let _ = phase.wait_for(|phase| *phase == Phase::Stopped).await;
}

/// Waits until every one of `visitors` connection attempts has ended, one
/// way or the other. Bounded: each attempt times out on its own.
async fn wait_connected(config: &Config, recorder: &Recorder, visitors: u32) {
    let mut shown = Instant::now();
    loop {
        let attempts = recorder.visitor_attempts();
        if attempts >= visitors {
            return;
        }
        if shown.elapsed() >= Duration::from_secs(2) {
            progress(config, format_args!("{attempts}/{visitors} visitors"));
            shown = Instant::now();
        }
        tokio::time::sleep(CONNECT_POLL).await;
    }
}

/// Tells every connection to close, and waits a little for them to do so.
async fn stop(phase: watch::Sender<Phase>, mut tasks: JoinSet<()>) {
    let _ = phase.send(Phase::Stopped);
    let all_closed = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(CLOSE_TIMEOUT, all_closed)
        .await
        .is_err()
    {
        tasks.abort_all();
    }
}

fn progress(config: &Config, message: fmt::Arguments<'_>) {
    if config.progress {
        eprintln!("kefu-bench: {message}");
    }
}
