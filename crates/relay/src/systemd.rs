//! Talking to systemd (`Type=notify`) through `$NOTIFY_SOCKET`: `READY=1`
//! once the store is open and the listener serves, `STOPPING=1` when
//! shutdown begins, and `WATCHDOG=1` at half the unit's `WatchdogSec`, so a
//! relay whose runtime hangs is restarted. Outside systemd the variables are
//! unset and every call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;

pub fn ready() {
    notify(&[NotifyState::Ready, NotifyState::Status("serving")]);
}

pub fn stopping() {
    notify(&[
        NotifyState::Stopping,
        NotifyState::Status("asking clients to reconnect"),
    ]);
}

/// Pings the watchdog until dropped, if the unit enables it. The ping comes
/// from a runtime task, so it stops when the runtime stops making progress.
pub async fn watchdog() {
    let Some(timeout) = sd_notify::watchdog_enabled() else {
        return;
    };
    let mut tick = tokio::time::interval((timeout / 2).max(Duration::from_millis(100)));
    loop {
        tick.tick().await;
        notify(&[NotifyState::Watchdog]);
    }
}

fn notify(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "cannot notify systemd");
    }
}
