//! The command line, and where agent tokens come from.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use crate::config::{
    Abuse, Chat, Config, Idle, Mode, NoRelay, Relays, Shard, Target, TargetError, Uploads,
};

/// Drives a kefu relay with visitors and agents speaking protocol v1 and
/// reports connections, throughput, end-to-end latency and a loss check
/// (every acked message delivered exactly once).
///
/// Raise the relay's per-connection limits first: by default it allows 10
/// frames per second per connection and 50 connections per IP.
#[derive(Debug, Parser)]
#[command(name = "kefu-bench", version)]
pub struct Cli {
    /// The relay, e.g. ws://127.0.0.1:8080; or several relays of one
    /// cluster, comma-separated (or the flag repeated): visitors and agents
    /// are dealt over them so that visitors and their agents sit on
    /// different relays, and one loss check covers the whole cluster.
    #[arg(long, required = true, value_delimiter = ',')]
    pub relay: Vec<String>,
    /// Visitor connections, across all shards.
    #[arg(long, default_value_t = 100)]
    pub visitors: u32,
    /// Agent connections, across all shards; each needs its own token.
    #[arg(long, default_value_t = 1)]
    pub agents: u32,
    /// Visitor messages per second, across all shards.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// How long visitors send (or, with --idle, how long connections are
    /// held): 30s, 500ms, 2m or plain seconds.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Don't time messages sent in the first part of the run, when every
    /// visitor opens its conversation at once (they are still checked for
    /// loss).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// How long to wait after sending for the last acks and deliveries.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Agents answer every K-th message of each visitor.
    #[arg(long, default_value_t = 1, value_name = "K",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub reply_every: u32,
    /// Agent tokens, one per line (otherwise KEFU_TOKENS, comma-separated).
    #[arg(long, value_name = "PATH")]
    pub tokens_file: Option<PathBuf>,
    /// Idle mode: visitors connect, say hello and stay silent; report the
    /// relay's memory per connection.
    #[arg(long)]
    pub idle: bool,
    /// The relay's process id, whose resident memory idle mode reads from
    /// /proc/PID/status.
    #[arg(long, value_name = "PID", requires = "idle")]
    pub relay_pid: Option<u32>,
    /// Drive only part of the run (I/N): every N-th visitor and agent from
    /// I, and 1/N of the rate; run N processes for the whole.
    #[arg(long, default_value = "0/1", value_name = "I/N")]
    pub shard: Shard,
    /// Spread client sockets over this many loopback source addresses from
    /// 127.0.0.2 (about 28,000 ports each); 0 lets the kernel choose.
    #[arg(long, default_value_t = 16, value_name = "K")]
    pub source_addrs: u8,
    /// Connection attempts in flight at once.
    #[arg(long, default_value_t = 256, value_name = "C")]
    pub connect_concurrency: usize,
    /// Share of visitors using HTTP long-poll instead of WebSocket (0..1).
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub longpoll_share: f64,
    /// Visitors that upload one image after another while the chat runs
    /// (each then sent in a message and answered); loss-checked, not timed.
    /// Raise the relay's `uploads_per_minute` and
    /// `max_conversation_file_bytes` for more than a few uploads each.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub uploaders: u32,
    /// Bytes of each uploaded image (a valid PNG of noise, a few hundred
    /// bytes more).
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub upload_bytes: usize,
    /// Time an uploader waits after one upload's answer before the next
    /// (0s: back to back).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub upload_pause: Duration,
    /// Abuse: connections held half-open at once by attackers (a request
    /// line without headers, or a WebSocket handshake a byte at a time).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub half_open: u32,
    /// Abuse: POSTs at once whose body trickles in (to /api/visitor/hello
    /// and, with a visitor token, /api/files).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub slow_bodies: u32,
    /// Abuse: loops of hello, one message, close, as fast as the relay lets
    /// them.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub spammers: u32,
    /// Abuse: the attackers' loopback source addresses, right after the
    /// --source-addrs of the legitimate load.
    #[arg(long, default_value_t = 32, value_name = "K")]
    pub attack_addrs: u8,
    /// Abuse: time between two bytes an attacker trickles.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub trickle: Duration,
    /// Print the report as one JSON object on the last line, too.
    #[arg(long)]
    pub json: bool,
    /// No progress on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Test hook: forget one received message, so the loss check fails.
    #[arg(long, hide = true)]
    pub drop_one_for_test: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    NoRelay(#[from] NoRelay),
    #[error("cannot read agent tokens from {path}")]
    TokensFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{agents} agents need {agents} tokens, one per agent account, but {found} were given \
         (--tokens-file or KEFU_TOKENS; make them with `kefu-relay agent add NAME`)"
    )]
    Tokens { agents: u32, found: usize },
    #[error("--rate must be a number of messages per second, 0 or more")]
    Rate,
    #[error("--longpoll-share must be between 0 and 1")]
    LongPollShare,
    #[error(
        "attackers need loopback addresses of their own: --attack-addrs must be 1 or more and \
         --source-addrs plus --attack-addrs at most 253"
    )]
    AttackAddrs,
}

impl Cli {
    /// The run these flags ask for. `env_tokens` is `KEFU_TOKENS`.
    pub fn into_config(self, env_tokens: Option<String>) -> Result<Config, CliError> {
        if !(0.0..=1.0).contains(&self.longpoll_share) {
            return Err(CliError::LongPollShare);
        }
        let mode = if self.idle {
            Mode::Idle(Idle {
                visitors: self.visitors,
                hold: self.duration,
                relay_pid: self.relay_pid,
            })
        } else {
            if !(self.rate.is_finite() && self.rate >= 0.0) {
                return Err(CliError::Rate);
            }
            let mut tokens = load_tokens(self.tokens_file.as_deref(), env_tokens)?;
            if tokens.len() < self.agents as usize {
                return Err(CliError::Tokens {
                    agents: self.agents,
                    found: tokens.len(),
                });
            }
            tokens.truncate(self.agents as usize);
            let attacking = self.half_open + self.slow_bodies + self.spammers > 0;
            if attacking
                && (self.attack_addrs == 0
                    || u16::from(self.source_addrs) + u16::from(self.attack_addrs) > 253)
            {
                return Err(CliError::AttackAddrs);
            }
            Mode::Chat(Chat {
                visitors: self.visitors,
                tokens,
                rate: self.rate,
                duration: self.duration,
                warmup: self.warmup,
                drain: self.drain,
                reply_every: self.reply_every,
                drop_one_for_test: self.drop_one_for_test,
                uploads: (self.uploaders > 0).then_some(Uploads {
                    uploaders: self.uploaders,
                    bytes: self.upload_bytes,
                    pause: self.upload_pause,
                }),
                abuse: attacking.then_some(Abuse {
                    addrs: self.attack_addrs,
                    half_open: self.half_open,
                    slow_bodies: self.slow_bodies,
                    spammers: self.spammers,
                    trickle: self.trickle,
                }),
            })
        };
        Ok(Config {
            relays: Relays::new(
                self.relay
                    .iter()
                    .map(|url| Target::parse(url))
                    .collect::<Result<_, _>>()?,
            )?,
            shard: self.shard,
            source_addrs: self.source_addrs,
            connect_concurrency: self.connect_concurrency,
            longpoll_share: self.longpoll_share,
            progress: !self.quiet,
            mode,
        })
    }
}

/// Tokens from the file if one is given, else from the comma-separated
/// environment value; blank entries are skipped.
fn load_tokens(file: Option<&Path>, env: Option<String>) -> Result<Vec<String>, CliError> {
    let (text, separator) = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| CliError::TokensFile {
                path: path.to_owned(),
                source,
            })?;
            (text, '\n')
        }
        None => (env.unwrap_or_default(), ','),
    };
    Ok(text
        .split(separator)
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .map(str::to_owned)
        .collect())
}

/// `250ms`, `30s`, `2m`, or plain seconds (`1.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60.0)
    } else {
        (text, 1.0)
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|value| Duration::try_from_secs_f64(value * scale).ok())
        .ok_or_else(|| format!("{text:?} is not a duration like 250ms, 30s or 2m"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut argv = vec!["kefu-bench", "--relay", "ws://127.0.0.1:9"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("valid arguments")
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn tokens_come_from_the_file_before_the_environment() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("tokens");
        std::fs::write(&path, "kefu_a\n\n  kefu_b  \n").expect("write tokens");
        let from_file = load_tokens(Some(&path), Some("kefu_env".to_owned())).expect("read");
        assert_eq!(from_file, ["kefu_a", "kefu_b"]);
        let from_env = load_tokens(None, Some("kefu_x, kefu_y,".to_owned())).expect("env");
        assert_eq!(from_env, ["kefu_x", "kefu_y"]);
        assert!(load_tokens(Some(&dir.path().join("missing")), None).is_err());
    }

    #[test]
    fn chat_runs_need_one_token_per_agent() {
        let error = cli(&["--agents", "3"])
            .into_config(Some("t1,t2".to_owned()))
            .expect_err("too few tokens");
        assert!(matches!(
            error,
            CliError::Tokens {
                agents: 3,
                found: 2
            }
        ));

        let config = cli(&["--agents", "2", "--rate", "50"])
            .into_config(Some("t1,t2,t3".to_owned()))
            .expect("enough tokens");
        let Mode::Chat(chat) = config.mode else {
            panic!("a chat run");
        };
        assert_eq!(chat.tokens, ["t1", "t2"], "only as many as agents");
        assert_eq!(chat.rate, 50.0);
    }

    #[test]
    fn several_relays_are_given_comma_separated_or_repeated() {
        let argv = |relays: &[&str]| {
            let mut argv = vec!["kefu-bench", "--idle"];
            for relay in relays {
                argv.extend(["--relay", relay]);
            }
            Cli::try_parse_from(argv)
                .expect("valid arguments")
                .into_config(None)
                .expect("a config")
        };
        let listed = argv(&["ws://127.0.0.1:1,ws://127.0.0.1:2"]);
        let repeated = argv(&["ws://127.0.0.1:1", "ws://127.0.0.1:2"]);
        for config in [listed, repeated] {
            assert_eq!(config.relays.len(), 2);
            assert_eq!(config.relays.for_agent(1).addr.port(), 2);
        }
        assert!(Cli::try_parse_from(["kefu-bench", "--idle"]).is_err());
    }

    #[test]
    fn idle_runs_need_no_tokens_and_shares_stay_in_range() {
        let config = cli(&["--idle", "--relay-pid", "42", "--duration", "1m"])
            .into_config(None)
            .expect("idle needs no token");
        let Mode::Idle(idle) = config.mode else {
            panic!("an idle run");
        };
        assert_eq!(
            (idle.relay_pid, idle.hold),
            (Some(42), Duration::from_secs(60))
        );

        let config = cli(&["--idle", "--longpoll-share", "0.1"])
            .into_config(None)
            .expect("a share");
        assert_eq!(config.longpoll_share, 0.1);
        assert!(
            cli(&["--idle", "--longpoll-share", "1.5"])
                .into_config(None)
                .is_err()
        );
        assert!(
            cli(&["--rate=-5"])
                .into_config(Some("t".to_owned()))
                .is_err()
        );
    }

    #[test]
    fn uploads_and_attacks_are_asked_for_by_their_counts() {
        let plain = cli(&[]).into_config(Some("t".to_owned())).expect("chat");
        let Mode::Chat(chat) = plain.mode else {
            panic!("a chat run");
        };
        assert!(chat.uploads.is_none() && chat.abuse.is_none());

        let config = cli(&["--uploaders", "5", "--spammers", "2", "--attack-addrs", "8"])
            .into_config(Some("t".to_owned()))
            .expect("chat with extras");
        let Mode::Chat(chat) = config.mode else {
            panic!("a chat run");
        };
        let uploads = chat.uploads.expect("uploads");
        assert_eq!((uploads.uploaders, uploads.bytes), (5, 1024 * 1024));
        let abuse = chat.abuse.expect("an attack");
        assert_eq!((abuse.addrs, abuse.spammers, abuse.half_open), (8, 2, 0));
        assert_eq!(abuse.trickle, Duration::from_secs(1));

        for crowded in [
            &["--half-open", "1", "--attack-addrs", "0"][..],
            &[
                "--half-open",
                "1",
                "--source-addrs",
                "250",
                "--attack-addrs",
                "4",
            ],
        ] {
            assert!(matches!(
                cli(crowded).into_config(Some("t".to_owned())),
                Err(CliError::AttackAddrs)
            ));
        }
    }
}
