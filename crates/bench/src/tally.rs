//! What the extras of a chat run got, beside its chat: the files uploaders
//! stored ([`Uploads`]) and what attackers got from the relay
//! ([`Attacks`]). Each behind its own short std mutex, never held across
//! an `.await`, apart from the chat's recorder: uploads and attacks are
//! counted, never loss-checked.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::latency::{Percentiles, histogram, record};

const MIB: f64 = 1024.0 * 1024.0;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters a panicking task left are still worth reporting.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn bump(counts: &mut BTreeMap<String, u64>, what: String) {
    *counts.entry(what).or_default() += 1;
}

/// Files uploaded during a run.
pub struct Uploads(Mutex<UploadState>);

struct UploadState {
    latency: Histogram<u64>,
    stored: u64,
    bytes: u64,
    refused: BTreeMap<String, u64>,
}

impl Default for Uploads {
    fn default() -> Self {
        Uploads(Mutex::new(UploadState {
            latency: histogram(),
            stored: 0,
            bytes: 0,
            refused: BTreeMap::new(),
        }))
    }
}

impl Uploads {
    /// An upload of `bytes` started at `started` was stored (`201`).
    pub fn stored(&self, started: Instant, bytes: usize) {
        let now = Instant::now();
        let mut state = lock(&self.0);
        record(&mut state.latency, started, now);
        state.stored += 1;
        state.bytes += bytes as u64;
    }

    /// An upload failed or was refused, by cause.
    pub fn refused(&self, reason: String) {
        bump(&mut lock(&self.0).refused, reason);
    }

    /// The figures of `uploaders` uploading for `seconds`.
    pub fn figures(&self, uploaders: u32, seconds: f64) -> UploadFigures {
        let state = lock(&self.0);
        let per_second = |value: f64| if seconds > 0.0 { value / seconds } else { 0.0 };
        UploadFigures {
            uploaders,
            stored: state.stored,
            mib: state.bytes as f64 / MIB,
            mib_per_second: per_second(state.bytes as f64 / MIB),
            uploads_per_second: per_second(state.stored as f64),
            latency_ms: Percentiles::of(&state.latency),
            refused: state.refused.clone(),
        }
    }
}

/// Uploads of a run: each uploader uploads one file after another (each
/// then sent in a message) while the chat runs.
#[derive(Debug, Clone, Serialize)]
pub struct UploadFigures {
    pub uploaders: u32,
    /// Files the relay stored (`201`).
    pub stored: u64,
    pub mib: f64,
    /// Over the sending time of the run.
    pub mib_per_second: f64,
    pub uploads_per_second: f64,
    /// From the request's first byte to the relay's `201` (the file durable).
    pub latency_ms: Percentiles,
    /// Uploads that failed, by cause (HTTP status and error code).
    pub refused: BTreeMap<String, u64>,
}

impl fmt::Display for UploadFigures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.latency_ms;
        writeln!(
            f,
            "  uploads   {} uploaders stored {} files, {:.1} MiB: {:.1} MiB/s, {:.1} uploads/s",
            self.uploaders, self.stored, self.mib, self.mib_per_second, self.uploads_per_second
        )?;
        writeln!(
            f,
            "  upload ms        {:>8} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            p.count, p.p50, p.p90, p.p99, p.p999, p.max
        )?;
        write_counts(f, "refused", &self.refused)
    }
}

/// The three attacks an abuse run makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Attack {
    /// Requests whose headers never end: a request line alone, or a
    /// WebSocket handshake a byte at a time.
    HalfOpen,
    /// POSTs whose body trickles in a byte at a time.
    SlowBody,
    /// hello, one message, close, again and again.
    Spam,
}

/// What attackers got from the relay during a run.
pub struct Attacks(Mutex<AttackState>);

struct AttackState {
    outcomes: BTreeMap<Attack, BTreeMap<String, u64>>,
    /// How long the relay let a stalled connection (half-open or slow body)
    /// stay open.
    held: Histogram<u64>,
    conversations: u64,
}

impl Default for Attacks {
    fn default() -> Self {
        Attacks(Mutex::new(AttackState {
            outcomes: BTreeMap::new(),
            held: histogram(),
            conversations: 0,
        }))
    }
}

impl Attacks {
    /// How one attempt of `attack` ended.
    pub fn outcome(&self, attack: Attack, outcome: impl Into<String>) {
        let mut state = lock(&self.0);
        bump(state.outcomes.entry(attack).or_default(), outcome.into());
    }

    /// A stalled connection opened at `opened` was closed by the relay now.
    pub fn held(&self, opened: Instant) {
        let now = Instant::now();
        record(&mut lock(&self.0).held, opened, now);
    }

    /// A spammer's message was acknowledged: a conversation was opened.
    pub fn opened(&self) {
        lock(&self.0).conversations += 1;
    }

    pub fn figures(&self, addresses: String) -> AttackFigures {
        let state = lock(&self.0);
        let outcomes = |attack| state.outcomes.get(&attack).cloned().unwrap_or_default();
        AttackFigures {
            addresses,
            half_open: outcomes(Attack::HalfOpen),
            slow_bodies: outcomes(Attack::SlowBody),
            spam: outcomes(Attack::Spam),
            conversations_opened: state.conversations,
            stalled_held_ms: Percentiles::of(&state.held),
        }
    }
}

/// What the attackers of an abuse run got.
#[derive(Debug, Clone, Serialize)]
pub struct AttackFigures {
    /// The attackers' source addresses, e.g. `127.0.0.18–127.0.0.49`.
    pub addresses: String,
    /// How each half-open connection ended, by outcome.
    pub half_open: BTreeMap<String, u64>,
    pub slow_bodies: BTreeMap<String, u64>,
    pub spam: BTreeMap<String, u64>,
    /// Spam messages acknowledged, each a new conversation.
    pub conversations_opened: u64,
    /// How long the relay held a stalled connection (half-open or slow
    /// body) before closing it.
    pub stalled_held_ms: Percentiles,
}

impl fmt::Display for AttackFigures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  attack    from {}", self.addresses)?;
        write_counts(f, "half-open", &self.half_open)?;
        write_counts(f, "slow body", &self.slow_bodies)?;
        write_counts(f, "spam", &self.spam)?;
        writeln!(
            f,
            "  opened    {} conversations by spam",
            self.conversations_opened
        )?;
        let p = &self.stalled_held_ms;
        writeln!(
            f,
            "  stalled connections held ms: {} closed, p50 {:.0}, p99 {:.0}, max {:.0}",
            p.count, p.p50, p.p99, p.max
        )
    }
}

/// `name  key: count, key: count`, nothing when empty.
pub fn write_counts(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    counts: &BTreeMap<String, u64>,
) -> fmt::Result {
    if counts.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = counts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    writeln!(f, "  {name:<9} {}", list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_counted_in_bytes_files_and_time() {
        let uploads = Uploads::default();
        let started = Instant::now();
        uploads.stored(started, 1024 * 1024);
        uploads.stored(started, 1024 * 1024);
        uploads.refused("413 too_large".to_owned());
        let figures = uploads.figures(3, 2.0);
        assert_eq!((figures.uploaders, figures.stored), (3, 2));
        assert_eq!((figures.mib, figures.mib_per_second), (2.0, 1.0));
        assert_eq!(figures.uploads_per_second, 1.0);
        assert_eq!(figures.latency_ms.count, 2);
        assert_eq!(figures.refused.get("413 too_large"), Some(&1));
        assert_eq!(uploads.figures(3, 0.0).mib_per_second, 0.0);
    }

    #[test]
    fn attack_outcomes_are_kept_apart_by_attack() {
        let attacks = Attacks::default();
        attacks.outcome(Attack::HalfOpen, "closed by the relay");
        attacks.outcome(Attack::HalfOpen, "closed by the relay");
        attacks.outcome(Attack::Spam, "refused: rate_limited");
        attacks.opened();
        attacks.held(Instant::now());
        let figures = attacks.figures("127.0.0.18".to_owned());
        assert_eq!(figures.half_open.get("closed by the relay"), Some(&2));
        assert_eq!(figures.spam.get("refused: rate_limited"), Some(&1));
        assert!(figures.slow_bodies.is_empty());
        assert_eq!(figures.conversations_opened, 1);
        assert_eq!(figures.stalled_held_ms.count, 1);
    }
}
