//! Which accepted TCP connections the relay keeps.
//!
//! Counted when a connection is accepted, before a byte of it is read: a
//! half-sent request holds a socket, a file descriptor, as surely as a chat
//! does, and 20,000 of them from one host once filled the relay's
//! descriptors, after which nobody — `/healthz` included — got an answer.
//! Two budgets:
//! - in total, below the process's file-descriptor limit, with room left
//!   for the database, logs and listeners ([`max_connections_for`]): past
//!   it the relay would fail every `accept` instead;
//! - per client address, so that one host cannot take the others' share.
//!   A trusted proxy (`trusted_proxies`) is exempt: it carries many
//!   clients, each budgeted by its own address once the proxy has passed
//!   on its request's headers (and the proxy times out its slow clients).
//!
//! Past either, the socket is closed at once — before TLS, before HTTP —
//! counted in `kefu_connections_refused_total` and logged at most once per
//! [`LOG_EVERY`], with how many were refused since. What a connection may
//! then do (WebSockets, long-poll sessions) is budgeted again by role, in
//! the transport.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::blocklist::Blocklist;
use crate::proxy::TrustedProxies;
use crate::telemetry;

/// Descriptors kept for what is not a client: the database and its WAL,
/// the checkpointer's and readers' connections, logs, the listeners.
const RESERVED_FDS: u64 = 64;
/// Refusals are logged at most this often: a flood must not flood the log.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The total cap for a process allowed `fd_limit` open descriptors.
pub fn max_connections_for(fd_limit: u64) -> usize {
    usize::try_from(fd_limit.saturating_sub(RESERVED_FDS).max(16)).unwrap_or(usize::MAX)
}

/// The process's soft limit on open descriptors, from `/proc/self/limits`
/// (no `unsafe` for `getrlimit`); `None` where that cannot be read.
pub fn fd_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The budgets, shared by every listener of the relay.
pub struct Admission {
    max_total: usize,
    per_address: IpLimiter,
    /// Counted in the total only.
    trusted_proxies: TrustedProxies,
    /// Refused, before either budget.
    blocked: Blocklist,
    /// Locked only to count, never across an `.await`.
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    refused_unlogged: u64,
    logged_at: Option<Instant>,
}

impl Admission {
    pub fn new(
        max_total: usize,
        max_per_address: u32,
        trusted_proxies: TrustedProxies,
        blocked: Blocklist,
    ) -> Arc<Admission> {
        Arc::new(Admission {
            max_total,
            per_address: IpLimiter::new(max_per_address),
            trusted_proxies,
            blocked,
            open: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A ticket for a connection from `ip`, if both budgets have room.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Ticket> {
        let mut open = self.lock();
        let reason = if self.blocked.contains(ip) {
            "blocked"
        } else if open.total >= self.max_total {
            "total"
        } else if self.trusted_proxies.contains(ip) {
            open.total += 1;
            return Some(Ticket {
                _permit: None,
                admission: self.clone(),
            });
        } else if let Some(permit) = self.per_address.acquire(ip) {
            open.total += 1;
            return Some(Ticket {
                _permit: Some(permit),
                admission: self.clone(),
            });
        } else {
            "address"
        };
        telemetry::connection_refused(reason);
        open.refused_unlogged += 1;
        let now = Instant::now();
        if open.logged_at.is_none_or(|at| now - at >= LOG_EVERY) {
            tracing::warn!(
                %ip,
                reason,
                refused = open.refused_unlogged,
                "connections refused at accept (counted since the last such line)"
            );
            open.refused_unlogged = 0;
            open.logged_at = Some(now);
        }
        None
    }
}

/// One admitted connection; dropping it gives its places back.
struct Ticket {
    /// None for a trusted proxy.
    _permit: Option<IpPermit>,
    admission: Arc<Admission>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = self.admission.lock();
        open.total = open.total.saturating_sub(1);
    }
}

/// Counts open connections per IP: the per-address budget here, and the
/// transport's per-role ones. The lock is held only to bump a counter,
/// never across an `.await`.
#[derive(Clone)]
pub struct IpLimiter {
    max_per_ip: u32,
    open: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

/// One counted connection; dropping it frees the slot.
pub struct IpPermit {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

impl IpLimiter {
    pub fn new(max_per_ip: u32) -> Self {
        IpLimiter {
            max_per_ip,
            open: Arc::default(),
        }
    }

    pub fn acquire(&self, ip: IpAddr) -> Option<IpPermit> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return None;
        }
        *count += 1;
        Some(IpPermit {
            ip,
            open: self.open.clone(),
        })
    }
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A listener that keeps only the connections [`Admission`] admits.
pub struct Admitted<L> {
    inner: L,
    admission: Arc<Admission>,
}

impl<L> Admitted<L> {
    pub fn new(inner: L, admission: Arc<Admission>) -> Self {
        Admitted { inner, admission }
    }
}

impl<L> Listener for Admitted<L>
where
    L: Listener<Addr = SocketAddr>,
{
    type Io = Counted<L::Io>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        loop {
            let (io, addr) = self.inner.accept().await;
            if let Some(ticket) = self.admission.admit(addr.ip()) {
                return (
                    Counted {
                        io,
                        _ticket: ticket,
                    },
                    addr,
                );
            }
            // Dropping `io` closes the socket.
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// An admitted connection: the socket, and its place in the budgets for as
/// long as it is open.
pub struct Counted<Io> {
    io: Io,
    _ticket: Ticket,
}

impl<Io: AsyncRead + Unpin> AsyncRead for Counted<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Counted<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_budgets_hold_and_a_closed_connection_gives_its_place_back() {
        let admission = Admission::new(3, 2, TrustedProxies::default(), Blocklist::default());
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let c: IpAddr = "10.0.0.3".parse().expect("ip");
        let first = admission.admit(a).expect("first from a");
        let _second = admission.admit(a).expect("second from a");
        assert!(admission.admit(a).is_none(), "a's share is used up");
        let _from_b = admission.admit(b).expect("b has its own share");
        assert!(admission.admit(c).is_none(), "three in total");
        drop(first);
        assert!(admission.admit(c).is_some(), "a place was given back");
    }

    #[test]
    fn a_trusted_proxy_counts_in_the_total_only() {
        let proxy: IpAddr = "10.0.0.1".parse().expect("ip");
        let admission = Admission::new(
            3,
            1,
            TrustedProxies::new(vec!["10.0.0.0/30".parse().expect("cidr")]),
            Blocklist::default(),
        );
        let tickets = [
            admission.admit(proxy),
            admission.admit(proxy),
            admission.admit(proxy),
        ];
        assert!(
            tickets.iter().all(Option::is_some),
            "past its address's share"
        );
        assert!(admission.admit(proxy).is_none(), "but not past the total");
    }

    #[test]
    fn a_blocked_address_is_refused_until_unblocked() {
        let blocked = Blocklist::default();
        let admission = Admission::new(3, 3, TrustedProxies::default(), blocked.clone());
        let ip: IpAddr = "203.0.113.7".parse().expect("ip");
        blocked.replace(vec!["203.0.113.0/24".parse().expect("cidr")]);
        assert!(admission.admit(ip).is_none());
        assert!(admission.admit("10.0.0.1".parse().expect("ip")).is_some());
        blocked.replace(Vec::new());
        assert!(admission.admit(ip).is_some());
    }

    #[test]
    fn the_total_leaves_room_for_the_relays_own_files() {
        assert_eq!(max_connections_for(65_536), 65_472);
        assert_eq!(max_connections_for(10), 16, "never nothing");
        assert!(
            fd_limit().is_some_and(|limit| limit > 0),
            "readable on Linux"
        );
    }

    #[test]
    fn permits_are_counted_per_ip_and_released_on_drop() {
        let limiter = IpLimiter::new(2);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let first = limiter.acquire(a).expect("first");
        let _second = limiter.acquire(a).expect("second");
        assert!(limiter.acquire(a).is_none(), "third from the same IP");
        assert!(limiter.acquire(b).is_some(), "another IP is not affected");
        drop(first);
        assert!(limiter.acquire(a).is_some(), "a freed slot can be reused");
    }
}
