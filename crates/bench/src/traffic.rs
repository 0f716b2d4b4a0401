//! A visitor's traffic, whatever carries it (WebSocket or long-poll): what
//! it sends, when, and what a message it receives counts as.

use std::time::Duration;

use kefu_protocol::Message;
use tokio::time::Instant;

use crate::ledger::Direction;
use crate::report::Recorder;

/// What a bench visitor writes: a typical chat line.
pub const TEXT: &str = "Hello! Is the blue one still in stock in size M?";

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
}
