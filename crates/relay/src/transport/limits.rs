//! Connections per IP address, frames per second per connection, new
//! conversations per minute per address, uploads per minute per uploader,
//! visitors' store writes in flight in all, and when a connection is too
//! slow for the frames the hub queues for it.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::admission::IpLimiter;
use crate::config::Limits;
use crate::hub::OutboxBounds;

/// A token bucket for one connection's (or poll session's) frames.
pub fn frame_limiter(limits: &Limits) -> DefaultDirectRateLimiter {
    let per_second = NonZeroU32::new(limits.frames_per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(limits.frame_burst).unwrap_or(NonZeroU32::MIN);
    RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst))
}

/// A token bucket per key (an address, an uploader) refilled per minute:
/// new conversations per IP, uploads per visitor or agent. Buckets of keys
/// gone quiet are dropped by [`PerMinute::forget_quiet`] on the maintenance
/// tick, so memory follows the keys active now.
pub struct PerMinute<K: std::hash::Hash + Eq + Clone>(DefaultKeyedRateLimiter<K>);

/// New conversations per address.
pub type NewConversations = PerMinute<IpAddr>;

impl<K: std::hash::Hash + Eq + Clone> PerMinute<K> {
    pub fn new(per_minute: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        PerMinute(RateLimiter::keyed(
            Quota::per_minute(per_minute).allow_burst(per_minute),
        ))
    }

    /// Takes a token for `key`, if it has one left.
    pub fn allow(&self, key: &K) -> bool {
        self.0.check_key(key).is_ok()
    }

    pub fn forget_quiet(&self) {
        self.0.retain_recent();
        self.0.shrink_to_fit();
    }
}

/// What one address may hold, in separate budgets so that using up one
/// never costs another: a page spamming long-poll `hello`s does not lock
/// that address's WebSockets out, and visitors behind an office NAT never
/// refuse the agents there. Each allows `connections_per_ip`.
pub struct AddressBudgets {
    /// Visitors' WebSockets.
    pub visitor_sockets: IpLimiter,
    /// Long-poll sessions, whether or not a poll is in flight (at most one
    /// per session is).
    pub poll_sessions: IpLimiter,
    /// Agent WebSockets until they sign in; a signed-in agent holds no
    /// per-address slot (agents are few and known).
    pub agent_handshakes: IpLimiter,
}

impl AddressBudgets {
    pub fn new(max_per_ip: u32) -> Self {
        AddressBudgets {
            visitor_sockets: IpLimiter::new(max_per_ip),
            poll_sessions: IpLimiter::new(max_per_ip),
            agent_handshakes: IpLimiter::new(max_per_ip),
        }
    }
}

/// Turns for visitors' store writes: at most `visitor_writes_in_flight` in
/// flight at once, from all visitors together; past it a visitor's write
/// waits for a turn, first come first served. Agents' writes take none.
///
/// Why: each visitor connection handles one request at a time, and this is
/// the budget of all of them together. The store's writers already take
/// agents' writes ahead of visitors' (`store::lanes`), but not every write
/// goes through a writer's queue (on PostgreSQL a visitor's first message,
/// and one with files, is made alone on a pooled connection, as are
/// everyone's claims and reads), and without a bound a thousand anonymous
/// visitors, or a script posing as them, would hold every write the store
/// has in hand. With the turns they hold at most this many.
pub struct VisitorWrites(Semaphore);

impl VisitorWrites {
    pub fn new(in_flight: usize) -> Self {
        VisitorWrites(Semaphore::new(in_flight.max(1)))
    }

    /// Waits for a turn (counted in `kefu_visitor_writes_waiting` meanwhile),
    /// to be held until the store has answered the write.
    pub async fn turn(&self) -> SemaphorePermit<'_> {
        if let Ok(turn) = self.0.try_acquire() {
            return turn;
        }
        let _waiting = crate::telemetry::visitor_write_waiting();
        self.0.acquire().await.expect("the turns are never closed")
    }
}

/// When a WebSocket connection counts as too slow for the hub's frames.
pub fn websocket_outbox(limits: &Limits) -> OutboxBounds {
    OutboxBounds {
        max_wait: Some(limits.outbound_max_wait),
        max_bytes: limits.outbound_max_bytes,
    }
}

/// When a long-poll session counts as too slow: its frames wait between
/// polls by design, for at most the session's idle timeout, so only their
/// bytes count.
pub fn long_poll_outbox(limits: &Limits) -> OutboxBounds {
    OutboxBounds {
        max_wait: None,
        max_bytes: limits.outbound_max_bytes,
    }
}
