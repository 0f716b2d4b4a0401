//! kefu-tui: the support agents' terminal client for the kefu relay.
//!
//! # Layout
//! - [`app`]: all state, and `App::update(input) -> effects`. Pure: no I/O,
//!   no waiting; keys, relay frames and the clock are all just inputs.
//! - [`ui`]: `draw(&App, &mut Frame)`, pure as well; [`layout`] is the
//!   geometry drawing and mouse hits share.
//! - [`keys`]: which key means which action, by focus; the help table.
//! - [`net`]: the task that owns the WebSocket — hello, reconnect with
//!   backoff, frames in and requests out over bounded channels.
//! - [`core`]: the app wired to the network task (what tests drive).
//! - [`terminal`]: the terminal loop, raw mode, panic hook.
//! - [`config`]: the config file and flag/env precedence.
//! - [`sanitize`]: strips terminal escapes from everything received.
//! - [`compose`], [`wrap`], [`notify`]: the compose box's text, wrapping by
//!   display width, bell and desktop notifications.
//!
//! A reply is never lost: it stays in the app, with its `client_id`, until
//! the relay acknowledges it; after a reconnect the app resends it with the
//! same `client_id`, and the relay answers with the original ack instead of
//! storing it twice.

pub mod app;
pub mod compose;
pub mod config;
pub mod core;
pub mod keys;
pub mod layout;
pub mod net;
pub mod notify;
pub mod sanitize;
pub mod terminal;
pub mod ui;
pub mod wrap;

/// What can stop the client.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("terminal I/O failed: {0}")]
    Terminal(#[from] std::io::Error),
}
