//! `kefu-bench`: parse the command line, run, print the report.
//!
//! Exit status: 0 when the run completed and the loss check passed, 1 on
//! an error, 2 when the loss check failed.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use kefu_bench::cli::Cli;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether the loss check passed.
fn run() -> anyhow::Result<bool> {
    let cli = Cli::parse();
    let json = cli.json;
    let config = cli.into_config(std::env::var("KEFU_TOKENS").ok())?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    let report = runtime.block_on(kefu_bench::run(&config))?;
    print!("{report}");
    if json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(report.passed)
}
