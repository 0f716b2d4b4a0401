//! Every setting of the relay, declared once: the table below. Each row
//! gives the file key, the flag and `KEFU_*` variable (named after the key:
//! `hello_timeout` is `--hello-timeout` and `KEFU_HELLO_TIMEOUT`), the help
//! text, the field of [`Settings`] it sets (whose value in
//! `Settings::default()` is the default), how the given value is checked and
//! how the field is written back by `check-config`. [`Settings::resolve`]
//! merges the sources, the flag first, then its variable (clap reads both),
//! then the file, then the default; so `serve`, `check-config` and the tests
//! agree.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgMatches, Command};

use super::VisitorAddress;
use super::flag::{Scope, arg, given};
use super::source::{ConfigError, Given, Source, pick};
use super::table::settings;
use super::values::{
    DEFAULT_LISTEN, LogFormat, MIN_FRAME_BYTES, MIN_OUTBOUND_BYTES, any, at_least, database_url,
    ice_urls, in_seconds, mask_secrets, origins, public_url, retention, retention_text, same,
    seconds, seconds_or_zero, trusted_proxies,
};
use super::{Config, TlsFiles};
use crate::proxy::TrustedProxies;

settings! {
    top {
        /// Address to listen on.
        listen: SocketAddr => listen, Serve, any, same, .value_name("ADDR");
        /// Database URL: sqlite://PATH, or postgres://USER@HOST/DB for several
        /// relays sharing one database (cluster mode).
        // The value may hold a password: keep it out of `--help`.
        database: String => relay.database, Global, database_url,
            |url: &String| Some(mask_secrets(url)),
            .value_name("URL"), .hide_env_values(true);
        /// Where visitors reach the relay, e.g. https://support.example; its
        /// origin counts as the relay's own.
        public_url: String => relay.public_url, Serve, public_url, Option::clone,
            .value_name("URL");
        /// Other origins whose pages may chat and embed the widget
        /// (comma-separated, e.g. https://shop.example); the relay's own origin
        /// always may.
        allowed_origins: Vec<String> => relay.allowed_origins, Serve, origins, same;
        /// Reverse proxies (addresses or CIDRs, comma-separated) whose
        /// Forwarded / X-Forwarded-For headers name the client; from anyone
        /// else those headers are ignored.
        trusted_proxies: Vec<String> => relay.trusted_proxies, Serve, trusted_proxies,
            |proxies: &TrustedProxies| Some(proxies.ranges().iter().map(ToString::to_string).collect());
        /// The trusted proxies are TCP load balancers (HAProxy send-proxy-v2)
        /// that open every connection with a PROXY v1 or v2 header naming the
        /// client; a connection from them without one is closed.
        proxy_protocol: bool => relay.proxy_protocol, Serve, any, same;
        /// Welcome text the visitor's page shows first.
        greeting: String => relay.greeting, Serve, any, same;
        /// How much of a visitor's client address agents see: full, truncated
        /// (its network: IPv4 /24, IPv6 /48) or off.
        visitor_address: VisitorAddress => relay.visitor_address, Serve, any, same;
        /// Hand waiting conversations to available agents in turn.
        auto_assign: bool => relay.auto_assign, Serve, any, same;
        /// Seconds a visitor may be gone before agents see them offline.
        presence_grace: f64 => relay.presence_grace, Serve, seconds_or_zero, in_seconds,
            .value_name("SECONDS");
        /// Log format.
        log_format: LogFormat => log_format, Global, any, same;
        /// Serve /metrics on this address instead of the main one.
        metrics_listen: SocketAddr => relay.metrics_listen, Serve,
            |addr| Ok(Some(addr)), Option::clone,
            .value_name("ADDR");
        /// Seconds between a clustered relay's heartbeats; a relay silent for
        /// three of them counts as dead and its clients as gone.
        cluster_heartbeat: f64 => relay.heartbeat.every, Serve, seconds, in_seconds,
            .value_name("SECONDS");
        /// Serve HTTPS and WSS with this certificate chain (PEM, the relay's
        /// own certificate first); needs tls_key. Reloaded on SIGHUP.
        tls_cert: PathBuf => tls_cert, Serve, |path| Ok(Some(path)), Option::clone,
            .value_name("PATH");
        /// The private key (PEM) of tls_cert.
        tls_key: PathBuf => tls_key, Serve, |path| Ok(Some(path)), Option::clone,
            .value_name("PATH");
        /// STUN and TURN servers for screen-sharing calls (comma-separated
        /// stun:, turn: or turns: URLs); none: peers on one network only.
        ice_servers: Vec<String> => relay.ice.urls, Serve, ice_urls, same;
        /// coturn's static-auth-secret: TURN servers get expiring credentials
        /// made with it (use-auth-secret).
        // A secret: keep it out of `--help` and `check-config`.
        turn_secret: String => relay.ice.turn_secret, Serve, |secret| Ok(Some(secret)),
            |secret: &Option<String>| secret.as_ref().map(|_| "***".to_owned()),
            .hide_env_values(true);
        /// Seconds a TURN credential lasts.
        turn_credential_ttl: f64 => relay.ice.credential_ttl, Serve, seconds, in_seconds,
            .value_name("SECONDS");
        /// Directory of uploaded files; default: DATABASE.files beside a
        /// SQLite file (a cluster must set one all its relays share).
        files_dir: PathBuf => relay.files_dir, Serve, |path| Ok(Some(path)), Option::clone,
            .value_name("PATH");
        /// An S3-compatible bucket for uploaded files instead, s3://BUCKET;
        /// endpoint, region and credentials from the AWS_* variables.
        files_url: String => relay.files_url, Serve, |url| Ok(Some(url)), Option::clone,
            .value_name("URL");
        /// Delete resolved conversations (with their visitor and files)
        /// after this long without anything new: 30d, 12h…, or off.
        retention: String => relay.retention, Serve, retention, retention_text,
            .value_name("DURATION");
    }
    limits {
        /// Largest WebSocket frame accepted, in bytes.
        max_frame_bytes: usize => relay.limits.max_frame_bytes, Serve,
            |bytes| at_least(bytes, MIN_FRAME_BYTES), same;
        /// Longest message, in characters.
        max_message_chars: usize => relay.limits.max_message_chars, Serve,
            |chars| at_least(chars, 1), same;
        /// Frames per second one connection may send, sustained.
        frames_per_second: u32 => relay.limits.frames_per_second, Serve,
            |rate| at_least(rate, 1), same;
        /// Frames one connection may send in a burst.
        frame_burst: u32 => relay.limits.frame_burst, Serve, |burst| at_least(burst, 1), same;
        /// Seconds a new connection has to say hello.
        hello_timeout: f64 => relay.limits.hello_timeout, Serve, seconds, in_seconds,
            .value_name("SECONDS");
        /// Seconds one search (or page of conversations) may take in the
        /// database before it is stopped and refused.
        search_timeout: f64 => relay.limits.search_timeout, Serve, seconds, in_seconds,
            .value_name("SECONDS");
        /// TCP connections the relay keeps open in all, of any kind; 0: its
        /// file-descriptor limit less room for its own files.
        max_connections: usize => relay.limits.max_connections, Serve, any, same;
        /// TCP connections one IP address may hold open, of any kind
        /// (half-sent requests included).
        sockets_per_ip: u32 => relay.limits.sockets_per_ip, Serve, |count| at_least(count, 1), same;
        /// Open connections allowed from one IP address.
        connections_per_ip: u32 => relay.limits.connections_per_ip, Serve,
            |count| at_least(count, 1), same;
        /// New conversations one IP address may start per minute (and at
        /// once).
        new_conversations_per_minute: u32 => relay.limits.new_conversations_per_minute, Serve,
            |count| at_least(count, 1), same;
        /// Conversations waiting for an agent, in all, past which new ones
        /// are refused.
        max_waiting: usize => relay.limits.max_waiting, Serve, |count| at_least(count, 1), same;
        /// Visitors' store writes in flight, in all, past which a visitor's
        /// write waits its turn (agents' writes never wait for one).
        visitor_writes_in_flight: usize => relay.limits.visitor_writes_in_flight, Serve,
            |count| at_least(count, 1), same;
        /// Seconds the oldest frame queued for a WebSocket client may wait
        /// before the client must resync.
        outbound_max_wait: f64 => relay.limits.outbound_max_wait, Serve, seconds, in_seconds,
            .value_name("SECONDS");
        /// Bytes of frames queued for one client before it must resync.
        outbound_max_bytes: usize => relay.limits.outbound_max_bytes, Serve,
            |bytes| at_least(bytes, MIN_OUTBOUND_BYTES), same;
        /// Deprecated and ignored: slow clients are found by outbound_max_wait
        /// and outbound_max_bytes. Still accepted, so that older files load.
        outbound_queue: usize => ignored_outbound_queue, Serve,
            |frames| Ok(Some(frames)), Option::clone;
        /// Seconds between WebSocket pings; a peer silent for three is dropped.
        ping_interval: f64 => relay.limits.ping_interval, Serve, seconds, in_seconds,
            .value_name("SECONDS");
        /// Largest file one upload may carry, in bytes.
        max_file_bytes: usize => relay.limits.max_file_bytes, Serve,
            |bytes| at_least(bytes, 1), same;
        /// Files one visitor or agent may upload per minute (and at once).
        uploads_per_minute: u32 => relay.limits.uploads_per_minute, Serve,
            |count| at_least(count, 1), same;
        /// Bytes of files one conversation may hold in all.
        max_conversation_file_bytes: usize => relay.limits.max_conversation_file_bytes, Serve,
            |bytes| at_least(bytes, 1), same;
        /// Seconds a new connection has to finish its TLS handshake.
        tls_handshake_timeout: f64 => relay.limits.tls_handshake_timeout, Serve, seconds,
            in_seconds, .value_name("SECONDS");
        /// Seconds a client has to send a request's headers (and an idle
        /// keep-alive connection stays open).
        http_header_timeout: f64 => relay.limits.http_header_timeout, Serve, seconds,
            in_seconds, .value_name("SECONDS");
        /// Seconds a client has to send a request's body.
        http_body_timeout: f64 => relay.limits.http_body_timeout, Serve, seconds,
            in_seconds, .value_name("SECONDS");
    }
}

/// Where the setting `key` was taken from.
fn source_of<'a>(sources: &'a [(&'static str, Source)], key: &str) -> &'a Source {
    let source = sources.iter().find(|(set, _)| *set == key);
    source.map_or(&Source::Default, |(_, source)| source)
}

/// Options every subcommand takes: `--config` and the [`Scope::Global`]
/// settings.
#[derive(Debug, Default, Clone)]
pub struct GlobalArgs {
    /// `--config`: the TOML file to read.
    pub config: Option<PathBuf>,
    pub given: CommandLine,
}

/// What `serve` (and `check-config`) may be told on the command line.
/// Defaults are applied by [`Settings::resolve`], not here, so that a value
/// missing from the command line can come from the file.
#[derive(Debug, Default, Clone)]
pub struct ServeArgs {
    pub given: CommandLine,
}

impl clap::Args for GlobalArgs {
    fn augment_args(command: Command) -> Command {
        let config = Arg::new("config")
            .long("config")
            .env("KEFU_CONFIG")
            .value_name("PATH")
            .value_parser(clap::value_parser!(PathBuf))
            .help("TOML file with settings; flags and KEFU_* variables override it")
            .display_order(0)
            .global(true);
        CommandLine::augment(command.arg(config), Scope::Global)
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

impl clap::FromArgMatches for GlobalArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(GlobalArgs {
            config: matches
                .try_get_one::<PathBuf>("config")
                .ok()
                .flatten()
                .cloned(),
            given: CommandLine::read(matches, Scope::Global),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for ServeArgs {
    fn augment_args(command: Command) -> Command {
        CommandLine::augment(command, Scope::Serve)
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

impl clap::FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(ServeArgs {
            given: CommandLine::read(matches, Scope::Serve),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl FileConfig {
    /// Reads and parses `path`. Errors name the file, and for a bad key its
    /// line, the key and why.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        FileConfig::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses the file's text; the error says where and why.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|error| error.to_string().trim_end().to_owned())
    }

    /// The file's text for these settings.
    pub fn to_toml(&self) -> String {
        // Only plain strings, numbers, booleans and addresses: serializing
        // cannot fail.
        toml::to_string(self).unwrap_or_else(|error| format!("# cannot show: {error}\n"))
    }
}

/// Everything the binary needs: the relay's [`Config`] plus what only the
/// process uses (its address, its logs).
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    /// The file the settings were read from, if any.
    pub config_file: Option<PathBuf>,
    /// `limits.outbound_queue`, if given: no longer used, worth a warning.
    pub ignored_outbound_queue: Option<usize>,
    /// `tls_cert` and `tls_key` as given; [`Settings::resolve`] turns the
    /// pair into `relay.tls`.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub relay: Config,
}

/// The defaults of every setting: what nothing overrides, and what `--help`
/// shows.
impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: DEFAULT_LISTEN,
            log_format: LogFormat::default(),
            config_file: None,
            ignored_outbound_queue: None,
            tls_cert: None,
            tls_key: None,
            relay: Config::default(),
        }
    }
}

impl Settings {
    /// Reads the file named by `--config`, if any, and merges.
    pub fn load(global: GlobalArgs, args: ServeArgs) -> Result<Settings, ConfigError> {
        let file = match &global.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        Settings::resolve(global, args, file)
    }

    /// Merges command line (flags and environment), file and defaults, and
    /// checks every value. Errors name the setting, its source and why.
    pub fn resolve(
        global: GlobalArgs,
        args: ServeArgs,
        file: FileConfig,
    ) -> Result<Settings, ConfigError> {
        let file_source = Source::File(global.config.clone());
        let mut settings = Settings {
            config_file: global.config,
            ..Settings::default()
        };
        let sources = settings.merge(global.given.or(args.given), file, &file_source)?;

        let heartbeat = &mut settings.relay.heartbeat;
        heartbeat.expire_after = heartbeat.every * 3;
        if let Some(metrics) = settings.relay.metrics_listen
            && metrics == settings.listen
            && metrics.port() != 0
        {
            let key = "metrics_listen";
            return Err(source_of(&sources, key).invalid(key, "must differ from listen"));
        }
        settings.relay.tls = match (&settings.tls_cert, &settings.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None) => None,
            (Some(_), None) => {
                let why = "needs tls_key too (the certificate's private key)";
                return Err(source_of(&sources, "tls_cert").invalid("tls_cert", why));
            }
            (None, Some(_)) => {
                let why = "needs tls_cert too (the certificate the key belongs to)";
                return Err(source_of(&sources, "tls_key").invalid("tls_key", why));
            }
        };
        Ok(settings)
    }

    /// The effective settings in the file's format, secrets masked: what
    /// `check-config` prints.
    pub fn to_toml(&self) -> String {
        self.file().to_toml()
    }
}

#[cfg(test)]
mod tests;
