//! kefu-bench: a load generator that speaks kefu's protocol v1 to a relay
//! and measures it — connections held, messages acked per second,
//! end-to-end latency, memory per idle connection — and checks that every
//! acked message arrived exactly once.
//!
//! # Layout
//! Modules by layer, lowest first; each imports only from layers below it
//! (`tests/layers.rs` checks), so one connection's code never reaches into
//! the runs that drive it, and `lib.rs` is only the entry: [`run`].
//! 1. Leaves: [`config`]: what a run is asked to do ([`Config`]), including
//!    the relay address and the `I/N` shard this process drives;
//!    [`ledger`]: the loss check — every message sent, acked and delivered;
//!    [`phase`]: where a run is, which every connection task watches;
//!    [`latency`]: HDR histograms and their percentiles; [`png`]: valid
//!    images of any size for uploads;
//!    [`reference`]: the bare in-memory relay every run can be compared
//!    with (`kefu-reference-relay`), apart from everything else here.
//! 2. [`cli`]: the command line and agent tokens, turned into a [`Config`];
//!    [`error`]: what can stop a run; [`tally`]: what uploads and
//!    attacks got; [`report`]: the shared [`report::Recorder`] (ledger,
//!    HDR histograms, error counts) and the [`Report`] it becomes;
//!    [`net`]: client sockets spread over loopback source addresses, the
//!    WebSocket handshake with small buffers, frames to JSON and back.
//! 3. [`http`]: one keep-alive HTTP/1.1 connection to the relay;
//!    [`progress`]: progress on stderr, waiting for connections;
//!    [`traffic`]: what a visitor sends, when, and what it receives counts
//!    as, over either transport; [`attack`]: the attackers of an abuse
//!    run (half-open connections, slow bodies, conversation spam).
//! 4. [`longpoll`]: visitors over HTTP long-poll instead of WebSocket;
//!    [`agent`]: what one agent connection does.
//! 5. [`visitor`]: connecting visitors over either transport, and what one
//!    does during a run.
//! 6. [`upload`]: visitors uploading files while a chat runs.
//! 7. [`chat`] and [`idle`]: the two kinds of run, start to finish;
//!    [`search`]: agents' search latency (`kefu-bench-search`), apart.
//!
//! Everything runs on one tokio runtime with one task per connection; the
//! only shared state is the recorder behind a short std mutex.

pub mod agent;
pub mod attack;
pub mod chat;
pub mod cli;
pub mod config;
pub mod error;
pub mod http;
pub mod idle;
pub mod latency;
pub mod ledger;
pub mod longpoll;
pub mod net;
pub mod phase;
pub mod png;
pub mod progress;
pub mod reference;
pub mod report;
pub mod search;
pub mod tally;
pub mod traffic;
pub mod upload;
pub mod visitor;

pub use config::{Config, Mode};
pub use error::BenchError;
pub use phase::Phase;
pub use report::Report;

/// Runs what `config` asks and reports what it measured.
pub async fn run(config: &Config) -> Result<Report, BenchError> {
    match &config.mode {
        Mode::Chat(chat) => chat::run(config, chat).await,
        Mode::Idle(idle) => idle::run(config, idle).await,
    }
}
