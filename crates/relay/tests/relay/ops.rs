//! Operating a relay: systemd notifications, graceful shutdown on SIGTERM,
//! `/readyz`, admin commands beside a live relay, `backup` and `export`.
//! Most run the real binary, as systemd would.

use std::collections::{HashMap, HashSet};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

use kefu_protocol::Reconnect;
use kefu_protocol::agent::{AgentEvent, Role};
use kefu_protocol::trail::PageViewReport;
use kefu_protocol::visitor::{VisitorEvent, VisitorRequest};
use kefu_testkit::{PATIENCE, RelayProcess, TestRelay, http};
use tokio::time::Instant;

use crate::support::{KEFU_RELAY, run_cli, sqlite_url, stderr, stdout};

/// What systemd allows between SIGTERM and SIGKILL (`TimeoutStopSec`).
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// The test's end of `$NOTIFY_SOCKET`.
struct NotifySocket {
    socket: UnixDatagram,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(PATIENCE))
            .expect("read timeout");
        NotifySocket {
            socket,
            _dir: dir,
            path,
        }
    }

    /// Waits for a datagram holding `line`; returns every line seen.
    async fn expect(&self, line: &str) -> Vec<String> {
        let socket = self.socket.try_clone().expect("clone socket");
        let line = line.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut seen = Vec::new();
            let mut buffer = [0u8; 4096];
            loop {
                let read = socket
                    .recv(&mut buffer)
                    .unwrap_or_else(|error| panic!("no {line} (saw {seen:?}): {error}"));
                let datagram = String::from_utf8_lossy(&buffer[..read]).into_owned();
                seen.extend(datagram.lines().map(str::to_owned));
                if datagram.lines().any(|l| l == line) {
                    return seen;
                }
            }
        })
        .await
        .expect("notify reader")
    }
}

#[tokio::test]
async fn systemd_hears_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().expect("temp dir");
    let notify = NotifySocket::bind();
    let mut relay = RelayProcess::start_with_env(
        KEFU_RELAY,
        &sqlite_url(&dir.path().join("kefu.db")),
        &[],
        &[
            ("NOTIFY_SOCKET", notify.path.as_os_str()),
            ("WATCHDOG_USEC", "200000".as_ref()),
        ],
    )
    .await;

    notify.expect("READY=1").await;
    // Ready means serving: the store is open and requests are answered.
    assert_eq!(
        http::get(relay.addr, "/readyz")
            .await
            .ok()
            .map(|response| response.status),
        Some(200)
    );
    notify.expect("WATCHDOG=1").await;
    relay.terminate().await;
    notify.expect("STOPPING=1").await;
    let status = tokio::time::timeout(STOP_LIMIT, relay.wait())
        .await
        .expect("exits in time");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn sigterm_asks_clients_to_reconnect_and_exits_cleanly_keeping_every_ack() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("kefu.db");
    let token = add_agent(&database, "alice").await;
    let mut relay = RelayProcess::start(KEFU_RELAY, &sqlite_url(&database), &[]).await;

    let mut agent = relay.agent().await;
    agent
        .send(&kefu_protocol::agent::AgentRequest::Hello {
            token: token.clone(),
        })
        .await;
    agent
        .until(|event| matches!(event, AgentEvent::Welcome(_)).then_some(()))
        .await;
    let mut visitor = relay.visitor().await;
    let welcome = visitor.hello(None, None).await;
    let mut acked = Vec::new();
    for i in 0..20 {
        acked.push(visitor.say(&format!("v{i}"), &format!("message {i}")).await);
    }
    let conversation_id = acked[0].conversation_id.clone();
    agent.reply(&conversation_id, "a0", "an answer").await;

    let asked = Instant::now();
    relay.terminate().await;
    let visitor_told = reconnect_of(visitor.drain().await.into_iter().filter_map(|e| match e {
        VisitorEvent::Reconnect(reconnect) => Some(reconnect),
        _ => None,
    }));
    let agent_told = reconnect_of(agent.drain().await.into_iter().filter_map(|e| match e {
        AgentEvent::Reconnect(reconnect) => Some(reconnect),
        _ => None,
    }));
    for told in [visitor_told, agent_told] {
        assert_eq!(told.reason.as_deref(), Some("shutdown"));
        assert!((1..=10_000).contains(&told.after_ms), "{told:?}");
    }
    let status = tokio::time::timeout(STOP_LIMIT, relay.wait())
        .await
        .expect("exits within systemd's stop timeout");
    assert!(status.success(), "exit status {status}");
    assert!(asked.elapsed() < STOP_LIMIT);

    // Everything acknowledged is there after a restart, in order.
    let relay = RelayProcess::start(KEFU_RELAY, &sqlite_url(&database), &[]).await;
    let mut visitor = relay.visitor().await;
    visitor.hello(Some(&welcome.token), Some(0)).await;
    let mut replayed = Vec::new();
    while replayed.len() < acked.len() + 1 {
        replayed.push(visitor.next_message().await);
    }
    for ack in &acked {
        let stored = replayed
            .iter()
            .find(|message| message.client_id == ack.client_id)
            .unwrap_or_else(|| panic!("{} lost", ack.client_id));
        assert_eq!(stored.seq, ack.seq);
    }
    assert_eq!(replayed.last().map(|m| m.text.as_str()), Some("an answer"));
    relay.kill().await;
}

fn reconnect_of(mut frames: impl Iterator<Item = Reconnect>) -> Reconnect {
    frames.next().expect("a reconnect frame before the close")
}

async fn add_agent(database: &Path, name: &str) -> String {
    let output = run_cli(
        &["agent", "add", name, "--database", &sqlite_url(database)],
        &[],
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output).trim().to_owned()
}

/// Closing any descriptor of the database file drops every POSIX lock the
/// process holds on it, SQLite's included. Were a readiness probe to open
/// and close the file, an admin command run next against the same database
/// would take itself for its last user when it closes, and delete the
/// running relay's WAL: every commit after that would be lost in a crash.
#[tokio::test]
async fn an_admin_command_after_readiness_probes_keeps_the_relays_commits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("kefu.db");
    let relay = RelayProcess::start(KEFU_RELAY, &sqlite_url(&database), &[]).await;
    let mut visitor = relay.visitor().await;
    let welcome = visitor.hello(None, None).await;
    visitor.say("before", "before the probes").await;
    for _ in 0..3 {
        let ready = http::get(relay.addr, "/readyz").await;
        assert_eq!(ready.ok().map(|response| response.status), Some(200));
    }

    add_agent(&database, "alice").await;
    assert!(
        database.with_extension("db-wal").exists(),
        "the relay's WAL is still there"
    );
    let after = visitor.say("after", "after the admin command").await;
    relay.kill().await;

    let relay = RelayProcess::start(KEFU_RELAY, &sqlite_url(&database), &[]).await;
    let mut visitor = relay.visitor().await;
    visitor.hello(Some(&welcome.token), Some(0)).await;
    let texts = [visitor.next_message().await, visitor.next_message().await];
    assert_eq!(texts[1].client_id, "after", "{texts:?}");
    assert_eq!(texts[1].seq, after.seq);
    relay.kill().await;
}

#[tokio::test]
async fn readyz_fails_while_the_database_file_is_gone() {
    let relay = TestRelay::start().await;
    let path = relay.dir.path().join("kefu.db");
    let moved = relay.dir.path().join("kefu.db.away");
    let status = |relay: &TestRelay| {
        let addr = relay.addr;
        async move {
            let ready = http::get(addr, "/readyz").await;
            ready.ok().map(|response| response.status)
        }
    };
    assert_eq!(status(&relay).await, Some(200));

    // Tests run as root, whom `chmod 000` does not stop: a file moved away
    // is what an operator's mistake or a lost volume looks like.
    std::fs::rename(&path, &moved).expect("move the database away");
    assert_eq!(status(&relay).await, Some(503));
    assert_eq!(
        http::get(relay.addr, "/healthz")
            .await
            .ok()
            .map(|response| response.status),
        Some(200),
        "alive all the same"
    );
    std::fs::rename(&moved, &path).expect("move it back");
    assert_eq!(status(&relay).await, Some(200));
    relay.stop().await;
}

#[tokio::test]
async fn a_backup_taken_during_writes_holds_everything_acked_before_it() {
    let relay = TestRelay::start().await;
    let (mut visitor, _) = relay.new_visitor().await;
    let mut acked = Vec::new();
    for i in 0..50 {
        acked.push(
            visitor
                .say(&format!("before{i}"), "before the backup")
                .await,
        );
    }
    // Keep writing while the backup runs.
    let writer = tokio::spawn(async move {
        for i in 0..200 {
            visitor
                .say(&format!("during{i}"), "during the backup")
                .await;
        }
    });
    let backup = relay.dir.path().join("backup.db");
    let backup_arg = backup.display().to_string();
    let output = run_cli(&["backup", &backup_arg, "--database", &relay.database], &[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    writer.await.expect("writer");

    let copy = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", backup.display()))
        .await
        .expect("the backup opens");
    let stored: Vec<(String, i64)> =
        sqlx::query_as("SELECT client_id, seq FROM messages ORDER BY seq")
            .fetch_all(&copy)
            .await
            .expect("read the backup");
    copy.close().await;
    let stored: HashMap<String, i64> = stored.into_iter().collect();
    for ack in &acked {
        assert_eq!(
            stored.get(&ack.client_id).copied(),
            i64::try_from(ack.seq).ok(),
            "{} is in the backup",
            ack.client_id
        );
    }
    let seqs: HashSet<i64> = stored.values().copied().collect();
    assert_eq!(
        seqs,
        (1..=stored.len() as i64).collect(),
        "a consistent snapshot: a gap-free prefix"
    );

    let again = run_cli(&["backup", &backup_arg, "--database", &relay.database], &[]).await;
    assert!(!again.status.success(), "a backup never overwrites");
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    relay.stop().await;
}

#[tokio::test]
async fn export_writes_each_conversation_with_its_messages_as_a_json_line() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let mut conversations = Vec::new();
    let mut visitors = Vec::new();
    for name in ["first", "second"] {
        let (mut visitor, _) = relay.new_visitor().await;
        let ack = visitor
            .say(&format!("{name}-1"), &format!("hello from {name}"))
            .await;
        conversations.push(ack.conversation_id);
        visitors.push(visitor);
    }
    agent.reply(&conversations[0], "r1", "a reply").await;
    agent
        .send_message(&conversations[0], "n1", "an internal note", true)
        .await
        .expect("note");
    // The first visitor opens a page: stored, then shown to the agent.
    visitors[0]
        .send(&VisitorRequest::PageView(PageViewReport {
            url: "https://shop.example/checkout".into(),
            title: Some("Checkout".into()),
            referrer: None,
            at: None,
        }))
        .await;
    agent
        .until(|event| match event {
            AgentEvent::PageView(frame) if frame.conversation_id == conversations[0] => Some(()),
            _ => None,
        })
        .await;

    let all = run_cli(&["export", "--database", &relay.database], &[]).await;
    assert!(all.status.success(), "{}", stderr(&all));
    let lines: Vec<serde_json::Value> = stdout(&all)
        .lines()
        .map(|line| serde_json::from_str(line).expect("every line is JSON"))
        .collect();
    assert_eq!(lines.len(), 2);
    let first = lines
        .iter()
        .find(|line| line["id"] == conversations[0].as_str())
        .expect("the first conversation");
    assert_eq!(first["status"], "active");
    let messages: Vec<(&str, bool)> = first["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| (m["text"].as_str().unwrap_or(""), m["internal"] == true))
        .collect();
    assert_eq!(
        messages,
        [
            ("hello from first", false),
            ("a reply", false),
            ("an internal note", true)
        ]
    );
    let pages: Vec<&str> = (first["page_views"].as_array().expect("page views").iter())
        .map(|view| view["url"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(pages, ["https://shop.example/checkout"]);

    let future = run_cli(
        &[
            "export",
            "--since",
            "2999-01-01",
            "--database",
            &relay.database,
        ],
        &[],
    )
    .await;
    assert!(future.status.success());
    assert_eq!(stdout(&future), "", "nothing was active after --since");
    let bad = run_cli(
        &[
            "export",
            "--since",
            "last week",
            "--database",
            &relay.database,
        ],
        &[],
    )
    .await;
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("--since"), "{}", stderr(&bad));
    relay.stop().await;
}

#[tokio::test]
async fn readyz_says_starting_while_the_database_does_not_answer_yet() {
    // A "database server" that accepts connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            connections.push(stream);
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = kefu_relay::Config {
        database: format!("postgres://kefu@{silent_addr}/kefu"),
        ..kefu_relay::Config::default()
    };
    let relay = tokio::spawn(kefu_relay::run(listener, config, std::future::pending()));

    assert_eq!(
        http::get(addr, "/readyz")
            .await
            .ok()
            .map(|response| (response.status, response.body)),
        Some((503, "starting\n".to_owned()))
    );
    assert_eq!(
        http::get(addr, "/healthz")
            .await
            .ok()
            .map(|response| (response.status, response.body)),
        Some((200, "ok\n".to_owned()))
    );
    relay.abort();
    held.abort();
}

/// The binary allocates through jemalloc, and SQLite with it: jemalloc
/// reads `MALLOC_CONF` only when it stands in for `malloc` itself (the
/// crate's unprefixed build; prefixed, it would read `_RJEM_MALLOC_CONF`),
/// and there is then one `malloc` in the process for SQLite and Rust alike.
/// Dropping the allocator, or its `unprefixed_malloc…` feature, fails this.
#[tokio::test]
async fn the_binary_allocates_through_jemalloc_sqlite_included() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = sqlite_url(&dir.path().join("kefu.db"));
    let output = run_cli(
        &["--database", &database, "migrate"],
        &[("MALLOC_CONF", "stats_print:true")],
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("Begin jemalloc statistics"),
        "jemalloc printed no statistics at exit: {}",
        stderr(&output)
    );
}
