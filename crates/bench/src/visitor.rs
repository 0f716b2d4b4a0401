//! Visitors: connecting thousands of them, and what one does during a run.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use std::net::IpAddr;

use kefu_protocol::Message;
use kefu_protocol::visitor::{VisitorEvent, VisitorProfile, VisitorRequest};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{Config, Target};
use crate::ledger::Direction;
use crate::net::{self, ConnectError, Sources, WireError, Ws};
use crate::report::{Recorder, Side};
use crate::{Phase, longpoll};

/// What a bench visitor writes: a typical chat line.
pub const TEXT: &str = "Hello! Is the blue one still in stock in size M?";

/// A welcomed visitor, over either transport.
pub enum Connection {
    WebSocket(Ws),
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

/// Connects this shard's visitors among `total`, at most
/// `config.connect_concurrency` at a time, and hands each open connection
/// to `then` with the visitor's global index. One task per visitor.
pub fn spawn_all<F, Fut>(
    tasks: &mut JoinSet<()>,
    config: &Config,
    total: u32,
    recorder: &Arc<Recorder>,
    then: F,
) where
    F: Fn(Connection, u32) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let sources = Sources::new(config.source_addrs);
    let gate = Arc::new(Semaphore::new(config.connect_concurrency.max(1)));
    for global in config.shard.members(total) {
        let target = config.target.clone();
        let source = sources.for_connection(target.addr, global);
        let side = if uses_longpoll(config.longpoll_share, global) {
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
        (ws, VisitorEvent::Welcome(_)) => Ok(Connection::WebSocket(ws)),
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
        Connection::WebSocket(ws) => chat_ws(ws, global, schedule, recorder, phase).await,
        Connection::LongPoll(session) => {
            longpoll::chat(session, global, schedule, recorder, phase).await;
        }
    }
}

/// Holds one visitor of an idle run, over its transport.
pub async fn hold(connection: Connection, recorder: Arc<Recorder>, phase: watch::Receiver<Phase>) {
    match connection {
        Connection::WebSocket(ws) => hold_ws(ws, recorder, phase).await,
        Connection::LongPoll(session) => longpoll::hold(session, recorder, phase).await,
    }
}

/// When a visitor sends, relative to the start of sending.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub first: Duration,
    pub period: Duration,
    /// No send is started after this.
    pub until: Duration,
}

impl Schedule {
    /// Spreads `rate` messages per second evenly over `visitors` visitors:
    /// each sends every `visitors / rate` seconds, the k-th starting k/visitors
    /// of a period after the first. `None` for a zero rate.
    pub fn spread(rate: f64, visitors: u32, k: u32, until: Duration) -> Option<Schedule> {
        if rate.is_nan() || rate <= 0.0 || visitors == 0 {
            return None;
        }
        let period = Duration::try_from_secs_f64(f64::from(visitors) / rate).ok()?;
        Some(Schedule {
            first: period.mul_f64(f64::from(k) / f64::from(visitors)),
            period,
            until,
        })
    }

    /// When to send, if sending starts at `start`.
    pub fn times(self, start: Instant) -> impl Iterator<Item = Instant> {
        let until = start + self.until;
        std::iter::successors(Some(start + self.first), move |at| Some(*at + self.period))
            .take_while(move |at| *at < until)
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
    let Some(start) = crate::sending_starts(&mut phase).await else {
        return net::close(ws).await;
    };
    let mut times = schedule.into_iter().flat_map(|s| s.times(start)).peekable();
    loop {
        let due = times.peek().copied();
        tokio::select! {
            () = sleep_until(due), if due.is_some() => {
                times.next();
                let client_id = recorder.send(Direction::ToAgent, global);
                let send = VisitorRequest::Send { client_id, text: TEXT.to_owned() };
                if let Err(error) = net::send(&mut ws, &send).await {
                    return recorder.dropped(error.label());
                }
            }
            event = net::recv::<VisitorEvent>(&mut ws) => {
                if let Err(reason) = on_event(event, global, &recorder) {
                    return recorder.dropped(reason);
                }
            }
            () = crate::stopped(&mut phase) => {
                return net::close(ws).await;
            }
        }
    }
}

/// Records one frame; `Err` with a reason once the connection is over.
fn on_event(
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

/// A message reached the visitor with this global index: an agent's reply
/// is delivered, a reply meant for another visitor is a routing bug, and
/// the visitor's own messages (long-poll returns them) are nothing new.
pub fn on_message(message: &Message, global: u32, recorder: &Recorder) {
    match recorder.ids().parse(&message.client_id) {
        Some(key) if key.direction == Direction::ToVisitor && key.visitor == global => {
            recorder.deliver(key);
        }
        Some(key) if key.direction == Direction::ToVisitor => recorder.stray(),
        Some(_) | None => {}
    }
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
        () = crate::stopped(&mut phase) => {}
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
    fn a_rate_is_spread_evenly_over_visitors() {
        let until = Duration::from_secs(10);
        let schedules: Vec<Schedule> = (0..4)
            .map(|k| Schedule::spread(200.0, 4, k, until).expect("positive rate"))
            .collect();
        for (k, schedule) in schedules.iter().enumerate() {
            assert_eq!(schedule.period, Duration::from_millis(20), "50/s each");
            assert_eq!(schedule.first, Duration::from_millis(5 * k as u64));
        }
        assert!(Schedule::spread(0.0, 4, 0, until).is_none());
        assert!(Schedule::spread(f64::NAN, 4, 0, until).is_none());
        assert!(Schedule::spread(10.0, 0, 0, until).is_none());

        let start = Instant::now();
        let times: Vec<Instant> = schedules[1].times(start).collect();
        assert_eq!(times.len(), 500, "10 s at 50/s");
        assert_eq!(times[0], start + Duration::from_millis(5));
        assert_eq!(times[1] - times[0], Duration::from_millis(20));
        assert!(*times.last().expect("some") < start + until);
    }

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
