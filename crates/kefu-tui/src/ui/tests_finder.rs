//! The finder, driven by keys and frames and drawn on a `TestBackend`:
//! search as you type (debounced, stale answers dropped), opening a
//! conversation at a hit with the match highlighted, and the resolved
//! conversations paged from the relay.

use crossterm::event::{KeyCode, KeyModifiers};
use kefu_protocol::AuthorKind;
use kefu_protocol::agent::search::{
    ConversationsPage, ConversationsRequest, SearchField, SearchHit, SearchRequest, SearchResults,
};
use kefu_protocol::agent::{AgentEvent, AgentRequest, ConversationStatus, HistoryPage};
use ratatui::style::Color;

use super::tests::{render, rows};
use crate::app::finder::DEBOUNCE;
use crate::app::tests::{
    NOW, frame, key, message, new_app, press, summary, type_text, welcome_frame,
};
use crate::app::{App, Effect, Input, Overlay};

fn requests(effects: Vec<Effect>) -> Vec<AgentRequest> {
    effects
        .into_iter()
        .filter_map(|effect| match effect {
            Effect::Request(request) => Some(request),
            _ => None,
        })
        .collect()
}

fn searching(app: &mut App, text: &str) -> Vec<AgentRequest> {
    type_text(app, text);
    let still = app.now + DEBOUNCE;
    requests(app.update(Input::Tick(still)))
}

fn results(request_id: &str, hits: Vec<SearchHit>) -> AgentEvent {
    AgentEvent::SearchResults(SearchResults {
        request_id: Some(request_id.into()),
        hits,
        next_cursor: None,
    })
}

fn hit(conversation: &str, seq: u64, snippet: &str) -> SearchHit {
    let mut conversation = summary(conversation, ConversationStatus::Resolved, 60);
    conversation.last_seq = 80;
    conversation.visitor.name = "Olga".into();
    SearchHit {
        conversation,
        field: SearchField::Text,
        seq: Some(seq),
        internal: false,
        at: NOW,
        snippet: snippet.into(),
    }
}

fn online_app() -> App {
    let mut app = new_app();
    frame(&mut app, welcome_frame(Vec::new()));
    app
}

#[test]
fn search_waits_for_the_query_to_be_still_and_drops_stale_answers() {
    let mut app = online_app();
    press(&mut app, KeyCode::Char('f'), KeyModifiers::CONTROL);
    assert_eq!(app.overlay, Overlay::Finder);
    type_text(&mut app, "订");
    assert_eq!(app.next_wake(), Some(NOW + DEBOUNCE), "wakes to search");
    assert!(
        requests(key(&mut app, KeyCode::Char('单'))).is_empty(),
        "not per key"
    );
    let asked = requests(app.update(Input::Tick(NOW + DEBOUNCE)));
    let [
        AgentRequest::Search(SearchRequest {
            request_id, query, ..
        }),
    ] = &asked[..]
    else {
        panic!("one search: {asked:?}");
    };
    assert_eq!(
        (request_id.as_deref(), query.as_str()),
        (Some("f1"), "订单")
    );

    // The agent typed on before the answer came: it is stale.
    assert!(searching(&mut app, "号").len() == 1);
    frame(&mut app, results("f1", vec![hit("c1", 3, "old answer")]));
    assert!(app.finder.hits.is_empty(), "the answer to f1 is dropped");
    frame(&mut app, results("f2", vec![hit("c1", 3, "我的订单号")]));
    assert_eq!(app.finder.hits.len(), 1);

    let screen = rows(&render(&mut app, 80, 12)).join("\n");
    assert!(screen.contains("Search"), "{screen}");
    assert!(screen.contains("› 订单号"), "{screen}");
    assert!(screen.contains("Olga  我的订单号"), "{screen}");
}

#[test]
fn enter_opens_the_conversation_at_the_hit_with_the_words_highlighted() {
    let mut app = online_app();
    render(&mut app, 80, 16);
    press(&mut app, KeyCode::Char('f'), KeyModifiers::CONTROL);
    searching(&mut app, "blue");
    frame(&mut app, results("f1", vec![hit("c9", 5, "a blue shirt")]));

    let asked = requests(key(&mut app, KeyCode::Enter));
    assert_eq!(app.overlay, Overlay::None);
    assert_eq!(app.open.as_deref(), Some("c9"));
    assert!(
        matches!(&asked[..], [AgentRequest::History { conversation_id, before_seq: None, .. }, ..] if conversation_id == "c9"),
        "{asked:?}"
    );
    // The newest page does not reach the hit: the next one back is asked.
    let page = |seqs: std::ops::RangeInclusive<u64>| {
        AgentEvent::History(HistoryPage {
            conversation_id: "c9".into(),
            messages: seqs
                .map(|seq| {
                    let text = if seq == 5 {
                        "I want a BLUE shirt"
                    } else {
                        "filler"
                    };
                    message("c9", seq, AuthorKind::Visitor, text)
                })
                .collect(),
        })
    };
    let asked = requests(frame(&mut app, page(31..=80)));
    assert!(
        asked.contains(&AgentRequest::History {
            conversation_id: "c9".into(),
            before_seq: Some(31),
            limit: Some(crate::app::PAGE),
        }),
        "{asked:?}"
    );
    frame(&mut app, page(1..=30));
    let conversation = &app.conversations["c9"];
    assert!(conversation.scroll > 0, "scrolled up to the hit");

    let buffer = render(&mut app, 80, 16);
    let screen = rows(&buffer);
    let header = screen.iter().position(|row| row.contains("· match"));
    let header = header.unwrap_or_else(|| panic!("the hit is on screen: {screen:#?}"));
    let body = &screen[header + 1];
    let column = body.find("BLUE").expect("the hit's text under its header");
    let x = u16::try_from(body[..column].chars().count()).expect("narrow");
    let cell = &buffer[(x, u16::try_from(header + 1).expect("short"))];
    assert_eq!(cell.bg, Color::Yellow, "the word is highlighted");
}

#[test]
fn resolved_conversations_are_paged_from_the_relay() {
    let mut app = online_app();
    let asked = requests(key(&mut app, KeyCode::Char('H')));
    assert_eq!(
        asked,
        [AgentRequest::Conversations(ConversationsRequest {
            request_id: Some("f1".into()),
            status: Some(ConversationStatus::Resolved),
            cursor: None,
            limit: Some(30),
        })]
    );
    let mut old = summary("c7", ConversationStatus::Resolved, 90);
    old.visitor.name = "Yuki".into();
    old.preview = "thanks, bye".into();
    frame(
        &mut app,
        AgentEvent::Conversations(ConversationsPage {
            request_id: Some("f1".into()),
            conversations: vec![old],
            next_cursor: Some("123:c7".into()),
        }),
    );
    let screen = rows(&render(&mut app, 80, 12)).join("\n");
    assert!(screen.contains("Resolved conversations"), "{screen}");
    assert!(screen.contains("Yuki  thanks, bye"), "{screen}");
    // Down on the last row asks for the next page.
    let asked = requests(key(&mut app, KeyCode::Down));
    assert!(
        matches!(&asked[..], [AgentRequest::Conversations(ConversationsRequest { cursor: Some(c), .. })] if c == "123:c7"),
        "{asked:?}"
    );
    // Enter opens it and loads its history as any conversation's.
    let asked = requests(key(&mut app, KeyCode::Enter));
    assert_eq!(app.open.as_deref(), Some("c7"));
    assert!(
        matches!(&asked[..], [AgentRequest::History { .. }, ..]),
        "{asked:?}"
    );
}
