//! What the agent's keys and clicks do: claiming, opening, switching,
//! the pickers, quitting.

use super::*;

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

/// Issue 16, repro 2: the agent's own customer, who is already waiting on
/// them, comes before visitors nobody has taken yet.
#[test]
fn activity_jump_puts_own_chats_with_news_first() {
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
    assert_eq!(
        app.open.as_deref(),
        Some("k3"),
        "the own chat with news first"
    );
    assert!(!app.conversations["k3"].activity, "opening clears activity");
    press(&mut app, KeyCode::Char('a'), KeyModifiers::ALT);
    assert_eq!(app.open.as_deref(), Some("k1"), "then the longest waiting");
    press(&mut app, KeyCode::Char('p'), KeyModifiers::CONTROL);
    assert_eq!(
        app.open.as_deref(),
        Some("k2"),
        "Ctrl-P takes the other end"
    );
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
fn slash_resolve_waiting_asks_the_relay_and_shows_its_counts() {
    use kefu_protocol::agent::bulk::{ResolveWaitingRequest, ResolvedWaiting};

    let mut app = with_k1_open();
    type_text(&mut app, "/resolve-waiting 203.0.113.0/24 10m");
    let sent = requests(&key(&mut app, KeyCode::Enter));
    assert_eq!(
        sent,
        vec![AgentRequest::ResolveWaiting(ResolveWaitingRequest {
            address: Some("203.0.113.0/24".into()),
            older_than_secs: Some(600),
            dry_run: false,
        })],
        "a request, not a reply to the visitor"
    );
    assert!(app.conversations["k1"].outgoing.is_empty());
    assert!(app.conversations["k1"].draft.buffer.is_empty());
    let answer = ResolvedWaiting {
        matched: 40,
        resolved: 39,
        dry_run: false,
    };
    frame(&mut app, AgentEvent::ResolvedWaiting(answer));
    assert_eq!(
        app.flash.as_deref(),
        Some("resolved 39 of 40 matching waiting conversations")
    );

    type_text(&mut app, "/resolve-waiting");
    assert!(requests(&key(&mut app, KeyCode::Enter)).is_empty());
    assert!(
        app.flash
            .as_deref()
            .is_some_and(|f| f.starts_with("usage:"))
    );
}
