//! Runtime settings of a relay. The binary fills them from flags, `KEFU_*`
//! environment variables and a TOML file ([`Settings::load`]); tests build
//! [`Config`] directly.
//!
//! Each setting is declared once, as a row of the table in
//! `config/settings.rs`: from it come the flag, its variable, the help text
//! (ending in the default taken from [`Config::default`]), the file key, the
//! merge and what `check-config` prints. The files, lower first (none
//! imports a later one):
//! - `values`: the kinds of value and their checks, pure functions;
//! - `source`: where a value came from, the precedence rule, the errors
//!   that name the exact flag, variable or file;
//! - `flag`: how a value is asked for on the command line;
//! - `table`: the `settings!` macro that turns rows into all of the above;
//! - `settings`: the table itself and the merged [`Settings`].
//!
//! Why a macro rather than `figment`: figment layers serde sources and
//! records each value's origin, but it knows nothing of clap, so the flags,
//! their help and defaults would still be declared apart, and its `Env`
//! provider parses values its own way (a comma-separated
//! `KEFU_ALLOWED_ORIGINS` would become one string), which would change what
//! the relay accepts. Telling the flag from its variable needs clap's
//! `ArgMatches::value_source` either way. The macro keeps clap's parsing
//! and toml's, and adds one dependency-free table.

mod flag;
mod ice;
mod settings;
mod source;
mod table;
mod values;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::proxy::TrustedProxies;

pub use ice::IceServers;
pub use settings::{CommandLine, FileConfig, FileLimits, GlobalArgs, ServeArgs, Settings};
pub use source::{ConfigError, Given, Source};
pub use values::{LogFormat, VisitorAddress, mask_secrets, parse_duration};

/// Everything `serve` needs besides the listener and the store.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://PATH`, or `postgres://…` for a cluster of relays sharing
    /// one database.
    pub database: String,
    /// Shown first by the visitor's page; never stored.
    pub greeting: String,
    /// How long a visitor may be gone before agents see them offline, so that
    /// moving between pages of a site does not flicker.
    pub presence_grace: Duration,
    /// Origins (`https://shop.example`) whose pages may chat with visitors
    /// and embed the chat page, besides the relay's own origin.
    pub allowed_origins: Vec<String>,
    /// How relays sharing a PostgreSQL database notice each other's death.
    pub heartbeat: crate::cluster::Heartbeat,
    /// Where visitors reach the relay (`https://support.example`), when it
    /// is behind a proxy that rewrites `Host`: its origin counts as the
    /// relay's own, besides the one derived from `Host`.
    pub public_url: Option<String>,
    /// Hand waiting conversations to available agents in turn, instead of
    /// leaving them for an agent to claim.
    pub auto_assign: bool,
    /// Serve `/metrics` on this address instead of the main one, so that it
    /// need not be reachable by visitors.
    pub metrics_listen: Option<SocketAddr>,
    /// Serve HTTPS and WSS with this certificate instead of plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` name the
    /// client; every per-address limit then counts that client.
    pub trusted_proxies: TrustedProxies,
    /// The trusted proxies are TCP load balancers that open every
    /// connection with a PROXY protocol header (v1 or v2) naming the client.
    pub proxy_protocol: bool,
    /// How much of a visitor's client address agents see.
    pub visitor_address: VisitorAddress,
    /// STUN/TURN servers for remote-assistance calls.
    pub ice: IceServers,
    /// Where uploaded files are kept; `None`: beside the SQLite file
    /// (`crate::blobs::default_dir`).
    pub files_dir: Option<PathBuf>,
    /// An S3-compatible bucket for uploaded files (`s3://BUCKET`; endpoint
    /// and credentials from `AWS_*` variables), instead of `files_dir`.
    pub files_url: Option<String>,
    /// How long a resolved conversation with nothing new is kept before
    /// the relay deletes it with its files; `None`: forever.
    pub retention: Option<Duration>,
    pub limits: Limits,
}

/// The PEM files of the relay's TLS certificate; read at start and again
/// on `SIGHUP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, the relay's own certificate first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl Config {
    /// Whether a page on `origin` may act as a visitor: a listed origin, or
    /// the relay's own. The relay's own origin is `public_url`'s when set;
    /// only without it is it guessed from `host`, the request's `Host`,
    /// which the client chose (a DNS-rebinding page sends its own name).
    pub fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim_end_matches('/');
        if self
            .allowed_origins
            .iter()
            .any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(origin))
        {
            return true;
        }
        if let Some(public) = self.public_url.as_deref() {
            return values::origin_of(public).is_some_and(|own| own.eq_ignore_ascii_case(origin));
        }
        let Some(host) = host else { return false };
        let own = |scheme: &str| {
            origin
                .strip_prefix(scheme)
                .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
        };
        own("http://") || own("https://")
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database: "sqlite://kefu.db".to_owned(),
            greeting: "Hi! How can we help you today?".to_owned(),
            presence_grace: Duration::from_secs(10),
            allowed_origins: Vec::new(),
            heartbeat: crate::cluster::Heartbeat::default(),
            public_url: None,
            auto_assign: false,
            metrics_listen: None,
            ice: IceServers {
                credential_ttl: Duration::from_secs(3600),
                ..IceServers::default()
            },
            tls: None,
            trusted_proxies: TrustedProxies::default(),
            proxy_protocol: false,
            visitor_address: VisitorAddress::default(),
            files_dir: None,
            files_url: None,
            retention: None,
            limits: Limits::default(),
        }
    }
}

/// Bounds on what one client may ask of the relay.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest WebSocket frame or message accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Longest message text, in characters.
    pub max_message_chars: usize,
    /// Sustained `send`/`typing`/`read`… frames per second per connection.
    pub frames_per_second: u32,
    /// How many frames may arrive at once before the rate applies.
    pub frame_burst: u32,
    /// Time a new connection has to send its `hello`.
    pub hello_timeout: Duration,
    /// Time one `search` or `conversations` request may take in the
    /// database before it is stopped and refused.
    pub search_timeout: Duration,
    /// TCP connections kept open in all; 0: the process's file-descriptor
    /// limit less room for the relay's own files (admission.rs).
    pub max_connections: usize,
    /// TCP connections one IP address may hold open, whatever they carry:
    /// counted at accept, so half-sent requests count.
    pub sockets_per_ip: u32,
    /// Open WebSocket connections from one IP address.
    pub connections_per_ip: u32,
    /// New conversations one IP address may start per minute, and in a
    /// burst: an office behind one NAT starts a few, a script thousands.
    pub new_conversations_per_minute: u32,
    /// Conversations waiting for an agent past which new ones are refused:
    /// a flood from many addresses cannot bury the queue (nor the agents'
    /// `welcome`).
    pub max_waiting: usize,
    /// Visitors' store writes in flight at once, from all visitors
    /// together; past it a visitor's write waits its turn, so that under
    /// more load than the store commits, visitors together never hold more
    /// than this many of the store's writes (`transport::limits::VisitorWrites`).
    pub visitor_writes_in_flight: usize,
    /// How long the oldest frame queued for a WebSocket connection may wait
    /// before the connection counts as too slow and is told to resync.
    /// (A long-poll session's frames wait between polls by design; its
    /// idle timeout bounds how long.)
    pub outbound_max_wait: Duration,
    /// Bytes of frames queued for one connection, at most, before it counts
    /// as too slow and is told to resync.
    pub outbound_max_bytes: usize,
    /// Interval of WebSocket pings; a peer silent for three of them is dead.
    pub ping_interval: Duration,
    /// Time a new connection has to finish its TLS handshake, when the relay
    /// serves TLS.
    pub tls_handshake_timeout: Duration,
    /// Time a client has to send a request's line and headers, counted from
    /// when its connection starts waiting for one: it also bounds an idle
    /// keep-alive connection and a WebSocket handshake.
    pub http_header_timeout: Duration,
    /// Time a client has to send a request's body, however it trickles in.
    pub http_body_timeout: Duration,
    /// Largest uploaded file, in bytes: an upload is held in memory (at
    /// most this much) while its type is checked and its metadata stripped.
    pub max_file_bytes: usize,
    /// Uploads one visitor or agent may make per minute, and in a burst.
    pub uploads_per_minute: u32,
    /// Bytes of files one conversation holds at most (sent and pending
    /// uploads together), so one visitor cannot fill the disk.
    pub max_conversation_file_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 64 * 1024,
            max_message_chars: 8 * 1024,
            frames_per_second: 10,
            frame_burst: 30,
            hello_timeout: Duration::from_secs(10),
            // Ten times the target p99 at a million messages: a search
            // that takes longer is too broad and holds one of the search
            // connections from colleagues.
            search_timeout: Duration::from_secs(1),
            max_connections: 0,
            // The three per-address budgets of `connections_per_ip` below,
            // and room for page loads and polls beside them.
            sockets_per_ip: 200,
            connections_per_ip: 50,
            new_conversations_per_minute: 20,
            max_waiting: 10_000,
            // Two of the SQLite writer's largest batches (256 requests), a
            // few tens of milliseconds of commits. Far above what visitors
            // have in flight while the store keeps up (a few dozen at
            // 5,000 msg/s).
            visitor_writes_in_flight: 512,
            // A client that reads takes a burst of thousands of frames in
            // well under a second; one that stops is found out in seconds.
            outbound_max_wait: Duration::from_secs(5),
            // Several times what a burst of a thousand new conversations
            // queues for an agent (two messages and a summary each, a few
            // MiB): a guard on memory, not on speed.
            outbound_max_bytes: 16 * 1024 * 1024,
            ping_interval: Duration::from_secs(20),
            tls_handshake_timeout: Duration::from_secs(10),
            // A real client sends its headers in one packet and a body of a
            // chat frame in a few; seconds cover a slow mobile network.
            http_header_timeout: Duration::from_secs(10),
            http_body_timeout: Duration::from_secs(10),
            // A phone screenshot or a PDF invoice, not a video.
            max_file_bytes: 10 * 1024 * 1024,
            // A few screenshots in a row; a script gets a dozen.
            uploads_per_minute: 10,
            // Ten full-size files.
            max_conversation_file_bytes: 100 * 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_and_listed_origins_are_allowed_and_others_not() {
        let config = Config {
            allowed_origins: vec!["https://shop.example/".into()],
            ..Config::default()
        };
        let host = Some("chat.example:8080");
        assert!(config.origin_allowed("https://shop.example", host));
        assert!(config.origin_allowed("http://chat.example:8080", host));
        assert!(config.origin_allowed("https://chat.example:8080", host));
        assert!(!config.origin_allowed("https://evil.example", host));
        assert!(!config.origin_allowed("null", host));
        assert!(!config.origin_allowed("https://chat.example:8080.evil", host));
        assert!(!config.origin_allowed("http://chat.example:8080", None));
    }

    #[test]
    fn the_public_url_origin_is_the_relays_own() {
        let config = Config {
            public_url: Some("https://Support.example/chat/".into()),
            ..Config::default()
        };
        // Behind a proxy, `Host` may be the upstream's, not the public name.
        let upstream = Some("127.0.0.1:8080");
        assert!(config.origin_allowed("https://support.example", upstream));
        assert!(!config.origin_allowed("http://support.example", upstream));
        assert!(!config.origin_allowed("https://support.example.evil", upstream));
        // With the public name known, `Host` is not trusted: a page that
        // names itself in both headers is still a stranger.
        let spoofed = Some("evil.example");
        assert!(!config.origin_allowed("http://evil.example", spoofed));
        assert!(!config.origin_allowed("https://evil.example", spoofed));
    }
}
