//! Narrowing the queue on screen: the typed filter (`/`), and the waiting
//! conversations beyond a relay's bounded `welcome`, counted in the status
//! bar and paged in at the end of the list.

use crossterm::event::{KeyCode, KeyModifiers};
use kefu_protocol::agent::search::{ConversationsPage, ConversationsRequest};
use kefu_protocol::agent::{AgentEvent, AgentRequest, ConversationStatus, ConversationTotals};

use super::tests::{render, rows};
use crate::app::tests::{frame, key, new_app, press, requests, summary, type_text, welcome_frame};
use crate::app::{App, Effect};
use crate::keys::Focus;

fn queue_of(names: &[(&str, &str)]) -> App {
    let mut app = new_app();
    let listed = names
        .iter()
        .enumerate()
        .map(|(at, (id, name))| {
            let mut s = summary(id, ConversationStatus::Waiting, 10 - at as i64);
            s.visitor.name = (*name).into();
            s
        })
        .collect();
    frame(&mut app, welcome_frame(listed));
    app
}

#[test]
fn typing_after_slash_narrows_the_queue_and_enter_opens_the_match() {
    let mut app = queue_of(&[("c1", "Olga"), ("c2", "Boris"), ("c3", "Olivia")]);
    key(&mut app, KeyCode::Char('/'));
    // Letters are text now, not commands: `c` does not claim, `r` does not
    // resolve.
    type_text(&mut app, "ol");
    let screen = rows(&render(&mut app, 100, 24)).join("\n");
    assert!(
        screen.contains("Olga") && screen.contains("Olivia"),
        "{screen}"
    );
    assert!(!screen.contains("Boris"), "{screen}");
    assert!(screen.contains("/ol▏"), "{screen}");

    type_text(&mut app, "iv");
    let screen = rows(&render(&mut app, 100, 24)).join("\n");
    assert!(
        !screen.contains("Olga") && screen.contains("Olivia"),
        "{screen}"
    );

    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(app.open.as_deref(), Some("c3"));
    assert_eq!(app.focus, Focus::Compose);
    assert!(
        requests(&effects)
            .iter()
            .all(|r| !matches!(r, AgentRequest::Claim { .. } | AgentRequest::Resolve { .. })),
        "typing the filter sent commands: {effects:?}"
    );
    // The filter stays on the queue until cleared, and says how.
    key(&mut app, KeyCode::Esc);
    let screen = rows(&render(&mut app, 100, 24)).join("\n");
    assert!(screen.contains("/oliv (Esc clears)"), "{screen}");
    key(&mut app, KeyCode::Esc);
    let screen = rows(&render(&mut app, 100, 24)).join("\n");
    assert!(
        screen.contains("Olga") && screen.contains("Boris"),
        "{screen}"
    );
    assert!(!screen.contains("/oliv"), "{screen}");
}

#[test]
fn a_filter_nothing_matches_points_to_search_which_takes_the_words() {
    let mut app = queue_of(&[("c1", "Olga")]);
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "refund");
    let screen = rows(&render(&mut app, 100, 24)).join("\n");
    assert!(
        screen.contains("No match; Ctrl-F searches all."),
        "{screen}"
    );
    press(&mut app, KeyCode::Char('f'), KeyModifiers::CONTROL);
    assert_eq!(app.finder.query, "refund");
    assert!(app.typed_filter.is_empty());
}

#[test]
fn the_status_bar_counts_those_waiting_beyond_the_welcome() {
    let mut app = new_app();
    let listed = vec![
        summary("v1", ConversationStatus::Waiting, 5),
        summary("v2", ConversationStatus::Waiting, 4),
    ];
    let AgentEvent::Welcome(mut welcome) = welcome_frame(listed.clone()) else {
        unreachable!("welcome_frame makes a welcome");
    };
    welcome.totals = Some(ConversationTotals {
        waiting: 20_000,
        active: 0,
    });
    frame(&mut app, AgentEvent::Welcome(welcome));
    let screen = rows(&render(&mut app, 100, 24)).join("\n");
    assert!(
        screen.contains("2 waiting │ 19998 more waiting (↓ at the end)"),
        "{screen}"
    );

    // A welcome that lists them all says nothing more.
    frame(&mut app, welcome_frame(listed));
    let screen = rows(&render(&mut app, 100, 24)).join("\n");
    assert!(!screen.contains("more waiting"), "{screen}");
}

fn page_request(effects: &[Effect]) -> ConversationsRequest {
    match requests(effects).as_slice() {
        [AgentRequest::Conversations(request)] => request.clone(),
        other => panic!("expected one conversations request, got {other:?}"),
    }
}

#[test]
fn moving_past_the_last_row_pages_in_the_rest_until_there_is_no_more() {
    let mut app = new_app();
    let AgentEvent::Welcome(mut welcome) =
        welcome_frame(vec![summary("v1", ConversationStatus::Waiting, 50)])
    else {
        unreachable!("welcome_frame makes a welcome");
    };
    welcome.totals = Some(ConversationTotals {
        waiting: 4,
        active: 0,
    });
    frame(&mut app, AgentEvent::Welcome(welcome));

    // The cursor is on the last (only) row: ↓ asks for the next page once.
    let request = page_request(&key(&mut app, KeyCode::Down));
    assert_eq!(request.status, Some(ConversationStatus::Waiting));
    assert_eq!(request.cursor, None);
    assert!(
        requests(&key(&mut app, KeyCode::Down)).is_empty(),
        "asked twice"
    );
    let screen = rows(&render(&mut app, 100, 24)).join("\n");
    assert!(screen.contains("3 more waiting (loading…)"), "{screen}");

    // Newest first: two new ones and a cursor.
    frame(
        &mut app,
        AgentEvent::Conversations(ConversationsPage {
            request_id: request.request_id,
            conversations: vec![
                summary("v4", ConversationStatus::Waiting, 1),
                summary("v3", ConversationStatus::Waiting, 2),
            ],
            next_cursor: Some("2:v3".into()),
        }),
    );
    assert_eq!(app.rows(), ["v1", "v3", "v4"]);
    assert_eq!(app.more_waiting.count, 1);

    // End reaches the last row too.
    let request = page_request(&key(&mut app, KeyCode::End));
    assert_eq!(request.cursor.as_deref(), Some("2:v3"));
    // The last page overlaps the welcome: v1 is not counted twice.
    frame(
        &mut app,
        AgentEvent::Conversations(ConversationsPage {
            request_id: request.request_id,
            conversations: vec![
                summary("v2", ConversationStatus::Waiting, 3),
                summary("v1", ConversationStatus::Waiting, 50),
            ],
            next_cursor: None,
        }),
    );
    assert_eq!(app.rows(), ["v1", "v2", "v3", "v4"]);
    assert_eq!(app.more_waiting.count, 0);
    assert!(requests(&key(&mut app, KeyCode::Down)).is_empty());
    let screen = rows(&render(&mut app, 100, 24)).join("\n");
    assert!(!screen.contains("more waiting"), "{screen}");
}
