//! The kit's relay with the bench's raised per-connection limits and agent
//! accounts, and bench configurations small enough for a test.

use std::time::Duration;

use kefu_bench::config::{Chat, Config, Idle, Mode, Relays, Shard, Target};
use kefu_protocol::agent::Role;

/// A relay with agent accounts for the bench.
pub struct TestRelay {
    pub target: Target,
    pub tokens: Vec<String>,
    relay: kefu_testkit::TestRelay,
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
        let relay = kefu_testkit::TestRelay::with_config(|config| {
            raise_limits(config);
            adjust(&mut config.limits);
        })
        .await;
        TestRelay::with_agents(relay, agents).await
    }

    /// A relay of a cluster on `database` (PostgreSQL), with `agents` agent
    /// accounts added (none for a second relay on the same database).
    pub async fn on_database(database: &str, agents: usize) -> TestRelay {
        let relay = kefu_testkit::TestRelay::on_database(database, raise_limits).await;
        TestRelay::with_agents(relay, agents).await
    }

    async fn with_agents(relay: kefu_testkit::TestRelay, agents: usize) -> TestRelay {
        let mut tokens = Vec::new();
        for n in 0..agents {
            let name = format!("bench-agent-{n}");
            tokens.push(relay.add_agent(&name, Role::Agent).await);
        }
        TestRelay {
            target: Target::from_addr(relay.addr),
            tokens,
            relay,
        }
    }

    /// A new visitor writes `text` (and leaves).
    pub async fn visitor_says(&self, text: &str) {
        let (mut visitor, _) = self.relay.new_visitor().await;
        visitor.say("c1", text).await;
    }

    pub async fn stop(self) {
        self.relay.stop().await;
    }
}

/// The bench sends faster than people type.
fn raise_limits(config: &mut kefu_relay::Config) {
    config.limits.frames_per_second = 100_000;
    config.limits.frame_burst = 100_000;
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
            uploads: None,
            abuse: None,
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
        relays: Relays::one(target.clone()),
        shard: Shard::WHOLE,
        source_addrs: 4,
        connect_concurrency: 8,
        longpoll_share: 0.0,
        progress: false,
        mode,
    }
}
