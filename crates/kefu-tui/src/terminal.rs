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
use ratatui::backend::CrosstermBackend;
use time::{OffsetDateTime, UtcOffset};
use tokio::time::{Instant, sleep_until};

use crate::TuiError;
use crate::app::{App, Input};
use crate::config::Settings;
use crate::core::Core;
use crate::{notify, ui};

/// At most one frame per this long.
const FRAME: Duration = Duration::from_millis(33);

type Term = Terminal<CrosstermBackend<Stdout>>;

/// Runs the client until the agent quits.
pub async fn run(settings: Settings, utc_offset: UtcOffset) -> Result<(), TuiError> {
    install_panic_hook();
    let mut terminal = enter()?;
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
    let mut core = Core::start(settings, utc_offset);
    let size = terminal.size()?;
    core.handle(Input::Resize {
        width: size.width,
        height: size.height,
    });
    let mut events = EventStream::new();
    let mut dirty = true;
    let mut drawn_at: Option<Instant> = None;
    let mut title = String::new();
    loop {
        let next_frame = drawn_at.map_or_else(Instant::now, |at| at + FRAME);
        if dirty && Instant::now() >= next_frame {
            terminal.draw(|frame| ui::draw(&core.app, frame))?;
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
            Some(event) = core.next_net_event() => Input::Net(event),
            () = sleep_until(timer.unwrap_or_else(Instant::now)), if timer.is_some() => {
                Input::Tick(OffsetDateTime::now_utc())
            }
        };
        let outcome = core.handle(input);
        dirty = true;
        for notification in &outcome.notifications {
            write_raw(terminal, &notify::sequence(&settings.notify, notification))?;
        }
        if outcome.quit {
            return Ok(());
        }
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
    backend.flush()
}

fn terminal_input(event: Event) -> Option<Input> {
    match event {
        Event::Key(key) => Some(Input::Key(key)),
        Event::Paste(text) => Some(Input::Paste(text)),
        Event::Resize(width, height) => Some(Input::Resize { width, height }),
        Event::Mouse(mouse) if mouse.kind == MouseEventKind::Down(MouseButton::Left) => {
            Some(Input::Click {
                column: mouse.column,
                row: mouse.row,
            })
        }
        _ => None,
    }
}

fn enter() -> Result<Term, TuiError> {
    enable_raw_mode()?;
    execute!(
        io::stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        EnableBracketedPaste
    )?;
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
