//! What a run measured: the [`Recorder`] every connection task writes to,
//! and the [`Report`] it becomes.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use hdrhistogram::Histogram;
use kefu_protocol::ErrorCode;
use serde::Serialize;

pub use crate::latency::Percentiles;
use crate::latency::{histogram, record};
use crate::ledger::{Direction, Ids, Key, Ledger, Tally};
use crate::tally::{AttackFigures, UploadFigures, write_counts};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A WebSocket visitor.
    Visitor,
    /// A long-poll visitor.
    LongPoll,
    Agent,
}

/// Shared by every connection task. One std mutex: each call holds it for a
/// few hash and histogram updates and never across an `.await`, which at
/// tens of thousands of calls a second costs far less than the frames do.
pub struct Recorder {
    ids: Ids,
    state: Mutex<State>,
}

struct State {
    ledger: Ledger,
    /// Messages sent before this are checked for loss but not timed.
    timed_from: Option<Instant>,
    /// Visitors from this index on (uploaders) are checked for loss but
    /// not timed: their messages carry files, and the chat's latency is
    /// what their uploads are measured against.
    untimed_visitors_from: Option<u32>,
    to_agent: Histogram<u64>,
    to_visitor: Histogram<u64>,
    visitor_ack: Histogram<u64>,
    agent_ack: Histogram<u64>,
    errors: BTreeMap<&'static str, u64>,
    visitors: Connections,
    longpoll: Connections,
    agents: Connections,
    failures: BTreeMap<String, u64>,
    dropped: BTreeMap<String, u64>,
}

impl Recorder {
    pub fn new(ids: Ids, drop_one_for_test: bool) -> Recorder {
        Recorder {
            ids,
            state: Mutex::new(State {
                ledger: Ledger::new(drop_one_for_test),
                timed_from: None,
                untimed_visitors_from: None,
                to_agent: histogram(),
                to_visitor: histogram(),
                visitor_ack: histogram(),
                agent_ack: histogram(),
                errors: BTreeMap::new(),
                visitors: Connections::default(),
                longpoll: Connections::default(),
                agents: Connections::default(),
                failures: BTreeMap::new(),
                dropped: BTreeMap::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking task cannot leave the counters half-updated in a way
        // that matters more than losing the whole report.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn ids(&self) -> &Ids {
        &self.ids
    }

    /// Times only messages sent from `from` on: the first seconds of a run,
    /// when every visitor opens its conversation at once, are not its
    /// steady state.
    pub fn time_from(&self, from: Instant) {
        self.state().timed_from = Some(from);
    }

    /// Leaves the messages of visitors from `first` on, both ways, out of
    /// the latencies (they are still loss-checked).
    pub fn untimed_visitors_from(&self, first: u32) {
        self.state().untimed_visitors_from = Some(first);
    }

    /// Records a message about to be sent; returns its `client_id`.
    pub fn send(&self, direction: Direction, visitor: u32) -> String {
        let key = self.state().ledger.send(direction, visitor, Instant::now());
        self.ids.client_id(key)
    }

    pub fn ack(&self, client_id: &str) {
        let now = Instant::now();
        let mut state = self.state();
        let Some(key) = self.ids.parse(client_id) else {
            state.ledger.stray();
            return;
        };
        if let Some(sent) = state.ledger.ack(key).filter(|sent| state.timed(key, *sent)) {
            let histogram = match key.direction {
                Direction::ToAgent => &mut state.visitor_ack,
                Direction::ToVisitor => &mut state.agent_ack,
            };
            record(histogram, sent, now);
        }
    }

    /// A message reached its recipient.
    pub fn deliver(&self, key: Key) {
        let now = Instant::now();
        let mut state = self.state();
        if let Some(sent) = state
            .ledger
            .deliver(key)
            .filter(|sent| state.timed(key, *sent))
        {
            let histogram = match key.direction {
                Direction::ToAgent => &mut state.to_agent,
                Direction::ToVisitor => &mut state.to_visitor,
            };
            record(histogram, sent, now);
        }
    }

    /// A message of this run reached someone it was not for.
    pub fn stray(&self) {
        self.state().ledger.stray();
    }

    pub fn error(&self, code: ErrorCode) {
        *self.state().errors.entry(code.as_str()).or_default() += 1;
    }

    pub fn connected(&self, side: Side) {
        self.state().side(side).established += 1;
    }

    pub fn failed(&self, side: Side, reason: String) {
        let mut state = self.state();
        state.side(side).failed += 1;
        *state.failures.entry(reason).or_default() += 1;
    }

    /// An established connection ended before the run did.
    pub fn dropped(&self, reason: &str) {
        *self.state().dropped.entry(reason.to_owned()).or_default() += 1;
    }

    /// Every message sent was acked and every acked one delivered.
    pub fn settled(&self) -> bool {
        self.state().ledger.settled()
    }

    /// Visitor connection attempts so far, over both transports,
    /// established or failed.
    pub fn visitor_attempts(&self) -> u32 {
        let state = self.state();
        [&state.visitors, &state.longpoll]
            .iter()
            .map(|side| side.established + side.failed)
            .sum()
    }

    /// The report so far; `wanted` is how many connections of each side
    /// this process tried to open.
    pub fn report(&self, mode: &'static str, shard: String, wanted: Wanted) -> Report {
        let state = self.state();
        let with_wanted = |side: &Connections, wanted| Connections {
            wanted,
            ..side.clone()
        };
        let to_agent = state.ledger.tally(Direction::ToAgent);
        let to_visitor = state.ledger.tally(Direction::ToVisitor);
        let stray = state.ledger.strays();
        let lost = to_agent.lost + to_visitor.lost;
        let duplicated = to_agent.duplicated + to_visitor.duplicated;
        Report {
            mode,
            shard,
            visitors: with_wanted(&state.visitors, wanted.visitors),
            longpoll: with_wanted(&state.longpoll, wanted.longpoll),
            agents: with_wanted(&state.agents, wanted.agents),
            connect_seconds: 0.0,
            failures: state.failures.clone(),
            dropped: state.dropped.clone(),
            errors: state
                .errors
                .iter()
                .map(|(code, count)| ((*code).to_owned(), *count))
                .collect(),
            lost,
            stray,
            passed: lost == 0 && duplicated == 0 && stray == 0,
            latency_ms: Latencies {
                visitor_to_agent: Percentiles::of(&state.to_agent),
                agent_to_visitor: Percentiles::of(&state.to_visitor),
                visitor_ack: Percentiles::of(&state.visitor_ack),
                agent_ack: Percentiles::of(&state.agent_ack),
            },
            to_agent,
            to_visitor,
            chat: None,
            idle: None,
            uploads: None,
            attack: None,
        }
    }
}

impl State {
    fn timed(&self, key: Key, sent: Instant) -> bool {
        self.timed_from.is_none_or(|from| sent >= from)
            && self
                .untimed_visitors_from
                .is_none_or(|first| key.visitor < first)
    }

    fn side(&mut self, side: Side) -> &mut Connections {
        match side {
            Side::Visitor => &mut self.visitors,
            Side::LongPoll => &mut self.longpoll,
            Side::Agent => &mut self.agents,
        }
    }
}

/// Connections a process tries to open, per side.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wanted {
    pub visitors: u32,
    pub longpoll: u32,
    pub agents: u32,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Connections {
    pub wanted: u32,
    pub established: u32,
    pub failed: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latencies {
    /// Visitor sends → the owning agent receives.
    pub visitor_to_agent: Percentiles,
    /// Agent sends → the visitor receives.
    pub agent_to_visitor: Percentiles,
    /// Visitor sends → ack (the message is durable).
    pub visitor_ack: Percentiles,
    pub agent_ack: Percentiles,
}

/// Message throughput of a chat run.
#[derive(Debug, Clone, Serialize)]
pub struct ChatFigures {
    /// Visitor messages per second asked of this process.
    pub rate_wanted: f64,
    /// How long visitors sent.
    pub send_seconds: f64,
    /// From the end of sending until every message was acked and delivered
    /// (or the drain timed out).
    pub drain_seconds: f64,
    /// Visitor messages acked per second, over sending and draining: if the
    /// relay falls behind, the drain grows and this falls.
    pub visitor_acked_per_second: f64,
    /// All messages (visitors' and agents') acked per second, likewise.
    pub acked_per_second: f64,
}

/// Memory of an idle run, in KiB.
#[derive(Debug, Clone, Serialize)]
pub struct IdleFigures {
    pub hold_seconds: f64,
    pub relay_pid: Option<u32>,
    /// The relay's resident memory before this process connected anything.
    pub relay_rss_before_kib: Option<u64>,
    /// … once every connection was up (and said hello).
    pub relay_rss_connected_kib: Option<u64>,
    /// … at the end of the hold.
    pub relay_rss_end_kib: Option<u64>,
    /// (end − before) / connections established by this process.
    pub relay_kib_per_connection: Option<f64>,
    /// This bench process at the end of the hold, and its growth per
    /// connection: what a client pays.
    pub bench_rss_kib: Option<u64>,
    pub bench_kib_per_connection: Option<f64>,
}

/// Everything one process measured. `--json` prints it as one line.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub shard: String,
    /// WebSocket visitors.
    pub visitors: Connections,
    /// Long-poll visitors.
    pub longpoll: Connections,
    pub agents: Connections,
    /// From the first connection attempt until every visitor connected or
    /// failed.
    pub connect_seconds: f64,
    /// Connection attempts that failed, by cause.
    pub failures: BTreeMap<String, u64>,
    /// Established connections that ended before the run did, by cause.
    pub dropped: BTreeMap<String, u64>,
    /// `error` frames received, by code.
    pub errors: BTreeMap<String, u64>,
    /// Acked messages never delivered, both directions.
    pub lost: u64,
    /// Acks or deliveries naming a message this run never sent.
    pub stray: u64,
    /// The loss check: nothing lost, duplicated or stray.
    pub passed: bool,
    pub latency_ms: Latencies,
    pub to_agent: Tally,
    pub to_visitor: Tally,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat: Option<ChatFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdleFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploads: Option<UploadFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attack: Option<AttackFigures>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "kefu-bench {} (shard {})", self.mode, self.shard)?;
        for (name, side) in [
            ("visitors", &self.visitors),
            ("long-poll", &self.longpoll),
            ("agents", &self.agents),
        ] {
            if side.wanted > 0 {
                writeln!(
                    f,
                    "  {name:<9} {} wanted, {} established, {} failed",
                    side.wanted, side.established, side.failed
                )?;
            }
        }
        writeln!(f, "  connected in {:.1} s", self.connect_seconds)?;
        write_counts(f, "failures", &self.failures)?;
        write_counts(f, "dropped", &self.dropped)?;
        write_counts(f, "errors", &self.errors)?;
        if let Some(chat) = &self.chat {
            writeln!(
                f,
                "  sending   {:.1} s at {:.0} msg/s wanted, drained in {:.2} s",
                chat.send_seconds, chat.rate_wanted, chat.drain_seconds
            )?;
            writeln!(
                f,
                "  acked     {:.0} visitor msg/s, {:.0} msg/s in all",
                chat.visitor_acked_per_second, chat.acked_per_second
            )?;
            writeln!(
                f,
                "  latency ms          count      p50      p90      p99    p99.9      max"
            )?;
            let latency = &self.latency_ms;
            for (name, p) in [
                ("visitor → agent", &latency.visitor_to_agent),
                ("agent → visitor", &latency.agent_to_visitor),
                ("visitor ack", &latency.visitor_ack),
                ("agent ack", &latency.agent_ack),
            ] {
                writeln!(
                    f,
                    "  {name:<16} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                    p.count, p.p50, p.p90, p.p99, p.p999, p.max
                )?;
            }
            for (name, tally) in [
                ("visitor → agent", &self.to_agent),
                ("agent → visitor", &self.to_visitor),
            ] {
                writeln!(
                    f,
                    "  {name:<16} sent {}, acked {}, delivered {}, lost {}, duplicated {}, unacked {}",
                    tally.sent,
                    tally.acked,
                    tally.delivered,
                    tally.lost,
                    tally.duplicated,
                    tally.unacked
                )?;
            }
            let verdict = if self.passed { "passed" } else { "FAILED" };
            writeln!(
                f,
                "  loss check {verdict}: lost {}, stray {} (every acked message must arrive exactly once)",
                self.lost, self.stray
            )?;
        }
        if let Some(idle) = &self.idle {
            writeln!(f, "  held      {:.1} s", idle.hold_seconds)?;
            let kib = |v: Option<u64>| v.map_or("?".to_owned(), |v| format!("{v} KiB"));
            let per = |v: Option<f64>| v.map_or("?".to_owned(), |v| format!("{v:.2} KiB"));
            writeln!(
                f,
                "  relay rss {} before, {} connected, {} at the end: {} per connection",
                kib(idle.relay_rss_before_kib),
                kib(idle.relay_rss_connected_kib),
                kib(idle.relay_rss_end_kib),
                per(idle.relay_kib_per_connection)
            )?;
            writeln!(
                f,
                "  bench rss {}: {} per connection",
                kib(idle.bench_rss_kib),
                per(idle.bench_kib_per_connection)
            )?;
        }
        if let Some(uploads) = &self.uploads {
            write!(f, "{uploads}")?;
        }
        if let Some(attack) = &self.attack {
            write!(f, "{attack}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_the_right_histogram_and_percentiles() {
        let recorder = Recorder::new(Ids::new("t".to_owned()), false);
        let client_id = recorder.send(Direction::ToAgent, 3);
        recorder.ack(&client_id);
        let key = recorder.ids().parse(&client_id).expect("own id");
        recorder.deliver(key);
        recorder.ack("not-ours");
        recorder.error(ErrorCode::RateLimited);
        recorder.error(ErrorCode::RateLimited);
        let wanted = Wanted {
            visitors: 1,
            longpoll: 0,
            agents: 1,
        };
        let report = recorder.report("chat", "0/1".to_owned(), wanted);
        assert_eq!(report.latency_ms.visitor_to_agent.count, 1);
        assert_eq!(report.latency_ms.visitor_ack.count, 1);
        assert_eq!(report.latency_ms.agent_to_visitor.count, 0);
        assert_eq!(report.to_agent.delivered, 1);
        assert_eq!(report.errors.get("rate_limited"), Some(&2));
        assert_eq!(report.lost, 0);
        assert!(!report.passed, "an ack for an id never sent is stray");
    }

    #[test]
    fn uploaders_are_loss_checked_but_not_timed() {
        let recorder = Recorder::new(Ids::new("t".to_owned()), false);
        recorder.untimed_visitors_from(10);
        for visitor in [9, 10] {
            let client_id = recorder.send(Direction::ToAgent, visitor);
            recorder.ack(&client_id);
            recorder.deliver(recorder.ids().parse(&client_id).expect("own id"));
        }
        let unanswered = recorder.send(Direction::ToAgent, 11);
        recorder.ack(&unanswered);
        let report = recorder.report("chat", "0/1".to_owned(), Wanted::default());
        assert_eq!(
            report.latency_ms.visitor_to_agent.count, 1,
            "visitor 9 only"
        );
        assert_eq!(report.latency_ms.visitor_ack.count, 1);
        assert_eq!((report.to_agent.delivered, report.lost), (2, 1));
        assert!(!report.passed, "an uploader's lost message fails the check");
    }
}
