//! kefu-tui against a relay that serves TLS itself, with a certificate made
//! in the test: settings resolved as `--relay wss://… --ca-file …` gives
//! them, a reconnect after the relay restarts, and a relay signed by a CA
//! the client was not told to trust refused with a reason the agent can act
//! on.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use kefu_protocol::agent::Role;
use kefu_protocol::visitor::VisitorEvent;
use kefu_testkit::{Client, TestCa, TestRelay};
use kefu_tui::app::{Connection, Filter, Input};
use kefu_tui::config::{FileConfig, FileSettings, Settings, Token};
use kefu_tui::core::Core;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::support::pump_until;
use crate::{press, write};

/// The client's core as the command line `--relay wss://ADDR --ca-file
/// CA_FILE` with `token` in the environment would start it.
fn wss_client(relay: &TestRelay, ca_file: PathBuf, token: String) -> Core {
    Core::start(
        &wss_settings(relay, ca_file, token),
        time::UtcOffset::UTC,
        None,
    )
}

fn wss_settings(relay: &TestRelay, ca_file: PathBuf, token: String) -> Settings {
    let settings = Settings::resolve(
        Some(format!("wss://{}", relay.addr)),
        Some(Token::Value(token)),
        Some(ca_file),
        FileConfig::default(),
        "tui.toml",
    )
    .expect("valid settings");
    assert!(settings.url.starts_with("wss://"), "{}", settings.url);
    settings
}

async fn visitor_says(relay: &TestRelay, text: &str) -> String {
    let url = relay.url("/ws/visitor");
    assert!(url.starts_with("wss://"), "{url}");
    let mut visitor = Client::<VisitorEvent>::connect_over(&url, relay.tls_client()).await;
    visitor.hello(None, None).await;
    visitor.say("v1", text).await.conversation_id
}

#[tokio::test]
async fn a_tls_relay_is_reached_with_the_ca_file_and_again_after_a_restart() {
    let ca = TestCa::new("kefu test CA");
    let relay = TestRelay::with_tls(&ca, |_| {}).await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let ca_file = ca.write_pem(&relay.dir.path().join("ca.pem"));
    let mut core = wss_client(&relay, ca_file, token);
    pump_until(&mut core, "the welcome over TLS", |app| app.online()).await;

    let first = visitor_says(&relay, "Over TLS?").await;
    pump_until(&mut core, "the first visitor", |app| {
        app.conversations.contains_key(&first)
    })
    .await;

    // The relay restarts on the same address with the same certificate: the
    // client notices, reconnects over TLS and hears what happens next.
    let addr = relay.addr;
    let stopped = relay.stop().await;
    pump_until(&mut core, "the disconnect", |app| !app.online()).await;
    let relay = TestRelay::reopen_at(stopped, addr).await;
    pump_until(&mut core, "the welcome after the restart", |app| {
        app.online()
    })
    .await;
    let second = visitor_says(&relay, "Still encrypted?").await;
    pump_until(&mut core, "the second visitor", |app| {
        app.conversations
            .get(&second)
            .is_some_and(|c| c.summary.preview == "Still encrypted?")
    })
    .await;
    assert!(core.app.conversations.contains_key(&first));
    relay.stop().await;
}

#[tokio::test]
async fn a_relay_signed_by_another_ca_is_refused_with_a_clear_reason() {
    let relay_ca = TestCa::new("the relay's CA");
    let relay = TestRelay::with_tls(&relay_ca, |_| {}).await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let other_ca = TestCa::new("some other CA");
    let ca_file = other_ca.write_pem(&relay.dir.path().join("other-ca.pem"));
    let mut core = wss_client(&relay, ca_file, token);

    pump_until(&mut core, "the refusal", |app| {
        matches!(app.connection, Connection::Offline { .. })
    })
    .await;
    let Connection::Offline { reason, .. } = &core.app.connection else {
        unreachable!("waited for offline")
    };
    assert!(reason.contains("untrusted relay certificate"), "{reason}");
    assert!(reason.contains("UnknownIssuer"), "{reason}");
    assert!(reason.contains("--ca-file"), "{reason}");

    // The agent reads it on the status line.
    let mut terminal = Terminal::new(TestBackend::new(160, 20)).expect("test terminal");
    terminal
        .draw(|frame| kefu_tui::ui::draw(&core.app, frame))
        .expect("draw");
    let screen: String = terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|cell| cell.symbol())
        .collect();
    assert!(screen.contains("untrusted relay certificate"), "{screen}");
    assert!(!core.app.online());
    relay.stop().await;
}

/// Files travel over HTTPS with the same CA file: an upload from a path
/// goes with a reply, and the reply's file downloads again.
#[tokio::test]
async fn files_go_over_https_checked_with_the_ca_file() {
    let ca = TestCa::new("kefu test CA");
    let relay = TestRelay::with_tls(&ca, |_| {}).await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let ca_file = ca.write_pem(&relay.dir.path().join("ca.pem"));
    let mut settings = wss_settings(&relay, ca_file, token);
    let dir = tempfile::tempdir().expect("temp dir");
    settings.files = FileSettings {
        download_dir: dir.path().join("downloads"),
        opener: Vec::new(),
        inline_previews: true,
    };
    let mut core = Core::start(&settings, time::UtcOffset::UTC, None);
    pump_until(&mut core, "the welcome over TLS", |app| app.online()).await;
    let id = visitor_says(&relay, "the invoice?").await;
    pump_until(&mut core, "the visitor", |app| {
        app.conversations.contains_key(&id)
    })
    .await;
    core.app.filter = Filter::Waiting;
    press(&mut core, KeyCode::Enter);

    let pdf = dir.path().join("invoice.pdf");
    std::fs::write(&pdf, b"%PDF-1.4\n%%EOF\n").expect("pdf");
    write(&mut core, &format!("/attach {}", pdf.display()));
    pump_until(&mut core, "the upload over HTTPS", |app| {
        app.conversations[&id].draft.attachments.len() == 1
    })
    .await;
    write(&mut core, "here");
    pump_until(&mut core, "the reply with its file", |app| {
        (app.conversations[&id].messages.values()).any(|m| !m.attachments.is_empty())
    })
    .await;
    core.handle(Input::Key(KeyEvent::new(
        KeyCode::Char('o'),
        KeyModifiers::ALT,
    )));
    pump_until(&mut core, "the download over HTTPS", |app| {
        app.flash
            .as_deref()
            .is_some_and(|f| f.starts_with("saved "))
    })
    .await;
    let saved = dir.path().join("downloads").join("invoice.pdf");
    assert_eq!(std::fs::read(saved).expect("saved"), b"%PDF-1.4\n%%EOF\n");
}
