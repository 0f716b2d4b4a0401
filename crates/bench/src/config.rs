//! What one bench process is asked to do, however it was asked: the binary
//! fills a [`Config`] from flags, tests build one directly.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The relay, or the relays of one cluster, that visitors and agents
    /// are spread over.
    pub relays: Relays,
    /// Which part of the run this process drives.
    pub shard: Shard,
    /// Loopback source addresses to spread client sockets over; 0 lets the
    /// kernel choose (one address, about 28,000 ports).
    pub source_addrs: u8,
    /// Connection attempts in flight at once, so a ramp of thousands does not
    /// overflow the relay's accept backlog.
    pub connect_concurrency: usize,
    /// Share of visitors (0..=1) that use HTTP long-poll, not WebSocket.
    pub longpoll_share: f64,
    /// Print progress to stderr while running.
    pub progress: bool,
    pub mode: Mode,
}

#[derive(Debug, Clone)]
pub enum Mode {
    Chat(Chat),
    Idle(Idle),
}

/// Visitors write at a fixed total rate, agents claim and answer.
#[derive(Debug, Clone)]
pub struct Chat {
    /// Visitors across all shards.
    pub visitors: u32,
    /// One agent token per agent, across all shards. Each agent needs its
    /// own account: two connections of one agent both receive its
    /// conversations, which the loss check would count as duplicates.
    pub tokens: Vec<String>,
    /// Visitor messages per second across all shards.
    pub rate: f64,
    /// How long visitors send.
    pub duration: Duration,
    /// Messages sent in the first `warmup` of sending are checked for loss
    /// but not timed.
    pub warmup: Duration,
    /// How long to wait after sending for the last acks and deliveries.
    pub drain: Duration,
    /// Agents answer every `reply_every`-th message of each visitor.
    pub reply_every: u32,
    /// Test hook: the ledger forgets the first message an agent receives, so
    /// the loss check must report it lost.
    pub drop_one_for_test: bool,
    /// Visitors uploading files while the chat runs, if any.
    pub uploads: Option<Uploads>,
    /// Attackers from their own addresses while the chat runs, if any.
    pub abuse: Option<Abuse>,
}

/// Visitors beside the chatting ones that upload one image after another
/// (`POST /api/files`), each then sent in a message their agent receives
/// and answers. Their messages are loss-checked but not timed.
#[derive(Debug, Clone)]
pub struct Uploads {
    /// Uploading visitors across all shards.
    pub uploaders: u32,
    /// Bytes of each image (a PNG, a few hundred bytes more).
    pub bytes: usize,
    /// Time between one upload's answer and the next upload; zero: back to
    /// back.
    pub pause: Duration,
}

/// Attackers, each connection from one of `addrs` loopback addresses right
/// after the legitimate load's, so that the relay's per-address budgets
/// count them apart from it.
#[derive(Debug, Clone)]
pub struct Abuse {
    /// Source addresses the attackers spread over.
    pub addrs: u8,
    /// Connections held half-open at once: a request line without headers,
    /// or a WebSocket handshake sent a byte at a time (every other one).
    pub half_open: u32,
    /// POSTs at once whose body trickles in, to `/api/visitor/hello` and
    /// (with a visitor token) `/api/files`, every other one.
    pub slow_bodies: u32,
    /// Loops of WebSocket hello, one message, close, as fast as the relay
    /// lets them.
    pub spammers: u32,
    /// Time between two bytes of a trickle.
    pub trickle: Duration,
}

/// Visitors connect, say hello and stay silent.
#[derive(Debug, Clone)]
pub struct Idle {
    /// Visitors across all shards.
    pub visitors: u32,
    /// How long to hold every connection open once all are up.
    pub hold: Duration,
    /// The relay process whose resident memory is measured.
    pub relay_pid: Option<u32>,
}

/// Where the relay listens. Only plain `ws://` (or `http://`): the bench
/// measures the relay, not a TLS terminator in front of it.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `host:port` as given, for URLs and the `Host` header.
    authority: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("the relay URL must start with ws:// or http:// (TLS is not supported), got {0:?}")]
    Scheme(String),
    #[error("cannot resolve {authority:?}")]
    Resolve {
        authority: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0:?} resolves to no address")]
    NoAddress(String),
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        let rest = url
            .strip_prefix("ws://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| TargetError::Scheme(url.to_owned()))?;
        let authority = rest.split('/').next().unwrap_or_default().to_owned();
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        {
            authority.clone()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|source| TargetError::Resolve {
                authority: authority.clone(),
                source,
            })?
            .next()
            .ok_or_else(|| TargetError::NoAddress(authority.clone()))?;
        Ok(Target { addr, authority })
    }

    /// A relay listening on `addr`, as tests have it.
    pub fn from_addr(addr: SocketAddr) -> Target {
        Target {
            addr,
            authority: addr.to_string(),
        }
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.authority)
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The relay's own web origin, where its visitor page lives.
    pub fn origin(&self) -> String {
        format!("http://{}", self.authority)
    }
}

/// One relay, or several relays sharing one database (a cluster).
///
/// Connections are dealt round-robin, visitors one step ahead of agents:
/// agent `j` uses relay `j mod R`, visitor `v` relay `(v + 1) mod R`. In an
/// unsharded run visitor `v` is answered by agent `v mod agents`, so with an even number of
/// agents over two relays every visitor sits on the other relay than its
/// agent and every message crosses nodes, the hard case for a cluster.
#[derive(Debug, Clone)]
pub struct Relays(Vec<Target>);

#[derive(Debug, thiserror::Error)]
#[error("at least one relay URL is needed")]
pub struct NoRelay;

impl Relays {
    pub fn new(targets: Vec<Target>) -> Result<Relays, NoRelay> {
        if targets.is_empty() {
            return Err(NoRelay);
        }
        Ok(Relays(targets))
    }

    /// A single relay.
    pub fn one(target: Target) -> Relays {
        Relays(vec![target])
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never: [`Relays::new`] refuses an empty list.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The relay agent `global` signs in to.
    pub fn for_agent(&self, global: u32) -> &Target {
        self.pick(u64::from(global))
    }

    /// The relay visitor `global` connects to.
    pub fn for_visitor(&self, global: u32) -> &Target {
        self.pick(u64::from(global) + 1)
    }

    fn pick(&self, n: u64) -> &Target {
        // The index is below len(), which is a usize.
        &self.0[(n % self.0.len() as u64) as usize]
    }
}

/// `I/N`: this process drives every N-th visitor and agent starting at I,
/// and 1/N of the rate, so N processes together make one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    pub fn owns(self, global: u32) -> bool {
        global % self.count == self.index
    }

    /// The global indices below `total` this shard drives, in order.
    pub fn members(self, total: u32) -> impl Iterator<Item = u32> {
        (self.index..total).step_by(self.count as usize)
    }

    /// The position of an owned global index among this shard's members.
    pub fn local(self, global: u32) -> u32 {
        global / self.count
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("a shard is I/N with 0 <= I < N, e.g. 0/2; got {0:?}")]
pub struct ShardError(String);

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || ShardError(s.to_owned());
        let (index, count) = s.split_once('/').ok_or_else(error)?;
        let index: u32 = index.trim().parse().map_err(|_| error())?;
        let count: u32 = count.trim().parse().map_err(|_| error())?;
        if index >= count {
            return Err(error());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_indices_without_overlap_or_gap() {
        let shards: Vec<Shard> = ["0/3", "1/3", "2/3"]
            .iter()
            .map(|s| s.parse().expect("valid shard"))
            .collect();
        let mut all: Vec<u32> = shards.iter().flat_map(|s| s.members(10)).collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        for shard in &shards {
            for (position, global) in shard.members(10).enumerate() {
                assert!(shard.owns(global));
                assert_eq!(shard.local(global) as usize, position);
            }
        }
    }

    #[test]
    fn malformed_shards_are_refused() {
        for bad in ["", "1", "2/2", "3/2", "a/2", "1/b", "0/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad:?} accepted");
        }
        assert_eq!("0/1".parse::<Shard>().expect("valid"), Shard::WHOLE);
    }

    #[test]
    fn visitors_and_agents_are_dealt_over_relays_so_that_they_meet_across_nodes() {
        let relay = |port| Target::from_addr(SocketAddr::from(([127, 0, 0, 1], port)));
        let relays = Relays::new(vec![relay(1), relay(2)]).expect("two relays");
        let ports = |pick: &dyn Fn(u32) -> u16| (0..4).map(pick).collect::<Vec<_>>();
        assert_eq!(ports(&|n| relays.for_agent(n).addr.port()), [1, 2, 1, 2]);
        assert_eq!(ports(&|n| relays.for_visitor(n).addr.port()), [2, 1, 2, 1]);
        // Visitor v is answered by agent v mod agents: with 4 agents, never
        // on the visitor's own relay.
        for visitor in 0..40 {
            let agent = visitor % 4;
            assert_ne!(
                relays.for_visitor(visitor).addr,
                relays.for_agent(agent).addr
            );
        }
        let single = Relays::one(relay(7));
        assert_eq!(single.for_visitor(3).addr, single.for_agent(3).addr);
        assert!(Relays::new(Vec::new()).is_err());
    }

    #[test]
    fn relay_urls_resolve_to_an_address_and_keep_their_authority() {
        let target = Target::parse("ws://127.0.0.1:8080/anything").expect("valid");
        assert_eq!(target.addr, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(
            target.ws_url("/ws/visitor"),
            "ws://127.0.0.1:8080/ws/visitor"
        );
        let http = Target::parse("http://127.0.0.1").expect("valid");
        assert_eq!(http.addr.port(), 80);
        assert!(matches!(
            Target::parse("wss://127.0.0.1:8443"),
            Err(TargetError::Scheme(_))
        ));
    }
}
