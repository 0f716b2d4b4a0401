//! Files between kefu-tui and a real relay (issue 18): Alt-o downloads a
//! visitor's file into the download folder (never over an existing file)
//! and hands it to the opener — a stub script here, which records what it
//! was given —; `/attach` uploads a file (Tab completing its path) that
//! goes with the next reply to the visitor; a pasted path offers to attach;
//! an image is previewed in a popup (Alt-o) and inline in the history.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use kefu_protocol::agent::Role;
use kefu_protocol::visitor::{VisitorEvent, VisitorRequest};
use kefu_protocol::{Attachment, AuthorKind};
use kefu_testkit::http::Client as Http;
use kefu_testkit::{Client, TestRelay};
use kefu_tui::app::{App, Filter, Input, Overlay};
use kefu_tui::config::FileSettings;
use kefu_tui::core::Core;
use kefu_tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui_image::picker::Picker;

use super::support::{pump_until, shop_visitor};
use super::{client_with_files, press, write};

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n";

/// An opener that writes the path it was given into `record`.
fn stub_opener(dir: &Path, record: &Path) -> Vec<String> {
    let script = dir.join("opener.sh");
    let body = format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\n", record.display());
    std::fs::write(&script, body).expect("opener script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    vec![script.display().to_string()]
}

/// Uploads `body` as the visitor holding `token`.
async fn visitor_upload(relay: &TestRelay, token: &str, name: &str, body: &[u8]) -> Attachment {
    let bearer = format!("Bearer {token}");
    let answer = Http::new()
        .post(
            relay.addr,
            &format!("/api/files?name={name}"),
            &[("authorization", bearer.as_str())],
            body.to_vec(),
        )
        .await
        .expect("upload");
    assert_eq!(answer.status, 201, "{}", answer.body);
    serde_json::from_str(&answer.body).expect("an attachment")
}

/// The visitor's first message, with `files`; its conversation's id.
async fn send_files(
    visitor: &mut Client<VisitorEvent>,
    text: &str,
    files: &[&Attachment],
) -> String {
    visitor
        .send(&VisitorRequest::Send {
            client_id: "v1".into(),
            text: text.into(),
            attachments: files.iter().map(|file| file.id.clone()).collect(),
        })
        .await;
    visitor
        .until(|event| match event {
            VisitorEvent::Ack(ack) => Some(ack.conversation_id),
            VisitorEvent::Error(error) => panic!("refused: {error:?}"),
            _ => None,
        })
        .await
}

fn alt(core: &mut Core, ch: char) {
    core.handle(Input::Key(KeyEvent::new(
        KeyCode::Char(ch),
        KeyModifiers::ALT,
    )));
}

/// The screen as text rows, drawn as the terminal would (a wide symbol's
/// second cell left out).
fn screen(app: &App) -> String {
    let mut terminal = Terminal::new(TestBackend::new(120, 30)).expect("test terminal");
    terminal.draw(|frame| ui::draw(app, frame)).expect("drawn");
    let buffer = terminal.backend().buffer();
    let mut text = String::new();
    for y in 0..buffer.area.height {
        let mut covered = 0;
        for x in 0..buffer.area.width {
            if covered > 0 {
                covered -= 1;
                continue;
            }
            let symbol = buffer[(x, y)].symbol();
            text.push_str(symbol);
            covered = unicode_width::UnicodeWidthStr::width(symbol).saturating_sub(1);
        }
        text.push('\n');
    }
    text
}

fn flash(app: &App) -> &str {
    app.flash.as_deref().unwrap_or("")
}

struct Desk {
    relay: TestRelay,
    core: Core,
    dir: tempfile::TempDir,
    downloads: PathBuf,
    record: PathBuf,
}

/// A relay, and an agent's client saving into a temp folder with the stub
/// opener, online; in a terminal without graphics.
async fn desk() -> Desk {
    desk_with(None).await
}

async fn desk_with(picker: Option<Picker>) -> Desk {
    desk_on(TestRelay::start().await, picker).await
}

async fn desk_on(relay: TestRelay, picker: Option<Picker>) -> Desk {
    let token = relay.add_agent("alice", Role::Agent).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let downloads = dir.path().join("downloads");
    let record = dir.path().join("opened.txt");
    let files = FileSettings {
        download_dir: downloads.clone(),
        opener: stub_opener(dir.path(), &record),
        inline_previews: true,
    };
    let mut core = client_with_files(relay.addr, token, files, picker);
    pump_until(&mut core, "the welcome", |app| app.online()).await;
    Desk {
        relay,
        core,
        dir,
        downloads,
        record,
    }
}

/// Opens conversation `id` once it is listed, and waits for its history.
async fn open(core: &mut Core, id: &str, seq: u64) {
    pump_until(core, "the conversation", |app| {
        app.conversations.contains_key(id)
    })
    .await;
    core.app.filter = Filter::Waiting;
    press(core, KeyCode::Enter);
    pump_until(core, "the history", |app| {
        app.conversations[id].messages.contains_key(&seq)
    })
    .await;
}

#[tokio::test]
async fn alt_o_saves_a_visitors_file_beside_an_older_one_and_opens_it() {
    let Desk {
        relay,
        mut core,
        dir: _dir,
        downloads,
        record,
    } = desk().await;
    let (mut visitor, welcome) = shop_visitor(relay.addr, None, None).await;
    let invoice = visitor_upload(&relay, &welcome.token, "invoice.pdf", PDF).await;
    let receipt = visitor_upload(&relay, &welcome.token, "receipt.pdf", PDF).await;
    let id = send_files(
        &mut visitor,
        "my invoice and receipt",
        &[&invoice, &receipt],
    )
    .await;
    open(&mut core, &id, 1).await;
    let shown = screen(&core.app);
    assert!(
        shown.contains("📎 receipt.pdf (50 B, application/pdf)"),
        "{shown}"
    );

    // A file of that name is already there: it must survive.
    std::fs::create_dir_all(&downloads).expect("downloads");
    std::fs::write(downloads.join("receipt.pdf"), b"older").expect("older file");

    // Two files: Alt-o lists them; the second is chosen.
    alt(&mut core, 'o');
    assert!(matches!(core.app.overlay, Overlay::Files { .. }));
    assert!(screen(&core.app).contains("Open a file"));
    press(&mut core, KeyCode::Down);
    press(&mut core, KeyCode::Enter);
    pump_until(&mut core, "the download and the opener", |app| {
        flash(app).starts_with("saved and opened")
    })
    .await;

    let saved = downloads.join("receipt (1).pdf");
    assert!(
        screen(&core.app).contains(&format!("saved and opened {}", saved.display())),
        "the status line says where: {}",
        screen(&core.app)
    );
    assert_eq!(std::fs::read(&saved).expect("saved"), PDF);
    assert_eq!(
        std::fs::read(downloads.join("receipt.pdf")).expect("older"),
        b"older"
    );
    assert_eq!(
        std::fs::read_to_string(&record).expect("the opener ran"),
        saved.display().to_string()
    );
}

#[tokio::test]
async fn a_file_the_opener_cannot_take_is_still_saved_and_said_so() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let files = FileSettings {
        download_dir: dir.path().to_owned(),
        opener: vec![dir.path().join("no-such-opener").display().to_string()],
        inline_previews: true,
    };
    let mut core = client_with_files(relay.addr, token, files, None);
    pump_until(&mut core, "the welcome", |app| app.online()).await;
    let (mut visitor, welcome) = shop_visitor(relay.addr, None, None).await;
    let invoice = visitor_upload(&relay, &welcome.token, "invoice.pdf", PDF).await;
    let id = send_files(&mut visitor, "", &[&invoice]).await;
    open(&mut core, &id, 1).await;
    alt(&mut core, 'o');
    pump_until(&mut core, "the download", |app| {
        flash(app).starts_with("saved ")
    })
    .await;
    let saved = dir.path().join("invoice.pdf");
    assert_eq!(std::fs::read(&saved).expect("saved"), PDF);
    assert!(
        flash(&core.app).contains("not installed"),
        "{}",
        flash(&core.app)
    );
}

#[tokio::test]
async fn an_attached_file_goes_with_the_next_reply_to_the_visitor() {
    let Desk {
        relay,
        mut core,
        dir,
        ..
    } = desk().await;
    let outbox = dir.path().join("outbox");
    std::fs::create_dir(&outbox).expect("outbox");
    std::fs::write(outbox.join("invoice-2026-11.pdf"), PDF).expect("pdf");
    std::fs::write(
        outbox.join("program"),
        b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0",
    )
    .expect("elf");
    let (mut visitor, _) = shop_visitor(relay.addr, None, None).await;
    let id = visitor.say("v1", "my invoice?").await.conversation_id;
    open(&mut core, &id, 1).await;

    // Tab completes the path as far as it is unambiguous.
    let typed = format!("/attach {}/i", outbox.display());
    typed
        .chars()
        .for_each(|ch| press(&mut core, KeyCode::Char(ch)));
    press(&mut core, KeyCode::Tab);
    let draft = core.app.conversations[&id].draft.buffer.text().to_owned();
    assert_eq!(
        draft,
        format!("/attach {}/invoice-2026-11.pdf", outbox.display())
    );
    press(&mut core, KeyCode::Enter);
    pump_until(&mut core, "the upload", |app| {
        !app.conversations[&id].draft.attachments.is_empty()
    })
    .await;
    assert!(
        screen(&core.app).contains("+ 📎 invoice-2026-11.pdf (50 B, application/pdf)"),
        "listed above the compose box: {}",
        screen(&core.app)
    );

    // A type the relay refuses is said, and nothing is attached.
    write(&mut core, &format!("/attach {}/program", outbox.display()));
    pump_until(&mut core, "the refusal", |app| {
        flash(app).starts_with("upload refused")
    })
    .await;
    assert!(
        flash(&core.app).contains("not accepted"),
        "{}",
        flash(&core.app)
    );
    assert_eq!(core.app.conversations[&id].draft.attachments.len(), 1);

    write(&mut core, "here it is");
    let reply = visitor.next_message().await;
    assert_eq!(reply.author.kind, AuthorKind::Agent);
    assert_eq!(reply.text, "here it is");
    let names: Vec<&str> = reply.attachments.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["invoice-2026-11.pdf"]);
    pump_until(&mut core, "the ack", |app| {
        app.conversations[&id].outgoing.is_empty()
    })
    .await;
    assert!(core.app.conversations[&id].draft.attachments.is_empty());

    // A pasted path of an existing file: asked, then attached.
    let path = outbox.join("invoice-2026-11.pdf").display().to_string();
    core.handle(Input::Paste(path.clone()));
    assert!(matches!(core.app.overlay, Overlay::ConfirmAttach { .. }));
    assert!(screen(&core.app).contains("Attach this file?"));
    press(&mut core, KeyCode::Char('y'));
    pump_until(&mut core, "the pasted file's upload", |app| {
        app.conversations[&id].draft.attachments.len() == 1
    })
    .await;
    // Any other key pastes the path as text.
    core.handle(Input::Paste(path.clone()));
    press(&mut core, KeyCode::Char('n'));
    assert_eq!(core.app.conversations[&id].draft.buffer.text(), path);
}

/// On a 120×30 screen, a visitor sends a 64×32 green PNG (`error.png`)
/// and the agent opens the conversation: the PNG, its attachment and the
/// visitor (kept connected).
async fn screenshot_shown(
    relay: &TestRelay,
    core: &mut Core,
) -> (Vec<u8>, Attachment, Client<VisitorEvent>) {
    core.handle(Input::Resize {
        width: 120,
        height: 30,
    });
    let mut png = Vec::new();
    image::RgbImage::from_pixel(64, 32, image::Rgb([10, 160, 20]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    let (mut visitor, welcome) = shop_visitor(relay.addr, None, None).await;
    let shot = visitor_upload(relay, &welcome.token, "error.png", &png).await;
    let id = send_files(&mut visitor, "this error", &[&shot]).await;
    open(core, &id, 1).await;
    (png, shot, visitor)
}

/// In a terminal with graphics (half blocks stand in for kitty, iTerm2 or
/// sixel, which `TestBackend` cannot show), Alt-o on a visitor's
/// screenshot draws it; Enter then saves and opens it.
#[tokio::test]
async fn a_screenshot_is_drawn_in_the_terminal_before_it_is_saved() {
    let Desk {
        relay,
        mut core,
        dir: _dir,
        downloads,
        record,
    } = desk_with(Some(Picker::halfblocks())).await;
    let (png, _, _visitor) = screenshot_shown(&relay, &mut core).await;

    alt(&mut core, 'o');
    pump_until(&mut core, "the preview", |app| {
        matches!(app.overlay, Overlay::Preview { .. })
    })
    .await;
    let mut terminal = Terminal::new(TestBackend::new(120, 30)).expect("test terminal");
    terminal
        .draw(|frame| ui::draw(&core.app, frame))
        .expect("drawn");
    let green = Color::Rgb(10, 160, 20);
    let painted = (terminal.backend().buffer().content().iter())
        .filter(|cell| cell.fg == green || cell.bg == green)
        .count();
    // 64×32 pixels in 10×20-pixel cells, not enlarged: 7×2 cells.
    assert_eq!(painted, 14, "the image is drawn whole");
    assert!(screen(&core.app).contains(" error.png "));

    press(&mut core, KeyCode::Enter);
    pump_until(&mut core, "the download", |app| {
        flash(app).starts_with("saved and opened")
    })
    .await;
    assert_eq!(
        std::fs::read(downloads.join("error.png")).expect("saved"),
        png
    );
    assert!(record.exists(), "the opener ran");
}

/// In a terminal with graphics, a visitor's screenshot is previewed
/// inline under its `📎` row: its thumbnail is fetched from the relay as
/// soon as the conversation is open, and drawn in the history.
#[tokio::test]
async fn a_screenshot_is_previewed_inline_in_the_history() {
    let Desk {
        relay,
        mut core,
        dir: _dir,
        ..
    } = desk_with(Some(Picker::halfblocks())).await;
    let (_, shot, _visitor) = screenshot_shown(&relay, &mut core).await;
    assert!(shot.thumbnail.is_some(), "the relay made a thumbnail");
    assert!(screen(&core.app).contains("loading preview…"));
    // 64×32 pixels in 10×20-pixel cells, not enlarged: 7×2 cells.
    pump_until(&mut core, "the thumbnail", |app| {
        app.thumbnails.get(&shot.id, (7, 2)).is_some()
    })
    .await;
    let mut terminal = Terminal::new(TestBackend::new(120, 30)).expect("test terminal");
    terminal
        .draw(|frame| ui::draw(&core.app, frame))
        .expect("drawn");
    // The thumbnail is a JPEG: green, give or take.
    let green = |color: Color| matches!(color, Color::Rgb(r, g, b) if g > 120 && r < 60 && b < 60);
    let painted = (terminal.backend().buffer().content().iter())
        .filter(|cell| green(cell.fg) || green(cell.bg))
        .count();
    assert_eq!(painted, 14, "the thumbnail is drawn whole");
    let text = screen(&core.app);
    assert!(text.contains("📎 error.png"), "{text}");
    assert!(!text.contains("loading preview"), "{text}");
}

/// A file past the relay's size limit is refused while it streams; the
/// agent reads why, and nothing is attached.
#[tokio::test]
async fn a_file_too_large_for_the_relay_is_refused_clearly() {
    let relay = TestRelay::with_config(|config| config.limits.max_file_bytes = 64 * 1024).await;
    let Desk {
        relay,
        mut core,
        dir,
        ..
    } = desk_on(relay, None).await;
    let big = dir.path().join("scan.pdf");
    let mut pdf = PDF.to_vec();
    pdf.resize(4 * 1024 * 1024, b' ');
    std::fs::write(&big, &pdf).expect("big file");
    let (mut visitor, _) = shop_visitor(relay.addr, None, None).await;
    let id = visitor.say("v1", "the scan?").await.conversation_id;
    open(&mut core, &id, 1).await;
    write(&mut core, &format!("/attach {}", big.display()));
    pump_until(&mut core, "the refusal", |app| {
        flash(app).starts_with("upload refused")
    })
    .await;
    assert!(
        flash(&core.app).contains("too_large"),
        "{}",
        flash(&core.app)
    );
    let draft = &core.app.conversations[&id].draft;
    assert!(draft.attachments.is_empty() && draft.uploading == 0);
    // A directory is not a file to send.
    write(&mut core, &format!("/attach {}", dir.path().display()));
    pump_until(&mut core, "the refusal", |app| {
        flash(app).contains("not a file")
    })
    .await;
}
