//! Issue 16, repros 2 and 5 on screen: the tab named in plain text, row
//! numbers that survive a claim, the count of new events and a transfer.

use crossterm::event::{KeyCode, KeyModifiers};
use kefu_protocol::AuthorKind;
use kefu_protocol::agent::{AgentEvent, ConversationStatus};

use super::tests::{render, rows};
use crate::app::tests::{BOB, ME, changed, desk, frame, key, message, press};

#[test]
fn the_current_tab_is_bracketed_and_numbers_survive_a_claim() {
    let mut app = desk();
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Left);
    let screen = rows(&render(&mut app, 80, 24));
    assert!(
        screen[0].starts_with("┌[Waiting 3] Mine 1  All 4 ──┐"),
        "{:?}",
        screen[0]
    );
    assert!(screen[5].starts_with("│3 ● Guest 7"), "{screen:#?}");
    // Visitor #8116 (2) claimed; the highlight moves on, so it leaves.
    press(&mut app, KeyCode::Char('2'), KeyModifiers::ALT);
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('c'));
    changed(&mut app, "v8116", ConversationStatus::Active, Some(ME));
    key(&mut app, KeyCode::Down);
    let screen = rows(&render(&mut app, 80, 24));
    assert!(screen[1].starts_with("│1 ● Olga"), "{screen:#?}");
    assert!(
        screen[3].starts_with("│3 ● Guest 7"),
        "Guest 7 keeps 3: {screen:#?}"
    );
}

#[test]
fn the_status_line_counts_news_and_names_a_transfer_to_me() {
    let mut app = desk();
    changed(&mut app, "olga", ConversationStatus::Active, Some(BOB));
    changed(&mut app, "olga", ConversationStatus::Active, Some(ME));
    frame(
        &mut app,
        AgentEvent::Message(message("zw", 1, AuthorKind::Visitor, "你好")),
    );
    let screen = rows(&render(&mut app, 80, 24));
    let status = &screen[23];
    assert!(status.contains("2 new"), "{status:?}");
    assert!(status.contains("bob transferred Olga to you"), "{status:?}");
    key(&mut app, KeyCode::Down);
    let screen = rows(&render(&mut app, 80, 24));
    assert!(!screen[23].contains("new"), "read: {:?}", screen[23]);
}
