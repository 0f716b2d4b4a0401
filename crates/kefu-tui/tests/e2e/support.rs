//! What only the client's tests need besides `kefu_testkit`'s relay and
//! clients: a TCP proxy between the relay and the client that can swallow
//! the relay's answers, a visitor with a profile, and a way to drive the
//! client's core until a condition holds.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kefu_protocol::visitor::{VisitorEvent, VisitorProfile, VisitorWelcome};
use kefu_testkit::Client;
use kefu_tui::app::App;
use kefu_tui::core::Core;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};

/// How long a test waits for the client's core. A guard against hangs, not
/// a synchronization device.
pub const PATIENCE: Duration = Duration::from_secs(15);

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

/// A visitor on `/ws/visitor` who said hello as the shop's page would:
/// with a name and the page.
pub async fn shop_visitor(
    relay: SocketAddr,
    token: Option<&str>,
    after_seq: Option<u64>,
) -> (Client<VisitorEvent>, VisitorWelcome) {
    let mut visitor = Client::connect(&format!("ws://{relay}/ws/visitor")).await;
    let profile = VisitorProfile {
        name: Some("Ming".into()),
        page_url: Some("https://shop.example/cart".into()),
        ..VisitorProfile::default()
    };
    let welcome = visitor
        .hello_with_profile(token, after_seq, Some(profile))
        .await;
    (visitor, welcome)
}

/// Feeds the core what the network task reports until `done` holds.
pub async fn pump_until(core: &mut Core, what: &str, done: impl Fn(&App) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done(&core.app) {
        match timeout_at(deadline, core.next_input()).await {
            Ok(Some(input)) => {
                core.handle(input);
            }
            Ok(None) => panic!("the network task stopped while waiting for {what}"),
            Err(_) => panic!(
                "timed out waiting for {what}; state: {:?}",
                core.app.connection
            ),
        }
    }
}
