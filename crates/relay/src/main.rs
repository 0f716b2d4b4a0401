//! `kefu-relay`: parse the command line, set up logging, call the library.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use kefu_protocol::agent::Role;
use kefu_relay::{Config, Limits, auth, store};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "kefu-relay", version, about = "Self-hosted live chat relay")]
struct Cli {
    /// Database URL: sqlite://PATH.
    #[arg(
        long,
        global = true,
        env = "KEFU_DATABASE",
        default_value = "sqlite://kefu.db"
    )]
    database: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve visitors and agents.
    Serve(ServeArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage agent accounts.
    #[command(subcommand)]
    Agent(AgentCommand),
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Create an agent and print its token (the only line on stdout).
    Add {
        name: String,
        /// May broadcast to visitors and take over any conversation.
        #[arg(long)]
        admin: bool,
    },
    /// List agents.
    List,
    /// Stop an agent's token from working for new connections.
    Disable { name: String },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "KEFU_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Welcome text the visitor's page shows first.
    #[arg(long, env = "KEFU_GREETING")]
    greeting: Option<String>,
    /// Other origins whose pages may chat and embed the widget
    /// (comma-separated, e.g. https://shop.example); the relay's own origin
    /// always may.
    #[arg(long, env = "KEFU_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// Seconds a visitor may be gone before agents see them offline.
    #[arg(long, env = "KEFU_PRESENCE_GRACE", default_value_t = 10.0)]
    presence_grace: f64,
    /// Largest WebSocket frame accepted, in bytes.
    #[arg(long, env = "KEFU_MAX_FRAME_BYTES", default_value_t = Limits::default().max_frame_bytes)]
    max_frame_bytes: usize,
    /// Longest message, in characters.
    #[arg(long, env = "KEFU_MAX_MESSAGE_CHARS", default_value_t = Limits::default().max_message_chars)]
    max_message_chars: usize,
    /// Frames per second one connection may send, sustained.
    #[arg(long, env = "KEFU_FRAMES_PER_SECOND", default_value_t = Limits::default().frames_per_second)]
    frames_per_second: u32,
    /// Frames one connection may send in a burst.
    #[arg(long, env = "KEFU_FRAME_BURST", default_value_t = Limits::default().frame_burst)]
    frame_burst: u32,
    /// Seconds a new connection has to say hello.
    #[arg(long, env = "KEFU_HELLO_TIMEOUT", default_value_t = 10.0)]
    hello_timeout: f64,
    /// Open WebSocket connections allowed from one IP address.
    #[arg(long, env = "KEFU_CONNECTIONS_PER_IP", default_value_t = Limits::default().connections_per_ip)]
    connections_per_ip: u32,
    /// Seconds between a clustered relay's heartbeats; a relay silent for
    /// three of them counts as dead and its clients as gone.
    #[arg(long, env = "KEFU_CLUSTER_HEARTBEAT", default_value_t = 5.0)]
    cluster_heartbeat: f64,
    /// Frames queued for one slow connection before it must resync.
    #[arg(long, env = "KEFU_OUTBOUND_QUEUE", default_value_t = Limits::default().outbound_queue)]
    outbound_queue: usize,
}

impl ServeArgs {
    fn into_config(self, database: String) -> anyhow::Result<Config> {
        let defaults = Config::default();
        Ok(Config {
            database,
            greeting: self.greeting.unwrap_or(defaults.greeting),
            heartbeat: {
                let every = seconds("--cluster-heartbeat", self.cluster_heartbeat)?;
                anyhow::ensure!(!every.is_zero(), "--cluster-heartbeat must be positive");
                kefu_relay::cluster::Heartbeat {
                    every,
                    expire_after: every * 3,
                }
            },
            presence_grace: seconds("--presence-grace", self.presence_grace)?,
            allowed_origins: self
                .allowed_origins
                .into_iter()
                .map(|origin| origin.trim().to_owned())
                .filter(|origin| !origin.is_empty())
                .collect(),
            limits: Limits {
                max_frame_bytes: self.max_frame_bytes,
                max_message_chars: self.max_message_chars,
                frames_per_second: self.frames_per_second.max(1),
                frame_burst: self.frame_burst.max(1),
                hello_timeout: seconds("--hello-timeout", self.hello_timeout)?,
                connections_per_ip: self.connections_per_ip,
                outbound_queue: self.outbound_queue.max(1),
                ping_interval: defaults.limits.ping_interval,
            },
        })
    }
}

fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .with_context(|| format!("{flag} must be a non-negative number of seconds"))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("KEFU_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let listen = args.listen;
            let config = args.into_config(cli.database)?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            kefu_relay::run(listener, config, shutdown_signal()).await?;
        }
        Command::Migrate => {
            let store = open(&cli.database).await?;
            store.close().await;
            eprintln!("{}: schema is up to date", cli.database);
        }
        Command::Agent(command) => agent(command, &cli.database).await?,
    }
    Ok(())
}

async fn open(database: &str) -> anyhow::Result<std::sync::Arc<dyn store::Store>> {
    store::open(database, None)
        .await
        .with_context(|| format!("cannot open {database}"))
}

async fn agent(command: AgentCommand, database: &str) -> anyhow::Result<()> {
    let store = open(database).await?;
    let result = match command {
        AgentCommand::Add { name, admin } => {
            let name = name.trim();
            anyhow::ensure!(!name.is_empty(), "the agent name is empty");
            let role = if admin { Role::Admin } else { Role::Agent };
            let token = auth::new_agent_token();
            store
                .add_agent(name, role, &auth::hash_agent_token(&token))
                .await
                .map(|info| {
                    eprintln!(
                        "added {} {:?}; its token is shown once, below:",
                        info.role.as_str(),
                        info.name
                    );
                    println!("{token}");
                })
                .context("cannot add the agent")
        }
        AgentCommand::List => store
            .agents()
            .await
            .map(|agents| {
                for account in agents {
                    let status = if account.disabled {
                        "disabled"
                    } else {
                        "enabled"
                    };
                    println!(
                        "{}\t{}\t{}\t{}",
                        account.info.name,
                        account.info.role.as_str(),
                        status,
                        account.info.id
                    );
                }
            })
            .context("cannot list agents"),
        AgentCommand::Disable { name } => store
            .disable_agent(&name)
            .await
            .map(|()| eprintln!("disabled {name:?}"))
            .with_context(|| format!("cannot disable {name:?}")),
    };
    store.close().await;
    result
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(error) => {
                    tracing::warn!(%error, "cannot watch SIGTERM");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
