//! Visitors: connecting thousands of them, and what one does during a run.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kefu_protocol::visitor::{VisitorEvent, VisitorProfile, VisitorRequest};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::Phase;
use crate::config::Config;
use crate::ledger::Direction;
use crate::net::{self, ConnectError, Sources, WireError, Ws};
use crate::report::{Recorder, Side};

/// What a bench visitor writes: a typical chat line.
const TEXT: &str = "Hello! Is the blue one still in stock in size M?";

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
    F: Fn(Ws, u32) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let sources = Sources::new(config.source_addrs);
    let gate = Arc::new(Semaphore::new(config.connect_concurrency.max(1)));
    for global in config.shard.members(total) {
        let target = config.target.clone();
        let source = sources.for_connection(target.addr, global);
        let gate = gate.clone();
        let recorder = recorder.clone();
        let then = then.clone();
        tasks.spawn(async move {
            let Ok(permit) = gate.acquire_owned().await else {
                return;
            };
            let connected = connect(&target, source, global).await;
            drop(permit);
            match connected {
                Ok(ws) => {
                    recorder.connected(Side::Visitor);
                    then(ws, global).await;
                }
                Err(error) => recorder.failed(Side::Visitor, error.label()),
            }
        });
    }
}

/// A new visitor, welcomed.
async fn connect(
    target: &crate::config::Target,
    source: Option<std::net::IpAddr>,
    global: u32,
) -> Result<Ws, ConnectError> {
    let hello = VisitorRequest::Hello {
        token: None,
        after_seq: None,
        profile: Some(VisitorProfile {
            name: Some(format!("bench visitor {global}")),
            ..VisitorProfile::default()
        }),
    };
    match net::handshake(target, "/ws/visitor", source, &hello).await? {
        (ws, VisitorEvent::Welcome(_)) => Ok(ws),
        (_, VisitorEvent::Error(error)) => Err(ConnectError::refused(Some(&error))),
        _ => Err(ConnectError::refused(None)),
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
}

/// One visitor of a chat run: sends on its schedule without waiting for
/// acks (open loop, so a slow relay shows as latency rather than as a lower
/// offered rate), and records acks and the agents' replies.
pub async fn chat(
    mut ws: Ws,
    global: u32,
    schedule: Option<Schedule>,
    recorder: Arc<Recorder>,
    mut phase: watch::Receiver<Phase>,
) {
    let Some(start) = crate::sending_starts(&mut phase).await else {
        return net::close(ws).await;
    };
    let mut next = schedule.map(|s| start + s.first);
    let until = schedule.map_or(start, |s| start + s.until);
    loop {
        let due = next.filter(|at| *at < until);
        tokio::select! {
            () = sleep_until(due), if due.is_some() => {
                let client_id = recorder.send(Direction::ToAgent, global);
                let send = VisitorRequest::Send { client_id, text: TEXT.to_owned() };
                if let Err(error) = net::send(&mut ws, &send).await {
                    return recorder.dropped(error.label());
                }
                next = next.zip(schedule).map(|(at, s)| at + s.period);
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
        Ok(VisitorEvent::Message(message)) => match recorder.ids().parse(&message.client_id) {
            Some(key) if key.direction == Direction::ToVisitor && key.visitor == global => {
                recorder.deliver(key);
            }
            // Another visitor's reply reached this one: a routing bug.
            Some(_) => recorder.stray(),
            None => {}
        },
        Ok(VisitorEvent::Error(error)) => recorder.error(error.code),
        Ok(VisitorEvent::Reconnect(_)) => return Err("told to reconnect"),
        Ok(_) => {}
        Err(error) => return Err(error.label()),
    }
    Ok(())
}

/// One visitor of an idle run: keeps its connection polled, so that
/// tungstenite answers the relay's pings, until the run stops.
pub async fn hold(mut ws: Ws, recorder: Arc<Recorder>, mut phase: watch::Receiver<Phase>) {
    let dropped = async {
        loop {
            match net::recv::<VisitorEvent>(&mut ws).await {
                Ok(VisitorEvent::Reconnect(_)) => return "told to reconnect",
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
    }
}
