//! Which conversation a command acts on (issue 16): the one the agent can
//! see named, never another customer the cursor slid to.

use super::*;

fn transfers(effects: &[Effect]) -> Vec<(String, String)> {
    requests(effects)
        .into_iter()
        .filter_map(|request| match request {
            AgentRequest::Transfer {
                conversation_id,
                to_agent,
            } => Some((conversation_id, to_agent)),
            _ => None,
        })
        .collect()
}

/// Waiting tab, `Alt-1` opens Olga, `Esc`, `c`: the claim is Olga's.
fn olga_claimed() -> App {
    let mut app = desk();
    press(&mut app, KeyCode::Char('1'), KeyModifiers::ALT);
    assert_eq!(app.open.as_deref(), Some("olga"));
    key(&mut app, KeyCode::Esc);
    let effects = key(&mut app, KeyCode::Char('c'));
    assert_eq!(
        requests(&effects),
        [AgentRequest::Claim {
            conversation_id: "olga".into()
        }]
    );
    changed(&mut app, "olga", ConversationStatus::Active, Some(ME));
    app
}

#[test]
fn after_a_claim_moves_the_open_chat_off_the_tab_transfer_still_names_it() {
    let mut app = olga_claimed();
    assert_eq!(app.flash.as_deref(), Some("Claimed Olga"));
    let rows = app.rows();
    assert_eq!(
        rows.get(app.selected_index(&rows)).map(String::as_str),
        Some("olga"),
        "the highlight stays on Olga though she is no longer waiting"
    );
    key(&mut app, KeyCode::Char('t'));
    assert!(
        matches!(&app.overlay, Overlay::Transfer { conversation, .. } if conversation == "olga"),
        "{:?}",
        app.overlay
    );
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(transfers(&effects), [("olga".into(), BOB.into())]);
    changed(&mut app, "olga", ConversationStatus::Active, Some(BOB));
    assert_eq!(app.flash.as_deref(), Some("Transferred Olga to bob"));
}

#[test]
fn resolve_with_a_chat_open_resolves_that_chat_not_the_first_row() {
    let mut app = desk();
    app.filter = Filter::Mine;
    press(&mut app, KeyCode::Char('1'), KeyModifiers::ALT);
    assert_eq!(app.open.as_deref(), Some("zw"));
    key(&mut app, KeyCode::Esc);
    // Back to the Waiting tab, where 张伟 is not listed.
    key(&mut app, KeyCode::Left);
    assert_eq!(app.filter, Filter::Waiting);
    let effects = key(&mut app, KeyCode::Char('r'));
    assert_eq!(app.overlay, Overlay::None, "open and mine: no question");
    assert_eq!(
        requests(&effects),
        [AgentRequest::Resolve {
            conversation_id: "zw".into()
        }],
        "no request for Guest 7"
    );
    changed(&mut app, "zw", ConversationStatus::Resolved, Some(ME));
    assert_eq!(app.flash.as_deref(), Some("Resolved 张伟"));
}

#[test]
fn resolving_a_row_that_is_not_open_asks_first_and_names_it() {
    let mut app = desk();
    press(&mut app, KeyCode::Char('3'), KeyModifiers::ALT);
    assert_eq!(app.open.as_deref(), Some("g7"));
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Up);
    assert_eq!(app.selected.as_deref(), Some("v8116"));
    let effects = key(&mut app, KeyCode::Char('r'));
    assert!(
        requests(&effects).is_empty(),
        "nothing sent before the answer"
    );
    assert_eq!(
        app.overlay,
        Overlay::ConfirmResolve {
            conversation: "v8116".into(),
            name: "Visitor #8116".into(),
            why: "It is not open and not yours.",
        }
    );
    let effects = key(&mut app, KeyCode::Char('n'));
    assert!(requests(&effects).is_empty());
    assert_eq!(app.overlay, Overlay::None);
    key(&mut app, KeyCode::Char('r'));
    let effects = key(&mut app, KeyCode::Char('y'));
    assert_eq!(
        requests(&effects),
        [AgentRequest::Resolve {
            conversation_id: "v8116".into()
        }]
    );
    changed(&mut app, "v8116", ConversationStatus::Resolved, None);
    assert_eq!(app.flash.as_deref(), Some("Resolved Visitor #8116"));
}

#[test]
fn resolving_the_open_chat_of_a_waiting_visitor_asks_first() {
    let mut app = desk();
    press(&mut app, KeyCode::Char('3'), KeyModifiers::ALT);
    key(&mut app, KeyCode::Esc);
    let effects = key(&mut app, KeyCode::Char('r'));
    assert!(requests(&effects).is_empty());
    assert!(matches!(
        &app.overlay,
        Overlay::ConfirmResolve { conversation, why: "It is not yours.", .. } if conversation == "g7"
    ));
}

#[test]
fn a_refused_command_is_forgotten_and_names_the_visitor() {
    let mut app = olga_claimed();
    key(&mut app, KeyCode::Char('r'));
    frame(
        &mut app,
        AgentEvent::Error(ErrorFrame::new(ErrorCode::Conflict, "not allowed").with_ref("olga")),
    );
    assert_eq!(app.flash.as_deref(), Some("Olga: not allowed"));
    changed(&mut app, "olga", ConversationStatus::Resolved, Some(ME));
    assert_ne!(app.flash.as_deref(), Some("Resolved Olga"));
}

#[test]
fn a_claim_lost_to_a_colleague_is_not_reported_as_ours_later() {
    let mut app = desk();
    key(&mut app, KeyCode::Char('c'));
    changed(&mut app, "olga", ConversationStatus::Active, Some(BOB));
    assert_eq!(app.flash, None);
    changed(&mut app, "olga", ConversationStatus::Active, Some(ME));
    assert_eq!(
        app.flash.as_deref(),
        Some("bob transferred Olga to you"),
        "bob's transfer is not our claim"
    );
}
