//! Where every setting comes from: a flag, else its `KEFU_*` environment
//! variable (clap reads both, the flag first), else the TOML file, else the
//! default. [`Settings::resolve`] is the one place that merges them and
//! checks the result, so `serve`, `check-config` and the tests agree.
//!
//! Names follow one rule: the file key `hello_timeout` (under `[limits]` for
//! limits) is the flag `--hello-timeout` and the variable
//! `KEFU_HELLO_TIMEOUT`. Error messages rely on it to name the source.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::file::{FileConfig, FileLimits};
use super::{Config, Limits};
use crate::cluster::Heartbeat;

/// Where `serve` listens unless told otherwise.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);
/// Smallest frame limit that still fits a `hello` with a profile.
const MIN_FRAME_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event; no colours unless stderr is a
    /// terminal, so journald stores plain text.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Options every subcommand takes.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct GlobalArgs {
    /// TOML file with settings; flags and KEFU_* variables override it.
    #[arg(long, global = true, env = "KEFU_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH [default: sqlite://kefu.db].
    // The value may hold a password: keep it out of `--help`.
    #[arg(
        long,
        global = true,
        env = "KEFU_DATABASE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// Log format [default: text].
    #[arg(long, global = true, env = "KEFU_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// What `serve` (and `check-config`) may be told on the command line.
/// Defaults are applied by [`Settings::resolve`], not here, so that a
/// value missing from the command line can come from the file.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "KEFU_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Where visitors reach the relay, e.g. https://support.example; its
    /// origin counts as the relay's own.
    #[arg(long, env = "KEFU_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Other origins whose pages may chat and embed the widget
    /// (comma-separated, e.g. https://shop.example); the relay's own origin
    /// always may.
    #[arg(long, env = "KEFU_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,
    /// Welcome text the visitor's page shows first.
    #[arg(long, env = "KEFU_GREETING")]
    pub greeting: Option<String>,
    /// Hand waiting conversations to available agents in turn [default: false].
    #[arg(long, env = "KEFU_AUTO_ASSIGN", num_args = 0..=1, default_missing_value = "true")]
    pub auto_assign: Option<bool>,
    /// Seconds a visitor may be gone before agents see them offline [default: 10].
    #[arg(long, env = "KEFU_PRESENCE_GRACE", value_name = "SECONDS")]
    pub presence_grace: Option<f64>,
    /// Serve /metrics on this address instead of the main one.
    #[arg(long, env = "KEFU_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds between a clustered relay's heartbeats; a relay silent for
    /// three of them counts as dead and its clients as gone [default: 5].
    #[arg(long, env = "KEFU_CLUSTER_HEARTBEAT", value_name = "SECONDS")]
    pub cluster_heartbeat: Option<f64>,
    /// Largest WebSocket frame accepted, in bytes [default: 65536].
    #[arg(long, env = "KEFU_MAX_FRAME_BYTES")]
    pub max_frame_bytes: Option<usize>,
    /// Longest message, in characters [default: 8192].
    #[arg(long, env = "KEFU_MAX_MESSAGE_CHARS")]
    pub max_message_chars: Option<usize>,
    /// Frames per second one connection may send, sustained [default: 10].
    #[arg(long, env = "KEFU_FRAMES_PER_SECOND")]
    pub frames_per_second: Option<u32>,
    /// Frames one connection may send in a burst [default: 30].
    #[arg(long, env = "KEFU_FRAME_BURST")]
    pub frame_burst: Option<u32>,
    /// Seconds a new connection has to say hello [default: 10].
    #[arg(long, env = "KEFU_HELLO_TIMEOUT", value_name = "SECONDS")]
    pub hello_timeout: Option<f64>,
    /// Open connections allowed from one IP address [default: 50].
    #[arg(long, env = "KEFU_CONNECTIONS_PER_IP")]
    pub connections_per_ip: Option<u32>,
    /// Frames queued for one slow connection before it must resync [default: 512].
    #[arg(long, env = "KEFU_OUTBOUND_QUEUE")]
    pub outbound_queue: Option<usize>,
    /// Seconds between WebSocket pings; a peer silent for three is dropped
    /// [default: 20].
    #[arg(long, env = "KEFU_PING_INTERVAL", value_name = "SECONDS")]
    pub ping_interval: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration file {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("invalid {key} (set by {origin}): {why}")]
    Invalid {
        key: &'static str,
        origin: String,
        why: String,
    },
}

/// Everything the binary needs: the relay's [`Config`] plus what only the
/// process uses (its address, its logs).
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    /// The file the settings were read from, if any.
    pub config_file: Option<PathBuf>,
    pub relay: Config,
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
        let from = Sources {
            file: global.config.as_deref(),
        };
        let defaults = Config::default();
        let limit_defaults = Limits::default();
        let FileLimits {
            max_frame_bytes,
            max_message_chars,
            frames_per_second,
            frame_burst,
            hello_timeout,
            connections_per_ip,
            outbound_queue,
            ping_interval,
        } = file.limits;

        let listen = from.pick("listen", args.listen, file.listen, DEFAULT_LISTEN);
        let metrics_listen =
            from.pick_optional("metrics_listen", args.metrics_listen, file.metrics_listen);
        if let Some(metrics) = &metrics_listen
            && metrics.value == listen.value
            && metrics.value.port() != 0
        {
            return Err(metrics.invalid("must differ from listen"));
        }
        let limits = Limits {
            max_frame_bytes: from
                .pick(
                    "limits.max_frame_bytes",
                    args.max_frame_bytes,
                    max_frame_bytes,
                    limit_defaults.max_frame_bytes,
                )
                .at_least(MIN_FRAME_BYTES)?,
            max_message_chars: from
                .pick(
                    "limits.max_message_chars",
                    args.max_message_chars,
                    max_message_chars,
                    limit_defaults.max_message_chars,
                )
                .at_least(1)?,
            frames_per_second: from
                .pick(
                    "limits.frames_per_second",
                    args.frames_per_second,
                    frames_per_second,
                    limit_defaults.frames_per_second,
                )
                .at_least(1)?,
            frame_burst: from
                .pick(
                    "limits.frame_burst",
                    args.frame_burst,
                    frame_burst,
                    limit_defaults.frame_burst,
                )
                .at_least(1)?,
            hello_timeout: from
                .pick(
                    "limits.hello_timeout",
                    args.hello_timeout,
                    hello_timeout,
                    limit_defaults.hello_timeout.as_secs_f64(),
                )
                .seconds(false)?,
            connections_per_ip: from
                .pick(
                    "limits.connections_per_ip",
                    args.connections_per_ip,
                    connections_per_ip,
                    limit_defaults.connections_per_ip,
                )
                .at_least(1)?,
            outbound_queue: from
                .pick(
                    "limits.outbound_queue",
                    args.outbound_queue,
                    outbound_queue,
                    limit_defaults.outbound_queue,
                )
                .at_least(1)?,
            ping_interval: from
                .pick(
                    "limits.ping_interval",
                    args.ping_interval,
                    ping_interval,
                    limit_defaults.ping_interval.as_secs_f64(),
                )
                .seconds(false)?,
        };
        let relay = Config {
            database: from
                .pick(
                    "database",
                    global.database,
                    file.database,
                    defaults.database,
                )
                .check(database_url)?,
            greeting: from
                .pick("greeting", args.greeting, file.greeting, defaults.greeting)
                .value,
            presence_grace: from
                .pick(
                    "presence_grace",
                    args.presence_grace,
                    file.presence_grace,
                    defaults.presence_grace.as_secs_f64(),
                )
                .seconds(true)?,
            allowed_origins: from
                .pick(
                    "allowed_origins",
                    args.allowed_origins,
                    file.allowed_origins,
                    Vec::new(),
                )
                .check(origins)?,
            public_url: from
                .pick_optional("public_url", args.public_url, file.public_url)
                .map(|url| url.check(public_url))
                .transpose()?,
            auto_assign: from
                .pick(
                    "auto_assign",
                    args.auto_assign,
                    file.auto_assign,
                    defaults.auto_assign,
                )
                .value,
            metrics_listen: metrics_listen.map(|picked| picked.value),
            heartbeat: {
                let every = from
                    .pick(
                        "cluster_heartbeat",
                        args.cluster_heartbeat,
                        file.cluster_heartbeat,
                        defaults.heartbeat.every.as_secs_f64(),
                    )
                    .seconds(false)?;
                Heartbeat {
                    every,
                    expire_after: every * 3,
                }
            },
            limits,
        };
        Ok(Settings {
            listen: listen.value,
            log_format: from
                .pick(
                    "log_format",
                    global.log_format,
                    file.log_format,
                    LogFormat::default(),
                )
                .value,
            config_file: global.config,
            relay,
        })
    }

    /// The effective settings in the file's format, secrets masked: what
    /// `check-config` prints.
    pub fn to_toml(&self) -> String {
        let config = &self.relay;
        let limits = &config.limits;
        let file = FileConfig {
            listen: Some(self.listen),
            database: Some(mask_secrets(&config.database)),
            public_url: config.public_url.clone(),
            allowed_origins: Some(config.allowed_origins.clone()),
            greeting: Some(config.greeting.clone()),
            auto_assign: Some(config.auto_assign),
            presence_grace: Some(config.presence_grace.as_secs_f64()),
            log_format: Some(self.log_format),
            metrics_listen: config.metrics_listen,
            cluster_heartbeat: Some(config.heartbeat.every.as_secs_f64()),
            limits: FileLimits {
                max_frame_bytes: Some(limits.max_frame_bytes),
                max_message_chars: Some(limits.max_message_chars),
                frames_per_second: Some(limits.frames_per_second),
                frame_burst: Some(limits.frame_burst),
                hello_timeout: Some(limits.hello_timeout.as_secs_f64()),
                connections_per_ip: Some(limits.connections_per_ip),
                outbound_queue: Some(limits.outbound_queue),
                ping_interval: Some(limits.ping_interval.as_secs_f64()),
            },
        };
        file.to_toml()
    }
}

/// Knows the file's name, for saying where a value came from.
struct Sources<'a> {
    file: Option<&'a Path>,
}

#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    CommandLine,
    /// The configuration file, named when known.
    File(Option<&'a Path>),
    Default,
}

/// A value and where it came from.
struct Picked<'a, T> {
    key: &'static str,
    value: T,
    source: Source<'a>,
}

impl<'a> Sources<'a> {
    fn pick<T>(
        &self,
        key: &'static str,
        arg: Option<T>,
        file: Option<T>,
        default: T,
    ) -> Picked<'a, T> {
        self.pick_optional(key, arg, file).unwrap_or(Picked {
            key,
            value: default,
            source: Source::Default,
        })
    }

    fn pick_optional<T>(
        &self,
        key: &'static str,
        arg: Option<T>,
        file: Option<T>,
    ) -> Option<Picked<'a, T>> {
        let (value, source) = match (arg, file, self.file) {
            (Some(value), _, _) => (value, Source::CommandLine),
            (None, Some(value), path) => (value, Source::File(path)),
            (None, None, _) => return None,
        };
        Some(Picked { key, value, source })
    }
}

impl<T> Picked<'_, T> {
    fn invalid(&self, why: impl Into<String>) -> ConfigError {
        let name = self.key.rsplit('.').next().unwrap_or(self.key);
        let source = match self.source {
            Source::CommandLine => format!(
                "--{} or KEFU_{}",
                name.replace('_', "-"),
                name.to_ascii_uppercase()
            ),
            Source::File(Some(path)) => path.display().to_string(),
            Source::File(None) => "the configuration file".to_owned(),
            Source::Default => "the default".to_owned(),
        };
        ConfigError::Invalid {
            key: self.key,
            origin: source,
            why: why.into(),
        }
    }

    fn check<U>(self, check: impl FnOnce(T) -> Result<U, String>) -> Result<U, ConfigError> {
        let Picked { key, value, source } = self;
        check(value).map_err(|why| {
            Picked {
                key,
                value: (),
                source,
            }
            .invalid(why)
        })
    }
}

impl<T: PartialOrd + fmt::Display + Copy> Picked<'_, T> {
    fn at_least(self, min: T) -> Result<T, ConfigError> {
        if self.value < min {
            return Err(self.invalid(format!("must be at least {min}, not {}", self.value)));
        }
        Ok(self.value)
    }
}

impl Picked<'_, f64> {
    fn seconds(self, zero_allowed: bool) -> Result<Duration, ConfigError> {
        let value = self.value;
        match Duration::try_from_secs_f64(value) {
            Ok(duration) if zero_allowed || !duration.is_zero() => Ok(duration),
            _ => {
                let what = if zero_allowed {
                    "0 or more"
                } else {
                    "more than 0"
                };
                Err(self.invalid(format!("must be {what} seconds, not {value}")))
            }
        }
    }
}

fn database_url(url: String) -> Result<String, String> {
    let known = ["sqlite:", "postgres://", "postgresql://"];
    if known.iter().any(|scheme| url.starts_with(scheme)) {
        Ok(url)
    } else {
        Err(format!(
            "{:?} is not a database URL: expected sqlite://PATH or postgres://USER@HOST/DB",
            mask_secrets(&url)
        ))
    }
}

fn public_url(url: String) -> Result<String, String> {
    match origin_of(&url) {
        Some(_) => Ok(url.trim().to_owned()),
        None => Err(format!("{url:?} is not a URL like https://support.example")),
    }
}

fn origins(origins: Vec<String>) -> Result<Vec<String>, String> {
    origins
        .into_iter()
        .map(|origin| origin.trim().trim_end_matches('/').to_owned())
        .filter(|origin| !origin.is_empty())
        .map(|origin| match origin_of(&origin) {
            Some(parsed) if parsed.eq_ignore_ascii_case(&origin) => Ok(origin),
            _ => Err(format!(
                "{origin:?} is not an origin: expected scheme://host[:port], e.g. https://shop.example"
            )),
        })
        .collect()
}

/// `scheme://host[:port]` of an http(s) URL, lower-cased, with the scheme's
/// default port left out as browsers do in `Origin`.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let uri: axum::http::Uri = url.trim().parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = uri.authority()?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return None;
    }
    let host = authority.host().to_ascii_lowercase();
    Some(match authority.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// A URL fit to print: the password of `user:password@` and any
/// `password=` query parameter replaced by `***`.
pub fn mask_secrets(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// The command line as `serve` parses it.
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        global: GlobalArgs,
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> (GlobalArgs, ServeArgs) {
        let cli = Cli::try_parse_from(std::iter::once("kefu-relay").chain(args.iter().copied()))
            .expect("valid arguments");
        (cli.global, cli.serve)
    }

    fn file(text: &str) -> FileConfig {
        toml::from_str(text).expect("valid file")
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let (mut global, serve) = parse(&["--greeting", "from the flag", "--frame-burst", "5"]);
        global.config = Some("relay.toml".into());
        let file = file(
            r#"
            greeting = "from the file"
            listen = "0.0.0.0:9000"
            [limits]
            frame_burst = 7
            frames_per_second = 3
            "#,
        );
        let settings = Settings::resolve(global, serve, file).expect("valid");
        assert_eq!(settings.relay.greeting, "from the flag");
        assert_eq!(settings.relay.limits.frame_burst, 5);
        assert_eq!(settings.listen, "0.0.0.0:9000".parse().expect("addr"));
        assert_eq!(settings.relay.limits.frames_per_second, 3);
        // Untouched settings keep their defaults.
        let defaults = Config::default();
        assert_eq!(settings.relay.database, defaults.database);
        assert_eq!(
            settings.relay.limits.outbound_queue,
            defaults.limits.outbound_queue
        );
        assert!(!settings.relay.auto_assign);
    }

    #[test]
    fn nothing_given_means_the_documented_defaults() {
        let settings = Settings::resolve(
            GlobalArgs::default(),
            ServeArgs::default(),
            FileConfig::default(),
        )
        .expect("valid");
        assert_eq!(settings.listen, DEFAULT_LISTEN);
        assert_eq!(settings.relay.database, "sqlite://kefu.db");
        assert_eq!(settings.log_format, LogFormat::Text);
        assert_eq!(settings.relay.presence_grace, Duration::from_secs(10));
        assert_eq!(settings.relay.limits.ping_interval, Duration::from_secs(20));
        assert_eq!(settings.relay.metrics_listen, None);
    }

    #[test]
    fn auto_assign_is_a_switch_or_an_explicit_boolean() {
        let on = |args: &[&str], text: &str| {
            let (global, serve) = parse(args);
            Settings::resolve(global, serve, file(text))
                .expect("valid")
                .relay
                .auto_assign
        };
        assert!(on(&["--auto-assign"], ""));
        assert!(!on(&["--auto-assign=false"], "auto_assign = true"));
        assert!(on(&[], "auto_assign = true"));
    }

    #[test]
    fn an_invalid_value_names_the_key_its_source_and_why() {
        let global = GlobalArgs {
            config: Some("/etc/kefu/relay.toml".into()),
            ..GlobalArgs::default()
        };
        let error = Settings::resolve(
            global,
            ServeArgs::default(),
            file("[limits]\nhello_timeout = 0"),
        )
        .expect_err("zero timeout");
        let message = error.to_string();
        assert!(message.contains("limits.hello_timeout"), "{message}");
        assert!(message.contains("/etc/kefu/relay.toml"), "{message}");
        assert!(message.contains("more than 0 seconds"), "{message}");

        let (global, serve) = parse(&["--presence-grace=-1"]);
        let message = Settings::resolve(global, serve, FileConfig::default())
            .expect_err("negative grace")
            .to_string();
        assert!(
            message.contains("--presence-grace or KEFU_PRESENCE_GRACE"),
            "{message}"
        );

        for (text, key) in [
            ("database = \"mysql://x\"", "database"),
            (
                "allowed_origins = [\"https://shop.example/path\"]",
                "allowed_origins",
            ),
            ("public_url = \"support.example\"", "public_url"),
            ("[limits]\nmax_frame_bytes = 10", "max_frame_bytes"),
            (
                "listen = \"127.0.0.1:9\"\nmetrics_listen = \"127.0.0.1:9\"",
                "metrics_listen",
            ),
        ] {
            let message =
                Settings::resolve(GlobalArgs::default(), ServeArgs::default(), file(text))
                    .expect_err(text)
                    .to_string();
            assert!(message.contains(key), "{text}: {message}");
        }
    }

    #[test]
    fn origins_are_trimmed_and_empty_ones_dropped() {
        let (global, serve) = parse(&[
            "--allowed-origins",
            " https://a.example/ ,,http://b.example:81",
        ]);
        let settings = Settings::resolve(global, serve, FileConfig::default()).expect("valid");
        assert_eq!(
            settings.relay.allowed_origins,
            ["https://a.example", "http://b.example:81"]
        );
    }

    #[test]
    fn every_flag_is_named_after_its_variable() {
        // Error messages derive `--flag or KEFU_VAR` from the key; this keeps
        // the derivation true.
        use clap::CommandFactory;
        for arg in Cli::command().get_arguments() {
            let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
                continue;
            };
            let expected = format!("KEFU_{}", long.replace('-', "_").to_ascii_uppercase());
            assert_eq!(env.to_str(), Some(expected.as_str()), "--{long}");
        }
    }

    #[test]
    fn the_effective_configuration_masks_passwords_and_reads_back() {
        let global = GlobalArgs {
            database: Some("postgres://kefu:s3cret@db.internal/kefu?sslpassword=x&a=1".into()),
            ..GlobalArgs::default()
        };
        let settings =
            Settings::resolve(global, ServeArgs::default(), FileConfig::default()).expect("valid");
        let text = settings.to_toml();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(
            text.contains("postgres://kefu:***@db.internal/kefu?sslpassword=***&a=1"),
            "{text}"
        );
        let back: FileConfig = toml::from_str(&text).expect("reads back");
        assert_eq!(back.limits.frame_burst, Some(Limits::default().frame_burst));
    }

    #[test]
    fn masking_leaves_urls_without_secrets_alone() {
        assert_eq!(mask_secrets("sqlite://kefu.db"), "sqlite://kefu.db");
        assert_eq!(
            mask_secrets("sqlite:///var/lib/kefu/kefu.db"),
            "sqlite:///var/lib/kefu/kefu.db"
        );
        assert_eq!(
            mask_secrets("postgres://kefu@db/kefu"),
            "postgres://kefu@db/kefu"
        );
    }

    #[test]
    fn origins_drop_default_ports_and_paths() {
        assert_eq!(
            origin_of("https://Support.Example:443/chat").as_deref(),
            Some("https://support.example")
        );
        assert_eq!(
            origin_of("http://support.example:8080").as_deref(),
            Some("http://support.example:8080")
        );
        assert_eq!(origin_of("ftp://support.example"), None);
        assert_eq!(origin_of("support.example"), None);
    }
}
