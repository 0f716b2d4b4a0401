//! Remote assistance from the terminal: Alt-s asks the highlighted
//! conversation's visitor for their screen, and the relay's one-time link
//! is shown on the status line and handed to the desktop's opener.

use crossterm::event::{KeyCode, KeyModifiers};
use kefu_protocol::agent::{AgentEvent, AgentRequest, ConversationStatus};
use kefu_protocol::call::CallLink;

use super::tests::{render, rows};
use crate::app::Effect;
use crate::app::tests::{NOW, frame, new_app, press, summary, welcome_frame};

#[test]
fn alt_s_asks_for_the_screen_and_shows_the_link() {
    let mut app = new_app();
    frame(
        &mut app,
        welcome_frame(vec![summary("k1", ConversationStatus::Waiting, 3)]),
    );
    let effects = press(&mut app, KeyCode::Char('s'), KeyModifiers::ALT);
    assert!(
        effects.contains(&Effect::Request(AgentRequest::CallInvite {
            conversation_id: "k1".into()
        })),
        "{effects:?}"
    );

    let link = AgentEvent::CallLink(CallLink {
        call_id: "call1".into(),
        conversation_id: "k1".into(),
        path: "/assist#code=a1.x.y".into(),
        url: None,
        expires_at: NOW,
    });
    let effects = frame(&mut app, link);
    let url = "http://relay.test/assist#code=a1.x.y";
    assert_eq!(effects, [Effect::OpenLink(url.to_owned())]);
    let screen = rows(&render(&mut app, 100, 12));
    assert!(
        screen.iter().any(|row| row.contains(url)),
        "the link is on screen: {screen:#?}"
    );
}

#[test]
fn a_link_with_a_terminal_escape_is_cleaned_before_it_is_shown() {
    let mut app = new_app();
    frame(&mut app, welcome_frame(Vec::new()));
    let link = AgentEvent::CallLink(CallLink {
        call_id: "call1".into(),
        conversation_id: "k1".into(),
        path: "/assist#code=\u{1b}]52;c;evil\u{7}".into(),
        url: None,
        expires_at: NOW,
    });
    let effects = frame(&mut app, link);
    let [Effect::OpenLink(url)] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    assert!(!url.contains('\u{1b}'), "{url:?}");
}
