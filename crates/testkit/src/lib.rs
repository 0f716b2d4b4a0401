//! Shared by the tests of every kefu crate; never a dependency of shipped
//! code.
//!
//! # Layout
//! Leaves first; each module imports only those above it in this list.
//! - [`layers`]: checks a crate's module imports against its stated layers.
//! - [`tls`]: test certificates from a [`tls::TestCa`] made with rcgen, TLS
//!   clients that trust it, raw TLS connections.
//! - [`http`]: plain HTTP requests through hyper (status, headers, body), and
//!   [`http::wait_ready`], the one place a test waits for `/readyz`.
//! - [`ws`]: [`ws::Client`], a protocol client over a real WebSocket that
//!   decodes frames as one event type; [`visitor`] and [`agent`] add what a
//!   visitor and an agent do with it (hello, send, claim, history, …).
//! - [`accounts`]: agent accounts made straight in a database, as
//!   `kefu-relay agent add` makes them.
//! - [`postgres`]: [`postgres::TestDatabase`], a fresh PostgreSQL database per
//!   test, skipped where no server answers unless `KEFU_REQUIRE_POSTGRES` is
//!   set.
//! - [`relay`]: [`relay::TestRelay`], a relay in this process on
//!   `127.0.0.1:0`, on a temporary SQLite file or a given database; stopped
//!   and reopened on the same data, and the same address if wanted.
//! - [`process`]: [`process::RelayProcess`], the built `kefu-relay` binary as a
//!   child process, for what only a process shows (SIGKILL, SIGTERM,
//!   systemd, environment variables).

use std::time::Duration;

pub mod accounts;
pub mod agent;
pub mod http;
pub mod layers;
pub mod postgres;
pub mod process;
pub mod relay;
pub mod tls;
pub mod visitor;
pub mod ws;

pub use postgres::TestDatabase;
pub use process::RelayProcess;
pub use relay::TestRelay;
pub use tls::TestCa;
pub use ws::{Client, assert_error};

/// How long a test waits for something expected (a frame, a response, a
/// relay becoming ready). A guard against hangs, not a synchronization
/// device.
pub const PATIENCE: Duration = Duration::from_secs(10);
