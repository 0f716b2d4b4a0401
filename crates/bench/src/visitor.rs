//! Visitors: connecting thousands of them, and what one does during a run.

use std::future::Future;
use std::net::IpAddr;
use std::ops::Range;
use std::sync::Arc;

use kefu_protocol::visitor::{VisitorEvent, VisitorProfile, VisitorRequest};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{Config, Target};
use crate::ledger::Direction;
use crate::longpoll;
use crate::net::{self, ConnectError, Sources, WireError, Ws};
use crate::phase::{self, Phase};
use crate::report::{Recorder, Side};
use crate::traffic::{Schedule, TEXT, on_message};

/// A welcomed visitor, over either transport.
pub enum Connection {
    /// With the visitor's token from `welcome`, which uploads need.
    WebSocket(Ws, String),
    LongPoll(longpoll::Session),
}

/// Whether the visitor with this global index uses long-poll: an even
/// interleave, so that any `share` of any range of visitors comes out right.
pub fn uses_longpoll(share: f64, global: u32) -> bool {
    let before = (f64::from(global) * share).floor();
    let through = ((f64::from(global) + 1.0) * share).floor();
    through > before
}

/// How many of this shard's visitors among `total` use each transport.
pub fn wanted(config: &Config, total: u32) -> (u32, u32) {
    config
        .shard
        .members(total)
        .fold((0, 0), |(ws, longpoll), global| {
            if uses_longpoll(config.longpoll_share, global) {
                (ws, longpoll + 1)
            } else {
                (ws + 1, longpoll)
            }
        })
}

/// Connects this shard's visitors among `globals`, at most
/// `config.connect_concurrency` at a time, `longpoll_share` of them over
/// long-poll, and hands each open connection to `then` with the visitor's
/// global index. One task per visitor.
pub fn spawn_all<F, Fut>(
    tasks: &mut JoinSet<()>,
    config: &Config,
    (globals, longpoll_share): (Range<u32>, f64),
    recorder: &Arc<Recorder>,
    then: F,
) where
    F: Fn(Connection, u32) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let sources = Sources::new(config.source_addrs);
    let gate = Arc::new(Semaphore::new(config.connect_concurrency.max(1)));
    for global in globals.filter(|global| config.shard.owns(*global)) {
        let target = config.relays.for_visitor(global).clone();
        let source = sources.for_connection(target.addr, global);
        let side = if uses_longpoll(longpoll_share, global) {
            Side::LongPoll
        } else {
            Side::Visitor
        };
        let gate = gate.clone();
        let recorder = recorder.clone();
        let then = then.clone();
        tasks.spawn(async move {
            let Ok(permit) = gate.acquire_owned().await else {
                return;
            };
            let connected = connect(&target, source, global, side).await;
            drop(permit);
            match connected {
                Ok(connection) => {
                    recorder.connected(side);
                    then(connection, global).await;
                }
                Err(error) => recorder.failed(side, error.label()),
            }
        });
    }
}

/// A new visitor, welcomed.
async fn connect(
    target: &Target,
    source: Option<IpAddr>,
    global: u32,
    side: Side,
) -> Result<Connection, ConnectError> {
    let hello = VisitorRequest::Hello {
        token: None,
        after_seq: None,
        profile: Some(VisitorProfile {
            name: Some(format!("bench visitor {global}")),
            ..VisitorProfile::default()
        }),
    };
    if side == Side::LongPoll {
        return longpoll::connect(target, source, &hello)
            .await
            .map(Connection::LongPoll);
    }
    match net::handshake(target, "/ws/visitor", source, &hello).await? {
        (ws, VisitorEvent::Welcome(welcome)) => Ok(Connection::WebSocket(ws, welcome.token)),
        (_, VisitorEvent::Error(error)) => Err(ConnectError::refused(Some(&error))),
        _ => Err(ConnectError::refused(None)),
    }
}

/// Runs one visitor of a chat run, over its transport.
pub async fn chat(
    connection: Connection,
    global: u32,
    schedule: Option<Schedule>,
    recorder: Arc<Recorder>,
    phase: watch::Receiver<Phase>,
) {
    match connection {
        Connection::WebSocket(ws, _) => chat_ws(ws, global, schedule, recorder, phase).await,
        Connection::LongPoll(session) => {
            longpoll::chat(session, global, schedule, recorder, phase).await;
        }
    }
}

/// Holds one visitor of an idle run, over its transport.
pub async fn hold(connection: Connection, recorder: Arc<Recorder>, phase: watch::Receiver<Phase>) {
    match connection {
        Connection::WebSocket(ws, _) => hold_ws(ws, recorder, phase).await,
        Connection::LongPoll(session) => longpoll::hold(session, recorder, phase).await,
    }
}

/// A WebSocket visitor of a chat run: sends on its schedule without
/// waiting for acks (open loop, so a slow relay shows as latency rather than
/// as a lower offered rate), and records acks and the agents' replies.
async fn chat_ws(
    mut ws: Ws,
    global: u32,
    schedule: Option<Schedule>,
    recorder: Arc<Recorder>,
    mut phase: watch::Receiver<Phase>,
) {
    let Some(start) = phase::sending_starts(&mut phase).await else {
        return net::close(ws).await;
    };
    let mut times = schedule.into_iter().flat_map(|s| s.times(start)).peekable();
    loop {
        let due = times.peek().copied();
        tokio::select! {
            () = sleep_until(due), if due.is_some() => {
                times.next();
                let client_id = recorder.send(Direction::ToAgent, global);
                let send = VisitorRequest::Send {
                    client_id,
                    text: TEXT.to_owned(),
                    attachments: Vec::new(),
                };
                if let Err(error) = net::send(&mut ws, &send).await {
                    return recorder.dropped(error.label());
                }
            }
            event = net::recv::<VisitorEvent>(&mut ws) => {
                if let Err(reason) = on_event(event, global, &recorder) {
                    return recorder.dropped(reason);
                }
            }
            () = phase::stopped(&mut phase) => {
                return net::close(ws).await;
            }
        }
    }
}

/// Records one frame; `Err` with a reason once the connection is over.
pub(crate) fn on_event(
    event: Result<VisitorEvent, WireError>,
    global: u32,
    recorder: &Recorder,
) -> Result<(), &'static str> {
    match event {
        Ok(VisitorEvent::Ack(ack)) => recorder.ack(&ack.client_id),
        Ok(VisitorEvent::Message(message)) => on_message(&message, global, recorder),
        Ok(VisitorEvent::Error(error)) => recorder.error(error.code),
        Ok(VisitorEvent::Reconnect(reconnect)) => return Err(net::reconnect_label(&reconnect)),
        Ok(_) => {}
        Err(error) => return Err(error.label()),
    }
    Ok(())
}

/// A WebSocket visitor of an idle run: keeps its connection polled, so that
/// tungstenite answers the relay's pings, until the run stops.
async fn hold_ws(mut ws: Ws, recorder: Arc<Recorder>, mut phase: watch::Receiver<Phase>) {
    let dropped = async {
        loop {
            match net::recv::<VisitorEvent>(&mut ws).await {
                Ok(VisitorEvent::Reconnect(reconnect)) => return net::reconnect_label(&reconnect),
                Ok(VisitorEvent::Error(error)) => recorder.error(error.code),
                Ok(_) => {}
                Err(error) => return error.label(),
            }
        }
    };
    tokio::select! {
        reason = dropped => return recorder.dropped(reason),
        () = phase::stopped(&mut phase) => {}
    }
    net::close(ws).await;
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_poll_share_picks_evenly_interleaved_visitors() {
        let picked = |share: f64, range: std::ops::Range<u32>| {
            range.filter(|global| uses_longpoll(share, *global)).count()
        };
        assert_eq!(picked(0.0, 0..1000), 0);
        assert_eq!(picked(1.0, 0..1000), 1000);
        assert_eq!(picked(0.1, 0..1000), 100);
        assert_eq!(picked(0.1, 0..10), 1, "one in every ten");
        assert_eq!(picked(0.25, 400..800), 100, "any range gets its share");
    }
}
