//! Files in a conversation (issue 18): opening one that was sent (Alt-o),
//! attaching one from a path (`/attach PATH`, Tab completes it; or pasting
//! a file's path), and what the file tasks report. The work itself is the
//! runtime's ([`Effect::Download`], [`Effect::Upload`], [`Effect::Complete`]):
//! the state only asks and shows.

use kefu_protocol::Attachment;

use super::{App, Effect, FileEvent, Overlay};
use crate::keys::Focus;
use crate::sanitize;

/// The compose command that uploads a file.
pub const ATTACH: &str = "/attach ";
/// Files one message may carry (docs/protocol.md, "Limits").
const PER_MESSAGE: usize = 10;
/// Completion candidates listed on the status line, at most.
const CANDIDATES_SHOWN: usize = 12;

impl App {
    /// Alt-o: the open conversation's file, or a list when it has several
    /// (newest first).
    pub(super) fn open_file(&mut self) {
        let Some(conversation) = self.open_conversation() else {
            self.flash = Some("open a conversation first".into());
            return;
        };
        let mut choices: Vec<Attachment> = conversation
            .messages
            .values()
            .rev()
            .flat_map(|message| message.attachments.iter().cloned())
            .collect();
        match choices.len() {
            0 => self.flash = Some("no files in this conversation".into()),
            1 => self.show_file(choices.remove(0)),
            _ => self.overlay = Overlay::Files { choices, index: 0 },
        }
    }

    /// An image is previewed first where the terminal can show it; any
    /// other file is downloaded and opened.
    pub(super) fn show_file(&mut self, attachment: Attachment) {
        if !(self.prefs.previews && attachment.is_raster_image()) {
            return self.fetch(attachment);
        }
        if !self.online() {
            self.flash = Some("offline: cannot download now".into());
            return;
        }
        // The overlay's border and hint row.
        let cells = (
            self.size.0.saturating_sub(4).max(1),
            self.size.1.saturating_sub(5).max(1),
        );
        self.flash = Some(format!("loading {}…", attachment.name));
        self.effects.push(Effect::Preview { attachment, cells });
    }

    /// Downloads (then opens) `attachment`.
    pub(super) fn fetch(&mut self, attachment: Attachment) {
        if !self.online() {
            self.flash = Some("offline: cannot download now".into());
            return;
        }
        self.flash = Some(format!("downloading {}…", attachment.name));
        self.effects.push(Effect::Download(attachment));
    }

    /// Enter on `/attach PATH`: uploads the file for the open conversation.
    /// `true` if the draft was that command.
    pub(super) fn attach_command(&mut self) -> bool {
        let online = self.online();
        let Some(id) = self.open.clone() else {
            return false;
        };
        let Some(draft) = self.open_draft() else {
            return false;
        };
        let text = draft.buffer.text();
        let path = match text.strip_prefix(ATTACH) {
            Some(path) => path.trim().to_owned(),
            None if text.trim_end() == ATTACH.trim_end() => String::new(),
            // `/attachment` is text like any other.
            None => return false,
        };
        if path.is_empty() {
            self.flash = Some("usage: /attach PATH (Tab completes)".into());
        } else if draft.attachments.len() + draft.uploading >= PER_MESSAGE {
            self.flash = Some(format!("at most {PER_MESSAGE} files per message"));
        } else if !online {
            self.flash = Some("offline: cannot upload now".into());
        } else {
            draft.buffer.take();
            self.upload(id, path);
        }
        true
    }

    fn upload(&mut self, conversation_id: String, path: String) {
        if let Some(conversation) = self.conversations.get_mut(&conversation_id) {
            conversation.draft.uploading += 1;
        }
        self.flash = Some(format!("uploading {path}…"));
        self.effects.push(Effect::Upload {
            conversation_id,
            path,
        });
    }

    /// Tab in the compose box: completes the path of `/attach PATH`.
    /// `false` if the draft is not that command (Tab then switches chats).
    pub(super) fn complete_attach(&mut self) -> bool {
        if self.focus != Focus::Compose {
            return false;
        }
        let Some(draft) = self.open_draft() else {
            return false;
        };
        let Some(partial) = draft.buffer.text().strip_prefix(ATTACH) else {
            return false;
        };
        let partial = partial.to_owned();
        self.effects.push(Effect::Complete(partial));
        true
    }

    /// The runtime's answer to [`Effect::Complete`].
    pub(super) fn completed(&mut self, text: &str, candidates: &[String]) {
        let Some(draft) = self.open_draft() else {
            return;
        };
        if !draft.buffer.text().starts_with(ATTACH) {
            return;
        }
        draft.buffer.set(&format!("{ATTACH}{text}"));
        if !candidates.is_empty() {
            let shown: Vec<String> = candidates
                .iter()
                .take(CANDIDATES_SHOWN)
                .map(|c| sanitize::line(c))
                .collect();
            let more = candidates.len().saturating_sub(CANDIDATES_SHOWN);
            let mut line = shown.join("  ");
            if more > 0 {
                line.push_str(&format!("  … {more} more"));
            }
            self.flash = Some(line);
        }
    }

    /// A paste that is just an existing file's path: offer to attach it.
    pub(super) fn pasted_file(&mut self, text: String, path: String) {
        if self.focus != Focus::Compose || self.overlay != Overlay::None || self.open.is_none() {
            return self.paste(&text);
        }
        self.overlay = Overlay::ConfirmAttach { path, text };
    }

    /// `y` on the paste question.
    pub(super) fn attach_pasted(&mut self, path: String) {
        let Some(id) = self.open.clone() else { return };
        if !self.online() {
            self.flash = Some("offline: cannot upload now".into());
            return;
        }
        self.upload(id, path);
    }

    /// Alt-d: the last file waiting to go with the next message is dropped
    /// (it stays on the relay unsent, where nobody sees it).
    pub(super) fn drop_attachment(&mut self) {
        let dropped = self.open_draft().and_then(|draft| draft.attachments.pop());
        self.flash = Some(match dropped {
            Some(file) => format!("{} will not be sent", file.name),
            None => "no file waiting to be sent".into(),
        });
    }

    pub(super) fn file_event(&mut self, event: FileEvent) {
        match event {
            FileEvent::Progress { what, done, total } => {
                let percent = (done.saturating_mul(100)).checked_div(total).unwrap_or(100);
                self.flash = Some(format!("{what}: {percent}%"));
            }
            FileEvent::Uploaded {
                conversation_id,
                mut attachment,
            } => {
                attachment.name = sanitize::line(&attachment.name);
                let Some(conversation) = self.conversations.get_mut(&conversation_id) else {
                    return;
                };
                let draft = &mut conversation.draft;
                draft.uploading = draft.uploading.saturating_sub(1);
                self.flash = Some(format!(
                    "{} is attached: it goes with the next message (Alt-d drops it)",
                    attachment.name
                ));
                draft.attachments.push(attachment);
            }
            FileEvent::UploadFailed {
                conversation_id,
                error,
            } => {
                if let Some(conversation) = self.conversations.get_mut(&conversation_id) {
                    let draft = &mut conversation.draft;
                    draft.uploading = draft.uploading.saturating_sub(1);
                }
                self.flash = Some(format!("upload refused: {error}"));
            }
            FileEvent::Saved { path, opened } => {
                self.flash = Some(match opened {
                    Ok(()) => format!("saved and opened {path}"),
                    Err(why) => format!("saved {path} ({why})"),
                });
            }
            FileEvent::Preview { attachment, image } => {
                // Not over something opened meanwhile.
                if self.overlay == Overlay::None {
                    self.flash = None;
                    self.overlay = Overlay::Preview { attachment, image };
                }
            }
            FileEvent::Thumbnail { id, cells, image } => {
                self.thumbnail_arrived(id, cells, image);
            }
            FileEvent::Failed { what, error } => {
                self.flash = Some(format!("{what} failed: {error}"));
            }
        }
    }
}
