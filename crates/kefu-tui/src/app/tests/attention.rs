//! Issue 16, repro 5: bells coalesced and counted, silent while away except
//! for the agent's own chats, a transfer to the agent rung and shown.

use super::*;

/// `now` moved to `seconds` after [`NOW`]; returns what the tick rang.
fn at(app: &mut App, seconds: f64) -> Vec<Effect> {
    app.update(Input::Tick(NOW + time::Duration::seconds_f64(seconds)))
}

/// A message from the visitor of `id`, the `seq`-th.
fn visitor_says(app: &mut App, id: &str, seq: u64) -> Vec<Effect> {
    frame(
        app,
        AgentEvent::Message(message(id, seq, AuthorKind::Visitor, "hello?")),
    )
}

/// Twenty of the agent's own chats and k1, k2 waiting.
fn busy_desk() -> App {
    let mut app = new_app();
    let mut chats: Vec<ConversationSummary> = (0..20)
        .map(|i| summary(&format!("m{i}"), ConversationStatus::Active, 30))
        .collect();
    chats.push(summary("k1", ConversationStatus::Waiting, 5));
    frame(&mut app, welcome_frame(chats));
    app
}

#[test]
fn sixty_messages_in_twenty_seconds_ring_a_handful_of_times() {
    let mut app = busy_desk();
    let mut rings = 0;
    for n in 0..60u64 {
        // One every third of a second: own chats, and new visitors.
        let mut effects = at(&mut app, n as f64 / 3.0);
        effects.extend(match n % 3 {
            0 => visitor_says(&mut app, &format!("new{n}"), 1),
            _ => visitor_says(&mut app, &format!("m{}", n % 20), n + 1),
        });
        rings += notifications(&effects).len();
    }
    let mut last = at(&mut app, 25.0);
    rings += notifications(&last).len();
    assert!(
        (2..=5).contains(&rings),
        "{rings} rings for 60 messages in 20 s"
    );
    assert_eq!(app.attention.unseen, 60, "every one counted");
    last = at(&mut app, 60.0);
    assert!(notifications(&last).is_empty(), "nothing left to ring");
    key(&mut app, KeyCode::Down);
    assert_eq!(app.attention.unseen, 0, "a key press reads the count");
}

#[test]
fn what_the_quiet_period_holds_rings_once_when_it_ends_with_a_count() {
    let mut app = busy_desk();
    at(&mut app, 0.0);
    assert_eq!(
        notifications(&visitor_says(&mut app, "m1", 1)),
        ["New message: Visitor m1: hello?"]
    );
    at(&mut app, 1.0);
    assert!(notifications(&visitor_says(&mut app, "m2", 1)).is_empty());
    at(&mut app, 2.0);
    assert!(notifications(&visitor_says(&mut app, "m3", 1)).is_empty());
    let due = NOW + time::Duration::seconds(5);
    assert_eq!(app.next_wake(), Some(due), "the loop wakes for it");
    assert!(notifications(&at(&mut app, 4.9)).is_empty());
    assert_eq!(
        notifications(&at(&mut app, 5.0)),
        ["2 new: latest: New message: Visitor m3: hello?"]
    );
    assert_eq!(app.attention.unseen, 3);
}

#[test]
fn away_only_the_agents_own_chats_ring() {
    let mut app = busy_desk();
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
    at(&mut app, 0.0);
    assert!(
        notifications(&visitor_says(&mut app, "new1", 1)).is_empty(),
        "a new visitor is for colleagues who are available"
    );
    at(&mut app, 10.0);
    assert_eq!(
        notifications(&visitor_says(&mut app, "m4", 1)),
        ["New message: Visitor m4: hello?"],
        "the agent's own customer still rings"
    );
}

#[test]
fn a_chat_transferred_to_me_rings_and_is_news() {
    let mut app = signed_in();
    changed(&mut app, "k1", ConversationStatus::Active, Some(BOB));
    let effects = changed(&mut app, "k1", ConversationStatus::Active, Some(ME));
    assert_eq!(
        notifications(&effects),
        ["Transferred to you: Visitor k1 (from bob)"]
    );
    assert_eq!(
        app.flash.as_deref(),
        Some("bob transferred Visitor k1 to you")
    );
    assert_eq!(app.rows()[0], "k1", "on top, as news in an own chat");
    press(&mut app, KeyCode::Char('n'), KeyModifiers::CONTROL);
    assert_eq!(app.open.as_deref(), Some("k1"), "Ctrl-N reaches it first");
}

#[test]
fn each_kind_can_be_turned_off() {
    let mut app = busy_desk();
    app.prefs.notify.new_visitor = false;
    app.prefs.notify.transfer = false;
    at(&mut app, 0.0);
    assert!(notifications(&visitor_says(&mut app, "new1", 1)).is_empty());
    changed(&mut app, "k1", ConversationStatus::Active, Some(BOB));
    let effects = changed(&mut app, "k1", ConversationStatus::Active, Some(ME));
    assert!(notifications(&effects).is_empty());
    assert_eq!(app.attention.unseen, 0, "what is off is not counted");
    app.prefs.notify.new_message = false;
    assert!(notifications(&visitor_says(&mut app, "m1", 1)).is_empty());
}
