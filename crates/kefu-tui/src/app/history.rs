//! A conversation's history as screen rows, before any styling: one header
//! row per message, then its text wrapped by display width and a row per
//! attached file (and, under an image, the rows its inline preview takes:
//! [`super::thumbnails`]); one row per timeline event.
//!
//! Drawing turns each row into one styled line and scrolling counts them,
//! so both agree on the history's height without the state depending on
//! the drawing.

use kefu_protocol::trail::LinkCard;
use kefu_protocol::{Attachment, AuthorKind, Message, TimelineEvent};

use super::conversation::{Conversation, Outgoing, SendState};
use super::thumbnails::{Cells, Thumbnails};
use crate::wrap::wrap;

/// Body rows are indented by this much; notes put a bar there.
pub const INDENT: usize = 2;

/// One screen row of a history.
#[derive(Debug, Clone, PartialEq)]
pub enum Row<'a> {
    /// Above the messages: older ones are loading, can be loaded, or there
    /// are none.
    Notice(&'static str),
    /// A stored message's header; `seen` marks the newest reply the visitor
    /// has read.
    Header { message: &'a Message, seen: bool },
    /// A timeline event (claim, transfer, resolve, reopen): one row, no body.
    Event {
        message: &'a Message,
        event: &'a TimelineEvent,
    },
    /// The header of a reply not yet acknowledged.
    Pending(&'a Outgoing),
    /// One row of a message's text, without the indent.
    Body { text: String, internal: bool },
    /// Row `part` of the `cells` an image's inline preview takes, after
    /// the indent.
    Image {
        attachment: &'a Attachment,
        cells: Cells,
        part: u16,
        internal: bool,
    },
    /// Under a refused reply: what can be done with it (`retry` if
    /// sending it again can succeed).
    Failed { retry: bool },
}

/// Where the rows a history pane `height` rows tall shows end (exclusive),
/// scrolled `scroll` rows up from the newest: never past the oldest row.
pub fn view_end(total: usize, scroll: usize, height: usize) -> usize {
    total - scroll.min(total.saturating_sub(height))
}

/// Every row of `conversation`'s history for a pane `width` columns wide,
/// oldest first; replies not yet acknowledged come last. `thumbnails`
/// says which images have a preview, and its size.
pub fn rows<'a>(
    conversation: &'a Conversation,
    width: u16,
    thumbnails: &Thumbnails,
) -> Vec<Row<'a>> {
    let width = usize::from(width);
    let mut rows = Vec::new();
    if conversation.loading_older {
        rows.push(Row::Notice("loading older messages…"));
    } else if !conversation.complete() {
        rows.push(Row::Notice("PgUp for older messages"));
    } else if conversation.messages.is_empty() && conversation.outgoing.is_empty() {
        rows.push(Row::Notice("No messages yet."));
    }
    let seen = last_seen(conversation);
    for message in conversation.messages.values() {
        if let Some(event) = &message.event {
            rows.push(Row::Event { message, event });
            continue;
        }
        rows.push(Row::Header {
            message,
            seen: Some(message.seq) == seen,
        });
        let text = shown(&message.text, message.link.as_deref());
        if !text.is_empty() {
            body(&mut rows, &text, message.internal, width);
        }
        files(
            &mut rows,
            &message.attachments,
            message.internal,
            width,
            thumbnails,
        );
    }
    for out in &conversation.outgoing {
        rows.push(Row::Pending(out));
        body(
            &mut rows,
            &shown(&out.text, out.link.as_ref()),
            out.internal,
            width,
        );
        files(&mut rows, &out.attachments, out.internal, width, thumbnails);
        if let SendState::Failed { retry, .. } = out.state {
            rows.push(Row::Failed { retry });
        }
    }
    rows
}

/// A message's text as the agent reads it: a link card as its label and
/// where its button goes.
fn shown(text: &str, link: Option<&LinkCard>) -> String {
    match link {
        Some(card) => format!("[link] {} → {}", card.label, card.url),
        None => text.to_owned(),
    }
}

/// The newest reply the visitor has read: it carries the "seen" mark.
fn last_seen(conversation: &Conversation) -> Option<u64> {
    let read = conversation.summary.visitor_read_seq;
    conversation
        .messages
        .range(..=read)
        .rev()
        .find(|(_, m)| m.author.kind == AuthorKind::Agent && !m.internal)
        .map(|(seq, _)| *seq)
}

/// A file sent with a message, as one line: `📎 name (size, type)`.
pub fn attachment_label(attachment: &Attachment) -> String {
    format!(
        "📎 {} ({}, {})",
        attachment.name,
        human_size(attachment.size),
        attachment.content_type
    )
}

/// Bytes as people read them: `512 B`, `48.2 KiB`, `3.0 MiB`.
fn human_size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let exact = bytes as f64;
    if exact < KIB {
        format!("{bytes} B")
    } else if exact < KIB * KIB {
        format!("{:.1} KiB", exact / KIB)
    } else {
        format!("{:.1} MiB", exact / (KIB * KIB))
    }
}

fn body(rows: &mut Vec<Row<'_>>, text: &str, internal: bool, width: usize) {
    for text in wrap(text, width.saturating_sub(INDENT)) {
        rows.push(Row::Body { text, internal });
    }
}

/// A message's files: each one's `📎` row, then its preview's rows.
fn files<'a>(
    rows: &mut Vec<Row<'a>>,
    attachments: &'a [Attachment],
    internal: bool,
    width: usize,
    thumbnails: &Thumbnails,
) {
    let columns = width.saturating_sub(INDENT);
    for attachment in attachments {
        body(rows, &attachment_label(attachment), internal, width);
        if let Some(cells) = thumbnails.cells(attachment, columns) {
            rows.extend((0..cells.1).map(|part| Row::Image {
                attachment,
                cells,
                part,
                internal,
            }));
        }
    }
}
