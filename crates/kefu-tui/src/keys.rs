//! Keys to actions, and the help text that lists them.
//!
//! What a key does depends on where the focus is: in the queue, letters are
//! commands; in the compose box they are text. The mapping lives here, apart
//! from what the actions do (the app, which imports this module), so the
//! help overlay and the README can be checked against one table ([`HELP`]).

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Where keys go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Queue,
    /// The queue's filter line (`/` in the queue): letters narrow the queue.
    QueueFilter,
    Compose,
}

impl Focus {
    /// Whether the queue pane has the keys (its list or its filter line).
    pub fn in_queue(self) -> bool {
        matches!(self, Focus::Queue | Focus::QueueFilter)
    }
}

/// What is drawn over the panes and takes the keys while open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    None,
    Help,
    /// A list to choose from (transfer target, canned reply).
    Picker,
    /// A yes/no question (quit with unsent text).
    Confirm,
    /// Search or the resolved conversations: a query line over a list.
    Finder,
}

/// Something the agent asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    /// Home / g in the queue: the first row.
    First,
    /// End / G in the queue: the last row.
    Last,
    /// Enter in the queue or a picker.
    Open,
    /// Esc: back to the queue, or close what is open.
    Back,
    NextFilter,
    PrevFilter,
    NextConversation,
    PrevConversation,
    /// Alt+1…9: the n-th row of the queue (from 0).
    OpenNth(usize),
    NextActivity,
    PrevActivity,
    Claim,
    /// Alt-s: ask the visitor to share their screen (remote assistance).
    AskScreen,
    Transfer,
    Resolve,
    ToggleInternal,
    ToggleAway,
    Canned,
    /// `/` in the queue: type to narrow it.
    FilterQueue,
    /// v in the queue: the visitor panel of the highlighted conversation.
    VisitorPanel,
    /// Ctrl-F: search past conversations.
    Search,
    /// `H` in the queue: the resolved conversations.
    Resolved,
    Help,
    ScrollUp,
    ScrollDown,
    Retry,
    /// Alt-e: the open conversation's failed replies back into compose.
    EditFailed,
    /// Alt-x: drop the open conversation's failed replies.
    DiscardFailed,
    /// Alt-o: download and open a file of the open conversation.
    OpenFile,
    /// Alt-d in compose: the last file waiting to be sent is dropped.
    DropAttachment,
    /// Ctrl-L: clear the terminal and draw everything again.
    Redraw,
    Quit,
    Yes,
    Send,
    Newline,
    Insert(char),
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
    WordLeft,
    WordRight,
    DeleteWordBack,
    KillToLineStart,
    KillToLineEnd,
}

/// The action for `key`, if any. `enter_sends` is the user's preference
/// (`false` swaps Enter and Alt-Enter).
pub fn action(key: KeyEvent, focus: Focus, layer: Layer, enter_sends: bool) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    if ctrl && key.code == KeyCode::Char('c') {
        return Some(if layer == Layer::Confirm {
            Action::Back
        } else {
            Action::Quit
        });
    }
    if ctrl && key.code == KeyCode::Char('l') {
        return Some(Action::Redraw);
    }
    match layer {
        Layer::None => {}
        Layer::Help => return Some(help(key.code)),
        Layer::Picker => return picker(key.code),
        Layer::Finder => return query_line(key.code, ctrl, alt),
        Layer::Confirm => {
            return match key.code {
                KeyCode::Char('y' | 'Y') => Some(Action::Yes),
                _ => Some(Action::Back),
            };
        }
    }
    // Typing a filter, letters are text: none of them is a shortcut.
    if focus == Focus::QueueFilter {
        return query_line(key.code, ctrl, alt);
    }
    if let Some(action) = anywhere(key.code, ctrl, alt) {
        return Some(action);
    }
    match focus {
        Focus::Queue | Focus::QueueFilter => queue(key.code, ctrl || alt),
        Focus::Compose => compose(key.code, ctrl, alt, enter_sends),
    }
}

fn picker(code: KeyCode) -> Option<Action> {
    match code {
        KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
        KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
        KeyCode::Enter => Some(Action::Open),
        KeyCode::Esc | KeyCode::Char('q') => Some(Action::Back),
        _ => None,
    }
}

/// A query line over a list (the finder, the queue's filter): arrows move,
/// letters type the query.
fn query_line(code: KeyCode, ctrl: bool, alt: bool) -> Option<Action> {
    Some(match code {
        KeyCode::Up => Action::Up,
        KeyCode::Down => Action::Down,
        KeyCode::PageDown => Action::ScrollDown,
        KeyCode::Enter => Action::Open,
        KeyCode::Esc => Action::Back,
        KeyCode::Backspace => Action::Backspace,
        KeyCode::Char('u') if ctrl => Action::KillToLineStart,
        KeyCode::Char('f') if ctrl => Action::Search,
        KeyCode::Char(ch) if !ctrl && !alt => Action::Insert(ch),
        _ => return None,
    })
}

/// The help scrolls when it does not fit; any other key closes it.
fn help(code: KeyCode) -> Action {
    match code {
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::ScrollUp,
        KeyCode::PageDown | KeyCode::Char(' ') => Action::ScrollDown,
        _ => Action::Back,
    }
}

/// Keys that work whatever has the focus.
fn anywhere(code: KeyCode, ctrl: bool, alt: bool) -> Option<Action> {
    Some(match code {
        KeyCode::Tab => Action::NextConversation,
        KeyCode::BackTab => Action::PrevConversation,
        KeyCode::PageUp => Action::ScrollUp,
        KeyCode::PageDown => Action::ScrollDown,
        KeyCode::F(1) => Action::Help,
        KeyCode::Char(digit @ '1'..='9') if alt => Action::OpenNth(digit as usize - '1' as usize),
        KeyCode::Char('n') if ctrl => Action::NextActivity,
        KeyCode::Char('a') if alt => Action::NextActivity,
        KeyCode::Char('p') if ctrl => Action::PrevActivity,
        KeyCode::Char('r') if ctrl => Action::Canned,
        KeyCode::Char('f') if ctrl => Action::Search,
        KeyCode::Char('r') if alt => Action::Retry,
        KeyCode::Char('e') if alt => Action::EditFailed,
        KeyCode::Char('x') if alt => Action::DiscardFailed,
        KeyCode::Char('s') if alt => Action::AskScreen,
        KeyCode::Char('o') if alt => Action::OpenFile,
        _ => return None,
    })
}

fn queue(code: KeyCode, modified: bool) -> Option<Action> {
    if modified {
        return None;
    }
    Some(match code {
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Home | KeyCode::Char('g') => Action::First,
        KeyCode::End | KeyCode::Char('G') => Action::Last,
        KeyCode::Right | KeyCode::Char('f') => Action::NextFilter,
        KeyCode::Left | KeyCode::Char('F') => Action::PrevFilter,
        KeyCode::Enter => Action::Open,
        KeyCode::Char('c') => Action::Claim,
        KeyCode::Char('t') => Action::Transfer,
        KeyCode::Char('r') => Action::Resolve,
        KeyCode::Char('i') => Action::ToggleInternal,
        KeyCode::Char('a') => Action::ToggleAway,
        KeyCode::Char('s') => Action::AskScreen,
        KeyCode::Char('/') => Action::FilterQueue,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('v') => Action::VisitorPanel,
        KeyCode::Char('H') => Action::Resolved,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Char('q') => Action::Quit,
        _ => return None,
    })
}

fn compose(code: KeyCode, ctrl: bool, alt: bool, enter_sends: bool) -> Option<Action> {
    if let Some(action) = readline(code, ctrl, alt) {
        return Some(action);
    }
    Some(match code {
        KeyCode::Esc => Action::Back,
        KeyCode::Enter if alt != enter_sends => Action::Send,
        KeyCode::Enter => Action::Newline,
        KeyCode::Char('j') if ctrl => Action::Newline,
        KeyCode::Char('d') if alt => Action::DropAttachment,
        KeyCode::Char(ch) if !ctrl && !alt => Action::Insert(ch),
        KeyCode::Backspace => Action::Backspace,
        KeyCode::Delete => Action::Delete,
        KeyCode::Left => Action::Left,
        KeyCode::Right => Action::Right,
        KeyCode::Home => Action::Home,
        KeyCode::End => Action::End,
        KeyCode::Up => Action::Up,
        KeyCode::Down => Action::Down,
        _ => return None,
    })
}

/// The line and word keys of readline (and so of most shells).
fn readline(code: KeyCode, ctrl: bool, alt: bool) -> Option<Action> {
    Some(match code {
        KeyCode::Char('a') if ctrl => Action::Home,
        KeyCode::Char('e') if ctrl => Action::End,
        KeyCode::Char('w') if ctrl => Action::DeleteWordBack,
        KeyCode::Backspace if ctrl || alt => Action::DeleteWordBack,
        KeyCode::Char('u') if ctrl => Action::KillToLineStart,
        KeyCode::Char('k') if ctrl => Action::KillToLineEnd,
        KeyCode::Char('b') if alt => Action::WordLeft,
        KeyCode::Char('f') if alt => Action::WordRight,
        KeyCode::Left if ctrl || alt => Action::WordLeft,
        KeyCode::Right if ctrl || alt => Action::WordRight,
        _ => return None,
    })
}

/// The help's sections, in its two columns.
pub const HELP_COLUMNS: [&[&str]; 2] = [&["anywhere", "compose"], &["queue", "mouse"]];

/// Whether the help's columns fit side by side on a screen `width` wide.
pub fn help_side_by_side(width: u16) -> bool {
    width.saturating_sub(2) >= 78
}

/// Rows the help takes inside its border on a screen `width` wide: each
/// section a title and its keys, a blank row between sections.
pub fn help_height(width: u16) -> usize {
    let column = |sections: &[&str]| -> usize {
        let keys = HELP
            .iter()
            .filter(|(section, _, _)| sections.contains(section))
            .count();
        keys + 2 * sections.len() - 1
    };
    let [left, right] = HELP_COLUMNS.map(column);
    if help_side_by_side(width) {
        left.max(right)
    } else {
        left + 1 + right
    }
}

/// Every key, as shown by `?` and in the README: (section, key, what it does).
/// Kept short enough for two columns of help at 80 columns.
pub const HELP: &[(&str, &str, &str)] = &[
    ("anywhere", "Tab / S-Tab", "next / previous chat"),
    ("anywhere", "Alt-1 … Alt-9", "open chat number n"),
    ("anywhere", "Ctrl-N / Alt-a", "next chat with news"),
    ("anywhere", "Ctrl-P", "the same, other end"),
    ("anywhere", "PgUp / PgDn", "scroll, load older"),
    ("anywhere", "Ctrl-R", "canned reply picker"),
    ("anywhere", "Alt-r", "retry failed replies"),
    ("anywhere", "Alt-e / Alt-x", "edit / drop failed"),
    ("anywhere", "Ctrl-L", "redraw the screen"),
    ("anywhere", "F1 / Ctrl-C", "help / quit"),
    ("mouse", "click", "open a chat"),
    ("mouse", "wheel", "scroll what is under it"),
    ("mouse", "Shift-drag", "select text to copy"),
    ("queue", "↑ ↓ / k j", "move"),
    ("queue", "Home End / g G", "first / last"),
    ("queue", "← → / F f", "waiting / mine / all"),
    ("queue", "Enter", "open, write a reply"),
    ("queue", "c", "claim"),
    ("queue", "t", "transfer to an agent"),
    ("queue", "r", "resolve (may ask y/n)"),
    ("queue", "i", "internal-note mode"),
    ("queue", "v", "visitor panel"),
    ("queue", "a", "available / away"),
    ("queue", "s / Alt-s", "ask for the screen"),
    ("queue", "/", "filter as you type"),
    // Works anywhere; listed here, where the help has room for it.
    ("queue", "Ctrl-F", "search (also compose)"),
    ("queue", "H", "resolved chats (history)"),
    // Works anywhere too, like Ctrl-F.
    ("queue", "Alt-o", "open a chat's file"),
    ("queue", "? / q", "help / quit"),
    ("compose", "Enter", "send (claims waiting)"),
    ("compose", "Alt-Enter/Ctrl-J", "new line"),
    ("compose", "/shortcut Enter", "expand canned reply"),
    ("compose", "/attach · Alt-d", "attach / drop a file"),
    ("compose", "Ctrl-A / Ctrl-E", "line start / end"),
    ("compose", "Alt-b / Alt-f", "word back / forward"),
    ("compose", "Ctrl-W", "delete word back"),
    ("compose", "Ctrl-U / Ctrl-K", "delete to start / end"),
    ("compose", "Esc", "back to the queue"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    fn plain(code: KeyCode, focus: Focus) -> Option<Action> {
        action(key(code, KeyModifiers::NONE), focus, Layer::None, true)
    }

    #[test]
    fn letters_are_commands_in_the_queue_and_text_in_compose() {
        assert_eq!(plain(KeyCode::Char('c'), Focus::Queue), Some(Action::Claim));
        assert_eq!(
            plain(KeyCode::Char('c'), Focus::Compose),
            Some(Action::Insert('c'))
        );
        assert_eq!(plain(KeyCode::Char('?'), Focus::Queue), Some(Action::Help));
    }

    #[test]
    fn enter_sends_and_alt_enter_breaks_unless_swapped() {
        let alt = key(KeyCode::Enter, KeyModifiers::ALT);
        let enter = key(KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(plain(KeyCode::Enter, Focus::Compose), Some(Action::Send));
        assert_eq!(
            action(alt, Focus::Compose, Layer::None, true),
            Some(Action::Newline)
        );
        assert_eq!(
            action(enter, Focus::Compose, Layer::None, false),
            Some(Action::Newline)
        );
        assert_eq!(
            action(alt, Focus::Compose, Layer::None, false),
            Some(Action::Send)
        );
        let ctrl_j = key(KeyCode::Char('j'), KeyModifiers::CONTROL);
        assert_eq!(
            action(ctrl_j, Focus::Compose, Layer::None, true),
            Some(Action::Newline)
        );
    }

    #[test]
    fn switching_keys_work_from_both_panes() {
        for focus in [Focus::Queue, Focus::Compose] {
            let alt3 = key(KeyCode::Char('3'), KeyModifiers::ALT);
            assert_eq!(
                action(alt3, focus, Layer::None, true),
                Some(Action::OpenNth(2))
            );
            let ctrl_n = key(KeyCode::Char('n'), KeyModifiers::CONTROL);
            assert_eq!(
                action(ctrl_n, focus, Layer::None, true),
                Some(Action::NextActivity)
            );
            assert_eq!(plain(KeyCode::Tab, focus), Some(Action::NextConversation));
        }
    }

    #[test]
    fn readline_keys_edit_in_compose_and_home_end_move_in_the_queue() {
        let ctrl = |ch| key(KeyCode::Char(ch), KeyModifiers::CONTROL);
        let alt = |ch| key(KeyCode::Char(ch), KeyModifiers::ALT);
        let compose = |key| action(key, Focus::Compose, Layer::None, true);
        assert_eq!(compose(ctrl('a')), Some(Action::Home));
        assert_eq!(compose(ctrl('e')), Some(Action::End));
        assert_eq!(compose(ctrl('w')), Some(Action::DeleteWordBack));
        assert_eq!(compose(ctrl('u')), Some(Action::KillToLineStart));
        assert_eq!(compose(ctrl('k')), Some(Action::KillToLineEnd));
        assert_eq!(compose(alt('b')), Some(Action::WordLeft));
        assert_eq!(compose(alt('f')), Some(Action::WordRight));
        for focus in [Focus::Queue, Focus::Compose] {
            assert_eq!(
                action(ctrl('l'), focus, Layer::Picker, true),
                Some(Action::Redraw)
            );
        }
        assert_eq!(plain(KeyCode::Home, Focus::Queue), Some(Action::First));
        assert_eq!(plain(KeyCode::Char('G'), Focus::Queue), Some(Action::Last));
        assert_eq!(plain(KeyCode::Home, Focus::Compose), Some(Action::Home));
    }

    #[test]
    fn the_readme_lists_every_key() {
        let readme = include_str!("../../../README.md");
        for (section, key, what) in HELP {
            let row = format!("| {section} | `{key}` | {what} |");
            assert!(readme.contains(&row), "README lacks {row}");
        }
    }

    #[test]
    fn layers_take_the_keys() {
        let y = key(KeyCode::Char('y'), KeyModifiers::NONE);
        assert_eq!(
            action(y, Focus::Compose, Layer::Confirm, true),
            Some(Action::Yes)
        );
        let c = key(KeyCode::Char('c'), KeyModifiers::NONE);
        assert_eq!(
            action(c, Focus::Queue, Layer::Help, true),
            Some(Action::Back)
        );
        assert_eq!(action(c, Focus::Queue, Layer::Picker, true), None);
    }
}
