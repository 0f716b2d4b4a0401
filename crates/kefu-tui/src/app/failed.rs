//! Replies the relay refused: retried when that can succeed, taken back
//! into compose, or dropped.

use kefu_protocol::ErrorCode;

use super::requests::send_request;
use super::{App, Outgoing, SendState};

/// Whether sending a refused reply again can succeed: only when the relay
/// was busy or failing. A conflict (the chat is someone else's now), a
/// missing chat or a reply too large will be refused again.
pub fn retry_can_succeed(code: ErrorCode) -> bool {
    matches!(code, ErrorCode::RateLimited | ErrorCode::Internal)
}

impl App {
    /// Alt-r: resends the open conversation's failed replies that can
    /// succeed, with the same ids.
    pub(super) fn retry(&mut self) {
        let Some(id) = self.open.clone() else { return };
        let online = self.online();
        let Some(conversation) = self.conversations.get_mut(&id) else {
            return;
        };
        let mut resend = Vec::new();
        for out in &mut conversation.outgoing {
            if matches!(out.state, SendState::Failed { retry: true, .. }) {
                out.state = SendState::Pending;
                resend.push(send_request(&id, out));
            }
        }
        if resend.is_empty() {
            self.flash = Some(if conversation.outgoing.is_empty() {
                "nothing to retry".into()
            } else {
                "a retry would be refused again: Alt-e edits it, Alt-x drops it".into()
            });
        } else if online {
            resend.into_iter().for_each(|r| self.request(r));
        }
    }

    /// Alt-e: the open conversation's failed replies go back into its
    /// compose box (after any draft), to copy, change or send elsewhere.
    pub(super) fn edit_failed(&mut self) {
        let failed = self.take_failed();
        if failed.is_empty() {
            self.flash = Some("no failed reply to edit".into());
            return;
        }
        let Some(draft) = self.open_draft() else {
            return;
        };
        let mut text = draft.buffer.text().to_owned();
        for out in failed {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&out.text);
            draft.internal = out.internal;
            draft.attachments.extend(out.attachments);
        }
        draft.buffer.set(&text);
        self.focus = crate::keys::Focus::Compose;
    }

    /// Alt-x: drops the open conversation's failed replies.
    pub(super) fn discard_failed(&mut self) {
        let dropped = self.take_failed().len();
        self.flash = Some(match dropped {
            0 => "no failed reply to drop".into(),
            1 => "dropped the failed reply".into(),
            n => format!("dropped {n} failed replies"),
        });
    }

    /// Removes and returns the open conversation's failed replies.
    fn take_failed(&mut self) -> Vec<Outgoing> {
        let Some(conversation) = self
            .open
            .as_ref()
            .and_then(|id| self.conversations.get_mut(id))
        else {
            return Vec::new();
        };
        let (failed, kept) = std::mem::take(&mut conversation.outgoing)
            .into_iter()
            .partition(|out| matches!(out.state, SendState::Failed { .. }));
        conversation.outgoing = kept;
        failed
    }
}
