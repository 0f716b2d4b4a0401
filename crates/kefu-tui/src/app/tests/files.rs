//! Files in the state (issue 18): what Alt-o, `/attach`, Tab, a pasted
//! path and Alt-d ask of the runtime, and how an upload's result joins the
//! next reply — also when it is resent or taken back after a refusal.

use super::*;
use crate::app::{FileEvent, Preview};

fn file(id: &str, name: &str) -> Attachment {
    Attachment {
        id: id.into(),
        name: name.into(),
        size: 2048,
        content_type: "application/pdf".into(),
        width: None,
        height: None,
        thumbnail: None,
    }
}

/// A 4×2-cell red square, as a terminal without graphics would show it.
pub(crate) fn red_square() -> Preview {
    let image = image::RgbImage::from_pixel(40, 40, image::Rgb([200, 30, 30]));
    let protocol = ratatui_image::picker::Picker::halfblocks()
        .new_protocol(
            image.into(),
            ratatui::layout::Size::new(4, 2),
            ratatui_image::Resize::Fit(None),
        )
        .expect("encoded");
    Preview(std::sync::Arc::new(protocol))
}

fn alt(app: &mut App, ch: char) -> Vec<Effect> {
    press(app, KeyCode::Char(ch), KeyModifiers::ALT)
}

/// `with_k1_open`, the visitor's message 1 carrying `files`.
fn with_files(files: Vec<Attachment>) -> App {
    let mut app = with_k1_open();
    let mut sent = message("k1", 1, AuthorKind::Visitor, "see attached");
    sent.attachments = files;
    frame(&mut app, AgentEvent::Message(sent));
    app
}

/// Enter in the compose box: the `send`'s text and attachment ids.
fn send(app: &mut App) -> (String, Vec<String>) {
    let sent = requests(&key(app, KeyCode::Enter));
    match sent.first() {
        Some(AgentRequest::Send {
            text, attachments, ..
        }) => (text.clone(), attachments.clone()),
        _ => panic!("no send: {sent:?}"),
    }
}

fn uploaded(app: &mut App, attachment: Attachment) {
    app.update(Input::File(FileEvent::Uploaded {
        conversation_id: "k1".into(),
        attachment,
    }));
}

#[test]
fn alt_o_downloads_the_only_file_or_lists_several() {
    let mut app = with_k1_open();
    assert!(alt(&mut app, 'o').is_empty());
    assert_eq!(app.flash.as_deref(), Some("no files in this conversation"));

    let mut app = with_files(vec![file("f1", "invoice.pdf")]);
    let effects = alt(&mut app, 'o');
    assert_eq!(effects, [Effect::Download(file("f1", "invoice.pdf"))]);
    assert_eq!(app.flash.as_deref(), Some("downloading invoice.pdf…"));

    let mut app = with_files(vec![file("f1", "invoice.pdf"), file("f2", "receipt.pdf")]);
    assert!(alt(&mut app, 'o').is_empty());
    assert!(matches!(app.overlay, Overlay::Files { index: 0, .. }));
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(effects, [Effect::Download(file("f2", "receipt.pdf"))]);
    assert_eq!(app.overlay, Overlay::None);

    app.update(Input::Net(NetEvent::Disconnected {
        reason: "closed".into(),
        retry_in: Duration::from_secs(1),
    }));
    assert!(alt(&mut app, 'o').is_empty(), "no download while offline");
}

#[test]
fn an_upload_joins_the_next_reply_and_the_reply_waits_for_it() {
    let mut app = with_k1_open();
    type_text(&mut app, "/attach ~/invoice.pdf");
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(
        effects,
        [Effect::Upload {
            conversation_id: "k1".into(),
            path: "~/invoice.pdf".into(),
        }]
    );
    assert!(app.conversations["k1"].draft.buffer.is_empty());
    type_text(&mut app, "/attach");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(
        app.flash.as_deref(),
        Some("usage: /attach PATH (Tab completes)")
    );
    app.open_draft().expect("open").buffer.take();

    // Sending before the upload is done would send the text without it.
    type_text(&mut app, "here");
    assert!(sends(&key(&mut app, KeyCode::Enter)).is_empty());
    assert!(
        app.flash
            .as_deref()
            .is_some_and(|f| f.contains("still uploading"))
    );

    uploaded(&mut app, file("f1", "invoice\u{1b}[2J.pdf"));
    let draft = &app.conversations["k1"].draft;
    assert_eq!(draft.attachments[0].name, "invoice.pdf", "cleaned");
    assert_eq!(draft.uploading, 0);
    assert_eq!(send(&mut app), ("here".to_owned(), vec!["f1".to_owned()]));
    assert!(app.conversations["k1"].draft.attachments.is_empty());
}

#[test]
fn files_alone_make_a_message_and_alt_d_drops_the_last() {
    let mut app = with_k1_open();
    uploaded(&mut app, file("f1", "a.pdf"));
    uploaded(&mut app, file("f2", "b.pdf"));
    alt(&mut app, 'd');
    assert_eq!(app.flash.as_deref(), Some("b.pdf will not be sent"));
    assert_eq!(send(&mut app), (String::new(), vec!["f1".to_owned()]));
    type_text(&mut app, "/attachments are welcome");
    assert_eq!(
        send(&mut app).0,
        "/attachments are welcome",
        "not a command"
    );
}

#[test]
fn a_refused_upload_is_said_and_attaches_nothing() {
    let mut app = with_k1_open();
    type_text(&mut app, "/attach /bin/ls");
    key(&mut app, KeyCode::Enter);
    app.update(Input::File(FileEvent::UploadFailed {
        conversation_id: "k1".into(),
        error: "ls: files of type application/x-executable are not accepted".into(),
    }));
    let draft = &app.conversations["k1"].draft;
    assert!(draft.attachments.is_empty());
    assert_eq!(draft.uploading, 0, "a later reply is not held back");
    assert!(
        app.flash
            .as_deref()
            .is_some_and(|f| f.starts_with("upload refused: ls:"))
    );
}

#[test]
fn a_refused_reply_gives_its_files_back_with_its_text() {
    let mut app = with_k1_open();
    uploaded(&mut app, file("f1", "a.pdf"));
    type_text(&mut app, "the invoice");
    let (client_id, _) = sends(&key(&mut app, KeyCode::Enter)).remove(0);
    frame(
        &mut app,
        AgentEvent::Error(ErrorFrame {
            code: ErrorCode::Conflict,
            message: "someone else has it".into(),
            reference: Some(client_id),
        }),
    );
    alt(&mut app, 'e');
    let draft = &app.conversations["k1"].draft;
    assert_eq!(draft.buffer.text(), "the invoice");
    assert_eq!(draft.attachments, [file("f1", "a.pdf")]);
}

#[test]
fn tab_completes_after_attach_and_switches_chats_otherwise() {
    let mut app = with_k1_open();
    type_text(&mut app, "/attach ~/re");
    assert_eq!(
        key(&mut app, KeyCode::Tab),
        [Effect::Complete("~/re".into())]
    );
    app.update(Input::Completed {
        text: "~/report-202".into(),
        candidates: vec!["report-2025.pdf".into(), "report-2026.pdf".into()],
    });
    assert_eq!(
        app.conversations["k1"].draft.buffer.text(),
        "/attach ~/report-202"
    );
    assert_eq!(
        app.flash.as_deref(),
        Some("report-2025.pdf  report-2026.pdf")
    );

    let mut app = with_k1_open();
    type_text(&mut app, "hello");
    let effects = key(&mut app, KeyCode::Tab);
    assert!(!effects.iter().any(|e| matches!(e, Effect::Complete(_))));
    assert_ne!(app.open.as_deref(), Some("k1"), "Tab went to the next chat");
}

#[test]
fn a_pasted_file_path_is_offered_and_any_other_key_pastes_it() {
    let mut app = with_k1_open();
    let pasted = |app: &mut App| {
        app.update(Input::PastedFile {
            text: "/tmp/shot.png".into(),
            path: "/tmp/shot.png".into(),
        })
    };
    pasted(&mut app);
    assert!(matches!(app.overlay, Overlay::ConfirmAttach { .. }));
    let effects = key(&mut app, KeyCode::Char('y'));
    assert_eq!(
        effects,
        [Effect::Upload {
            conversation_id: "k1".into(),
            path: "/tmp/shot.png".into(),
        }]
    );
    pasted(&mut app);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.conversations["k1"].draft.buffer.text(), "/tmp/shot.png");
}

/// A terminal with graphics: Alt-o on an image shows it first, Enter then
/// saves and opens it; other files, and every file without graphics, go
/// straight to the opener.
#[test]
fn images_are_previewed_where_the_terminal_can_show_them() {
    let shot = Attachment {
        content_type: "image/png".into(),
        ..file("f1", "shot.png")
    };
    let mut app = with_files(vec![shot.clone()]);
    assert_eq!(alt(&mut app, 'o'), [Effect::Download(shot.clone())]);

    app.prefs.previews = true;
    app.size = (100, 30);
    assert_eq!(
        alt(&mut app, 'o'),
        [Effect::Preview {
            attachment: shot.clone(),
            cells: (96, 25),
        }]
    );
    app.update(Input::File(FileEvent::Preview {
        attachment: shot.clone(),
        image: red_square(),
    }));
    assert!(matches!(app.overlay, Overlay::Preview { .. }));
    assert_eq!(key(&mut app, KeyCode::Enter), [Effect::Download(shot)]);
    assert_eq!(app.overlay, Overlay::None);

    let mut app = with_files(vec![file("f2", "invoice.pdf")]);
    app.prefs.previews = true;
    assert_eq!(
        alt(&mut app, 'o'),
        [Effect::Download(file("f2", "invoice.pdf"))]
    );
}
