//! Images previewed inline in the history (issue 18): rows reserved under
//! the `📎` row, the thumbnail drawn there once ready and only when it is
//! wholly in view, scrolling that counts those rows, and the plain `📎`
//! row without graphics or after a failure. (Half blocks stand in for
//! kitty, iTerm2 or sixel graphics, which `TestBackend` cannot show.)

use crossterm::event::KeyCode;
use kefu_protocol::agent::{AgentEvent, ConversationStatus, HistoryPage};
use kefu_protocol::files::Thumbnail;
use kefu_protocol::{Attachment, AuthorKind, Message};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;

use super::tests::{render, rows};
use crate::app::tests::files::red_square;
use crate::app::tests::{ME, frame, key, message, new_app, summary, welcome_frame};
use crate::app::thumbnails::Cells;
use crate::app::{App, Effect, FileEvent, Input, Thumbnails, history};

/// A terminal cell in pixels.
const CELL: Cells = (10, 20);
const WIDTH: u16 = 100;
const HEIGHT: u16 = 30;
/// A 320×240 thumbnail in 10×20-pixel cells, at most 8 rows.
const SHOT_CELLS: Cells = (22, 8);

fn shot(id: &str) -> Attachment {
    Attachment {
        id: id.into(),
        name: format!("{id}.png"),
        size: 48_000,
        content_type: "image/png".into(),
        width: Some(1280),
        height: Some(960),
        thumbnail: Some(Thumbnail {
            width: 320,
            height: 240,
        }),
    }
}

/// Message 1 carries a screenshot; then `more` lines of text follow.
fn history(more: u64) -> Vec<Message> {
    let mut first = message("k1", 1, AuthorKind::Visitor, "see the error");
    first.attachments = vec![shot("f1")];
    let rest = (2..2 + more).map(|seq| message("k1", seq, AuthorKind::Visitor, "any idea?"));
    std::iter::once(first).chain(rest).collect()
}

/// Conversation k1 open on a WIDTH×HEIGHT screen, in a terminal with
/// graphics if `graphics`; the effects of its history's arrival.
fn desk(graphics: bool, messages: Vec<Message>) -> (App, Vec<Effect>) {
    let mut app = new_app();
    if graphics {
        app.thumbnails = Thumbnails::new(Some(CELL));
    }
    app.update(Input::Resize {
        width: WIDTH,
        height: HEIGHT,
    });
    let mut k1 = summary("k1", ConversationStatus::Active, 9);
    k1.assignee = Some(ME.into());
    k1.last_seq = messages.len() as u64;
    frame(&mut app, welcome_frame(vec![k1]));
    key(&mut app, KeyCode::Enter);
    let page = HistoryPage {
        conversation_id: "k1".into(),
        messages,
    };
    let effects = frame(&mut app, AgentEvent::History(page));
    (app, effects)
}

/// The thumbnails asked for: (attachment id, cells).
fn asked(effects: &[Effect]) -> Vec<(String, Cells)> {
    (effects.iter())
        .filter_map(|effect| match effect {
            Effect::Thumbnail { attachment, cells } => Some((attachment.id.clone(), *cells)),
            _ => None,
        })
        .collect()
}

fn arrived(app: &mut App, image: Result<crate::app::Preview, String>) -> Vec<Effect> {
    app.update(Input::File(FileEvent::Thumbnail {
        id: "f1".into(),
        cells: SHOT_CELLS,
        image,
    }))
}

/// Cells painted with the test image's red: (column, row).
fn red(buffer: &Buffer) -> Vec<(u16, u16)> {
    let red = Color::Rgb(200, 30, 30);
    let area = buffer.area;
    (0..area.height)
        .flat_map(|y| (0..area.width).map(move |x| (x, y)))
        .filter(|&(x, y)| [buffer[(x, y)].fg, buffer[(x, y)].bg].contains(&red))
        .collect()
}

/// Where the `📎` of the screenshot's row is.
fn clip(buffer: &Buffer) -> (u16, u16) {
    let y = rows(buffer)
        .iter()
        .position(|row| row.contains("📎 f1.png"))
        .expect("the clip row") as u16;
    let x = (0..buffer.area.width)
        .find(|&x| buffer[(x, y)].symbol() == "📎")
        .expect("the clip");
    (x, y)
}

fn history_area(app: &App) -> Rect {
    let screen = app.screen(Rect::new(0, 0, WIDTH, HEIGHT));
    screen.conversation.expect("a conversation open").history
}

#[test]
fn an_image_is_previewed_under_its_clip_row_once_its_thumbnail_is_ready() {
    let (mut app, effects) = desk(true, history(1));
    assert_eq!(asked(&effects), [("f1".to_owned(), SHOT_CELLS)]);
    let buffer = render(&mut app, WIDTH, HEIGHT);
    let screen = rows(&buffer);
    let (x, y) = clip(&buffer);
    let y = usize::from(y);
    assert!(screen[y + 1].contains("loading preview…"), "{screen:#?}");
    // Its 8 rows are kept for it before the next message.
    let blank =
        (y + 2..y + 9).all(|row| (x..x + 22).all(|cx| buffer[(cx, row as u16)].symbol() == " "));
    assert!(blank, "{screen:#?}");
    assert!(screen[y + 9].contains("Visitor k1"), "{screen:#?}");
    assert!(screen[y + 10].contains("any idea?"), "{screen:#?}");
    assert!(red(&buffer).is_empty());

    assert!(asked(&arrived(&mut app, Ok(red_square()))).is_empty());
    let buffer = render(&mut app, WIDTH, HEIGHT);
    let screen = rows(&buffer);
    assert_eq!(clip(&buffer), (x, y as u16), "nothing moved: {screen:#?}");
    assert!(!screen.join("\n").contains("loading preview"));
    let painted = red(&buffer);
    // The 4×2-cell image, right under the clip.
    assert_eq!(painted.len(), 8, "{screen:#?}");
    let y = y as u16;
    assert!(
        painted
            .iter()
            .all(|&(px, py)| (x..x + 4).contains(&px) && (y + 1..y + 3).contains(&py)),
        "{painted:?}"
    );
    // A popup hides it (graphics would be drawn over the popup).
    app.overlay = crate::app::Overlay::Help;
    assert!(red(&render(&mut app, WIDTH, HEIGHT)).is_empty());
}

#[test]
fn without_graphics_or_a_thumbnail_an_image_is_its_clip_row_alone() {
    let plain = |app: &mut App| {
        let buffer = render(app, WIDTH, HEIGHT);
        let screen = rows(&buffer);
        let (_, y) = clip(&buffer);
        let y = usize::from(y);
        assert!(screen[y + 1].contains("Visitor k1"), "{screen:#?}");
        assert!(screen[y + 2].contains("any idea?"), "{screen:#?}");
        assert!(!screen.join("\n").contains("preview"));
    };
    let (mut app, effects) = desk(false, history(1));
    assert!(asked(&effects).is_empty(), "nothing to fetch: {effects:?}");
    plain(&mut app);

    // Graphics, but the thumbnail cannot be had: its rows go, and it is
    // not asked for again.
    let (mut app, effects) = desk(true, history(1));
    assert_eq!(asked(&effects).len(), 1);
    arrived(&mut app, Err("404".into()));
    plain(&mut app);
    assert!(asked(&key(&mut app, KeyCode::Down)).is_empty());
}

/// Scrolling counts the preview's rows; a preview partly out of view is
/// not drawn (graphics are drawn whole), but named; thumbnails are asked
/// for only near the view.
#[test]
fn scrolling_counts_preview_rows_and_draws_only_whole_previews() {
    let (mut app, effects) = desk(true, history(30));
    assert!(asked(&effects).is_empty(), "far above the view");
    let conversation = &app.conversations["k1"];
    let total = history::rows(conversation, history_area(&app).width, &app.thumbnails).len();
    // Header, text and clip, 8 preview rows; then 30 messages of 2 rows.
    assert_eq!(total, 3 + 8 + 30 * 2);

    let mut requests = Vec::new();
    let mut pages = 0;
    loop {
        let before = app.conversations["k1"].scroll;
        requests.extend(asked(&key(&mut app, KeyCode::PageUp)));
        if app.conversations["k1"].scroll == before {
            break;
        }
        pages += 1;
    }
    assert!(pages >= 2, "{pages}");
    assert_eq!(requests, [("f1".to_owned(), SHOT_CELLS)], "asked for once");
    let area = history_area(&app);
    assert_eq!(
        app.conversations["k1"].scroll,
        total - usize::from(area.height),
        "the top is reached with the preview's rows counted"
    );
    arrived(&mut app, Ok(red_square()));
    let top = render(&mut app, WIDTH, HEIGHT);
    assert_eq!(red(&top).len(), 8, "wholly in view: drawn");

    // One notch of the wheel (3 rows): the preview's first row at the top.
    let wheel = |app: &mut App| {
        app.update(Input::Wheel {
            column: area.x + 2,
            row: area.y + 2,
            up: false,
        })
    };
    wheel(&mut app);
    assert_eq!(red(&render(&mut app, WIDTH, HEIGHT)).len(), 8);
    // Another: its top rows are above the view, so it is not drawn.
    wheel(&mut app);
    let cut = render(&mut app, WIDTH, HEIGHT);
    assert!(red(&cut).is_empty(), "{:#?}", rows(&cut));
    let screen = rows(&cut);
    let first = usize::from(area.y);
    assert!(
        screen[first].contains("(preview: scroll to see it whole)"),
        "{screen:#?}"
    );
    // Rows 6 to 10 of the history (its last 5) are at the top.
    assert!(screen[first + 5].contains("Visitor k1"), "{screen:#?}");
}

/// A thumbnail that fails below a history scrolled up gives its rows back
/// without moving the text being read.
#[test]
fn a_preview_failing_below_the_view_leaves_the_text_still() {
    let mut messages: Vec<Message> = (1..=20)
        .map(|seq| message("k1", seq, AuthorKind::Visitor, &format!("line {seq}")))
        .collect();
    let mut last = message("k1", 21, AuthorKind::Visitor, "see the error");
    last.attachments = vec![shot("f1")];
    messages.push(last);
    let (mut app, effects) = desk(true, messages);
    assert_eq!(asked(&effects).len(), 1);
    let area = history_area(&app);
    // Three notches up: 9 rows, the preview's 8 and its clip row below.
    for _ in 0..3 {
        app.update(Input::Wheel {
            column: area.x + 2,
            row: area.y + 2,
            up: true,
        });
    }
    let shown = |app: &mut App| {
        let screen = rows(&render(app, WIDTH, HEIGHT));
        screen[usize::from(area.y)..usize::from(area.bottom())].to_vec()
    };
    let before = shown(&mut app);
    assert!(!before.join("\n").contains("f1.png"), "{before:#?}");
    arrived(&mut app, Err("gone".into()));
    assert_eq!(app.conversations["k1"].scroll, 1);
    assert_eq!(shown(&mut app), before);
}
