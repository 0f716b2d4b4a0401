//! Turning a notification into what the terminal is sent: a bell, and
//! optionally the escape sequence terminals use for desktop notifications;
//! and the window title, which counts what the agent has not seen.

use crate::app::{App, Notification};
use crate::config::{Desktop, Notify};
use crate::wrap::truncate;

/// Longest notification body sent to the terminal.
const BODY_COLUMNS: usize = 120;

/// The bytes to write for `notification`, per the agent's preferences.
/// The text was cleaned of escapes on arrival, so it cannot end the OSC
/// string early; `;` is replaced because OSC 777 uses it as a separator.
pub fn sequence(prefs: &Notify, notification: &Notification) -> String {
    let mut out = String::new();
    if prefs.bell {
        out.push('\u{07}');
    }
    let title = notification.title.replace(';', ",");
    let body = truncate(&notification.body.replace(';', ","), BODY_COLUMNS);
    match prefs.desktop {
        Desktop::Off => {}
        Desktop::Osc777 => out.push_str(&format!("\u{1b}]777;notify;{title};{body}\u{1b}\\")),
        Desktop::Osc9 => out.push_str(&format!("\u{1b}]9;{title}: {body}\u{1b}\\")),
    }
    out
}

/// The window title: `(3) kefu` while three events are unseen, so that a
/// terminal in the background says there is news.
pub fn title(app: &App) -> String {
    match app.attention.unseen {
        0 => "kefu".to_owned(),
        unseen => format!("({unseen}) kefu"),
    }
}

/// Sets the window title (OSC 2). Only [`title`]'s digits and words are
/// ever sent, never visitor text.
pub fn title_sequence(title: &str) -> String {
    format!("\u{1b}]2;{title}\u{1b}\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note() -> Notification {
        Notification {
            title: "New visitor".into(),
            body: "Ming: hi; there".into(),
        }
    }

    #[test]
    fn bell_and_desktop_follow_the_preferences() {
        let mut prefs = Notify::default();
        assert_eq!(sequence(&prefs, &note()), "\u{07}");
        prefs.desktop = Desktop::Osc777;
        assert_eq!(
            sequence(&prefs, &note()),
            "\u{07}\u{1b}]777;notify;New visitor;Ming: hi, there\u{1b}\\"
        );
        prefs.bell = false;
        prefs.desktop = Desktop::Osc9;
        assert_eq!(
            sequence(&prefs, &note()),
            "\u{1b}]9;New visitor: Ming: hi, there\u{1b}\\"
        );
    }

    #[test]
    fn the_title_counts_what_is_unseen_and_never_carries_visitor_text() {
        use kefu_protocol::AuthorKind;
        use kefu_protocol::agent::AgentEvent;

        use crate::app::tests::{frame, message, new_app, welcome_frame};

        let mut app = new_app();
        frame(&mut app, welcome_frame(vec![]));
        assert_eq!(title(&app), "kefu");
        let hostile = message("k1", 1, AuthorKind::Visitor, "\u{1b}]2;pwned\u{7}");
        frame(&mut app, AgentEvent::Message(hostile));
        assert_eq!(title(&app), "(1) kefu");
        assert_eq!(title_sequence(&title(&app)), "\u{1b}]2;(1) kefu\u{1b}\\");
    }
}
