//! A relay's bounded `welcome` lists the most urgent conversations and the
//! totals; the status bar says how many more are waiting.

use kefu_protocol::agent::{AgentEvent, ConversationStatus, ConversationTotals};

use super::tests::{render, rows};
use crate::app::tests::{frame, new_app, summary, welcome_frame};

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
        screen.contains("2 waiting │ 19998 more waiting"),
        "{screen}"
    );

    // A welcome that lists them all says nothing more.
    frame(&mut app, welcome_frame(listed));
    let screen = rows(&render(&mut app, 100, 24)).join("\n");
    assert!(!screen.contains("more waiting"), "{screen}");
}
