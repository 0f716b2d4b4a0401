//! Files sent with messages (issue 18), on screen: one `📎 name (size,
//! type)` row each under the message's text, the name cleaned of terminal
//! control sequences like any visitor text.

use crossterm::event::KeyCode;
use kefu_protocol::agent::{AgentEvent, ConversationStatus, HistoryPage};
use kefu_protocol::{Attachment, AuthorKind};

use super::tests::{render, rows, visitor};
use crate::app::tests::{ME, frame, key, message, new_app, summary, welcome_frame};

fn file(name: &str, size: u64, content_type: &str) -> Attachment {
    Attachment {
        id: format!("f-{size}"),
        name: name.into(),
        size,
        content_type: content_type.into(),
        width: None,
        height: None,
        thumbnail: None,
    }
}

#[test]
fn attachments_show_as_a_clip_row_with_size_and_type() {
    let mut app = new_app();
    let mut k1 = summary("k1", ConversationStatus::Active, 9);
    visitor(&mut k1, "Olga", true, "see the error");
    k1.assignee = Some(ME.into());
    k1.last_seq = 2;
    frame(&mut app, welcome_frame(vec![k1]));
    key(&mut app, KeyCode::Enter);
    let mut shot = message("k1", 1, AuthorKind::Visitor, "see the error");
    // A hostile name: a colour change and a window-title escape.
    shot.attachments = vec![file(
        "err\u{1b}[31mor\u{1b}]0;owned\u{7}.png",
        48_213,
        "image/png",
    )];
    let mut invoice = message("k1", 2, AuthorKind::Agent, "");
    invoice.attachments = vec![
        file("invoice.pdf", 3 * 1024 * 1024, "application/pdf"),
        file("notes.txt", 512, "text/plain"),
    ];
    frame(
        &mut app,
        AgentEvent::History(HistoryPage {
            conversation_id: "k1".into(),
            messages: vec![shot, invoice],
        }),
    );
    let screen = rows(&render(&mut app, 90, 20));
    let text = screen.join("\n");
    assert!(text.contains("  see the error"), "{screen:#?}");
    assert!(
        text.contains("  📎 error.png (47.1 KiB, image/png)"),
        "cleaned name: {screen:#?}"
    );
    assert!(!text.contains("owned"), "no escape survives: {screen:#?}");
    let agent_header = screen
        .iter()
        .position(|row| row.contains(" alice "))
        .expect("the agent's message");
    assert!(
        screen[agent_header + 1].contains("  📎 invoice.pdf (3.0 MiB, application/pdf)"),
        "a message without text shows its files at once: {screen:#?}"
    );
    assert!(screen[agent_header + 2].contains("  📎 notes.txt (512 B, text/plain)"));
}

/// A preview overlay draws the image itself (half blocks here, as
/// `TestBackend` has no graphics), its name and what Enter does.
#[test]
fn a_preview_shows_the_image_its_name_and_the_keys() {
    let mut app = new_app();
    app.overlay = crate::app::Overlay::Preview {
        attachment: Attachment {
            content_type: "image/png".into(),
            ..file("shot.png", 100, "image/png")
        },
        image: crate::app::tests::files::red_square(),
    };
    let buffer = render(&mut app, 80, 24);
    let text = rows(&buffer).join("\n");
    assert!(text.contains(" shot.png "), "{text}");
    assert!(
        text.contains("Enter saves and opens · Esc closes"),
        "{text}"
    );
    let painted = buffer
        .content()
        .iter()
        .filter(|cell| [cell.fg, cell.bg].contains(&ratatui::style::Color::Rgb(200, 30, 30)))
        .count();
    assert!(painted >= 8, "the 4×2 image is drawn: {text}");
}
