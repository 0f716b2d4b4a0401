//! `kefu-reference-relay`: the bench's bare in-memory relay (see
//! `kefu_bench::reference`), run beside kefu-relay so that every
//! benchmark can say how close kefu comes to the ceiling of its own stack
//! on the same machine at the same time.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;

/// A bare tokio-tungstenite relay speaking the chat subset of kefu's
/// protocol, in memory, storing nothing: a yardstick for kefu-bench, not a
/// server to deploy.
#[derive(Debug, Parser)]
#[command(name = "kefu-reference-relay", version)]
struct Cli {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:18090")]
    listen: SocketAddr,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(cli.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cli.listen))?;
        println!("listening on {}", listener.local_addr()?);
        kefu_bench::reference::serve(listener)
            .await
            .context("accepting connections failed")
    })
}
