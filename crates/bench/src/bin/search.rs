//! `kefu-bench-search`: how long a running relay takes to answer agents'
//! searches (see `kefu_bench::search`), query by query, p50 and p99.
//!
//! The database is seeded beforehand (crates/bench/scripts/search_seed.py
//! for a million messages); docs/benchmarks.md has the whole procedure.

use anyhow::Context as _;
use clap::Parser;
use kefu_bench::config::Target;

/// Times agents' `search` requests against a relay, one at a time.
#[derive(Debug, Parser)]
#[command(name = "kefu-bench-search", version)]
struct Cli {
    /// The relay, e.g. ws://127.0.0.1:8080.
    #[arg(long)]
    relay: String,
    /// An agent token (otherwise KEFU_TOKEN).
    #[arg(long, env = "KEFU_TOKEN", hide_env_values = true)]
    token: String,
    /// Times each query is asked.
    #[arg(long, default_value_t = 100)]
    runs: u32,
    /// Pause before each query: the relay's default frame rate per
    /// connection is 10 a second.
    #[arg(long, default_value = "120ms", value_parser = kefu_bench::cli::parse_duration)]
    pace: std::time::Duration,
    /// The queries, each as an agent would type it.
    #[arg(required = true)]
    queries: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let target = Target::parse(&cli.relay)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    let results = runtime.block_on(kefu_bench::search::run(
        &target,
        None,
        &cli.token,
        &cli.queries,
        cli.runs,
        cli.pace,
    ))?;
    println!("| query | hits on the first page | p50 | p99 | max | refused |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for result in results {
        let refused: Vec<String> = (result.refused.iter())
            .map(|(why, count)| format!("{count}× {why}"))
            .collect();
        println!(
            "| `{}` | {} | {:.1} ms | {:.1} ms | {:.1} ms | {} |",
            result.query,
            result.hits,
            result.latency.p50,
            result.latency.p99,
            result.latency.max,
            if refused.is_empty() {
                "none".into()
            } else {
                refused.join(", ")
            },
        );
    }
    Ok(())
}
