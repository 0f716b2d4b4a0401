//! A real relay (in-process, temporary SQLite file), a TCP proxy between it
//! and the client that can swallow the relay's answers, a visitor over a real
//! WebSocket, and a way to drive the client's core until a condition holds.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kefu_protocol::agent::Role;
use kefu_protocol::visitor::{VisitorEvent, VisitorProfile, VisitorRequest, VisitorWelcome};
use kefu_protocol::{Ack, Message};
use kefu_relay::{Config, auth, store};
use kefu_tui::app::{App, Input};
use kefu_tui::core::Core;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for something expected. A guard against hangs,
/// not a synchronization device.
pub const PATIENCE: Duration = Duration::from_secs(15);

pub struct TestRelay {
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), kefu_relay::RelayError>>,
}

impl TestRelay {
    pub async fn start() -> TestRelay {
        TestRelay::serve(tempfile::tempdir().expect("temp dir")).await
    }

    /// A new relay (on a new port) over the database a stopped one left.
    pub async fn reopen(dir: tempfile::TempDir) -> TestRelay {
        TestRelay::serve(dir).await
    }

    async fn serve(dir: tempfile::TempDir) -> TestRelay {
        let mut config = Config {
            database: database(&dir),
            ..Config::default()
        };
        config.limits.frames_per_second = 10_000;
        config.limits.frame_burst = 10_000;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(kefu_relay::run(listener, config, async move {
            let _ = stopped.await;
        }));
        let relay = TestRelay {
            addr,
            dir,
            stop,
            task,
        };
        relay.wait_healthy().await;
        relay
    }

    /// `/readyz` answers 200 once the store is open.
    async fn wait_healthy(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(mut stream) = TcpStream::connect(self.addr).await {
                let request = "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
                if stream.write_all(request.as_bytes()).await.is_ok() {
                    let mut response = String::new();
                    let _ = stream.read_to_string(&mut response).await;
                    if response.starts_with("HTTP/1.1 200") {
                        return;
                    }
                }
            }
            assert!(Instant::now() < deadline, "relay never became ready");
            tokio::task::yield_now().await;
        }
    }

    /// An agent account, as `kefu-relay agent add` makes one; its token.
    pub async fn add_agent(&self, name: &str) -> String {
        let store = store::open(&database(&self.dir), None)
            .await
            .expect("open store");
        let token = auth::new_agent_token();
        store
            .add_agent(name, Role::Agent, &auth::hash_agent_token(&token))
            .await
            .expect("add agent");
        store.close().await;
        token
    }

    /// Shuts down cleanly (clients are told to reconnect), keeping the data.
    pub async fn stop(self) -> tempfile::TempDir {
        let _ = self.stop.send(());
        self.task
            .await
            .expect("relay task")
            .expect("relay stopped cleanly");
        self.dir
    }
}

fn database(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("kefu.db").display())
}

/// Forwards TCP connections to the current upstream. While `swallow` is on,
/// bytes from the relay are dropped: the client never hears the answers to
/// what it sends, as when a connection dies with acks in flight.
pub struct Proxy {
    pub addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    swallow: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let upstream = Arc::new(Mutex::new(upstream));
        let swallow = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(accept(listener, upstream.clone(), swallow.clone()));
        Proxy {
            addr,
            upstream,
            swallow,
            task,
        }
    }

    pub fn point_to(&self, upstream: SocketAddr) {
        *self.upstream.lock().expect("upstream lock") = upstream;
    }

    pub fn swallow_answers(&self, on: bool) {
        self.swallow.store(on, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, upstream: Arc<Mutex<SocketAddr>>, swallow: Arc<AtomicBool>) {
    while let Ok((client, _)) = listener.accept().await {
        let target = *upstream.lock().expect("upstream lock");
        let swallow = swallow.clone();
        tokio::spawn(async move {
            // A refused upstream closes the client: it retries later.
            let Ok(server) = TcpStream::connect(target).await else {
                return;
            };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let up = tokio::io::copy(&mut client_read, &mut server_write);
            let down = async {
                let mut buffer = vec![0; 16 * 1024];
                loop {
                    let read = server_read.read(&mut buffer).await.unwrap_or(0);
                    if read == 0 {
                        break;
                    }
                    if !swallow.load(Ordering::SeqCst)
                        && client_write.write_all(&buffer[..read]).await.is_err()
                    {
                        break;
                    }
                }
            };
            // Either side closing ends the pair, as a dying connection would.
            tokio::select! {
                _ = up => {}
                () = down => {}
            }
        });
    }
}

/// A visitor on `/ws/visitor`.
pub struct Visitor {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Visitor {
    pub async fn connect(
        relay: SocketAddr,
        token: Option<String>,
        after_seq: Option<u64>,
    ) -> (Visitor, VisitorWelcome) {
        let url = format!("ws://{relay}/ws/visitor");
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("visitor connects");
        let mut visitor = Visitor { ws };
        let profile = VisitorProfile {
            name: Some("Ming".into()),
            page_url: Some("https://shop.example/cart".into()),
            ..VisitorProfile::default()
        };
        visitor
            .send(VisitorRequest::Hello {
                token,
                after_seq,
                profile: Some(profile),
            })
            .await;
        match visitor.next().await {
            VisitorEvent::Welcome(welcome) => (visitor, welcome),
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    async fn send(&mut self, request: VisitorRequest) {
        let text = serde_json::to_string(&request).expect("encode");
        self.ws
            .send(WsMessage::text(text))
            .await
            .expect("visitor sends");
    }

    pub async fn next(&mut self) -> VisitorEvent {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("timed out waiting for a frame")
                .expect("connection open")
                .expect("frame");
            if let WsMessage::Text(text) = frame {
                return serde_json::from_str(&text).expect("decodable frame");
            }
        }
    }

    /// Sends a message; returns its ack and the messages that came first.
    pub async fn say(&mut self, client_id: &str, text: &str) -> (Ack, Vec<Message>) {
        self.send(VisitorRequest::Send {
            client_id: client_id.into(),
            text: text.into(),
        })
        .await;
        let mut before = Vec::new();
        loop {
            match self.next().await {
                VisitorEvent::Ack(ack) if ack.client_id == client_id => return (ack, before),
                VisitorEvent::Message(message) => before.push(message),
                VisitorEvent::Error(error) => panic!("send refused: {error:?}"),
                _ => {}
            }
        }
    }

    pub async fn next_message(&mut self) -> Message {
        loop {
            if let VisitorEvent::Message(message) = self.next().await {
                return message;
            }
        }
    }
}

/// Feeds the core what the network task reports until `done` holds.
pub async fn pump_until(core: &mut Core, what: &str, done: impl Fn(&App) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done(&core.app) {
        match timeout_at(deadline, core.next_net_event()).await {
            Ok(Some(event)) => {
                core.handle(Input::Net(event));
            }
            Ok(None) => panic!("the network task stopped while waiting for {what}"),
            Err(_) => panic!(
                "timed out waiting for {what}; state: {:?}",
                core.app.connection
            ),
        }
    }
}
