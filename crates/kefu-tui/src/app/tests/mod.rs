//! Event in, state out: the app driven one input at a time. The fixtures
//! are here (the drawing tests use them too); the tests are by concern.

mod actions;
mod attention;
mod conventions;
pub(crate) mod files;
mod frames;
mod order;
mod replies;
mod targets;
mod wake;

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
pub(crate) const BOB: &str = "a-bob";

pub(crate) fn prefs() -> Prefs {
    Prefs {
        notify: Notify::default(),
        enter_sends: true,
        canned: vec![Canned {
            shortcut: "hi".into(),
            text: "Hello! How can I help?".into(),
        }],
        relay_page: "http://relay.test".into(),
        previews: false,
        inline_cell: None,
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
        visitor_messages: 0,
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
        attachments: Vec::new(),
        conversation_id: conversation.into(),
        seq,
        id: format!("m-{conversation}-{seq}"),
        client_id: format!("c-{conversation}-{seq}"),
        author: Author { kind, id, name },
        text: text.into(),
        at: NOW - time::Duration::minutes(10 - seq as i64),
        internal: false,
        event: None,
        link: None,
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
        read_marks: Vec::new(),
        totals: None,
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

pub(crate) fn requests(effects: &[Effect]) -> Vec<AgentRequest> {
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

/// The desk from issue 16, on the Waiting tab: Olga (`olga`, waiting
/// longest), Visitor #8116 (`v8116`) and Guest 7 (`g7`, 2 unanswered
/// messages) waiting; 张伟 (`zw`) the agent's own.
pub(crate) fn desk() -> App {
    let named = |id: &str, name: &str, status, minutes_ago| {
        let mut s = summary(id, status, minutes_ago);
        s.visitor.name = name.into();
        s
    };
    let mut guest = named("g7", "Guest 7", ConversationStatus::Waiting, 1);
    guest.unread = 2;
    guest.visitor_messages = 2;
    guest.last_seq = 2;
    let mut app = new_app();
    frame(
        &mut app,
        welcome_frame(vec![
            named("olga", "Olga", ConversationStatus::Waiting, 9),
            named("v8116", "Visitor #8116", ConversationStatus::Waiting, 5),
            guest,
            named("zw", "张伟", ConversationStatus::Active, 3),
        ]),
    );
    app.filter = Filter::Waiting;
    app
}

/// The relay's summary after `id` changed hands (or was resolved).
pub(crate) fn changed(
    app: &mut App,
    id: &str,
    status: ConversationStatus,
    assignee: Option<&str>,
) -> Vec<Effect> {
    let mut summary = app.conversations[id].summary.clone();
    summary.status = status;
    summary.assignee = assignee.map(str::to_owned);
    summary.waiting_since = None;
    frame(app, AgentEvent::Conversation(ConversationFrame { summary }))
}

fn outgoing(app: &App, conversation: &str) -> Vec<Outgoing> {
    app.conversations[conversation].outgoing.clone()
}
