//! An in-process relay with raised per-connection limits, agent accounts,
//! and bench configurations small enough for a test.

use std::time::Duration;

use kefu_bench::config::{Chat, Config, Idle, Mode, Shard, Target};
use kefu_protocol::agent::Role;
use kefu_relay::{auth, store};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestRelay {
    pub target: Target,
    pub tokens: Vec<String>,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), kefu_relay::RelayError>>>,
}

impl TestRelay {
    /// A relay with `agents` agent accounts, their tokens in `tokens`.
    pub async fn start(agents: usize) -> TestRelay {
        TestRelay::with_limits(agents, |_| {}).await
    }

    pub async fn with_limits(
        agents: usize,
        adjust: impl FnOnce(&mut kefu_relay::Limits),
    ) -> TestRelay {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = format!("sqlite://{}", dir.path().join("kefu.db").display());
        // Made before the relay opens the database, as an operator would.
        let tokens = add_agents(&database, agents).await;
        let mut config = kefu_relay::Config {
            database,
            ..kefu_relay::Config::default()
        };
        // The bench sends faster than people type.
        config.limits.frames_per_second = 100_000;
        config.limits.frame_burst = 100_000;
        adjust(&mut config.limits);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(kefu_relay::run(listener, config, async move {
            let _ = stopped.await;
        }));
        wait_ready(addr).await;
        TestRelay {
            target: Target::from_addr(addr),
            tokens,
            _dir: dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("relay task").expect("relay result");
        }
    }
}

/// Waits until the relay answers `/readyz` with 200: before, while its
/// store opens, it refuses connections with 503 "starting".
async fn wait_ready(addr: std::net::SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await {
            let request = "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
            let mut response = String::new();
            if stream.write_all(request.as_bytes()).await.is_ok()
                && stream.read_to_string(&mut response).await.is_ok()
                && response.starts_with("HTTP/1.1 200")
            {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay never became ready"
        );
        tokio::task::yield_now().await;
    }
}

/// Tokens of `count` new agent accounts, as `kefu-relay agent add` makes.
async fn add_agents(database: &str, count: usize) -> Vec<String> {
    let store = store::open(database, None).await.expect("open store");
    let mut tokens = Vec::new();
    for n in 0..count {
        let token = auth::new_agent_token();
        store
            .add_agent(
                &format!("bench-agent-{n}"),
                Role::Agent,
                &auth::hash_agent_token(&token),
            )
            .await
            .expect("add agent");
        tokens.push(token);
    }
    store.close().await;
    tokens
}

/// A short chat run: `visitors` visitors at `rate` messages per second for
/// one second, answered by one agent per token.
pub fn chat_config(target: &Target, tokens: Vec<String>, visitors: u32, rate: f64) -> Config {
    config(
        target,
        Mode::Chat(Chat {
            visitors,
            tokens,
            rate,
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            drain: Duration::from_secs(5),
            reply_every: 1,
            drop_one_for_test: false,
        }),
    )
}

pub fn idle_config(target: &Target, visitors: u32, relay_pid: u32) -> Config {
    config(
        target,
        Mode::Idle(Idle {
            visitors,
            hold: Duration::from_millis(300),
            relay_pid: Some(relay_pid),
        }),
    )
}

fn config(target: &Target, mode: Mode) -> Config {
    Config {
        target: target.clone(),
        shard: Shard::WHOLE,
        source_addrs: 4,
        connect_concurrency: 8,
        longpoll_share: 0.0,
        progress: false,
        mode,
    }
}
