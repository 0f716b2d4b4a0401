//! A relay in this process (`kefu_relay::run`) on `127.0.0.1:0`, on a
//! temporary SQLite file or a database the test names, with limits raised
//! for tests, serving plain HTTP or TLS with a [`TestCa`]'s certificate;
//! started only once `/readyz` says so.

use std::net::SocketAddr;
use std::sync::Arc;

use kefu_protocol::agent::{AgentEvent, AgentWelcome, Role};
use kefu_protocol::visitor::{VisitorEvent, VisitorWelcome};
use kefu_relay::config::TlsFiles;
use kefu_relay::{Config, RelayError};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::accounts;
use crate::http::wait_ready_over;
use crate::tls::TestCa;
use crate::ws::Client;

/// A running relay.
pub struct TestRelay {
    pub addr: SocketAddr,
    /// Its database URL.
    pub database: String,
    /// Holds the SQLite file (`kefu.db`) where the relay has one; a scratch
    /// directory for the test otherwise.
    pub dir: tempfile::TempDir,
    /// Its certificate and a client that trusts it, when it serves TLS.
    pub tls: Option<RelayTls>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), RelayError>>>,
}

/// What a stopped relay leaves for the next one: its data, and its
/// certificate.
pub struct Stopped {
    pub dir: tempfile::TempDir,
    pub database: String,
    pub tls: Option<RelayTls>,
}

/// A relay's certificate files and a client that trusts them.
#[derive(Clone)]
pub struct RelayTls {
    pub files: TlsFiles,
    pub client: Arc<rustls::ClientConfig>,
}

impl TestRelay {
    /// A relay on a new SQLite file with the test configuration.
    pub async fn start() -> TestRelay {
        TestRelay::with_config(|_| {}).await
    }

    /// A relay on a new SQLite file, its test configuration adjusted.
    pub async fn with_config(adjust: impl FnOnce(&mut Config)) -> TestRelay {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = format!("sqlite://{}", dir.path().join("kefu.db").display());
        let data = Stopped {
            dir,
            database,
            tls: None,
        };
        TestRelay::on(data, adjust).await
    }

    /// A relay on a new SQLite file serving TLS (HTTPS, WSS) with a
    /// certificate for `127.0.0.1` that `ca` signs, its test configuration
    /// adjusted.
    pub async fn with_tls(ca: &TestCa, adjust: impl FnOnce(&mut Config)) -> TestRelay {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = format!("sqlite://{}", dir.path().join("kefu.db").display());
        let tls = RelayTls {
            files: ca.issue(dir.path(), "relay"),
            client: ca.client(),
        };
        let data = Stopped {
            dir,
            database,
            tls: Some(tls),
        };
        TestRelay::on(data, adjust).await
    }

    /// A relay on `database` (e.g. a [`crate::TestDatabase`]'s URL), its test
    /// configuration adjusted.
    pub async fn on_database(database: &str, adjust: impl FnOnce(&mut Config)) -> TestRelay {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = Stopped {
            dir,
            database: database.to_owned(),
            tls: None,
        };
        TestRelay::on(data, adjust).await
    }

    /// A new relay (on a new port) over the data a stopped one left.
    pub async fn reopen(stopped: Stopped) -> TestRelay {
        TestRelay::on(stopped, |_| {}).await
    }

    /// A new relay on the data and the address a stopped one left behind,
    /// as after a restart: clients reconnect to the same URL.
    pub async fn reopen_at(stopped: Stopped, addr: SocketAddr) -> TestRelay {
        let listener = TcpListener::bind(addr).await.expect("bind the old address");
        let config = data_config(&stopped);
        TestRelay::serve(listener, stopped, config).await
    }

    async fn on(data: Stopped, adjust: impl FnOnce(&mut Config)) -> TestRelay {
        let mut config = data_config(&data);
        adjust(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        TestRelay::serve(listener, data, config).await
    }

    async fn serve(listener: TcpListener, data: Stopped, config: Config) -> TestRelay {
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(kefu_relay::run(listener, config, async move {
            let _ = stopped.await;
        }));
        wait_ready_over(addr, data.tls.as_ref().map(|tls| tls.client.clone())).await;
        TestRelay {
            addr,
            database: data.database,
            dir: data.dir,
            tls: data.tls,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Shuts the relay down cleanly (clients are told to reconnect), keeping
    /// its data for [`TestRelay::reopen`].
    pub async fn stop(mut self) -> Stopped {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("relay task").expect("relay result");
        }
        Stopped {
            dir: self.dir,
            database: self.database,
            tls: self.tls.take(),
        }
    }

    /// Creates an agent straight in the database, as `kefu-relay agent add`
    /// does; its token.
    pub async fn add_agent(&self, name: &str, role: Role) -> String {
        accounts::add_agent(&self.database, name, role).await
    }

    pub async fn agent_id(&self, name: &str) -> String {
        accounts::agent_id(&self.database, name).await
    }

    /// `ws://` (`wss://` when it serves TLS) and the relay's address, then
    /// `path`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}{}", self.addr, path)
    }

    /// `http://` and the relay's address, then `path`.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn visitor(&self) -> Client<VisitorEvent> {
        Client::connect_over(&self.url("/ws/visitor"), self.tls_client()).await
    }

    pub async fn agent_socket(&self) -> Client<AgentEvent> {
        Client::connect_over(&self.url("/ws/agent"), self.tls_client()).await
    }

    /// A client that trusts the relay's certificate, when it serves TLS.
    pub fn tls_client(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.tls.as_ref().map(|tls| tls.client.clone())
    }

    /// A visitor who said hello without a token.
    pub async fn new_visitor(&self) -> (Client<VisitorEvent>, VisitorWelcome) {
        let mut visitor = self.visitor().await;
        let welcome = visitor.hello(None, None).await;
        (visitor, welcome)
    }

    /// An agent, signed in, its welcome consumed.
    pub async fn signed_in_agent(&self, token: &str) -> Client<AgentEvent> {
        self.welcomed_agent(token).await.0
    }

    /// An agent connection that said hello, with the relay's `welcome`.
    pub async fn welcomed_agent(&self, token: &str) -> (Client<AgentEvent>, AgentWelcome) {
        let mut agent = self.agent_socket().await;
        let welcome = agent.hello(token).await;
        (agent, welcome)
    }
}

/// The test configuration for what a relay keeps: its database and its
/// certificate.
fn data_config(data: &Stopped) -> Config {
    let mut config = test_config(&data.database);
    config.tls = data.tls.as_ref().map(|tls| tls.files.clone());
    config
}

/// The default configuration on `database`, with the per-connection frame
/// rate raised: tests send faster than people type.
pub fn test_config(database: &str) -> Config {
    let mut config = Config {
        database: database.to_owned(),
        ..Config::default()
    };
    config.limits.frames_per_second = 10_000;
    config.limits.frame_burst = 10_000;
    config
}
