//! The client's core against a real relay and a real visitor: keys in, frames
//! over real sockets, and a relay restart that must not lose or repeat a
//! reply whose ack never arrived.

mod cli;
mod files;
mod flood;
mod search;
mod support;
mod tls;
mod trail;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use kefu_protocol::agent::ConversationStatus;
use std::time::Duration;

use kefu_protocol::agent::{AgentEvent, Role};
use kefu_protocol::visitor::VisitorEvent;
use kefu_testkit::TestRelay;
use kefu_tui::app::{Connection, Filter, Input, NetEvent, SendState};
use kefu_tui::config::{FileSettings, KeyPrefs, Notify, Settings};
use kefu_tui::core::Core;
use kefu_tui::keys::Focus;

use support::{Proxy, pump_until, shop_visitor};

/// The client's core, connecting to the relay (or proxy) at `addr`.
fn client(addr: std::net::SocketAddr, token: String) -> Core {
    let files = FileSettings {
        download_dir: std::env::temp_dir().join("kefu-tui-e2e-unused"),
        opener: Vec::new(),
        inline_previews: true,
    };
    client_with_files(addr, token, files, None)
}

/// The same, saving files where `files` says, in a terminal with the
/// graphics of `picker`.
fn client_with_files(
    addr: std::net::SocketAddr,
    token: String,
    files: FileSettings,
    picker: Option<ratatui_image::picker::Picker>,
) -> Core {
    let settings = Settings {
        url: format!("ws://{addr}/ws/agent"),
        token,
        tls: None,
        log_file: None,
        mouse: true,
        notify: Notify::default(),
        keys: KeyPrefs::default(),
        canned: Vec::new(),
        files,
    };
    Core::start(&settings, time::UtcOffset::UTC, picker)
}

fn press(core: &mut Core, code: KeyCode) {
    core.handle(Input::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn write(core: &mut Core, text: &str) {
    text.chars().for_each(|ch| press(core, KeyCode::Char(ch)));
    press(core, KeyCode::Enter);
}

#[tokio::test]
async fn a_reply_survives_a_relay_restart_exactly_once() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let proxy = Proxy::start(relay.addr).await;
    let mut core = client(proxy.addr, token);
    pump_until(&mut core, "the welcome", |app| app.online()).await;

    // A visitor writes: the conversation shows up in the waiting queue.
    let (mut visitor, welcome) = shop_visitor(relay.addr, None, None).await;
    let (question, _) = visitor
        .say_noting_messages("v1", "Is the blue one in stock?")
        .await;
    let id = question.conversation_id.clone();
    pump_until(&mut core, "the new conversation", |app| {
        app.conversations
            .get(&id)
            .is_some_and(|c| c.summary.preview == "Is the blue one in stock?")
    })
    .await;
    core.app.filter = Filter::Waiting;
    assert_eq!(core.app.rows(), std::slice::from_ref(&id));
    assert_eq!(core.app.conversations[&id].summary.visitor.name, "Ming");

    // The agent opens it and replies; replying claims it.
    press(&mut core, KeyCode::Enter);
    assert_eq!(core.app.focus, Focus::Compose);
    pump_until(&mut core, "the history", |app| {
        app.conversations[&id].messages.contains_key(&1)
    })
    .await;
    write(&mut core, "Yes, in all sizes!");
    let reply = visitor.next_message().await;
    assert_eq!((reply.seq, reply.text.as_str()), (2, "Yes, in all sizes!"));
    pump_until(&mut core, "the ack and the claim", |app| {
        let c = &app.conversations[&id];
        c.outgoing.is_empty()
            && c.messages.contains_key(&2)
            && c.summary.status == ConversationStatus::Active
            && c.summary.assignee.as_deref() == app.me_id()
    })
    .await;

    // The relay stores the next reply, but its ack is lost on the way back.
    proxy.swallow_answers(true);
    write(&mut core, "Anything else?");
    let stored = visitor.next_message().await;
    assert_eq!((stored.seq, stored.text.as_str()), (3, "Anything else?"));
    let pending = &core.app.conversations[&id].outgoing;
    assert_eq!(pending.len(), 1, "no ack came: still pending");
    assert_eq!(pending[0].state, SendState::Pending);
    let client_id = pending[0].client_id.clone();

    // The relay restarts on the same database.
    let dir = relay.stop().await;
    pump_until(&mut core, "the disconnect", |app| !app.online()).await;
    // Written while offline: kept until the connection is back.
    write(&mut core, "One more thing");
    assert_eq!(core.app.conversations[&id].outgoing.len(), 2);
    let relay = TestRelay::reopen(dir).await;
    proxy.point_to(relay.addr);
    proxy.swallow_answers(false);
    pump_until(&mut core, "the resend's acks", |app| {
        app.online() && app.conversations[&id].outgoing.is_empty()
    })
    .await;
    let conversation = &core.app.conversations[&id];
    let held: Vec<(u64, &str)> = conversation
        .messages
        .values()
        .map(|m| (m.seq, m.text.as_str()))
        .collect();
    assert_eq!(
        held,
        [
            (1, "Is the blue one in stock?"),
            (2, "Yes, in all sizes!"),
            (3, "Anything else?"),
            (4, "One more thing"),
        ]
    );
    assert_eq!(conversation.messages[&3].client_id, client_id);
    assert_eq!(core.app.connection, Connection::Online);

    // The visitor, back with their token, gets every reply exactly once.
    let (mut visitor, _) = shop_visitor(relay.addr, Some(&welcome.token), Some(0)).await;
    let mut replayed = Vec::new();
    while replayed.len() < 4 {
        let message = visitor.next_message().await;
        replayed.push((message.seq, message.text));
    }
    let (marker, late) = visitor.say_noting_messages("v2", "bye").await;
    assert!(late.is_empty(), "replayed twice: {late:?}");
    assert_eq!(marker.seq, 5, "nothing was stored twice");
    let texts: Vec<&str> = replayed.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "Is the blue one in stock?",
            "Yes, in all sizes!",
            "Anything else?",
            "One more thing"
        ]
    );
    pump_until(&mut core, "the visitor's goodbye", |app| {
        app.conversations[&id].messages.contains_key(&5)
    })
    .await;
}

/// Issue 16, repro 3, against a real relay: alice opening a waiting chat
/// clears her own count only; the visitor sees no "seen" and bob's count
/// is untouched.
#[tokio::test]
async fn opening_a_waiting_chat_shows_the_visitor_no_seen_and_leaves_colleagues_counts() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let bob_token = relay.add_agent("bob", Role::Agent).await;
    let mut core = client(relay.addr, token);
    pump_until(&mut core, "the welcome", |app| app.online()).await;
    let (mut visitor, _) = shop_visitor(relay.addr, None, None).await;
    let (first, _) = visitor.say_noting_messages("v1", "Hello?").await;
    visitor.say_noting_messages("v2", "Anyone there?").await;
    let id = first.conversation_id.clone();
    pump_until(&mut core, "both messages counted", |app| {
        app.conversations
            .get(&id)
            .is_some_and(|c| c.summary.visitor_messages == 2)
    })
    .await;
    core.app.filter = Filter::Waiting;
    assert_eq!(core.app.conversations[&id].unread(), 2);

    // Alice opens it (a peek: she does not answer) and starts typing.
    press(&mut core, KeyCode::Enter);
    assert_eq!(core.app.conversations[&id].unread(), 0, "her own count");
    pump_until(&mut core, "the history", |app| {
        app.conversations[&id].messages.contains_key(&2)
    })
    .await;
    // Her typing goes out after her read, about the same conversation: the
    // relay has dealt with the read before it passes the typing on.
    press(&mut core, KeyCode::Char('x'));
    let first = visitor
        .until(|event| match event {
            VisitorEvent::Read(_) | VisitorEvent::Typing(_) => Some(event),
            _ => None,
        })
        .await;
    assert!(
        matches!(first, VisitorEvent::Typing(_)),
        "the peek showed the visitor {first:?}"
    );

    // Bob still has both messages to read.
    let (_bob, welcome) = relay.welcomed_agent(&bob_token).await;
    let summary = (welcome.conversations.iter())
        .find(|c| c.id == id)
        .expect("still waiting");
    let bobs_mark = welcome.read_marks.iter().find(|m| m.conversation_id == id);
    assert_eq!(summary.unread_for(bobs_mark), 2);
    assert_eq!(summary.unread, 2, "nobody answering has read it");
}

#[tokio::test]
async fn a_refused_token_is_reported_and_not_retried() {
    let relay = TestRelay::start().await;
    let mut core = client(relay.addr, "kefu_not-a-token".into());
    pump_until(&mut core, "the refusal", |app| {
        matches!(app.connection, Connection::Rejected(_))
    })
    .await;
    assert!(
        core.next_input().await.is_none(),
        "the network task stopped"
    );
}

#[tokio::test]
async fn the_relay_says_when_to_come_back_and_is_obeyed() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut core = client(relay.addr, token);
    pump_until(&mut core, "the welcome", |app| app.online()).await;
    let stopping = tokio::spawn(relay.stop());
    // The relay announces the restart, then closes: the network task waits
    // the time announced rather than its own backoff.
    let mut announced = None;
    let retry_in = loop {
        let input = tokio::time::timeout(support::PATIENCE, core.next_input())
            .await
            .expect("the relay's goodbye in time")
            .expect("the network task runs");
        let Input::Net(event) = input else {
            core.handle(input);
            continue;
        };
        match &event {
            NetEvent::Frame(frame) => {
                if let AgentEvent::Reconnect(reconnect) = frame.as_ref() {
                    announced = Some(Duration::from_millis(reconnect.after_ms));
                }
            }
            NetEvent::Disconnected { retry_in, .. } => break *retry_in,
            _ => {}
        }
        core.handle(Input::Net(event));
    };
    assert_eq!(Some(retry_in), announced, "reconnect after_ms is honoured");
    stopping.await.expect("relay stopped");
}
