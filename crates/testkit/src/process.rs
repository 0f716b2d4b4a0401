//! The built `kefu-relay` binary as a child process on a random port, for
//! what only a real process shows: SIGKILL and SIGTERM, systemd's socket,
//! environment variables and the startup log.
//!
//! The caller names the binary: `env!("CARGO_BIN_EXE_kefu-relay")` exists
//! only in the relay's own tests.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use kefu_protocol::agent::AgentEvent;
use kefu_protocol::visitor::{VisitorEvent, VisitorWelcome};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::PATIENCE;
use crate::ws::Client;

/// A `kefu-relay serve` child process on a random port.
pub struct RelayProcess {
    child: Child,
    pub addr: SocketAddr,
    /// What it logged up to and including the `listening on` line.
    pub startup_log: Vec<String>,
    /// What it logged after that, for [`RelayProcess::logged`].
    later_log: mpsc::Receiver<String>,
}

/// Lines logged after start-up kept for [`RelayProcess::logged`]; past this
/// (a test that never looks) they are dropped, never blocking the child.
const LATER_LOG: usize = 1024;

impl RelayProcess {
    /// Starts `binary serve` on `database` with limits raised for tests,
    /// plus `extra` arguments.
    pub async fn start(binary: impl AsRef<Path>, database: &str, extra: &[&str]) -> RelayProcess {
        RelayProcess::start_with_env(binary, database, extra, &[]).await
    }

    /// [`RelayProcess::start`] with environment variables set.
    pub async fn start_with_env(
        binary: impl AsRef<Path>,
        database: &str,
        extra: &[&str],
        env: &[(&str, &OsStr)],
    ) -> RelayProcess {
        let mut child = Command::new(binary.as_ref())
            .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
            .args(["--frames-per-second", "100000", "--frame-burst", "100000"])
            .args(extra)
            .env("KEFU_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn kefu-relay");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let (addr, startup_log) = tokio::time::timeout(PATIENCE, async {
            let mut log = Vec::new();
            while let Some(line) = lines.next_line().await.expect("read stderr") {
                let addr = line.split_once("listening on ").and_then(|(_, url)| {
                    let addr = url
                        .strip_prefix("http://")
                        .or(url.strip_prefix("https://"))?;
                    Some(addr.trim().to_owned())
                });
                log.push(line);
                if let Some(addr) = addr {
                    return (addr, log);
                }
            }
            panic!("kefu-relay exited before listening: {log:#?}");
        })
        .await
        .expect("kefu-relay did not start in time");
        // Keep draining stderr so the child never blocks on a full pipe.
        let (later, later_log) = mpsc::channel(LATER_LOG);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = later.try_send(line);
            }
        });
        RelayProcess {
            child,
            addr: addr.parse().expect("a socket address"),
            startup_log,
            later_log,
        }
    }

    /// The next line logged after start-up that contains `needle`; the lines
    /// before it are passed over.
    pub async fn logged(&mut self, needle: &str) -> String {
        let found = tokio::time::timeout(PATIENCE, async {
            while let Some(line) = self.later_log.recv().await {
                if line.contains(needle) {
                    return line;
                }
            }
            panic!("kefu-relay exited without logging {needle:?}");
        });
        found
            .await
            .unwrap_or_else(|_| panic!("kefu-relay did not log {needle:?} in time"))
    }

    /// SIGHUP, as systemd's `ExecReload` sends it.
    pub async fn hang_up(&self) {
        self.signal("-HUP").await;
    }

    /// SIGTERM, as systemd stops a service.
    pub async fn terminate(&self) {
        self.signal("-TERM").await;
    }

    async fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("still running");
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .await
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Waits for the process to exit by itself.
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().await.expect("wait for kefu-relay")
    }

    pub async fn visitor(&self) -> Client<VisitorEvent> {
        Client::connect(&format!("ws://{}/ws/visitor", self.addr)).await
    }

    /// A new visitor who said hello, with the relay's `welcome`.
    pub async fn new_visitor(&self) -> (Client<VisitorEvent>, VisitorWelcome) {
        let mut visitor = self.visitor().await;
        let welcome = visitor.hello(None, None).await;
        (visitor, welcome)
    }

    pub async fn agent(&self) -> Client<AgentEvent> {
        Client::connect(&format!("ws://{}/ws/agent", self.addr)).await
    }

    /// SIGKILL: no goodbye, no flush.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL");
        self.child.wait().await.expect("reap");
    }
}
