//! Terminal conventions an agent expects (issue 16): pasted line breaks,
//! Ctrl-L, readline keys, Home/End in the queue, the wheel, failed replies
//! that cannot be retried, a history that stays still while read.

use super::*;

fn refuse(app: &mut App, client_id: &str, code: ErrorCode, why: &str) {
    frame(
        app,
        AgentEvent::Error(ErrorFrame::new(code, why).with_ref(client_id.to_owned())),
    );
}

fn draft(app: &App, id: &str) -> String {
    app.conversations[id].draft.buffer.text().to_owned()
}

/// Repro 4: terminals send a pasted text's line breaks as CR (or CRLF).
#[test]
fn a_pasted_text_keeps_its_line_breaks() {
    let mut app = with_k1_open();
    app.update(Input::Paste("order 1042\rsize M\r\nblue\u{1b}[31m".into()));
    assert_eq!(draft(&app, "k1"), "order 1042\nsize M\nblue");
}

#[test]
fn ctrl_l_asks_for_a_full_redraw_even_over_an_overlay() {
    let mut app = with_k1_open();
    let effects = press(&mut app, KeyCode::Char('l'), KeyModifiers::CONTROL);
    assert_eq!(effects, [Effect::Redraw]);
    key(&mut app, KeyCode::F(1));
    let effects = press(&mut app, KeyCode::Char('l'), KeyModifiers::CONTROL);
    assert_eq!(effects, [Effect::Redraw]);
    assert_eq!(app.overlay, Overlay::Help, "the help stays open");
}

#[test]
fn readline_keys_edit_the_draft() {
    let mut app = with_k1_open();
    type_text(&mut app, "your order ships tmorrow");
    press(&mut app, KeyCode::Char('w'), KeyModifiers::CONTROL);
    type_text(&mut app, "tomorrow");
    press(&mut app, KeyCode::Char('a'), KeyModifiers::CONTROL);
    press(&mut app, KeyCode::Char('f'), KeyModifiers::ALT);
    type_text(&mut app, " 1042");
    assert_eq!(draft(&app, "k1"), "your 1042 order ships tomorrow");
    press(&mut app, KeyCode::Char('b'), KeyModifiers::ALT);
    press(&mut app, KeyCode::Char('k'), KeyModifiers::CONTROL);
    assert_eq!(draft(&app, "k1"), "your ");
    press(&mut app, KeyCode::Char('e'), KeyModifiers::CONTROL);
    type_text(&mut app, "parcel");
    press(&mut app, KeyCode::Left, KeyModifiers::NONE);
    press(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
    assert_eq!(draft(&app, "k1"), "l");
}

#[test]
fn home_end_g_and_shift_g_go_to_the_queue_ends() {
    let mut app = signed_in();
    let rows = app.rows();
    key(&mut app, KeyCode::End);
    assert_eq!(app.selected.as_ref(), rows.last());
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(app.selected.as_ref(), rows.first());
    press(&mut app, KeyCode::Char('G'), KeyModifiers::SHIFT);
    assert_eq!(app.selected.as_ref(), rows.last());
    key(&mut app, KeyCode::Home);
    assert_eq!(app.selected.as_ref(), rows.first());
}

/// `k1` open at 80×24 with `count` messages, each one row of text.
fn long_history(count: u64) -> App {
    let mut app = with_k1_open();
    app.update(Input::Resize {
        width: 80,
        height: 24,
    });
    let messages = (1..=count)
        .map(|seq| message("k1", seq, AuthorKind::Visitor, &format!("line {seq}")))
        .collect();
    frame(
        &mut app,
        AgentEvent::History(HistoryPage {
            conversation_id: "k1".into(),
            messages,
        }),
    );
    app
}

#[test]
fn the_wheel_scrolls_the_pane_under_the_pointer() {
    let mut app = long_history(40);
    // The history pane is right of the 30-column queue.
    app.update(Input::Wheel {
        column: 50,
        row: 10,
        up: true,
    });
    assert_eq!(app.conversations["k1"].scroll, 3);
    app.update(Input::Wheel {
        column: 50,
        row: 10,
        up: false,
    });
    assert_eq!(app.conversations["k1"].scroll, 0);
    let before = app.selected.clone();
    app.update(Input::Wheel {
        column: 5,
        row: 5,
        up: false,
    });
    assert_ne!(app.selected, before, "over the queue, the highlight moves");
    assert_eq!(app.conversations["k1"].scroll, 0);
}

/// Repro 7: reading older messages, a new one must not move the text.
#[test]
fn a_new_message_keeps_a_scrolled_up_history_still() {
    let mut app = long_history(40);
    key(&mut app, KeyCode::PageUp);
    let scroll = app.conversations["k1"].scroll;
    assert!(scroll > 0);
    frame(
        &mut app,
        AgentEvent::Message(message("k1", 41, AuthorKind::Visitor, "still there?")),
    );
    let k1 = &app.conversations["k1"];
    assert_eq!(k1.scroll, scroll + 2, "header and one row of text");
    assert_eq!(k1.new_below, 1);
    key(&mut app, KeyCode::PageDown);
    key(&mut app, KeyCode::PageDown);
    let k1 = &app.conversations["k1"];
    assert_eq!((k1.scroll, k1.new_below), (0, 0), "read to the bottom");
}

/// Scrolled up when the connection drops: the newest page after the
/// reconnect brings what came meanwhile below, without moving the text; an
/// older page (PgUp at the top) goes above and moves nothing either.
#[test]
fn pages_of_history_keep_a_scrolled_up_history_still() {
    let page = |seqs: std::ops::RangeInclusive<u64>| {
        let messages = seqs
            .map(|seq| message("k1", seq, AuthorKind::Visitor, &format!("line {seq}")))
            .collect();
        AgentEvent::History(HistoryPage {
            conversation_id: "k1".into(),
            messages,
        })
    };
    let mut app = with_k1_open();
    app.update(Input::Resize {
        width: 80,
        height: 24,
    });
    frame(&mut app, page(11..=50));
    key(&mut app, KeyCode::PageUp);
    let scroll = app.conversations["k1"].scroll;
    assert!(scroll > 0);
    frame(&mut app, page(51..=52));
    let k1 = &app.conversations["k1"];
    assert_eq!((k1.scroll, k1.new_below), (scroll + 4, 2), "two rows each");
    frame(&mut app, page(1..=10));
    let k1 = &app.conversations["k1"];
    assert_eq!((k1.scroll, k1.new_below), (scroll + 4, 2), "older: above");
}

/// Repro 7: a reply refused because the chat is someone else's now cannot
/// succeed on a retry; it can be taken back into compose, or dropped.
#[test]
fn a_conflicted_reply_is_not_retried_but_can_be_edited_or_dropped() {
    let mut app = with_k1_open();
    type_text(&mut app, "your refund is on its way");
    let (first, _) = sends(&key(&mut app, KeyCode::Enter)).remove(0);
    refuse(&mut app, &first, ErrorCode::Conflict, "claimed by bob");
    assert_eq!(
        outgoing(&app, "k1")[0].state,
        SendState::Failed {
            reason: "claimed by bob".into(),
            retry: false
        }
    );
    let effects = press(&mut app, KeyCode::Char('r'), KeyModifiers::ALT);
    assert!(sends(&effects).is_empty(), "a retry would be refused again");
    assert!(app.flash.as_deref().is_some_and(|f| f.contains("Alt-e")));

    type_text(&mut app, "PS");
    press(&mut app, KeyCode::Char('e'), KeyModifiers::ALT);
    assert!(outgoing(&app, "k1").is_empty());
    assert_eq!(draft(&app, "k1"), "PS\nyour refund is on its way");

    let (second, _) = sends(&key(&mut app, KeyCode::Enter)).remove(0);
    refuse(&mut app, &second, ErrorCode::Conflict, "claimed by bob");
    press(&mut app, KeyCode::Char('x'), KeyModifiers::ALT);
    assert!(outgoing(&app, "k1").is_empty());
    assert!(
        !app.conversations["k1"].has_unsent(),
        "nothing left to lose"
    );
}

#[test]
fn the_help_scrolls_within_what_does_not_fit() {
    let mut app = with_k1_open();
    app.update(Input::Resize {
        width: 60,
        height: 15,
    });
    key(&mut app, KeyCode::F(1));
    for _ in 0..100 {
        key(&mut app, KeyCode::Down);
    }
    let hidden = crate::keys::help_height(60) - 13;
    assert_eq!(app.help_scroll, hidden);
    key(&mut app, KeyCode::Up);
    assert_eq!(app.help_scroll, hidden - 1);
    key(&mut app, KeyCode::Char('x'));
    assert_eq!(app.overlay, Overlay::None, "other keys close it");
}
