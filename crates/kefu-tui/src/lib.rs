//! kefu-tui: the support agents' terminal client for the kefu relay.
//!
//! # Layout
//! Modules by layer, lowest first; each imports only from layers below it
//! (`tests/layers.rs` checks), so the state never depends on how it is
//! drawn or carried, and each layer can be tested without the ones above.
//! 1. Leaves: [`wrap`] (wrapping by display width, and the form each
//!    symbol is drawn in), [`sanitize`] (strips terminal escapes from
//!    everything received; uses `wrap`'s forms), [`config`] (the config
//!    file and flag/env precedence; below it [`tls`], how a `wss://` relay's
//!    certificate is checked), [`keys`] (which key means which action, by
//!    focus; the help table), [`hyperlink`] (OSC 8 links over drawn text).
//! 2. [`compose`]: the compose box's text; [`layout`]: the geometry that
//!    drawing, mouse hits and scrolling share.
//! 3. [`app`]: all state, and `App::update(input) -> effects`. Pure: no
//!    I/O, no waiting; keys, relay frames and the clock are all just inputs.
//! 4. [`ui`]: `draw(&App, &mut Frame)`, pure as well; [`net`]: the task that
//!    owns the WebSocket — hello, reconnect with backoff, frames in and
//!    requests out over bounded channels; [`files`]: uploads, downloads
//!    and the desktop's opener, each in a task of its own; [`notify`]:
//!    bell, desktop notifications and the window title's count of news.
//! 5. [`core`]: the app wired to the network task (what tests drive).
//! 6. [`terminal`]: the terminal loop, raw mode, panic hook. It has no
//!    tick: it draws after inputs and sleeps until the next input or the
//!    next moment the clock changes the screen (`App::next_wake`).
//!
//! A reply is never lost: it stays in the app, with its `client_id`, until
//! the relay acknowledges it; after a reconnect the app resends it with the
//! same `client_id`, and the relay answers with the original ack instead of
//! storing it twice.

pub mod app;
pub mod compose;
pub mod config;
pub mod core;
pub mod files;
pub mod hyperlink;
pub mod keys;
pub mod layout;
pub mod net;
pub mod notify;
pub mod sanitize;
pub mod terminal;
pub mod tls;
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
