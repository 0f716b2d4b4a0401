//! `kefu-tui`: parse flags and config, log to a file, run the terminal loop.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use kefu_tui::config::{self, FileConfig, Settings, Token};

/// The kefu agents' terminal client.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The relay, e.g. ws://127.0.0.1:8080 or wss://chat.example (the
    /// /ws/agent path is added).
    #[arg(long, env = "KEFU_RELAY")]
    relay: Option<String>,
    /// Agent token from `kefu-relay agent add NAME`. Every user of the
    /// machine can read it in `ps`: prefer --token-file or KEFU_TOKEN.
    #[arg(long, env = "KEFU_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A file holding the agent token (readable only by you, e.g. mode 600).
    #[arg(long, env = "KEFU_TOKEN_FILE", value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// CA certificates (PEM) to check a wss:// relay against, instead of the
    /// system's root certificates.
    #[arg(long, env = "KEFU_CA_FILE", value_name = "PATH")]
    ca_file: Option<PathBuf>,
    /// Config file [default: $XDG_CONFIG_HOME/kefu/tui.toml or ~/.config/kefu/tui.toml].
    #[arg(long, env = "KEFU_TUI_CONFIG")]
    config: Option<PathBuf>,
    /// Log file [default: log_file from the config, or kefu-tui.log in the temp dir].
    #[arg(long)]
    log: Option<PathBuf>,
    /// Leave the mouse to the terminal (drag selects text) instead of
    /// clicks and the wheel; `mouse = false` in the config does the same.
    #[arg(long)]
    no_mouse: bool,
}

fn main() -> anyhow::Result<()> {
    let matches = Args::command().get_matches();
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let token = token_given(&args, &matches);
    let (path, required) = match args.config {
        Some(path) => (path, true),
        None => {
            let xdg = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from);
            let home = std::env::var_os("HOME").map(PathBuf::from);
            let path = config::default_path(xdg.as_deref(), home.as_deref())
                .unwrap_or_else(|| PathBuf::from("tui.toml"));
            (path, false)
        }
    };
    let file = FileConfig::load(&path, required)?;
    let mut settings = Settings::resolve(
        args.relay,
        token,
        args.ca_file,
        file,
        &path.display().to_string(),
    )?;
    settings.mouse &= !args.no_mouse;
    let log = args
        .log
        .or_else(|| settings.log_file.clone())
        .unwrap_or_else(|| std::env::temp_dir().join("kefu-tui.log"));
    init_logging(&log)?;
    // Must be read before any thread starts (the `time` crate refuses
    // otherwise, as reading the zone is not thread-safe).
    let offset = time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    tracing::info!(relay = %settings.url, "starting");
    runtime
        .block_on(kefu_tui::terminal::run(settings, offset))
        .context("kefu-tui stopped")?;
    Ok(())
}

/// The token or token file given, if any; a flag beats an environment
/// variable, and `--token` beats `--token-file`.
fn token_given(args: &Args, matches: &ArgMatches) -> Option<Token> {
    let flag = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let value = args.token.clone().map(Token::Value);
    let file = args.token_file.clone().map(Token::File);
    if flag("token") || (value.is_some() && !flag("token_file")) {
        value
    } else {
        file
    }
}

/// Logs go to a file: the screen belongs to the UI.
fn init_logging(path: &Path) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the log file {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEFU_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .init();
    Ok(())
}
