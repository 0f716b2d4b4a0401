//! `kefu-relay`: parse the command line, set up logging, call the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use kefu_protocol::agent::Role;
use kefu_relay::config::{GlobalArgs, LogFormat, ServeArgs, Settings, parse_duration};
use kefu_relay::{auth, blocklist, export, store};
use tracing_subscriber::EnvFilter;

/// How long an upload may wait to be sent before `prune-files` forgets it.
const UNSENT_UPLOADS_KEPT: Duration = Duration::from_secs(24 * 3600);
/// Files put more recently than this are never pruned: their upload may
/// still be on its way to the database.
const PRUNE_GRACE: Duration = Duration::from_secs(3600);

/// How long blocking work may hold up the exit once the relay has stopped.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// jemalloc instead of glibc's malloc, for Rust's allocations and (the
/// crate's `unprefixed_malloc_on_supported_platforms`) SQLite's alike. In
/// the relay's profile a sixth of the CPU was in malloc and free, much of
/// it glibc consolidating its fast bins for each page- or frame-sized
/// block; with jemalloc the relay carried more at saturation and held idle
/// connections in less memory (docs/benchmarks.md, "the allocator").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "kefu-relay", version, about = "Self-hosted live chat relay")]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve visitors and agents.
    Serve(ServeArgs),
    /// Check the configuration and print the effective settings (secrets
    /// masked); exits non-zero, saying why, when a setting is invalid.
    CheckConfig(ServeArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage agent accounts.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Copy the database to PATH, consistently, while the relay runs.
    Backup {
        /// The copy to write; it must not exist yet.
        path: PathBuf,
    },
    /// Refuse a client address or range (CIDR) on every running relay,
    /// within a second; again later, replaces that range's reason and expiry.
    Block {
        /// An address (203.0.113.7) or a range (203.0.113.0/24).
        range: String,
        /// Lift the block after this long: 90s, 30m, 12h or 7d.
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        lasting: Option<Duration>,
        /// Why, for whoever lists the blocks later.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift the block of exactly this address or range.
    Unblock { range: String },
    /// List the blocks in force.
    Blocks,
    /// Remove files nobody can reach: uploads never sent within a day,
    /// blobs no message names, leftovers of crashed uploads.
    PruneFiles,
    /// Delete resolved conversations for good, with their messages, notes,
    /// files, search entries and visitor (profile, page trail); an open
    /// one must be resolved first. Safe while relays serve.
    DeleteConversation {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Delete everything kept of visitors (an erasure request): their
    /// conversation, as delete-conversation does.
    DeleteVisitor {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Write conversations with their messages to stdout as JSON Lines.
    Export {
        /// Only conversations active on or after this date
        /// (2026-01-31 or 2026-01-31T08:00:00Z).
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
    },
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
    /// Stop an agent's token from working; its open connections close
    /// within a second on every running relay.
    Disable { name: String },
    /// Give an agent a new token (printed, the only line on stdout); the
    /// old one stops working, and its open connections close.
    RotateToken { name: String },
}

fn main() -> ExitCode {
    let Cli { global, command } = Cli::parse();
    let serve_args = match &command {
        Command::Serve(args) | Command::CheckConfig(args) => args.clone(),
        _ => ServeArgs::default(),
    };
    let settings = match Settings::load(global, serve_args) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {:#}", anyhow::Error::from(error));
            return ExitCode::FAILURE;
        }
    };
    init_logs(settings.log_format);
    if let Some(frames) = settings.ignored_outbound_queue {
        tracing::warn!(
            frames,
            "limits.outbound_queue is deprecated and ignored: slow clients are found by \
             limits.outbound_max_wait and limits.outbound_max_bytes (docs/configuration.md)"
        );
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(command, settings));
    // Whatever is left (a straggling connection task) must not delay the
    // exit that systemd waits for.
    runtime.shutdown_timeout(EXIT_GRACE);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, which systemd hands to journald.
fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_env("KEFU_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    let database = settings.relay.database.clone();
    match command {
        Command::Serve(_) => {
            let listen = settings.listen;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            kefu_relay::run(listener, settings.relay, shutdown_signal()).await?;
        }
        Command::CheckConfig(_) => {
            let file = settings
                .config_file
                .as_ref()
                .map_or("no file".to_owned(), |path| path.display().to_string());
            println!(
                "# kefu-relay effective configuration ({file}; flags and KEFU_* variables override the file)"
            );
            print!("{}", settings.to_toml());
            eprintln!("the configuration is valid");
        }
        Command::Migrate => {
            let store = open(&database).await?;
            store.close().await;
            eprintln!(
                "{}: schema is up to date",
                kefu_relay::config::mask_secrets(&database)
            );
        }
        Command::Agent(command) => agent(command, &database).await?,
        Command::Block {
            range,
            lasting,
            reason,
        } => {
            let range = blocklist::parse_range(&range).map_err(anyhow::Error::msg)?;
            let now = time::OffsetDateTime::now_utc();
            let block = store::Block {
                range: range.to_string(),
                reason: reason.filter(|reason| !reason.trim().is_empty()),
                created_at: now,
                expires_at: lasting.map(|lasting| now + lasting),
            };
            let store = open(&database).await?;
            let result = store.block(&block).await;
            store.close().await;
            result.context("cannot block")?;
            eprintln!("blocked {range}: running relays refuse it within a second");
        }
        Command::Unblock { range } => {
            let range = blocklist::parse_range(&range).map_err(anyhow::Error::msg)?;
            let store = open(&database).await?;
            let result = store.unblock(&range.to_string()).await;
            store.close().await;
            match result {
                Err(store::StoreError::NotFound(_)) => anyhow::bail!("{range} is not blocked"),
                result => result.context("cannot unblock")?,
            }
            eprintln!("unblocked {range}");
        }
        Command::Blocks => {
            let store = open(&database).await?;
            let result = store.blocks(time::OffsetDateTime::now_utc()).await;
            store.close().await;
            for block in result.context("cannot list the blocks")? {
                let until = block.expires_at.map_or("until unblocked".to_owned(), |at| {
                    format!("until {}", rfc3339(at))
                });
                let reason = block.reason.as_deref().unwrap_or("");
                println!(
                    "{}\t{}\t{until}\t{reason}",
                    block.range,
                    rfc3339(block.created_at)
                );
            }
        }
        Command::Backup { path } => {
            let store = open(&database).await?;
            let result = store
                .backup(&path)
                .await
                .with_context(|| format!("cannot back up to {}", path.display()));
            store.close().await;
            result?;
            eprintln!("backed up to {}", path.display());
        }
        Command::PruneFiles => {
            let blobs = kefu_relay::open_blobs(&settings.relay)?.context(
                "set files_dir or files_url: a PostgreSQL relay has no default place for files",
            )?;
            let store = open(&database).await?;
            let result = kefu_relay::prune::prune_files(
                store.as_ref(),
                blobs.as_ref(),
                UNSENT_UPLOADS_KEPT,
                PRUNE_GRACE,
            )
            .await;
            store.close().await;
            let pruned = result.context("pruning files failed")?;
            eprintln!(
                "forgot {} unsent uploads; removed {} unreferenced files and {} partial uploads",
                pruned.unsent, pruned.blobs, pruned.staged
            );
        }
        Command::DeleteConversation { ids } => {
            delete(&settings, ids.into_iter().map(Target::Conversation)).await?;
        }
        Command::DeleteVisitor { ids } => {
            delete(&settings, ids.into_iter().map(Target::Visitor)).await?;
        }
        Command::Export { since } => {
            let since = since
                .as_deref()
                .map(export::parse_since)
                .transpose()
                .context("invalid --since")?;
            let store = open(&database).await?;
            let stdout = std::io::stdout().lock();
            let result = export::write_jsonl(store.as_ref(), since, stdout).await;
            store.close().await;
            let count = result.context("export failed")?;
            eprintln!("exported {count} conversations");
        }
    }
    Ok(())
}

/// What `delete-conversation` and `delete-visitor` are given.
enum Target {
    Conversation(String),
    Visitor(String),
}

/// Deletes the targets that can be, then fails naming those that could
/// not (unknown, or still open).
async fn delete(settings: &Settings, targets: impl Iterator<Item = Target>) -> anyhow::Result<()> {
    let blobs = kefu_relay::open_blobs(&settings.relay)?;
    let store = open(&settings.relay.database).await?;
    let result = delete_from(store.as_ref(), blobs.as_deref(), targets).await;
    store.close().await;
    let refused = result?;
    anyhow::ensure!(
        refused.is_empty(),
        "not deleted:\n  {}",
        refused.join("\n  ")
    );
    Ok(())
}

/// Answers why each target not deleted was not.
async fn delete_from(
    store: &dyn store::Store,
    blobs: Option<&dyn kefu_relay::blobs::BlobStore>,
    targets: impl Iterator<Item = Target>,
) -> anyhow::Result<Vec<String>> {
    use kefu_protocol::agent::ConversationStatus;
    let mut ids = Vec::new();
    let mut refused = Vec::new();
    for target in targets {
        let id = match target {
            Target::Conversation(id) => id,
            Target::Visitor(visitor) => match store.visitor_conversation(&visitor).await? {
                Some(id) => id,
                None => {
                    eprintln!("nothing is kept of visitor {visitor}");
                    continue;
                }
            },
        };
        match store.conversation(&id).await? {
            None => refused.push(format!("{id}: no such conversation")),
            Some(summary) if summary.status != ConversationStatus::Resolved => {
                refused.push(format!("{id}: still open; resolve it first"));
            }
            Some(_) => ids.push(id),
        }
    }
    for batch in ids.chunks(kefu_relay::retention::BATCH as usize) {
        let erased = kefu_relay::prune::delete_conversations(store, blobs, batch)
            .await
            .context("deleting failed")?;
        for id in batch {
            if !erased.conversations.contains(id) {
                refused.push(format!(
                    "{id}: changed meanwhile (reopened, or deleted by another process)"
                ));
            }
        }
        eprintln!(
            "deleted {} conversations with their visitors; removed {} files",
            erased.conversations.len(),
            erased.blobs
        );
    }
    Ok(refused)
}

async fn open(database: &str) -> anyhow::Result<std::sync::Arc<dyn store::Store>> {
    store::open(database, None)
        .await
        .with_context(|| format!("cannot open {}", kefu_relay::config::mask_secrets(database)))
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
        AgentCommand::RotateToken { name } => {
            let token = auth::new_agent_token();
            store
                .set_agent_token(&name, &auth::hash_agent_token(&token))
                .await
                .map(|()| {
                    eprintln!(
                        "new token for {name:?}, shown once, below; the old one no longer works:"
                    );
                    println!("{token}");
                })
                .with_context(|| format!("cannot give {name:?} a new token"))
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

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}
