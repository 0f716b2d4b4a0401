//! A reply is never lost: pending until acked, resent with the same
//! `client_id` after a reconnect or a refusal.

use super::*;

#[test]
fn a_reply_is_pending_until_acked() {
    let mut app = with_k1_open();
    type_text(&mut app, "Hi there");
    let effects = key(&mut app, KeyCode::Enter);
    let sent = sends(&effects);
    assert_eq!(sent.len(), 1);
    let (client_id, text) = &sent[0];
    assert_eq!(text, "Hi there");
    assert!(app.conversations["k1"].draft.buffer.is_empty());
    assert_eq!(outgoing(&app, "k1")[0].state, SendState::Pending);

    frame(&mut app, ack("k1", client_id, 1));
    let conversation = &app.conversations["k1"];
    assert!(conversation.outgoing.is_empty());
    let stored = &conversation.messages[&1];
    assert_eq!(
        (stored.text.as_str(), stored.author.id.as_str()),
        ("Hi there", ME)
    );
}

#[test]
fn unacked_replies_are_resent_with_their_client_id_after_a_reconnect() {
    let mut app = with_k1_open();
    type_text(&mut app, "are you there?");
    let (client_id, _) = sends(&key(&mut app, KeyCode::Enter)).remove(0);
    app.update(Input::Net(NetEvent::Disconnected {
        reason: "closed".into(),
        retry_in: Duration::from_millis(500),
    }));
    assert!(!app.online());
    // Written while offline: kept, not sent.
    type_text(&mut app, "second");
    let offline = key(&mut app, KeyCode::Enter);
    assert!(requests(&offline).is_empty());

    let mut k1 = summary("k1", ConversationStatus::Waiting, 5);
    k1.last_seq = 1;
    let effects = frame(&mut app, welcome_frame(vec![k1]));
    let resent = sends(&effects);
    assert_eq!(resent.len(), 2);
    assert_eq!(resent[0], (client_id.clone(), "are you there?".to_owned()));
    assert!(
        requests(&effects).contains(&AgentRequest::History {
            conversation_id: "k1".into(),
            before_seq: None,
            limit: Some(PAGE)
        }),
        "follows the open conversation again"
    );
    // The first was stored before the drop: history shows it, acks repeat.
    let mut stored = message("k1", 1, AuthorKind::Agent, "are you there?");
    stored.client_id = client_id.clone();
    frame(
        &mut app,
        AgentEvent::History(HistoryPage {
            conversation_id: "k1".into(),
            messages: vec![stored],
        }),
    );
    frame(&mut app, ack("k1", &client_id, 1));
    frame(&mut app, ack("k1", &resent[1].0, 2));
    let conversation = &app.conversations["k1"];
    assert!(conversation.outgoing.is_empty());
    let texts: Vec<&str> = conversation
        .messages
        .values()
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(texts, ["are you there?", "second"], "each once, in order");
}

/// A refusal a retry can get past (the relay was busy).
#[test]
fn a_refused_reply_fails_and_retries_with_the_same_client_id() {
    let mut app = with_k1_open();
    type_text(&mut app, "too late");
    let (client_id, _) = sends(&key(&mut app, KeyCode::Enter)).remove(0);
    frame(
        &mut app,
        AgentEvent::Error(
            ErrorFrame::new(ErrorCode::RateLimited, "slow down").with_ref(client_id.clone()),
        ),
    );
    assert_eq!(
        outgoing(&app, "k1")[0].state,
        SendState::Failed {
            reason: "slow down".into(),
            retry: true
        }
    );
    let effects = press(&mut app, KeyCode::Char('r'), KeyModifiers::ALT);
    assert_eq!(sends(&effects), [(client_id, "too late".to_owned())]);
    assert_eq!(outgoing(&app, "k1")[0].state, SendState::Pending);
}
