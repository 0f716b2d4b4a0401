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
//!
//! With `proxy_protocol`, a trusted proxy is a TCP load balancer that
//! opens each connection with a PROXY header naming its client
//! ([`crate::proxy_header`]). [`Admitted`] reads it, within the header
//! timeout, before handing the connection on, and then counts the
//! connection against the client's address as if the client had connected
//! itself: blocks and the per-address budget apply to it, and the address
//! is the one TLS, HTTP and the transport see. A trusted peer whose
//! connection does not start with a valid header is closed at once
//! (`reason` `proxy_header`): its client is unknown, and passing it on as
//! the balancer's would put every such client in one bucket. Other peers
//! are never read for a header: one from them reaches HTTP as the bad
//! request it is, so nobody can name an address they do not have.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinSet;

use crate::blocklist::Blocklist;
use crate::proxy::TrustedProxies;
use crate::proxy_header::{self, Source};
use crate::telemetry;

/// Descriptors kept for what is not a client: the database and its WAL,
/// the checkpointer's and readers' connections, logs, the listeners.
const RESERVED_FDS: u64 = 64;
/// Refusals are logged at most this often: a flood must not flood the log.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// PROXY headers read at once; past this the listener stops accepting
/// until one is done (each is within the header timeout). Only trusted
/// balancers get this far, so it is a bound, not a defence.
const MAX_HEADERS_READ: usize = 1024;

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
    /// How long a trusted proxy has for its PROXY header; `None`: it sends
    /// none (`proxy_protocol` off).
    proxy_header: Option<Duration>,
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
        proxy_header: Option<Duration>,
    ) -> Arc<Admission> {
        Arc::new(Admission {
            max_total,
            per_address: IpLimiter::new(max_per_address),
            trusted_proxies,
            blocked,
            proxy_header,
            open: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A ticket for a connection from `ip`, if both budgets have room.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Ticket> {
        let mut open = self.lock();
        let refused = if self.blocked.contains(ip) {
            "blocked"
        } else if open.total >= self.max_total {
            "total"
        } else {
            match self.place(ip) {
                Ok(permit) => {
                    open.total += 1;
                    return Some(Ticket {
                        _permit: permit,
                        admission: self.clone(),
                    });
                }
                Err(reason) => reason,
            }
        };
        self.refused(&mut open, ip, refused);
        None
    }

    /// Moves `ticket`, a trusted proxy's, to the client its PROXY header
    /// named, if that address is not blocked and has room.
    fn admit_as(&self, ticket: &mut Ticket, ip: IpAddr) -> bool {
        let placed = if self.blocked.contains(ip) {
            Err("blocked")
        } else {
            self.place(ip)
        };
        match placed {
            Ok(permit) => {
                ticket._permit = permit;
                true
            }
            Err(reason) => {
                self.refused(&mut self.lock(), ip, reason);
                false
            }
        }
    }

    /// The per-address place of a connection from `ip`: `None` for a
    /// trusted proxy, counted in the total only.
    fn place(&self, ip: IpAddr) -> Result<Option<IpPermit>, &'static str> {
        if self.trusted_proxies.contains(ip) {
            Ok(None)
        } else {
            self.per_address.acquire(ip).map(Some).ok_or("address")
        }
    }

    /// Counts a refusal, and logs it unless one was logged lately.
    fn refused(&self, open: &mut Open, ip: IpAddr, reason: &'static str) {
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
    }

    /// Reads the PROXY header of a connection from the balancer at `peer`,
    /// then admits it as the client it names.
    async fn admit_proxied<Io: AsyncRead + Unpin>(
        self: Arc<Self>,
        mut io: Io,
        mut ticket: Ticket,
        peer: SocketAddr,
        timeout: Duration,
    ) -> Option<(Counted<Io>, SocketAddr)> {
        let (client, read_ahead) = match proxy_header::read(&mut io, timeout).await {
            Ok((Source::Client(client), rest)) => (client, rest),
            Ok((Source::Balancer, rest)) => (peer, rest),
            Err(error) => {
                tracing::debug!(%peer, %error, "PROXY header refused");
                self.refused(&mut self.lock(), peer.ip(), "proxy_header");
                return None;
            }
        };
        self.admit_as(&mut ticket, client.ip())
            .then(|| (Counted::new(io, read_ahead, ticket), client))
    }
}

/// One admitted connection; dropping it gives its places back.
struct Ticket {
    /// None for a trusted proxy. Only ever held, for its `Drop`.
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

/// A listener that keeps only the connections [`Admission`] admits, each
/// with the address of the client it is for: the peer's, or the one a
/// trusted balancer's PROXY header names.
pub struct Admitted<L: Listener> {
    inner: L,
    admission: Arc<Admission>,
    /// Connections whose PROXY header is being read, off the accept loop
    /// so that one slow balancer connection holds up no other.
    headers: JoinSet<Option<(Counted<L::Io>, SocketAddr)>>,
}

impl<L: Listener> Admitted<L> {
    pub fn new(inner: L, admission: Arc<Admission>) -> Self {
        Admitted {
            inner,
            admission,
            headers: JoinSet::new(),
        }
    }
}

impl<L> Listener for Admitted<L>
where
    L: Listener<Addr = SocketAddr>,
    L::Io: AsyncRead + Unpin + Send + 'static,
{
    type Io = Counted<L::Io>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        // Both branches are cancel-safe: axum drops this future on shutdown.
        loop {
            tokio::select! {
                (io, peer) = self.inner.accept(), if self.headers.len() < MAX_HEADERS_READ => {
                    // Dropping `io` closes the socket.
                    let Some(ticket) = self.admission.admit(peer.ip()) else { continue };
                    let admission = &self.admission;
                    match admission.proxy_header {
                        Some(timeout) if admission.trusted_proxies.contains(peer.ip()) => {
                            let read = admission.clone().admit_proxied(io, ticket, peer, timeout);
                            self.headers.spawn(read);
                        }
                        _ => {
                            return (Counted::new(io, Vec::new(), ticket), peer);
                        }
                    }
                }
                Some(read) = self.headers.join_next() => {
                    if let Ok(Some(admitted)) = read {
                        return admitted;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// An admitted connection: the socket, what was read from it ahead of TLS
/// and HTTP (past a PROXY header), and its place in the budgets for as long
/// as it is open.
pub struct Counted<Io> {
    io: Io,
    /// Served from `at` on before `io`'s own bytes; at most
    /// [`proxy_header::MAX_HEADER_BYTES`], usually empty.
    read_ahead: Vec<u8>,
    at: usize,
    _ticket: Ticket,
}

impl<Io> Counted<Io> {
    fn new(io: Io, read_ahead: Vec<u8>, ticket: Ticket) -> Self {
        Counted {
            io,
            read_ahead,
            at: 0,
            _ticket: ticket,
        }
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for Counted<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(rest) = this
            .read_ahead
            .get(this.at..)
            .filter(|rest| !rest.is_empty())
        {
            let take = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..take]);
            this.at += take;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
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
        let admission = Admission::new(3, 2, TrustedProxies::default(), Blocklist::default(), None);
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
            None,
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
        let admission = Admission::new(3, 3, TrustedProxies::default(), blocked.clone(), None);
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
