//! The loss ledger: every message the bench sends, whether the relay acked
//! it, and how many times its recipient received it.
//!
//! A message is named by its `client_id`, which the bench builds from the
//! run, the direction, the visitor (every message belongs to one visitor's
//! conversation) and a per-visitor counter. So the recipient can look a
//! message up without any side channel, and the counters make the ledger a
//! set of dense vectors rather than a hash of strings.

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Visitor → agent.
    ToAgent,
    /// Agent → visitor.
    ToVisitor,
}

/// One message of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub direction: Direction,
    /// Global index of the visitor whose conversation it is in.
    pub visitor: u32,
    /// Per visitor and direction, from 0.
    pub n: u32,
}

/// Turns keys into `client_id`s and back. The run tag keeps ids unique
/// across runs against one database: agents keep their accounts, and the
/// relay treats a reused `client_id` of the same author as a resend.
#[derive(Debug, Clone)]
pub struct Ids {
    run: String,
}

impl Ids {
    pub fn new(run: String) -> Ids {
        Ids { run }
    }

    pub fn client_id(&self, key: Key) -> String {
        let direction = match key.direction {
            Direction::ToAgent => 'v',
            Direction::ToVisitor => 'a',
        };
        format!("{}.{direction}{}.{}", self.run, key.visitor, key.n)
    }

    /// The key of one of this run's messages; `None` for anything else
    /// (another run, another shard, a human typing).
    pub fn parse(&self, client_id: &str) -> Option<Key> {
        let rest = client_id.strip_prefix(&self.run)?.strip_prefix('.')?;
        let mut chars = rest.chars();
        let direction = match chars.next()? {
            'v' => Direction::ToAgent,
            'a' => Direction::ToVisitor,
            _ => return None,
        };
        let (visitor, n) = chars.as_str().split_once('.')?;
        Some(Key {
            direction,
            visitor: visitor.parse().ok()?,
            n: n.parse().ok()?,
        })
    }
}

struct Entry {
    sent: Instant,
    acked: bool,
    deliveries: u32,
}

#[derive(Default)]
struct Flow {
    to_agent: Vec<Entry>,
    to_visitor: Vec<Entry>,
}

impl Flow {
    fn entries(&mut self, direction: Direction) -> &mut Vec<Entry> {
        match direction {
            Direction::ToAgent => &mut self.to_agent,
            Direction::ToVisitor => &mut self.to_visitor,
        }
    }
}

/// What became of the messages of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub sent: u64,
    pub acked: u64,
    /// Messages received at least once by their recipient.
    pub delivered: u64,
    /// Acked, never received: the relay broke its promise.
    pub lost: u64,
    /// Received more than once.
    pub duplicated: u64,
    /// Sent, never acked (the run ended first, or the relay refused them).
    pub unacked: u64,
}

pub struct Ledger {
    flows: HashMap<u32, Flow>,
    /// Sent and not yet acked.
    awaiting_ack: u64,
    /// Acked and not yet delivered.
    awaiting_delivery: u64,
    stray: u64,
    /// Test hook: forget the next delivery.
    drop_next_delivery: bool,
}

impl Ledger {
    pub fn new(drop_one_for_test: bool) -> Ledger {
        Ledger {
            flows: HashMap::new(),
            awaiting_ack: 0,
            awaiting_delivery: 0,
            stray: 0,
            drop_next_delivery: drop_one_for_test,
        }
    }

    /// Records a message about to be sent and names it.
    pub fn send(&mut self, direction: Direction, visitor: u32, now: Instant) -> Key {
        let entries = self.flows.entry(visitor).or_default().entries(direction);
        let n = u32::try_from(entries.len()).unwrap_or(u32::MAX);
        entries.push(Entry {
            sent: now,
            acked: false,
            deliveries: 0,
        });
        self.awaiting_ack += 1;
        Key {
            direction,
            visitor,
            n,
        }
    }

    /// Records an ack; when the message was sent, on its first ack.
    pub fn ack(&mut self, key: Key) -> Option<Instant> {
        let Some(entry) = self.entry(key) else {
            self.stray();
            return None;
        };
        if entry.acked {
            return None;
        }
        entry.acked = true;
        let delivered = entry.deliveries > 0;
        let sent = entry.sent;
        self.awaiting_ack -= 1;
        if !delivered {
            self.awaiting_delivery += 1;
        }
        Some(sent)
    }

    /// Records a delivery; when the message was sent, on its first delivery.
    pub fn deliver(&mut self, key: Key) -> Option<Instant> {
        if std::mem::take(&mut self.drop_next_delivery) {
            return None;
        }
        let Some(entry) = self.entry(key) else {
            self.stray();
            return None;
        };
        entry.deliveries += 1;
        if entry.deliveries > 1 {
            return None;
        }
        let acked = entry.acked;
        let sent = entry.sent;
        if acked {
            self.awaiting_delivery -= 1;
        }
        Some(sent)
    }

    /// Nothing is in flight: every message sent was acked and every acked
    /// one delivered.
    pub fn settled(&self) -> bool {
        self.awaiting_ack == 0 && self.awaiting_delivery == 0
    }

    /// Counts an ack or delivery that names no message of this run.
    pub fn stray(&mut self) {
        self.stray += 1;
    }

    /// Acks and deliveries of ids this run never sent.
    pub fn strays(&self) -> u64 {
        self.stray
    }

    pub fn tally(&self, direction: Direction) -> Tally {
        let mut tally = Tally::default();
        let entries = self.flows.values().flat_map(|flow| match direction {
            Direction::ToAgent => &flow.to_agent,
            Direction::ToVisitor => &flow.to_visitor,
        });
        for entry in entries {
            tally.sent += 1;
            tally.acked += u64::from(entry.acked);
            tally.delivered += u64::from(entry.deliveries > 0);
            tally.lost += u64::from(entry.acked && entry.deliveries == 0);
            tally.duplicated += u64::from(entry.deliveries > 1);
            tally.unacked += u64::from(!entry.acked);
        }
        tally
    }

    fn entry(&mut self, key: Key) -> Option<&mut Entry> {
        let entries = self.flows.get_mut(&key.visitor)?.entries(key.direction);
        entries.get_mut(usize::try_from(key.n).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_round_trip_and_foreign_ids_are_ignored() {
        let ids = Ids::new("r1".to_owned());
        for direction in [Direction::ToAgent, Direction::ToVisitor] {
            let key = Key {
                direction,
                visitor: 17,
                n: 4,
            };
            assert_eq!(ids.parse(&ids.client_id(key)), Some(key));
        }
        let other_run = Ids::new("r2".to_owned());
        let key = Key {
            direction: Direction::ToAgent,
            visitor: 1,
            n: 0,
        };
        assert_eq!(other_run.parse(&ids.client_id(key)), None);
        for junk in ["", "r1", "r1.", "r1.x1.2", "r1.v1", "r1.v1.x", "r11.v1.2"] {
            assert_eq!(ids.parse(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn a_clean_exchange_settles_and_passes() {
        let mut ledger = Ledger::new(false);
        let sent = Instant::now();
        let key = ledger.send(Direction::ToAgent, 5, sent);
        assert!(!ledger.settled());
        assert_eq!(ledger.ack(key), Some(sent), "the first ack is timed");
        assert_eq!(ledger.ack(key), None, "a repeated ack is not");
        assert!(!ledger.settled(), "acked but not delivered");
        assert_eq!(ledger.deliver(key), Some(sent));
        assert!(ledger.settled());
        let tally = ledger.tally(Direction::ToAgent);
        assert_eq!((tally.sent, tally.acked, tally.delivered), (1, 1, 1));
        assert_eq!((tally.lost, tally.duplicated, tally.unacked), (0, 0, 0));
        assert_eq!(ledger.tally(Direction::ToVisitor), Tally::default());
    }

    #[test]
    fn delivery_before_ack_is_no_loss() {
        let mut ledger = Ledger::new(false);
        let now = Instant::now();
        let key = ledger.send(Direction::ToVisitor, 0, now);
        assert!(ledger.deliver(key).is_some());
        assert!(ledger.ack(key).is_some());
        assert!(ledger.settled());
        let tally = ledger.tally(Direction::ToVisitor);
        assert_eq!((tally.delivered, tally.lost), (1, 0));
    }

    #[test]
    fn losses_duplicates_and_strays_are_counted() {
        let mut ledger = Ledger::new(false);
        let now = Instant::now();
        let lost = ledger.send(Direction::ToAgent, 1, now);
        ledger.ack(lost);
        let twice = ledger.send(Direction::ToAgent, 1, now);
        ledger.ack(twice);
        ledger.deliver(twice);
        assert_eq!(ledger.deliver(twice), None, "a duplicate is not timed");
        let unacked = ledger.send(Direction::ToVisitor, 2, now);
        assert_eq!((lost.n, twice.n, unacked.n), (0, 1, 0));
        let never_sent = Key {
            direction: Direction::ToVisitor,
            visitor: 9,
            n: 0,
        };
        ledger.deliver(never_sent);

        assert!(!ledger.settled());
        let to_agent = ledger.tally(Direction::ToAgent);
        assert_eq!((to_agent.lost, to_agent.duplicated), (1, 1));
        assert_eq!(ledger.tally(Direction::ToVisitor).unacked, 1);
        assert_eq!(ledger.strays(), 1);
    }

    #[test]
    fn the_test_hook_loses_exactly_one_message() {
        let mut ledger = Ledger::new(true);
        let now = Instant::now();
        for _ in 0..3 {
            let key = ledger.send(Direction::ToAgent, 0, now);
            ledger.ack(key);
            ledger.deliver(key);
        }
        let tally = ledger.tally(Direction::ToAgent);
        assert_eq!((tally.lost, tally.delivered), (1, 2));
        assert!(!ledger.settled());
    }
}
