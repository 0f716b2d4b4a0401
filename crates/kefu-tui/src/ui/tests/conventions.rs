//! Issue 16's screen repros: flags and emoji sequences leave no stray
//! cells, a history scrolled up stays still and says what came below, the
//! help scrolls at 60×15, the status bar keeps what matters when narrow,
//! and a refused reply offers only what can work.

use std::time::Duration;

use kefu_protocol::{ErrorCode, ErrorFrame};

use super::*;
use crate::app::NetEvent;

/// Signed in with `k1` and `k2` waiting; `k1` open with `messages`.
fn open_with(messages: Vec<kefu_protocol::Message>) -> App {
    let mut app = new_app();
    frame(
        &mut app,
        welcome_frame(vec![
            summary("k1", ConversationStatus::Waiting, 5),
            summary("k2", ConversationStatus::Waiting, 2),
        ]),
    );
    key(&mut app, KeyCode::Enter);
    frame(
        &mut app,
        AgentEvent::History(HistoryPage {
            conversation_id: "k1".into(),
            messages,
        }),
    );
    app
}

fn is_regional_indicator(ch: char) -> bool {
    ('\u{1f1e6}'..='\u{1f1ff}').contains(&ch)
}

/// Repro 6: a flag in a message and in the agent's own draft, where it
/// would straddle a row's end (the history and compose rows are 46 columns
/// at 80×24): no regional indicator reaches a cell, so no terminal can keep
/// half a flag on screen when ratatui later overwrites its first column.
#[test]
fn a_flag_leaves_no_stray_regional_indicator_on_screen() {
    let flag = "🇨🇳";
    let text = format!("{}{flag} ok", "x".repeat(45));
    let mut app = open_with(vec![message("k1", 1, AuthorKind::Visitor, &text)]);
    type_text(&mut app, &format!("{}{flag}", "y".repeat(45)));
    let buffer = render(&mut app, 80, 24);
    for y in 0..24 {
        for x in 0..80 {
            let symbol = buffer[(x, y)].symbol();
            let indicators = symbol
                .chars()
                .filter(|&ch| is_regional_indicator(ch))
                .count();
            assert!(
                indicators == 0,
                "a regional indicator {symbol:?} at ({x}, {y}):\n{:#?}",
                rows(&buffer)
            );
        }
    }
    let screen = rows(&buffer);
    let drafted = screen.iter().any(|row| row.contains("│[CN]"));
    assert!(drafted, "the draft's flag is drawn as letters: {screen:#?}");
}

/// A ZWJ family is two columns, as ratatui and tmux draw it; a skin-toned
/// hand is drawn without its tone (two columns) and a VS16 heart without
/// the selector (one): the compose cursor lands right after them.
#[test]
fn the_compose_cursor_follows_emoji_sequences() {
    let mut app = open_with(Vec::new());
    type_text(&mut app, "a👨\u{200d}👩\u{200d}👧👋🏽❤\u{fe0f}");
    app.update(Input::Resize {
        width: 80,
        height: 24,
    });
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("test terminal");
    terminal
        .draw(|f| crate::ui::draw(&app, f))
        .expect("drawing cannot fail on a test backend");
    let cursor = terminal.get_cursor_position().expect("a cursor");
    // The compose text starts at column 32 (queue 30, two borders).
    assert_eq!(cursor.x, 32 + 1 + 2 + 2 + 1);
}

/// Repro 7: scrolled up, a new message changes no row of the text being
/// read; a marker over the bottom row says it came.
#[test]
fn a_new_message_below_does_not_move_the_text_being_read() {
    let messages = (1..=40)
        .map(|seq| message("k1", seq, AuthorKind::Visitor, &format!("line {seq}")))
        .collect();
    let mut app = open_with(messages);
    key(&mut app, KeyCode::PageUp);
    let before = rows(&render(&mut app, 80, 24));
    frame(
        &mut app,
        AgentEvent::Message(message("k1", 41, AuthorKind::Visitor, "still there?")),
    );
    let after = rows(&render(&mut app, 80, 24));
    let marker = after
        .iter()
        .position(|row| row.contains("↓ 1 new message below · PgDn"))
        .unwrap_or_else(|| panic!("a marker in {after:#?}"));
    // The right pane's history rows, from below the details to the marker.
    let pane = |screen: &[String], y: usize| screen[y].chars().skip(30).collect::<String>();
    for y in 3..marker {
        assert_eq!(pane(&before, y), pane(&after, y), "row {y} moved");
    }
    key(&mut app, KeyCode::PageDown);
    key(&mut app, KeyCode::PageDown);
    let bottom = rows(&render(&mut app, 80, 24));
    assert!(bottom.iter().any(|row| row.contains("still there?")));
    assert!(!bottom.iter().any(|row| row.contains("new message below")));
}

/// Repro 7: at 60×15 the help is taller than the screen; it scrolls to
/// its last key and says how much is hidden.
#[test]
fn the_help_scrolls_at_60_by_15() {
    let mut app = open_with(Vec::new());
    key(&mut app, KeyCode::F(1));
    let top = rows(&render(&mut app, 60, 15));
    assert!(top.iter().any(|row| row.contains("more")), "{top:#?}");
    assert!(!top.iter().any(|row| row.contains("select text to copy")));
    for _ in 0..6 {
        key(&mut app, KeyCode::PageDown);
    }
    let bottom = rows(&render(&mut app, 60, 15));
    assert!(
        bottom.iter().any(|row| row.contains("select text to copy")),
        "the last key is reachable: {bottom:#?}"
    );
    assert!(bottom.iter().any(|row| row.contains("↑")), "{bottom:#?}");
}

/// Repro 7: offline at 60 columns, the bar keeps the retry time and the
/// waiting count, dropping the agent's state and the error's details.
#[test]
fn a_narrow_offline_status_bar_keeps_what_matters() {
    let mut app = open_with(Vec::new());
    app.update(Input::Net(NetEvent::Disconnected {
        reason: "connection refused (os error 111)".into(),
        retry_in: Duration::from_millis(2000),
    }));
    let wide = rows(&render(&mut app, 120, 20));
    assert_eq!(
        wide[19].trim_end(),
        " ○ offline: connection refused (os error 111); retrying in 2.0 s │ alice (available) │ 2 waiting                 ? help"
    );
    let narrow = rows(&render(&mut app, 60, 15));
    assert_eq!(
        narrow[14],
        " ○ offline, retry in 2.0 s │ alice │ 2 waiting              "
    );
    let tiny = rows(&render(&mut app, 40, 15));
    assert_eq!(
        tiny[14].trim_end(),
        " ○ offline, retry in 2.0 s │ 2 waiting"
    );
}

/// Repro 7: a reply refused with `conflict` offers edit and drop, not a
/// retry that would be refused again.
#[test]
fn a_conflicted_reply_offers_edit_and_drop_but_no_retry() {
    let mut app = open_with(Vec::new());
    type_text(&mut app, "your refund is on its way");
    let effects = key(&mut app, KeyCode::Enter);
    let client_id = app.conversations["k1"].outgoing[0].client_id.clone();
    assert!(!effects.is_empty());
    frame(
        &mut app,
        AgentEvent::Error(
            ErrorFrame::new(ErrorCode::Conflict, "claimed by bob").with_ref(client_id),
        ),
    );
    let screen = rows(&render(&mut app, 80, 24));
    assert!(
        screen
            .iter()
            .any(|row| row.contains("alice · not sent: claimed by bob")),
        "{screen:#?}"
    );
    assert!(
        screen
            .iter()
            .any(|row| row.contains("Alt-e edit · Alt-x drop"))
    );
    assert!(
        !screen.iter().any(|row| row.contains("Alt-r")),
        "{screen:#?}"
    );
}
