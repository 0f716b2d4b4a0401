//! A relay on a random port with a temporary SQLite file, and WebSocket
//! clients that speak protocol v1 over real sockets.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kefu_protocol::agent::{
    AgentEvent, AgentRequest, AgentWelcome, ConversationStatus, ConversationSummary, Role,
};
use kefu_protocol::visitor::{VisitorEvent, VisitorRequest, VisitorWelcome};
use kefu_protocol::{Ack, ErrorCode, ErrorFrame, Message};
use kefu_relay::{Config, auth, store};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for an expected frame before failing. A guard
/// against hangs, not a synchronization device.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub struct TestRelay {
    pub addr: SocketAddr,
    pub database: String,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), kefu_relay::RelayError>>>,
}

impl TestRelay {
    pub async fn start() -> TestRelay {
        TestRelay::with_config(|_| {}).await
    }

    pub async fn with_config(adjust: impl FnOnce(&mut Config)) -> TestRelay {
        let dir = tempfile::tempdir().expect("temp dir");
        let (database, mut config) = test_config(&dir);
        adjust(&mut config);
        TestRelay::serve(dir, database, config).await
    }

    async fn serve(dir: tempfile::TempDir, database: String, config: Config) -> TestRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        TestRelay::serve_on(listener, dir, database, config).await
    }

    async fn serve_on(
        listener: TcpListener,
        dir: tempfile::TempDir,
        database: String,
        config: Config,
    ) -> TestRelay {
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(kefu_relay::run(listener, config, async move {
            let _ = stopped.await;
        }));
        let relay = TestRelay {
            addr,
            database,
            dir,
            stop: Some(stop),
            task: Some(task),
        };
        relay.wait_healthy().await;
        relay
    }

    async fn wait_healthy(&self) {
        // The listener is bound before `run` starts, so connecting succeeds at
        // once; /readyz answers 200 only once the store is open (and 503
        // "starting" before).
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some((200, _)) = http_get(self.addr, "/readyz").await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "relay never became ready"
            );
            tokio::task::yield_now().await;
        }
    }

    /// Creates an agent straight in the database, as `kefu-relay agent add` does.
    pub async fn add_agent(&self, name: &str, role: Role) -> String {
        let store = store::open(&self.database, None).await.expect("open store");
        let token = auth::new_agent_token();
        store
            .add_agent(name, role, &auth::hash_agent_token(&token))
            .await
            .expect("add agent");
        store.close().await;
        token
    }

    pub async fn agent_id(&self, name: &str) -> String {
        let store = store::open(&self.database, None).await.expect("open store");
        let agents = store.agents().await.expect("list agents");
        store.close().await;
        agents
            .into_iter()
            .find(|account| account.info.name == name)
            .map(|account| account.info.id)
            .expect("agent exists")
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    pub async fn visitor(&self) -> Client<VisitorEvent> {
        Client::connect(&self.url("/ws/visitor")).await
    }

    pub async fn agent_socket(&self) -> Client<AgentEvent> {
        Client::connect(&self.url("/ws/agent")).await
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
        agent
            .send(&AgentRequest::Hello {
                token: token.to_owned(),
            })
            .await;
        match agent.next().await {
            AgentEvent::Welcome(welcome) => (agent, welcome),
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    /// Shuts the relay down cleanly, keeping its database for [`reopen`].
    ///
    /// [`reopen`]: TestRelay::reopen
    pub async fn stop(self) -> tempfile::TempDir {
        let TestRelay {
            dir, stop, task, ..
        } = self;
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        if let Some(task) = task {
            task.await.expect("relay task").expect("relay result");
        }
        dir
    }

    /// A new relay on the database and the address a stopped one left
    /// behind, as after a restart: clients reconnect to the same URL.
    pub async fn reopen_at(dir: tempfile::TempDir, addr: SocketAddr) -> TestRelay {
        let listener = TcpListener::bind(addr).await.expect("bind the old address");
        let (database, config) = test_config(&dir);
        TestRelay::serve_on(listener, dir, database, config).await
    }

    /// A new relay on the database a stopped one left behind.
    pub async fn reopen(dir: tempfile::TempDir) -> TestRelay {
        let (database, config) = test_config(&dir);
        TestRelay::serve(dir, database, config).await
    }
}

/// `GET path` over a fresh connection: the status and body, or `None` if
/// the relay did not answer.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    tokio::time::timeout(PATIENCE, stream.read_to_string(&mut response))
        .await
        .ok()?
        .ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

fn test_config(dir: &tempfile::TempDir) -> (String, Config) {
    let database = format!("sqlite://{}", dir.path().join("kefu.db").display());
    let mut config = Config {
        database: database.clone(),
        ..Config::default()
    };
    // Tests send faster than people type.
    config.limits.frames_per_second = 10_000;
    config.limits.frame_burst = 10_000;
    (database, config)
}

/// A protocol client over a real WebSocket, decoding frames as `E`.
pub struct Client<E> {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    _event: std::marker::PhantomData<E>,
}

impl<E: DeserializeOwned + std::fmt::Debug> Client<E> {
    pub async fn connect(url: &str) -> Client<E> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request().expect("request");
        request
            .headers_mut()
            .insert("user-agent", "kefu-tests/1".parse().expect("header"));
        // No Nagle, as browsers do: frames sent back to back would otherwise
        // wait for the relay's delayed ACK.
        let (ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
            .await
            .expect("WebSocket connect");
        Client {
            ws,
            _event: std::marker::PhantomData,
        }
    }

    pub async fn send<T: Serialize>(&mut self, frame: &T) {
        let text = serde_json::to_string(frame).expect("encode");
        self.send_raw(&text).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws
            .send(WsMessage::text(text.to_owned()))
            .await
            .expect("send frame");
    }

    /// The next frame, or `None` once the relay closed the connection.
    pub async fn try_next(&mut self) -> Option<E> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("timed out waiting for a frame");
            match frame {
                Some(Ok(WsMessage::Text(text))) => {
                    return Some(
                        serde_json::from_str(&text)
                            .unwrap_or_else(|error| panic!("undecodable frame {text}: {error}")),
                    );
                }
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    pub async fn next(&mut self) -> E {
        self.try_next().await.expect("connection closed")
    }

    /// Skips frames until one matches, returning it.
    pub async fn until<T>(&mut self, mut pick: impl FnMut(E) -> Option<T>) -> T {
        loop {
            let frame = self.next().await;
            if let Some(found) = pick(frame) {
                return found;
            }
        }
    }

    /// Reads until the relay closes the connection; returns what came.
    pub async fn drain(&mut self) -> Vec<E> {
        let mut frames = Vec::new();
        while let Some(frame) = self.try_next().await {
            frames.push(frame);
        }
        frames
    }
}

impl Client<VisitorEvent> {
    pub async fn hello(&mut self, token: Option<&str>, after_seq: Option<u64>) -> VisitorWelcome {
        self.send(&VisitorRequest::Hello {
            token: token.map(str::to_owned),
            after_seq,
            profile: None,
        })
        .await;
        match self.next().await {
            VisitorEvent::Welcome(welcome) => welcome,
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    pub async fn say(&mut self, client_id: &str, text: &str) -> Ack {
        self.send(&VisitorRequest::Send {
            client_id: client_id.to_owned(),
            text: text.to_owned(),
        })
        .await;
        self.until(|event| match event {
            VisitorEvent::Ack(ack) if ack.client_id == client_id => Some(ack),
            VisitorEvent::Error(error) => panic!("send refused: {error:?}"),
            _ => None,
        })
        .await
    }

    pub async fn next_message(&mut self) -> Message {
        self.until(|event| match event {
            VisitorEvent::Message(message) => Some(message),
            _ => None,
        })
        .await
    }

    pub async fn next_error(&mut self) -> ErrorFrame {
        self.until(|event| match event {
            VisitorEvent::Error(error) => Some(error),
            _ => None,
        })
        .await
    }
}

impl Client<AgentEvent> {
    pub async fn reply(&mut self, conversation_id: &str, client_id: &str, text: &str) -> Ack {
        self.send_message(conversation_id, client_id, text, false)
            .await
            .unwrap_or_else(|error| panic!("reply refused: {error:?}"))
    }

    pub async fn send_message(
        &mut self,
        conversation_id: &str,
        client_id: &str,
        text: &str,
        internal: bool,
    ) -> Result<Ack, ErrorFrame> {
        self.send(&AgentRequest::Send {
            conversation_id: conversation_id.to_owned(),
            client_id: client_id.to_owned(),
            text: text.to_owned(),
            internal,
        })
        .await;
        self.until(|event| match event {
            AgentEvent::Ack(ack) if ack.client_id == client_id => Some(Ok(ack)),
            AgentEvent::Error(error) if error.reference.as_deref() == Some(client_id) => {
                Some(Err(error))
            }
            _ => None,
        })
        .await
    }

    pub async fn next_message(&mut self) -> Message {
        self.until(|event| match event {
            AgentEvent::Message(message) => Some(message),
            _ => None,
        })
        .await
    }

    /// The next summary of `conversation_id` that satisfies `want`.
    /// Claims a conversation and waits until this agent sees it active.
    pub async fn claim(&mut self, conversation_id: &str) -> ConversationSummary {
        self.send(&AgentRequest::Claim {
            conversation_id: conversation_id.to_owned(),
        })
        .await;
        self.summary_where(conversation_id, |s| s.status == ConversationStatus::Active)
            .await
    }

    pub async fn summary_where(
        &mut self,
        conversation_id: &str,
        want: impl Fn(&ConversationSummary) -> bool,
    ) -> ConversationSummary {
        self.until(|event| match event {
            AgentEvent::Conversation(frame)
                if frame.summary.id == conversation_id && want(&frame.summary) =>
            {
                Some(frame.summary)
            }
            _ => None,
        })
        .await
    }

    pub async fn next_error(&mut self) -> ErrorFrame {
        self.until(|event| match event {
            AgentEvent::Error(error) => Some(error),
            _ => None,
        })
        .await
    }

    pub async fn history(
        &mut self,
        conversation_id: &str,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Vec<Message> {
        self.send(&AgentRequest::History {
            conversation_id: conversation_id.to_owned(),
            before_seq,
            limit: Some(limit),
        })
        .await;
        self.until(|event| match event {
            AgentEvent::History(page) if page.conversation_id == conversation_id => {
                Some(page.messages)
            }
            AgentEvent::Error(error) => panic!("history refused: {error:?}"),
            _ => None,
        })
        .await
    }
}

pub fn assert_error(error: &ErrorFrame, code: ErrorCode) {
    assert_eq!(error.code, code, "unexpected error {error:?}");
    assert!(!error.message.is_empty(), "errors explain themselves");
}

/// A `kefu-relay serve` child process on a random port.
pub struct RelayProcess {
    child: Child,
    pub addr: String,
    /// What it logged up to and including the `listening on` line.
    pub startup_log: Vec<String>,
}

impl RelayProcess {
    /// Starts `kefu-relay serve` on `database` with limits raised for tests,
    /// plus `extra` arguments.
    pub async fn start(database: &str, extra: &[&str]) -> RelayProcess {
        RelayProcess::start_with_env(database, extra, &[]).await
    }

    /// [`RelayProcess::start`] with environment variables set.
    pub async fn start_with_env(
        database: &str,
        extra: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> RelayProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kefu-relay"))
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
                let addr = line
                    .split_once("listening on http://")
                    .map(|(_, addr)| addr.trim().to_owned());
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
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        RelayProcess {
            child,
            addr,
            startup_log,
        }
    }

    /// SIGTERM, as systemd stops a service.
    pub async fn terminate(&self) {
        let pid = self.child.id().expect("still running");
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid}");
    }

    /// Waits for the process to exit by itself.
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().await.expect("wait for kefu-relay")
    }

    pub async fn visitor(&self) -> Client<VisitorEvent> {
        Client::connect(&format!("ws://{}/ws/visitor", self.addr)).await
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

/// A fresh PostgreSQL database for one test.
pub struct TestDatabase {
    pub url: String,
    name: String,
    admin: String,
}

impl TestDatabase {
    /// Creates one on the server named by `KEFU_TEST_POSTGRES` (default: the
    /// local server as user postgres). Where no server answers: `None`,
    /// after a notice, unless `KEFU_REQUIRE_POSTGRES` makes that a failure.
    pub async fn create() -> Option<TestDatabase> {
        use sqlx::Connection;
        let admin = std::env::var("KEFU_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(conn) => conn,
            Err(error) => {
                assert!(
                    std::env::var_os("KEFU_REQUIRE_POSTGRES").is_none(),
                    "KEFU_REQUIRE_POSTGRES is set but {admin} does not answer: {error}"
                );
                eprintln!("notice: skipping a PostgreSQL test: {admin} does not answer ({error})");
                return None;
            }
        };
        let name = format!("kefu_test_{}", kefu_relay::ids::new_id());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create a test database");
        let (base, _) = admin.rsplit_once('/').expect("a database URL");
        Some(TestDatabase {
            url: format!("{base}/{name}"),
            name,
            admin,
        })
    }

    /// Drops the database (clients still connected are cut off).
    pub async fn drop_database(self) {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
        }
    }
}
