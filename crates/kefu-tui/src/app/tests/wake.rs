//! Issue 16, repro 9: the client wakes only when the clock changes what is
//! on screen (or a held bell is due), never on a fixed tick.

use super::*;

fn only_own_chats() -> App {
    let mut app = new_app();
    frame(
        &mut app,
        welcome_frame(vec![summary("k3", ConversationStatus::Active, 1)]),
    );
    app
}

#[test]
fn nothing_time_based_on_screen_means_no_wake() {
    let mut app = only_own_chats();
    assert_eq!(app.next_wake(), None);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.next_wake(), None, "an open chat with no messages yet");
}

#[test]
fn a_waiting_label_wakes_when_it_turns() {
    let mut app = signed_in();
    // k1 has waited 5m, k2 2m: the labels next change at 6m and 3m.
    app.update(Input::Tick(NOW + time::Duration::seconds(20)));
    assert_eq!(app.next_wake(), Some(NOW + time::Duration::minutes(1)));
    // Not on the Mine tab, unless open.
    key(&mut app, KeyCode::Left);
    assert_eq!(app.filter, Filter::Mine);
    assert_eq!(app.next_wake(), None);
}

#[test]
fn a_typing_indicator_wakes_when_it_runs_out() {
    let mut app = only_own_chats();
    frame(
        &mut app,
        AgentEvent::Typing(kefu_protocol::Typing {
            conversation_id: "k3".into(),
            author: message("k3", 1, AuthorKind::Visitor, "").author,
            active: true,
        }),
    );
    assert_eq!(app.next_wake(), Some(NOW + time::Duration::seconds(6)));
    app.update(Input::Tick(NOW + time::Duration::seconds(6)));
    assert_eq!(app.next_wake(), None);
}
