//! Where the visitor is, in the conversation header and the visitor panel,
//! and link cards in the history: drawn from the frames the relay sends,
//! live.

use crossterm::event::KeyCode;
use kefu_protocol::agent::{AgentEvent, AgentRequest, ConversationFrame, ConversationStatus};
use kefu_protocol::agent::{PageViewFrame, VisitorRecord};
use kefu_protocol::trail::{LinkCard, PageView};
use kefu_protocol::{Ack, AuthorKind, Message};

use super::{render, rows};
use crate::app::Overlay;
use crate::app::tests::{
    NOW, frame, key, message, new_app, requests, summary, type_text, welcome_frame,
};

fn row_with<'a>(screen: &'a [String], needle: &str) -> Option<&'a String> {
    screen.iter().find(|row| row.contains(needle))
}

#[test]
fn the_header_follows_the_visitor_from_page_to_page() {
    let mut app = new_app();
    let mut k1 = summary("k1", ConversationStatus::Waiting, 1);
    k1.visitor.page_url = Some("https://shop.example/shoes?size=44".into());
    k1.visitor.page_title = Some("Shoes".into());
    k1.visitor.referrer = Some("https://search.example/?q=shoes".into());
    frame(&mut app, welcome_frame(vec![k1.clone()]));
    key(&mut app, KeyCode::Enter);
    let screen = rows(&render(&mut app, 120, 12));
    assert!(
        row_with(&screen, "now on /shoes?size=44 — Shoes").is_some(),
        "{screen:#?}"
    );
    assert!(
        row_with(&screen, "from search.example/?q=shoes").is_some(),
        "where they came from: {screen:#?}"
    );

    // The relay's summary after a page view: the header moves with it.
    k1.visitor.page_url = Some("https://shop.example/checkout".into());
    k1.visitor.page_title = Some("Checkout \u{1b}[31mnow".into());
    frame(
        &mut app,
        AgentEvent::Conversation(ConversationFrame { summary: k1 }),
    );
    let screen = rows(&render(&mut app, 120, 12));
    let header = row_with(&screen, "now on /checkout").expect("the new page");
    assert!(header.contains("— Checkout"), "{header}");
    assert!(
        !header.contains('\u{1b}'),
        "titles are untrusted text: {header:?}"
    );
}

#[test]
fn link_cards_show_their_label_and_address_and_slash_link_sends_one() {
    let mut app = new_app();
    frame(
        &mut app,
        welcome_frame(vec![summary("k1", ConversationStatus::Active, 1)]),
    );
    key(&mut app, KeyCode::Enter);
    let mut card: Message = message("k1", 1, AuthorKind::Agent, "Open the checkout");
    card.link = Some(Box::new(LinkCard {
        url: "https://shop.example/checkout".into(),
        label: "Open the checkout".into(),
    }));
    frame(&mut app, AgentEvent::Message(card));
    let screen = rows(&render(&mut app, 120, 12));
    assert!(
        row_with(
            &screen,
            "[link] Open the checkout → https://shop.example/checkout"
        )
        .is_some(),
        "{screen:#?}"
    );

    type_text(&mut app, "/link https://shop.example/pay Pay now");
    let sent = requests(&key(&mut app, KeyCode::Enter));
    let Some(AgentRequest::Send { text, link, .. }) = sent.first() else {
        panic!("a send: {sent:?}");
    };
    assert_eq!(text, "Pay now");
    let link = link.as_ref().expect("a card");
    assert_eq!(link.url, "https://shop.example/pay");
    let screen = rows(&render(&mut app, 120, 12));
    assert!(
        row_with(&screen, "[link] Pay now → https://shop.example/pay").is_some(),
        "the card on its way: {screen:#?}"
    );
    // Stored: still a card, not its bare label.
    let Some(AgentRequest::Send { client_id, .. }) = sent.first() else {
        unreachable!("matched above");
    };
    frame(
        &mut app,
        AgentEvent::Ack(Ack {
            client_id: client_id.clone(),
            conversation_id: "k1".into(),
            seq: 2,
            id: "m-2".into(),
            at: crate::app::tests::NOW,
        }),
    );
    let screen = rows(&render(&mut app, 120, 12));
    assert!(
        row_with(&screen, "[link] Pay now → https://shop.example/pay").is_some(),
        "the card once stored: {screen:#?}"
    );
}

#[test]
fn the_visitor_panel_shows_the_profile_conversations_and_live_trail() {
    let mut app = new_app();
    let mut k1 = summary("k1", ConversationStatus::Waiting, 1);
    k1.visitor.email = Some("ming@example.com".into());
    k1.visitor.referrer = Some("https://search.example/".into());
    frame(&mut app, welcome_frame(vec![k1.clone()]));
    let asked = requests(&key(&mut app, KeyCode::Char('v')));
    assert_eq!(
        asked,
        [AgentRequest::Visitor {
            visitor_id: k1.visitor.id.clone()
        }]
    );
    let screen = rows(&render(&mut app, 100, 24));
    assert!(
        row_with(&screen, "asking the relay…").is_some(),
        "{screen:#?}"
    );

    let view = |path: &str, title: &str| PageView {
        url: format!("https://shop.example{path}"),
        title: Some(title.into()),
        referrer: None,
        at: NOW,
    };
    let mut past = k1.clone();
    past.id = "k0".into();
    past.status = ConversationStatus::Resolved;
    past.preview = "last week's question".into();
    let record = VisitorRecord {
        visitor: k1.visitor.clone(),
        conversations: vec![k1.clone(), past],
        trail: vec![view("/", "Home"), view("/shoes", "Shoes")],
    };
    frame(&mut app, AgentEvent::Visitor(record));
    frame(
        &mut app,
        AgentEvent::PageView(PageViewFrame {
            conversation_id: "k1".into(),
            visitor_id: k1.visitor.id.clone(),
            view: view("/checkout", "Checkout \u{1b}]0;owned\u{7}"),
        }),
    );
    let screen = rows(&render(&mut app, 100, 24));
    for expected in [
        "email: ming@example.com",
        "came from: https://search.example/",
        "last week's question",
        "Pages (3)",
        "/shoes — Shoes",
        "/checkout — Checkout",
    ] {
        assert!(
            row_with(&screen, expected).is_some(),
            "{expected}: {screen:#?}"
        );
    }
    assert!(!screen.concat().contains('\u{1b}'), "titles are cleaned");

    // Down, Enter: the past conversation opens, though not in the queue.
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.overlay, Overlay::None);
    assert_eq!(app.open.as_deref(), Some("k0"));
}
