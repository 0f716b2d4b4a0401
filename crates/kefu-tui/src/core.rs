//! The app wired to the network task and the file tasks, without a
//! terminal.
//!
//! [`Core`] carries out the app's effects: requests go to the network task
//! with `try_send` (never waiting: the UI loop must not stall on the
//! network), downloads and uploads start file tasks, notifications and
//! quitting are handed back to the caller. The terminal loop and the
//! end-to-end tests drive the same `Core`.

use kefu_protocol::agent::AgentRequest;
use ratatui_image::picker::Picker;
use time::{OffsetDateTime, UtcOffset};
use tokio::sync::mpsc::error::TrySendError;

use crate::app::{App, Effect, Input, Notification, Prefs};
use crate::config::Settings;
use crate::files::Files;
use crate::net::{self, Net};

pub struct Core {
    pub app: App,
    net: Net,
    files: Files,
}

/// What the caller must do after an input.
#[derive(Debug, Default)]
pub struct Outcome {
    pub notifications: Vec<Notification>,
    /// The terminal must be cleared and drawn whole (Ctrl-L).
    pub redraw: bool,
    /// Links to open with the desktop's opener (the terminal loop does;
    /// tests look at them instead).
    pub links: Vec<String>,
    pub quit: bool,
}

impl Core {
    /// Creates the app and starts connecting.
    /// `picker` is the terminal's graphics, if it has any (see
    /// [`crate::files::preview::probe`]).
    pub fn start(settings: &Settings, utc_offset: UtcOffset, picker: Option<Picker>) -> Core {
        let now = OffsetDateTime::now_utc();
        let mut prefs = Prefs::from(settings);
        prefs.previews = picker.is_some();
        prefs.inline_cell = picker
            .as_ref()
            .filter(|_| settings.files.inline_previews)
            .map(|picker| (picker.font_size().width, picker.font_size().height));
        Core {
            app: App::new(prefs, now, utc_offset),
            net: net::spawn(
                settings.url.clone(),
                settings.token.clone(),
                settings.tls.clone(),
            ),
            files: Files::new(
                &settings.url,
                settings.token.clone(),
                settings.tls.clone(),
                settings.files.clone(),
                picker,
            ),
        }
    }

    /// The next report of the network task or a file task; `None` once
    /// the network task has stopped (token refused), after which no file
    /// can be asked for either.
    pub async fn next_input(&mut self) -> Option<Input> {
        tokio::select! {
            event = self.net.events.recv() => event.map(Input::Net),
            // Never closes: the core holds a sender.
            Some(event) = self.files.events.recv() => Some(Input::File(event)),
        }
    }

    /// Applies `input` at the current time: the clock is given to the app
    /// first, since nothing ticks while the client is idle.
    pub fn handle(&mut self, input: Input) -> Outcome {
        // Whether a paste is a file's path is a question for the disk,
        // which the app does not ask.
        let input = match input {
            Input::Paste(text) => match self.files.pasted_file(&text) {
                Some(path) => Input::PastedFile { text, path },
                None => Input::Paste(text),
            },
            input => input,
        };
        let mut outcome = Outcome::default();
        if !matches!(input, Input::Tick(_)) {
            self.apply(Input::Tick(OffsetDateTime::now_utc()), &mut outcome);
        }
        self.apply(input, &mut outcome);
        outcome
    }

    fn apply(&mut self, input: Input, outcome: &mut Outcome) {
        for effect in self.app.update(input) {
            match effect {
                Effect::Request(request) => self.forward(request),
                Effect::Notify(notification) => outcome.notifications.push(notification),
                Effect::Redraw => outcome.redraw = true,
                Effect::OpenLink(url) => outcome.links.push(url),
                Effect::Download(attachment) => self.files.download(attachment),
                Effect::Preview { attachment, cells } => self.files.preview(attachment, cells),
                Effect::Thumbnail { attachment, cells } => {
                    self.files.thumbnail(attachment, cells);
                }
                Effect::Upload {
                    conversation_id,
                    path,
                } => self.files.upload(conversation_id, &path),
                Effect::Complete(partial) => {
                    let done = self.files.complete(&partial);
                    let answer = Input::Completed {
                        text: done.text,
                        candidates: done.candidates,
                    };
                    self.apply(answer, outcome);
                }
                Effect::Quit => outcome.quit = true,
            }
        }
    }

    fn forward(&self, request: AgentRequest) {
        match self.net.requests.try_send(request) {
            Ok(()) => {}
            // A reply dropped here stays pending in the app and is resent
            // after the next welcome; anything else the agent can redo.
            Err(TrySendError::Full(request)) => {
                tracing::warn!(?request, "network queue full, request dropped");
            }
            Err(TrySendError::Closed(_)) => {}
        }
    }
}
