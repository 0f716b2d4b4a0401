//! Issue 16, repro 2: the order an agent works in, and `Alt-n` numbers that
//! stay on their conversations.

use super::*;

/// Seventy waiting visitors and the agent's own `mine`, on the default tab.
fn seventy_waiting() -> App {
    let mut app = new_app();
    let mut chats: Vec<ConversationSummary> = (0..70)
        .map(|i| summary(&format!("w{i:02}"), ConversationStatus::Waiting, 70 - i))
        .collect();
    chats.push(summary("mine", ConversationStatus::Active, 80));
    frame(&mut app, welcome_frame(chats));
    app
}

#[test]
fn a_message_in_an_own_chat_comes_before_seventy_waiting_visitors() {
    let mut app = seventy_waiting();
    assert_eq!(app.filter, Filter::All, "the default tab");
    assert_eq!(app.rows()[0], "w00", "quiet own chats after the waiting");
    frame(
        &mut app,
        AgentEvent::Message(message("mine", 1, AuthorKind::Visitor, "still there?")),
    );
    assert_eq!(app.rows()[0], "mine");
    press(&mut app, KeyCode::Char('a'), KeyModifiers::ALT);
    assert_eq!(
        app.open.as_deref(),
        Some("mine"),
        "Alt-a reaches it at once"
    );
    press(&mut app, KeyCode::Char('n'), KeyModifiers::CONTROL);
    assert_eq!(
        app.open.as_deref(),
        Some("w00"),
        "then the visitor waiting longest"
    );
}

#[test]
fn own_chats_with_news_are_ordered_by_how_long_their_visitor_waits() {
    let mut app = signed_in();
    let mut older = summary("k4", ConversationStatus::Active, 20);
    (older.unread, older.visitor_messages) = (1, 1);
    let mut newer = summary("k5", ConversationStatus::Active, 2);
    (newer.unread, newer.visitor_messages) = (4, 4);
    for summary in [newer, older] {
        frame(
            &mut app,
            AgentEvent::Conversation(ConversationFrame { summary }),
        );
    }
    assert_eq!(app.rows(), ["k4", "k5", "k1", "k2", "k3"]);
}

#[test]
fn a_claim_does_not_renumber_the_other_rows() {
    let mut app = desk();
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Left);
    // Waiting tab: Olga 1, Visitor #8116 2, Guest 7 3.
    assert_eq!(app.number("g7"), Some(3));
    press(&mut app, KeyCode::Char('2'), KeyModifiers::ALT);
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('c'));
    changed(&mut app, "v8116", ConversationStatus::Active, Some(ME));
    key(&mut app, KeyCode::Up);
    // The highlight moved away: the claimed visitor leaves the tab.
    assert_eq!(app.rows(), ["olga", "g7"]);
    assert_eq!(app.number("g7"), Some(3), "Guest 7 is still 3");
    press(&mut app, KeyCode::Char('3'), KeyModifiers::ALT);
    assert_eq!(app.open.as_deref(), Some("g7"));
    // A newcomer takes the free number.
    frame(
        &mut app,
        AgentEvent::Message(message("new", 1, AuthorKind::Visitor, "hi")),
    );
    assert_eq!(app.number("new"), Some(2));
}
