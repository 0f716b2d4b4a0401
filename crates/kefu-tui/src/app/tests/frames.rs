//! What the relay's frames do: notifications, read marks, history pages
//! and holes, presence, escapes, the queue after a reconnect.

use super::*;

#[test]
fn unread_messages_notify_off_screen_and_are_marked_read_on_screen() {
    let mut app = with_k1_open();
    let effects = frame(
        &mut app,
        AgentEvent::Message(message("k3", 1, AuthorKind::Visitor, "hello?")),
    );
    assert_eq!(notifications(&effects), ["New message: Visitor k3: hello?"]);
    assert!(requests(&effects).is_empty(), "not on screen: not read");
    // A waiting visitor writing again is not news: it is listed already.
    let effects = frame(
        &mut app,
        AgentEvent::Message(message("k2", 1, AuthorKind::Visitor, "hello?")),
    );
    assert!(notifications(&effects).is_empty(), "{effects:?}");
    assert_eq!(app.conversations["k2"].unread(), 1);

    let effects = frame(
        &mut app,
        AgentEvent::Message(message("k1", 1, AuthorKind::Visitor, "here")),
    );
    assert!(notifications(&effects).is_empty(), "on screen: no bell");
    assert_eq!(
        requests(&effects),
        [AgentRequest::Read {
            conversation_id: "k1".into(),
            up_to_seq: 1
        }]
    );
    assert_eq!(app.conversations["k1"].unread(), 0);

    let effects = key(&mut app, KeyCode::Tab);
    assert!(requests(&effects).contains(&AgentRequest::Read {
        conversation_id: "k2".into(),
        up_to_seq: 1
    }));
}

#[test]
fn opening_a_colleagues_conversation_marks_read_what_its_next_summary_counts() {
    let mut app = signed_in();
    let mut theirs = summary("k5", ConversationStatus::Active, 3);
    theirs.assignee = Some(BOB.into());
    theirs.last_seq = 2;
    theirs.unread = 1;
    theirs.visitor_messages = 1;
    frame(
        &mut app,
        AgentEvent::Conversation(ConversationFrame {
            summary: theirs.clone(),
        }),
    );
    assert_eq!(app.rows(), ["k1", "k2", "k3", "k5"]);
    for _ in 0..3 {
        key(&mut app, KeyCode::Down);
    }
    let effects = key(&mut app, KeyCode::Enter);
    assert!(requests(&effects).contains(&AgentRequest::Read {
        conversation_id: "k5".into(),
        up_to_seq: 2
    }));

    // The relay's summary of it was behind: the current one comes now.
    theirs.last_seq = 4;
    theirs.unread = 3;
    theirs.visitor_messages = 3;
    let effects = frame(
        &mut app,
        AgentEvent::Conversation(ConversationFrame { summary: theirs }),
    );
    assert_eq!(
        requests(&effects),
        [AgentRequest::Read {
            conversation_id: "k5".into(),
            up_to_seq: 4
        }]
    );
    assert_eq!(app.conversations["k5"].unread(), 0);
}

#[test]
fn a_new_waiting_visitor_rings_once() {
    let mut app = signed_in();
    let effects = frame(
        &mut app,
        AgentEvent::Message(message("k9", 1, AuthorKind::Visitor, "hi")),
    );
    assert_eq!(notifications(&effects), ["New visitor: Visitor k9: hi"]);
    let mut new = summary("k9", ConversationStatus::Waiting, 0);
    new.last_seq = 1;
    new.unread = 1;
    new.visitor_messages = 1;
    let effects = frame(
        &mut app,
        AgentEvent::Conversation(ConversationFrame { summary: new }),
    );
    assert!(
        notifications(&effects).is_empty(),
        "the summary is no second news"
    );
    assert_eq!(app.waiting_count(), 3);
}

#[test]
fn duplicates_from_live_and_history_are_kept_once() {
    let mut app = with_k1_open();
    frame(
        &mut app,
        AgentEvent::Message(message("k1", 1, AuthorKind::Visitor, "one")),
    );
    frame(
        &mut app,
        AgentEvent::History(HistoryPage {
            conversation_id: "k1".into(),
            messages: vec![
                message("k1", 1, AuthorKind::Visitor, "one"),
                message("k1", 2, AuthorKind::Visitor, "two"),
            ],
        }),
    );
    frame(
        &mut app,
        AgentEvent::Message(message("k1", 2, AuthorKind::Visitor, "two")),
    );
    let seqs: Vec<u64> = app.conversations["k1"].messages.keys().copied().collect();
    assert_eq!(seqs, [1, 2]);
}

#[test]
fn a_hole_after_a_reconnect_is_paged_back() {
    let mut app = with_k1_open();
    for seq in 1..=3 {
        frame(
            &mut app,
            AgentEvent::Message(message("k1", seq, AuthorKind::Visitor, "x")),
        );
    }
    let page: Vec<Message> = (60..110)
        .map(|seq| message("k1", seq, AuthorKind::Visitor, "y"))
        .collect();
    let effects = frame(
        &mut app,
        AgentEvent::History(HistoryPage {
            conversation_id: "k1".into(),
            messages: page,
        }),
    );
    assert_eq!(
        requests(&effects),
        [AgentRequest::History {
            conversation_id: "k1".into(),
            before_seq: Some(60),
            limit: Some(PAGE)
        }]
    );
}

#[test]
fn away_is_restored_after_the_relay_forgets_it() {
    let mut app = signed_in();
    let effects = key(&mut app, KeyCode::Char('a'));
    assert_eq!(
        requests(&effects),
        [AgentRequest::Status {
            state: AgentState::Away
        }]
    );
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
    // A restarted relay welcomes us as available again.
    let effects = frame(&mut app, welcome_frame(vec![]));
    assert!(requests(&effects).contains(&AgentRequest::Status {
        state: AgentState::Away
    }));
}

/// Read marks are the agent's own and kept by the relay: the welcome's
/// replace ours, and one lost with the old connection is sent again.
#[test]
fn the_welcome_gives_our_own_read_marks_and_a_lost_one_is_sent_again() {
    use kefu_protocol::agent::AgentReadMark;

    let mut guest = summary("k1", ConversationStatus::Waiting, 5);
    (guest.last_seq, guest.unread, guest.visitor_messages) = (2, 2, 2);
    let mut app = new_app();
    let AgentEvent::Welcome(mut welcome) = welcome_frame(vec![guest.clone()]) else {
        unreachable!("welcome_frame makes a welcome");
    };
    welcome.read_marks = vec![AgentReadMark {
        conversation_id: "k1".into(),
        up_to_seq: 1,
        visitor_messages: 1,
    }];
    frame(&mut app, AgentEvent::Welcome(welcome));
    assert_eq!(app.conversations["k1"].unread(), 1, "read one of two");

    let effects = key(&mut app, KeyCode::Enter);
    assert!(requests(&effects).contains(&AgentRequest::Read {
        conversation_id: "k1".into(),
        up_to_seq: 2
    }));
    assert_eq!(app.conversations["k1"].unread(), 0);
    // The connection drops before the relay stored it.
    let effects = frame(&mut app, welcome_frame(vec![guest]));
    assert!(requests(&effects).contains(&AgentRequest::Read {
        conversation_id: "k1".into(),
        up_to_seq: 2
    }));
}

#[test]
fn escapes_in_received_text_never_reach_the_state() {
    let mut app = with_k1_open();
    let mut evil = message(
        "k1",
        1,
        AuthorKind::Visitor,
        "hi\u{1b}]0;owned\u{7}\u{1b}[2Jthere",
    );
    evil.author.name = "Eve\u{1b}[31m".into();
    frame(&mut app, AgentEvent::Message(evil));
    let stored = &app.conversations["k1"].messages[&1];
    assert_eq!(
        (stored.text.as_str(), stored.author.name.as_str()),
        ("hithere", "Eve")
    );
}

#[test]
fn conversations_resolved_while_offline_leave_the_queue() {
    let mut app = signed_in();
    app.update(Input::Net(NetEvent::Disconnected {
        reason: "closed".into(),
        retry_in: Duration::from_secs(1),
    }));
    frame(
        &mut app,
        welcome_frame(vec![summary("k2", ConversationStatus::Waiting, 2)]),
    );
    assert_eq!(app.rows(), ["k2"]);
}
