//! Event in, state out: the app driven one input at a time.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use kefu_protocol::agent::{
    AgentEvent, AgentInfo, AgentPresence, AgentRequest, AgentWelcome, ConversationFrame,
    ConversationStatus, ConversationSummary, HistoryPage, Role, VisitorSummary,
};
use kefu_protocol::{
    Ack, AgentState, Author, AuthorKind, ErrorCode, ErrorFrame, Message, Presence, PresenceKind,
};
use time::macros::datetime;
use time::{OffsetDateTime, UtcOffset};

use super::*;
use crate::config::Canned;

pub(crate) const NOW: OffsetDateTime = datetime!(2026-11-23 10:00 UTC);
pub(crate) const ME: &str = "a-alice";
const BOB: &str = "a-bob";

pub(crate) fn prefs() -> Prefs {
    Prefs {
        notify: Notify::default(),
        enter_sends: true,
        canned: vec![Canned {
            shortcut: "hi".into(),
            text: "Hello! How can I help?".into(),
        }],
    }
}

pub(crate) fn new_app() -> App {
    App::new(prefs(), NOW, UtcOffset::UTC)
}

pub(crate) fn summary(
    id: &str,
    status: ConversationStatus,
    minutes_ago: i64,
) -> ConversationSummary {
    let at = NOW - time::Duration::minutes(minutes_ago);
    ConversationSummary {
        id: id.into(),
        visitor: VisitorSummary {
            id: format!("v-{id}"),
            name: format!("Visitor {id}"),
            online: true,
            ..VisitorSummary::default()
        },
        status,
        assignee: (status == ConversationStatus::Active).then(|| ME.to_owned()),
        last_seq: 0,
        unread: 0,
        preview: String::new(),
        visitor_read_seq: 0,
        waiting_since: (status == ConversationStatus::Waiting).then_some(at),
        updated_at: at,
    }
}

pub(crate) fn message(conversation: &str, seq: u64, kind: AuthorKind, text: &str) -> Message {
    let (id, name) = match kind {
        AuthorKind::Visitor => (
            format!("v-{conversation}"),
            format!("Visitor {conversation}"),
        ),
        _ => (ME.to_owned(), "alice".to_owned()),
    };
    Message {
        conversation_id: conversation.into(),
        seq,
        id: format!("m-{conversation}-{seq}"),
        client_id: format!("c-{conversation}-{seq}"),
        author: Author { kind, id, name },
        text: text.into(),
        at: NOW - time::Duration::minutes(10 - seq as i64),
        internal: false,
    }
}

pub(crate) fn welcome_frame(conversations: Vec<ConversationSummary>) -> AgentEvent {
    let agent = |id: &str, name: &str| AgentPresence {
        id: id.into(),
        name: name.into(),
        online: true,
        state: AgentState::Available,
    };
    AgentEvent::Welcome(AgentWelcome {
        agent: AgentInfo {
            id: ME.into(),
            name: "alice".into(),
            role: Role::Agent,
        },
        agents: vec![agent(ME, "alice"), agent(BOB, "bob")],
        conversations,
    })
}

pub(crate) fn frame(app: &mut App, event: AgentEvent) -> Vec<Effect> {
    app.update(Input::Net(NetEvent::Frame(Box::new(event))))
}

pub(crate) fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    press(app, code, KeyModifiers::NONE)
}

pub(crate) fn press(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Effect> {
    app.update(Input::Key(KeyEvent::new(code, modifiers)))
}

pub(crate) fn type_text(app: &mut App, text: &str) {
    for ch in text.chars() {
        key(app, KeyCode::Char(ch));
    }
}

fn requests(effects: &[Effect]) -> Vec<AgentRequest> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Request(request) => Some(request.clone()),
            _ => None,
        })
        .collect()
}

fn notifications(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Notify(n) => Some(format!("{}: {}", n.title, n.body)),
            _ => None,
        })
        .collect()
}

fn sends(effects: &[Effect]) -> Vec<(String, String)> {
    requests(effects)
        .into_iter()
        .filter_map(|request| match request {
            AgentRequest::Send {
                client_id, text, ..
            } => Some((client_id, text)),
            _ => None,
        })
        .collect()
}

fn ack(conversation: &str, client_id: &str, seq: u64) -> AgentEvent {
    AgentEvent::Ack(Ack {
        client_id: client_id.into(),
        conversation_id: conversation.into(),
        seq,
        id: format!("m-{seq}"),
        at: NOW,
    })
}

/// An app signed in, with `k1` waiting (oldest), `k2` waiting, `k3` mine.
fn signed_in() -> App {
    let mut app = new_app();
    let effects = frame(
        &mut app,
        welcome_frame(vec![
            summary("k1", ConversationStatus::Waiting, 5),
            summary("k2", ConversationStatus::Waiting, 2),
            summary("k3", ConversationStatus::Active, 1),
        ]),
    );
    assert!(
        notifications(&effects).is_empty(),
        "the first queue is not news"
    );
    app
}

/// `signed_in`, with `k1` open: its (empty) history page answered.
fn with_k1_open() -> App {
    let mut app = signed_in();
    key(&mut app, KeyCode::Enter);
    frame(
        &mut app,
        AgentEvent::History(HistoryPage {
            conversation_id: "k1".into(),
            messages: vec![],
        }),
    );
    app
}

fn outgoing(app: &App, conversation: &str) -> Vec<Outgoing> {
    app.conversations[conversation].outgoing.clone()
}

#[test]
fn claim_sends_a_request_and_the_summary_moves_the_conversation_to_mine() {
    let mut app = signed_in();
    assert_eq!(
        app.rows(),
        ["k1", "k2", "k3"],
        "waiting first, oldest on top"
    );
    assert_eq!(app.waiting_count(), 2);
    let effects = key(&mut app, KeyCode::Char('c'));
    assert_eq!(
        requests(&effects),
        [AgentRequest::Claim {
            conversation_id: "k1".into()
        }]
    );
    let mut claimed = summary("k1", ConversationStatus::Active, 0);
    claimed.assignee = Some(ME.into());
    frame(
        &mut app,
        AgentEvent::Conversation(ConversationFrame { summary: claimed }),
    );
    assert_eq!(app.waiting_count(), 1);
    app.filter = Filter::Mine;
    assert_eq!(app.rows(), ["k1", "k3"], "most recent first");
}

#[test]
fn enter_opens_follows_and_focuses_compose() {
    let mut app = signed_in();
    key(&mut app, KeyCode::Down);
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(app.open.as_deref(), Some("k2"));
    assert_eq!(app.focus, Focus::Compose);
    assert_eq!(
        requests(&effects),
        [AgentRequest::History {
            conversation_id: "k2".into(),
            before_seq: None,
            limit: Some(PAGE),
        }]
    );
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.focus, Focus::Queue);
    let again = key(&mut app, KeyCode::Enter);
    assert!(requests(&again).is_empty(), "already followed");
}

#[test]
fn switching_keeps_a_draft_per_conversation() {
    let mut app = with_k1_open();
    type_text(&mut app, "for k1");
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.open.as_deref(), Some("k2"));
    type_text(&mut app, "for k2");
    press(&mut app, KeyCode::Char('3'), KeyModifiers::ALT);
    assert_eq!(app.open.as_deref(), Some("k3"));
    key(&mut app, KeyCode::BackTab);
    key(&mut app, KeyCode::BackTab);
    assert_eq!(app.open.as_deref(), Some("k1"));
    assert_eq!(app.conversations["k1"].draft.buffer.text(), "for k1");
    assert_eq!(app.conversations["k2"].draft.buffer.text(), "for k2");
    key(&mut app, KeyCode::BackTab);
    assert_eq!(app.open.as_deref(), Some("k3"), "wraps around");
}

#[test]
fn activity_jump_prefers_waiting_visitors() {
    let mut app = signed_in();
    press(&mut app, KeyCode::Char('3'), KeyModifiers::ALT);
    key(&mut app, KeyCode::Esc);
    // A message in k3 while another conversation is on screen.
    press(&mut app, KeyCode::Char('1'), KeyModifiers::ALT);
    frame(
        &mut app,
        AgentEvent::Message(message("k3", 1, AuthorKind::Visitor, "hi")),
    );
    assert!(app.conversations["k3"].activity);
    press(&mut app, KeyCode::Char('n'), KeyModifiers::CONTROL);
    assert_eq!(app.open.as_deref(), Some("k2"), "the waiting visitor first");
    press(&mut app, KeyCode::Char('a'), KeyModifiers::ALT);
    assert_eq!(app.open.as_deref(), Some("k1"));
    press(&mut app, KeyCode::Char('p'), KeyModifiers::CONTROL);
    assert_eq!(
        app.open.as_deref(),
        Some("k3"),
        "Ctrl-P takes the other end"
    );
    assert!(!app.conversations["k3"].activity, "opening clears activity");
}

#[test]
fn unread_messages_notify_off_screen_and_are_marked_read_on_screen() {
    let mut app = with_k1_open();
    let effects = frame(
        &mut app,
        AgentEvent::Message(message("k2", 1, AuthorKind::Visitor, "hello?")),
    );
    assert_eq!(notifications(&effects), ["New message: Visitor k2: hello?"]);
    assert!(requests(&effects).is_empty(), "not on screen: not read");
    assert_eq!(app.conversations["k2"].summary.unread, 1);

    let effects = frame(
        &mut app,
        AgentEvent::Message(message("k1", 1, AuthorKind::Visitor, "here")),
    );
    assert!(notifications(&effects).is_empty(), "on screen: no bell");
    assert_eq!(
        requests(&effects),
        [AgentRequest::Read {
            conversation_id: "k1".into(),
            up_to_seq: 1
        }]
    );
    assert_eq!(app.conversations["k1"].summary.unread, 0);

    let effects = key(&mut app, KeyCode::Tab);
    assert!(requests(&effects).contains(&AgentRequest::Read {
        conversation_id: "k2".into(),
        up_to_seq: 1
    }));
}

#[test]
fn opening_a_colleagues_conversation_marks_read_what_its_next_summary_counts() {
    let mut app = signed_in();
    let mut theirs = summary("k5", ConversationStatus::Active, 3);
    theirs.assignee = Some(BOB.into());
    theirs.last_seq = 2;
    theirs.unread = 1;
    frame(
        &mut app,
        AgentEvent::Conversation(ConversationFrame {
            summary: theirs.clone(),
        }),
    );
    assert_eq!(app.rows(), ["k1", "k2", "k3", "k5"]);
    for _ in 0..3 {
        key(&mut app, KeyCode::Down);
    }
    let effects = key(&mut app, KeyCode::Enter);
    assert!(requests(&effects).contains(&AgentRequest::Read {
        conversation_id: "k5".into(),
        up_to_seq: 2
    }));

    // The relay's summary of it was behind: the current one comes now.
    theirs.last_seq = 4;
    theirs.unread = 3;
    let effects = frame(
        &mut app,
        AgentEvent::Conversation(ConversationFrame { summary: theirs }),
    );
    assert_eq!(
        requests(&effects),
        [AgentRequest::Read {
            conversation_id: "k5".into(),
            up_to_seq: 4
        }]
    );
    assert_eq!(app.conversations["k5"].summary.unread, 0);
}

#[test]
fn a_new_waiting_visitor_rings_once() {
    let mut app = signed_in();
    let effects = frame(
        &mut app,
        AgentEvent::Message(message("k9", 1, AuthorKind::Visitor, "hi")),
    );
    assert_eq!(notifications(&effects), ["New visitor: Visitor k9: hi"]);
    let mut new = summary("k9", ConversationStatus::Waiting, 0);
    new.last_seq = 1;
    new.unread = 1;
    let effects = frame(
        &mut app,
        AgentEvent::Conversation(ConversationFrame { summary: new }),
    );
    assert!(
        notifications(&effects).is_empty(),
        "the summary is no second news"
    );
    assert_eq!(app.waiting_count(), 3);
}

#[test]
fn a_reply_is_pending_until_acked() {
    let mut app = with_k1_open();
    type_text(&mut app, "Hi there");
    let effects = key(&mut app, KeyCode::Enter);
    let sent = sends(&effects);
    assert_eq!(sent.len(), 1);
    let (client_id, text) = &sent[0];
    assert_eq!(text, "Hi there");
    assert!(app.conversations["k1"].draft.buffer.is_empty());
    assert_eq!(outgoing(&app, "k1")[0].state, SendState::Pending);

    frame(&mut app, ack("k1", client_id, 1));
    let conversation = &app.conversations["k1"];
    assert!(conversation.outgoing.is_empty());
    let stored = &conversation.messages[&1];
    assert_eq!(
        (stored.text.as_str(), stored.author.id.as_str()),
        ("Hi there", ME)
    );
}

#[test]
fn unacked_replies_are_resent_with_their_client_id_after_a_reconnect() {
    let mut app = with_k1_open();
    type_text(&mut app, "are you there?");
    let (client_id, _) = sends(&key(&mut app, KeyCode::Enter)).remove(0);
    app.update(Input::Net(NetEvent::Disconnected {
        reason: "closed".into(),
        retry_in: Duration::from_millis(500),
    }));
    assert!(!app.online());
    // Written while offline: kept, not sent.
    type_text(&mut app, "second");
    let offline = key(&mut app, KeyCode::Enter);
    assert!(requests(&offline).is_empty());

    let mut k1 = summary("k1", ConversationStatus::Waiting, 5);
    k1.last_seq = 1;
    let effects = frame(&mut app, welcome_frame(vec![k1]));
    let resent = sends(&effects);
    assert_eq!(resent.len(), 2);
    assert_eq!(resent[0], (client_id.clone(), "are you there?".to_owned()));
    assert!(
        requests(&effects).contains(&AgentRequest::History {
            conversation_id: "k1".into(),
            before_seq: None,
            limit: Some(PAGE)
        }),
        "follows the open conversation again"
    );
    // The first was stored before the drop: history shows it, acks repeat.
    let mut stored = message("k1", 1, AuthorKind::Agent, "are you there?");
    stored.client_id = client_id.clone();
    frame(
        &mut app,
        AgentEvent::History(HistoryPage {
            conversation_id: "k1".into(),
            messages: vec![stored],
        }),
    );
    frame(&mut app, ack("k1", &client_id, 1));
    frame(&mut app, ack("k1", &resent[1].0, 2));
    let conversation = &app.conversations["k1"];
    assert!(conversation.outgoing.is_empty());
    let texts: Vec<&str> = conversation
        .messages
        .values()
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(texts, ["are you there?", "second"], "each once, in order");
}

#[test]
fn duplicates_from_live_and_history_are_kept_once() {
    let mut app = with_k1_open();
    frame(
        &mut app,
        AgentEvent::Message(message("k1", 1, AuthorKind::Visitor, "one")),
    );
    frame(
        &mut app,
        AgentEvent::History(HistoryPage {
            conversation_id: "k1".into(),
            messages: vec![
                message("k1", 1, AuthorKind::Visitor, "one"),
                message("k1", 2, AuthorKind::Visitor, "two"),
            ],
        }),
    );
    frame(
        &mut app,
        AgentEvent::Message(message("k1", 2, AuthorKind::Visitor, "two")),
    );
    let seqs: Vec<u64> = app.conversations["k1"].messages.keys().copied().collect();
    assert_eq!(seqs, [1, 2]);
}

#[test]
fn a_hole_after_a_reconnect_is_paged_back() {
    let mut app = with_k1_open();
    for seq in 1..=3 {
        frame(
            &mut app,
            AgentEvent::Message(message("k1", seq, AuthorKind::Visitor, "x")),
        );
    }
    let page: Vec<Message> = (60..110)
        .map(|seq| message("k1", seq, AuthorKind::Visitor, "y"))
        .collect();
    let effects = frame(
        &mut app,
        AgentEvent::History(HistoryPage {
            conversation_id: "k1".into(),
            messages: page,
        }),
    );
    assert_eq!(
        requests(&effects),
        [AgentRequest::History {
            conversation_id: "k1".into(),
            before_seq: Some(60),
            limit: Some(PAGE)
        }]
    );
}

#[test]
fn a_refused_reply_fails_and_retries_with_the_same_client_id() {
    let mut app = with_k1_open();
    type_text(&mut app, "too late");
    let (client_id, _) = sends(&key(&mut app, KeyCode::Enter)).remove(0);
    frame(
        &mut app,
        AgentEvent::Error(
            ErrorFrame::new(ErrorCode::Conflict, "claimed by bob").with_ref(client_id.clone()),
        ),
    );
    assert_eq!(
        outgoing(&app, "k1")[0].state,
        SendState::Failed("claimed by bob".into())
    );
    let effects = press(&mut app, KeyCode::Char('r'), KeyModifiers::ALT);
    assert_eq!(sends(&effects), [(client_id, "too late".to_owned())]);
    assert_eq!(outgoing(&app, "k1")[0].state, SendState::Pending);
}

#[test]
fn slash_shortcut_expands_before_sending() {
    let mut app = with_k1_open();
    type_text(&mut app, "/hi");
    let effects = key(&mut app, KeyCode::Enter);
    assert!(requests(&effects).is_empty());
    assert_eq!(
        app.conversations["k1"].draft.buffer.text(),
        "Hello! How can I help?"
    );
    assert_eq!(sends(&key(&mut app, KeyCode::Enter)).len(), 1);
}

#[test]
fn canned_picker_inserts_into_the_draft() {
    let mut app = with_k1_open();
    press(&mut app, KeyCode::Char('r'), KeyModifiers::CONTROL);
    assert_eq!(app.overlay, Overlay::Canned { index: 0 });
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.overlay, Overlay::None);
    assert_eq!(
        app.conversations["k1"].draft.buffer.text(),
        "Hello! How can I help?"
    );
}

#[test]
fn internal_notes_are_sent_as_internal() {
    let mut app = with_k1_open();
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('i'));
    key(&mut app, KeyCode::Enter);
    type_text(&mut app, "VIP");
    let effects = key(&mut app, KeyCode::Enter);
    assert!(matches!(
        requests(&effects).as_slice(),
        [AgentRequest::Send { internal: true, .. }]
    ));
}

#[test]
fn transfer_picks_an_online_colleague() {
    let mut app = signed_in();
    key(&mut app, KeyCode::Char('t'));
    let Overlay::Transfer { choices, .. } = &app.overlay else {
        panic!("expected the transfer picker, got {:?}", app.overlay);
    };
    assert_eq!(choices, &[(BOB.to_owned(), "bob".to_owned())]);
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(
        requests(&effects),
        [AgentRequest::Transfer {
            conversation_id: "k1".into(),
            to_agent: BOB.into()
        }]
    );
}

#[test]
fn away_is_restored_after_the_relay_forgets_it() {
    let mut app = signed_in();
    let effects = key(&mut app, KeyCode::Char('a'));
    assert_eq!(
        requests(&effects),
        [AgentRequest::Status {
            state: AgentState::Away
        }]
    );
    frame(
        &mut app,
        AgentEvent::Presence(Presence {
            kind: PresenceKind::Agent,
            id: ME.into(),
            online: true,
            state: Some(AgentState::Away),
            agents_online: None,
        }),
    );
    assert_eq!(app.my_state, AgentState::Away);
    // A restarted relay welcomes us as available again.
    let effects = frame(&mut app, welcome_frame(vec![]));
    assert!(requests(&effects).contains(&AgentRequest::Status {
        state: AgentState::Away
    }));
}

#[test]
fn quitting_asks_only_when_text_would_be_lost() {
    let mut app = with_k1_open();
    type_text(&mut app, "unsent");
    key(&mut app, KeyCode::Esc);
    assert!(key(&mut app, KeyCode::Char('q')).is_empty());
    assert_eq!(app.overlay, Overlay::ConfirmQuit);
    key(&mut app, KeyCode::Char('n'));
    assert_eq!(app.overlay, Overlay::None);
    key(&mut app, KeyCode::Char('q'));
    assert_eq!(key(&mut app, KeyCode::Char('y')), [Effect::Quit]);

    let mut clean = signed_in();
    assert_eq!(
        press(&mut clean, KeyCode::Char('c'), KeyModifiers::CONTROL),
        [Effect::Quit]
    );
}

#[test]
fn a_click_opens_the_conversation_under_it() {
    let mut app = signed_in();
    app.update(Input::Resize {
        width: 80,
        height: 24,
    });
    // The queue's border is row 0; each entry takes two rows from row 1.
    app.update(Input::Click { column: 5, row: 4 });
    assert_eq!(app.open.as_deref(), Some("k2"));
}

#[test]
fn page_up_at_the_top_asks_for_older_messages() {
    let mut app = with_k1_open();
    let page: Vec<Message> = (51..=100)
        .map(|seq| message("k1", seq, AuthorKind::Visitor, "line"))
        .collect();
    frame(
        &mut app,
        AgentEvent::History(HistoryPage {
            conversation_id: "k1".into(),
            messages: page,
        }),
    );
    let mut asked = Vec::new();
    for _ in 0..20 {
        asked.extend(requests(&key(&mut app, KeyCode::PageUp)));
    }
    assert_eq!(
        asked,
        [AgentRequest::History {
            conversation_id: "k1".into(),
            before_seq: Some(51),
            limit: Some(PAGE)
        }],
        "asked once, while the page is on its way"
    );
    assert!(app.conversations["k1"].loading_older);
}

#[test]
fn escapes_in_received_text_never_reach_the_state() {
    let mut app = with_k1_open();
    let mut evil = message(
        "k1",
        1,
        AuthorKind::Visitor,
        "hi\u{1b}]0;owned\u{7}\u{1b}[2Jthere",
    );
    evil.author.name = "Eve\u{1b}[31m".into();
    frame(&mut app, AgentEvent::Message(evil));
    let stored = &app.conversations["k1"].messages[&1];
    assert_eq!(
        (stored.text.as_str(), stored.author.name.as_str()),
        ("hithere", "Eve")
    );
}

#[test]
fn conversations_resolved_while_offline_leave_the_queue() {
    let mut app = signed_in();
    app.update(Input::Net(NetEvent::Disconnected {
        reason: "closed".into(),
        retry_in: Duration::from_secs(1),
    }));
    frame(
        &mut app,
        welcome_frame(vec![summary("k2", ConversationStatus::Waiting, 2)]),
    );
    assert_eq!(app.rows(), ["k2"]);
}
