//! The terminal loop: raw mode, the event `select!`, drawing when changed.
//!
//! One loop waits on terminal events, the network task's reports and one
//! timer. Nothing ticks: the timer is set only for the next moment the
//! clock alone changes the screen ([`App::next_wake`]), or, after an
//! input, for the next frame — drawing is at most every [`FRAME`], so a
//! burst of frames from the relay costs one redraw. An idle client sleeps.
//!
//! [`App::next_wake`]: crate::app::App::next_wake

use std::io::{self, Stdout, Write};
use std::time::Duration;

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event,
    EventStream, MouseButton, MouseEventKind,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend};
use time::{OffsetDateTime, UtcOffset};
use tokio::time::{Instant, sleep_until};

use crate::TuiError;
use crate::app::{App, Input};
use crate::config::Settings;
use crate::core::Core;
use crate::{hyperlink, notify, ui};

/// At most one frame per this long.
const FRAME: Duration = Duration::from_millis(33);

type Term = Terminal<CrosstermBackend<Stdout>>;

/// Runs the client until the agent quits.
pub async fn run(settings: Settings, utc_offset: UtcOffset) -> Result<(), TuiError> {
    install_panic_hook();
    let mut terminal = enter(settings.mouse)?;
    let result = event_loop(&mut terminal, &settings, utc_offset).await;
    leave()?;
    terminal.show_cursor()?;
    result
}

async fn event_loop(
    terminal: &mut Term,
    settings: &Settings,
    utc_offset: UtcOffset,
) -> Result<(), TuiError> {
    // Before the event stream starts reading the terminal's answers.
    let picker = crate::files::preview::probe();
    let mut core = Core::start(settings, utc_offset, picker);
    let size = terminal.size()?;
    core.handle(Input::Resize {
        width: size.width,
        height: size.height,
    });
    let mut events = EventStream::new();
    let mut dirty = true;
    // Ctrl-L was pressed: the next paint clears first.
    let mut clear = false;
    let mut drawn_at: Option<Instant> = None;
    let mut title = String::new();
    loop {
        let next_frame = drawn_at.map_or_else(Instant::now, |at| at + FRAME);
        if dirty && Instant::now() >= next_frame {
            if let Some(link) = paint(terminal, &core.app, std::mem::take(&mut clear))? {
                write_raw(terminal, &link)?;
            }
            drawn_at = Some(Instant::now());
            dirty = false;
            let wanted = notify::title(&core.app);
            if wanted != title {
                write_raw(terminal, &notify::title_sequence(&wanted))?;
                title = wanted;
            }
        }
        let wake = clock_wake(&core.app);
        let timer = match (dirty, wake) {
            (true, Some(wake)) => Some(wake.min(next_frame)),
            (true, None) => Some(next_frame),
            (false, wake) => wake,
        };
        let input = tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => match terminal_input(event) {
                    Some(input) => input,
                    None => continue,
                },
                Some(Err(error)) => return Err(error.into()),
                None => return Ok(()),
            },
            Some(input) = core.next_input() => input,
            () = sleep_until(timer.unwrap_or_else(Instant::now)), if timer.is_some() => {
                Input::Tick(OffsetDateTime::now_utc())
            }
        };
        let outcome = core.handle(input);
        dirty = true;
        clear |= outcome.redraw;
        for notification in &outcome.notifications {
            write_raw(terminal, &notify::sequence(&settings.notify, notification))?;
        }
        for link in &outcome.links {
            open_link(link);
        }
        if outcome.quit {
            return Ok(());
        }
    }
}

/// Draws the app. With `clear` (Ctrl-L) the terminal is cleared first and
/// ratatui forgets what it believed was on it, so every cell is written
/// again: whatever else wrote to the screen is painted over. Without it,
/// only the cells that changed in the app are written.
/// Returns the escape sequence that makes the notice's address a link
/// where it was drawn, if it shows one.
fn paint<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &App,
    clear: bool,
) -> Result<Option<String>, B::Error> {
    if clear {
        terminal.clear()?;
    }
    let drawn = terminal.draw(|frame| ui::draw(app, frame))?;
    let flash_link = app.flash.as_ref().and(app.flash_link.as_deref());
    Ok(flash_link
        .and_then(|url| hyperlink::find(drawn.buffer, url).map(|at| hyperlink::sequence(&at, url))))
}

/// Hands a link to the desktop's opener, when there is one; the link is
/// on the status line either way.
fn open_link(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let spawned = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(error) = spawned {
        tracing::debug!(%error, "no desktop opener for the assist link");
    }
}

/// When the clock next changes the screen, as a timer deadline.
fn clock_wake(app: &App) -> Option<Instant> {
    let wait = app.next_wake()? - OffsetDateTime::now_utc();
    let wait = Duration::try_from(wait).unwrap_or(Duration::ZERO);
    Some(Instant::now() + wait)
}

fn write_raw(terminal: &mut Term, bytes: &str) -> io::Result<()> {
    let backend = terminal.backend_mut();
    backend.write_all(bytes.as_bytes())?;
    Write::flush(backend)
}

fn terminal_input(event: Event) -> Option<Input> {
    match event {
        Event::Key(key) => Some(Input::Key(key)),
        Event::Paste(text) => Some(Input::Paste(text)),
        Event::Resize(width, height) => Some(Input::Resize { width, height }),
        Event::Mouse(mouse) => match mouse.kind {
            MouseEventKind::Down(MouseButton::Left) => Some(Input::Click {
                column: mouse.column,
                row: mouse.row,
            }),
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => Some(Input::Wheel {
                column: mouse.column,
                row: mouse.row,
                up: mouse.kind == MouseEventKind::ScrollUp,
            }),
            _ => None,
        },
        _ => None,
    }
}

/// Raw mode on the alternate screen. With `mouse`, the terminal reports
/// clicks and the wheel, and selecting text then takes Shift-drag in most
/// terminals; without it, plain dragging selects.
fn enter(mouse: bool) -> Result<Term, TuiError> {
    enable_raw_mode()?;
    execute!(io::stdout(), EnterAlternateScreen, EnableBracketedPaste)?;
    if mouse {
        execute!(io::stdout(), EnableMouseCapture)?;
    }
    // Keep the terminal's own title to give back on the way out (XTWINOPS
    // push; terminals without a title stack ignore it).
    io::stdout().write_all(b"\x1b[22;0t")?;
    Ok(Terminal::new(CrosstermBackend::new(io::stdout()))?)
}

fn leave() -> io::Result<()> {
    disable_raw_mode()?;
    io::stdout().write_all(b"\x1b[23;0t")?;
    execute!(
        io::stdout(),
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    )
}

/// A panic must not leave the agent's terminal in raw mode on the
/// alternate screen: restore it, then report as usual.
fn install_panic_hook() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = leave();
        report(info);
    }));
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyModifiers};
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Cell;

    use super::*;
    use crate::app::Effect;
    use crate::app::tests::{new_app, press};

    /// Ctrl-L repaints a cell that something other than the app wrote,
    /// which an ordinary draw leaves alone (it writes changed cells only).
    #[test]
    fn ctrl_l_repaints_what_something_else_wrote() {
        let mut app = new_app();
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("test terminal");
        let at = (40, 10);
        assert_eq!(paint(&mut terminal, &app, false), Ok(None));
        let expected = terminal.backend().buffer()[at].clone();
        let garbage = Cell::new("🇳");
        let Ok(()) = terminal
            .backend_mut()
            .draw([(at.0, at.1, &garbage)].into_iter());
        assert_eq!(paint(&mut terminal, &app, false), Ok(None));
        assert_eq!(terminal.backend().buffer()[at].symbol(), "🇳");

        let effects = press(&mut app, KeyCode::Char('l'), KeyModifiers::CONTROL);
        assert_eq!(effects, [Effect::Redraw]);
        assert_eq!(paint(&mut terminal, &app, true), Ok(None));
        assert_eq!(terminal.backend().buffer()[at], expected);
    }

    /// The assist link on the status line becomes an OSC 8 link where it
    /// is drawn, and only while the notice shows it.
    #[test]
    fn the_assist_link_is_an_osc_8_link_where_it_is_drawn() {
        let mut app = new_app();
        let url = "http://relay.test/assist#code=a1.x.y";
        app.flash = Some(format!("screen share: open once within 2 min: {url}"));
        app.flash_link = Some(url.to_owned());
        let mut terminal = Terminal::new(TestBackend::new(140, 24)).expect("test terminal");
        let Ok(Some(link)) = paint(&mut terminal, &app, false) else {
            panic!("no link");
        };
        assert!(
            link.contains(&format!("\x1b]8;;{url}\x07{url}\x1b]8;;\x07")),
            "{link:?}"
        );

        app.flash = None;
        assert_eq!(paint(&mut terminal, &app, false), Ok(None));
    }
}
