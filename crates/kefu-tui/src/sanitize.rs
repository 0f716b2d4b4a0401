//! Makes untrusted text safe to put on a terminal.
//!
//! Everything a visitor types, and every field their page reports, reaches the
//! agent's terminal. An escape sequence in there could recolour the screen,
//! move the cursor, set the window title or worse, so it is removed before the
//! text is stored in the app state: no later code path can forget to clean it.

use kefu_protocol::agent::{AgentEvent, ConversationSummary, VisitorSummary};
use kefu_protocol::trail::PageView;
use kefu_protocol::{Message, TimelineEvent};

use crate::wrap::plain;

/// Cleans multi-line text (message bodies, pastes): keeps line breaks —
/// CRLF and a lone CR (which terminals send for Enter in a bracketed paste)
/// become `\n` —, turns tabs into spaces, drops every escape sequence, other
/// control character and bidi override.
pub fn text(raw: &str) -> String {
    clean(&line_feeds(raw), false)
}

/// CRLF and lone CR as LF.
fn line_feeds(raw: &str) -> String {
    raw.replace("\r\n", "\n").replace('\r', "\n")
}

/// Cleans a one-line field (names, URLs, previews): as [`text`], with line
/// breaks turned into spaces so a field can never take more than its row.
pub fn line(raw: &str) -> String {
    plain(&clean(&line_feeds(raw), true))
}

/// Cleans an optional field in place.
fn line_opt(field: &mut Option<String>) {
    if let Some(value) = field {
        *value = line(value);
    }
}

/// Cleans every field of a relay frame that ends up on screen. IDs are left
/// alone: they are matched, never shown.
pub fn agent_event(event: AgentEvent) -> AgentEvent {
    match event {
        AgentEvent::Welcome(mut welcome) => {
            welcome.agent.name = line(&welcome.agent.name);
            for agent in &mut welcome.agents {
                agent.name = line(&agent.name);
            }
            welcome.conversations.iter_mut().for_each(summary);
            AgentEvent::Welcome(welcome)
        }
        AgentEvent::Conversation(mut frame) => {
            summary(&mut frame.summary);
            AgentEvent::Conversation(frame)
        }
        AgentEvent::History(mut page) => {
            page.messages.iter_mut().for_each(message);
            AgentEvent::History(page)
        }
        AgentEvent::Message(mut m) => {
            message(&mut m);
            AgentEvent::Message(m)
        }
        AgentEvent::Typing(mut typing) => {
            typing.author.name = line(&typing.author.name);
            AgentEvent::Typing(typing)
        }
        AgentEvent::Error(mut error) => {
            error.message = line(&error.message);
            AgentEvent::Error(error)
        }
        AgentEvent::CallLink(mut link) => {
            link.path = line(&link.path);
            link.url = link.url.as_deref().map(line);
            AgentEvent::CallLink(link)
        }
        AgentEvent::Reconnect(mut reconnect) => {
            line_opt(&mut reconnect.reason);
            AgentEvent::Reconnect(reconnect)
        }
        AgentEvent::PageView(mut frame) => {
            page_view(&mut frame.view);
            AgentEvent::PageView(frame)
        }
        AgentEvent::Visitor(mut record) => {
            visitor(&mut record.visitor);
            record.conversations.iter_mut().for_each(summary);
            record.trail.iter_mut().for_each(page_view);
            AgentEvent::Visitor(record)
        }
        AgentEvent::SearchResults(mut results) => {
            for hit in &mut results.hits {
                hit.snippet = line(&hit.snippet);
                summary(&mut hit.conversation);
            }
            AgentEvent::SearchResults(results)
        }
        AgentEvent::Conversations(mut page) => {
            page.conversations.iter_mut().for_each(summary);
            AgentEvent::Conversations(page)
        }
        other @ (AgentEvent::Ack(_)
        | AgentEvent::Read(_)
        | AgentEvent::ReadMark(_)
        | AgentEvent::Presence(_)
        | AgentEvent::ResolvedWaiting(_)) => other,
    }
}

fn page_view(view: &mut PageView) {
    view.url = line(&view.url);
    line_opt(&mut view.title);
    line_opt(&mut view.referrer);
}

fn summary(summary: &mut ConversationSummary) {
    summary.preview = line(&summary.preview);
    visitor(&mut summary.visitor);
}

fn visitor(visitor: &mut VisitorSummary) {
    visitor.name = line(&visitor.name);
    for field in [
        &mut visitor.page_url,
        &mut visitor.page_title,
        &mut visitor.email,
        &mut visitor.lang,
        &mut visitor.referrer,
        &mut visitor.user_agent,
        &mut visitor.address,
    ] {
        line_opt(field);
    }
}

fn message(message: &mut Message) {
    message.author.name = line(&message.author.name);
    message.text = plain(&text(&message.text));
    if let Some(card) = message.link.as_deref_mut() {
        card.url = line(&card.url);
        card.label = line(&card.label);
    }
    // File names are the uploader's: visitor text like any other.
    for attachment in &mut message.attachments {
        attachment.name = line(&attachment.name);
        attachment.content_type = line(&attachment.content_type);
    }
    // Agents name themselves and a reopen names the visitor: clean them all.
    match message.event.as_deref_mut() {
        Some(TimelineEvent::Transferred { by, to }) => {
            by.name = line(&by.name);
            to.name = line(&to.name);
        }
        Some(
            TimelineEvent::Claimed { by }
            | TimelineEvent::Resolved { by }
            | TimelineEvent::Reopened { by }
            | TimelineEvent::CallStarted { by, .. }
            | TimelineEvent::CallEnded { by, .. }
            | TimelineEvent::CallJoined { who: by, .. }
            | TimelineEvent::CallLeft { who: by, .. },
        ) => by.name = line(&by.name),
        None => {}
    }
}

/// How far into an escape sequence the scanner is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    /// Just after ESC.
    Escape,
    /// Inside a CSI sequence (`ESC [` or C1 `0x9B`): ends at a byte in 0x40..=0x7E.
    Csi,
    /// Inside a string sequence (OSC, DCS, APC, PM, SOS): ends at BEL or ST.
    Str,
    /// Inside a string sequence, just after ESC (the start of ST, `ESC \`).
    StrEscape,
}

fn clean(raw: &str, one_line: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut state = State::Text;
    for ch in raw.chars() {
        state = match state {
            State::Text => text_char(ch, one_line, &mut out),
            State::Escape => match ch {
                '[' => State::Csi,
                ']' | 'P' | '_' | '^' | 'X' => State::Str,
                // Two-character sequences (`ESC 7`, `ESC c`…) end here.
                _ => State::Text,
            },
            State::Csi => {
                if ('\u{40}'..='\u{7e}').contains(&ch) {
                    State::Text
                } else {
                    State::Csi
                }
            }
            State::Str => match ch {
                '\u{07}' | '\u{9c}' => State::Text,
                '\u{1b}' => State::StrEscape,
                _ => State::Str,
            },
            State::StrEscape => match ch {
                '\\' => State::Text,
                '\u{1b}' => State::StrEscape,
                _ => State::Str,
            },
        };
    }
    out
}

/// Handles one character outside any escape sequence.
fn text_char(ch: char, one_line: bool, out: &mut String) -> State {
    match ch {
        '\u{1b}' => return State::Escape,
        '\u{9b}' => return State::Csi,
        '\u{90}' | '\u{9d}' | '\u{9e}' | '\u{9f}' | '\u{98}' => return State::Str,
        '\n' if one_line => out.push(' '),
        '\n' => out.push('\n'),
        // A tab's width depends on the column it lands in, which a cell
        // buffer cannot know: make it plain spaces.
        '\t' => out.push_str("    "),
        _ if is_dropped(ch) => {}
        _ => out.push(ch),
    }
    State::Text
}

/// Control characters (C0, DEL, C1) and the bidi controls that can make text
/// display in an order other than the one it is stored in.
fn is_dropped(ch: char) -> bool {
    ch.is_control()
        || matches!(ch, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_csi_osc_and_two_char_sequences() {
        assert_eq!(text("\u{1b}[31mred\u{1b}[0m"), "red");
        assert_eq!(text("a\u{1b}]0;pwned title\u{07}b"), "ab");
        assert_eq!(
            text("a\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\b"),
            "alinkb"
        );
        assert_eq!(text("reset\u{1b}c!"), "reset!");
        assert_eq!(text("c1\u{9b}2Jcsi"), "c1csi");
    }

    #[test]
    fn drops_controls_but_keeps_newlines_and_expands_tabs() {
        assert_eq!(text("bell\u{07}\r\nnext\u{7f}"), "bell\nnext");
        assert_eq!(text("a\tb"), "a    b");
        assert_eq!(line("two\nlines"), "two lines");
    }

    /// Issue 16, repro 4: a bracketed paste separates lines with CR.
    #[test]
    fn cr_and_crlf_are_line_breaks() {
        assert_eq!(text("one\rtwo\r\nthree\n"), "one\ntwo\nthree\n");
        assert_eq!(line("one\rtwo"), "one two");
    }

    #[test]
    fn drops_bidi_overrides_and_keeps_cjk_and_emoji() {
        assert_eq!(text("abc\u{202e}fed\u{2066}"), "abcfed");
        assert_eq!(text("你好 👋🏽 ok"), "你好 👋🏽 ok");
    }

    /// Issue 16, repro 6: received names (drawn without wrapping) are in
    /// the form every terminal draws alike.
    #[test]
    fn received_fields_are_plain() {
        assert_eq!(line("Ming 🇨🇳 👍🏿"), "Ming [CN] 👍");
    }

    #[test]
    fn an_unterminated_sequence_swallows_only_itself() {
        assert_eq!(text("safe\u{1b}]52;c;ZXZpbA=="), "safe");
        assert_eq!(text("safe\u{1b}["), "safe");
    }
}
