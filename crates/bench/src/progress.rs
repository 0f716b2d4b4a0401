//! What a run tells the operator while it goes (on stderr, if asked), and
//! waiting for the connections to be made.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::Config;
use crate::report::Recorder;

/// How often progress is checked while connecting.
const CONNECT_POLL: Duration = Duration::from_millis(20);

/// Waits until every one of `visitors` connection attempts has ended, one
/// way or the other. Bounded: each attempt times out on its own.
pub(crate) async fn wait_connected(config: &Config, recorder: &Recorder, visitors: u32) {
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

pub(crate) fn progress(config: &Config, message: fmt::Arguments<'_>) {
    if config.progress {
        eprintln!("kefu-bench: {message}");
    }
}
