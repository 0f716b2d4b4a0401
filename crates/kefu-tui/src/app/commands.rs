//! What the agent's actions do to the state.
//!
//! The update half of the Elm loop for key actions, one arm per action, so
//! a little over 600 lines; actions with a grammar of their own are parsed
//! elsewhere (`bulk`, `link`, `finder`).

use kefu_protocol::AgentState;
use kefu_protocol::agent::{AgentRequest, ConversationStatus};
use ratatui::layout::Rect;

use super::bulk::{BulkCommand, USAGE, bulk_command};
use super::finder::Mode;
use super::link::{LinkCommand, link_command};
use super::requests::{history_request, send_request};
use super::{App, Asked, Effect, Outgoing, Overlay, SendState, queue};
use crate::keys::{Action, Focus};
use crate::{layout, sanitize};

/// Send `typing: true` at most this often while the agent writes.
const TYPING_EVERY: time::Duration = time::Duration::seconds(3);

impl App {
    pub(super) fn act(&mut self, action: Action) {
        if action == Action::Redraw {
            return self.effects.push(Effect::Redraw);
        }
        if self.overlay != Overlay::None {
            return self.act_on_overlay(action);
        }
        if self.focus == Focus::QueueFilter {
            return self.filter_act(action);
        }
        match action {
            Action::Up if self.focus == Focus::Queue => self.move_cursor(-1),
            Action::Down if self.focus == Focus::Queue => self.move_cursor(1),
            Action::First if self.focus == Focus::Queue => self.move_cursor(isize::MIN),
            Action::Last if self.focus == Focus::Queue => self.move_cursor(isize::MAX),
            Action::Open => self.open_selected(),
            // Esc in the queue drops its filter; from compose, back to it.
            Action::Back if self.focus == Focus::Queue => self.clear_filter(),
            Action::Back => self.focus = Focus::Queue,
            Action::FilterQueue => self.start_filter(),
            Action::NextFilter => self.filter = self.filter.cycle(1),
            Action::PrevFilter => self.filter = self.filter.cycle(-1),
            Action::NextConversation => {
                if !self.complete_attach() {
                    self.switch(1);
                }
            }
            Action::PrevConversation => self.switch(-1),
            Action::OpenNth(n) => {
                // Current even if the state was changed outside `update`.
                self.renumber();
                if let Some(id) = self.numbers.get(n).map(str::to_owned) {
                    self.open(&id);
                }
            }
            Action::NextActivity => self.jump_to_activity(true),
            Action::PrevActivity => self.jump_to_activity(false),
            Action::Claim => self.claim(),
            Action::AskScreen => self.ask_screen(),
            Action::Resolve => self.resolve(),
            Action::Transfer => self.pick_transfer(),
            Action::VisitorPanel => self.visitor_panel(),
            Action::ToggleInternal => self.toggle_internal(),
            Action::ToggleAway => self.toggle_away(),
            Action::Canned => self.pick_canned(),
            Action::OpenFile => self.open_file(),
            Action::DropAttachment => self.drop_attachment(),
            Action::Search => self.open_finder(Mode::Search),
            Action::Resolved => self.open_finder(Mode::Resolved),
            Action::Help => {
                self.overlay = Overlay::Help;
                self.help_scroll = 0;
            }
            Action::ScrollUp => self.scroll(true),
            Action::ScrollDown => self.scroll(false),
            Action::Retry => self.retry(),
            Action::EditFailed => self.edit_failed(),
            Action::DiscardFailed => self.discard_failed(),
            Action::Quit => self.quit(),
            Action::Send => self.send(),
            _ => self.edit(action),
        }
    }

    fn act_on_overlay(&mut self, action: Action) {
        match (&mut self.overlay, action) {
            (Overlay::ConfirmAttach { path, text }, action) => {
                let (path, text) = (path.clone(), text.clone());
                self.overlay = Overlay::None;
                if action == Action::Yes {
                    self.attach_pasted(path);
                } else {
                    self.paste(&text);
                }
            }
            (_, Action::Back) => self.overlay = super::Overlay::None,
            (Overlay::Help, Action::Up) => self.scroll_help(-1),
            (Overlay::Help, Action::Down) => self.scroll_help(1),
            (Overlay::Help, Action::ScrollUp) => self.scroll_help(-8),
            (Overlay::Help, Action::ScrollDown) => self.scroll_help(8),
            (Overlay::ConfirmQuit, Action::Yes) => self.effects.push(Effect::Quit),
            (Overlay::ConfirmResolve { conversation, .. }, Action::Yes) => {
                let id = conversation.clone();
                self.overlay = Overlay::None;
                self.send_resolve(id);
            }
            (Overlay::Transfer { index, choices, .. }, Action::Down) => {
                *index = (*index + 1).min(choices.len().saturating_sub(1));
            }
            (Overlay::Files { index, choices }, Action::Down) => {
                *index = (*index + 1).min(choices.len().saturating_sub(1));
            }
            (Overlay::Canned { index }, Action::Down) => {
                *index = (*index + 1).min(self.prefs.canned.len().saturating_sub(1));
            }
            (Overlay::Visitor { index, record, .. }, Action::Down) => {
                let count = record.as_ref().map_or(0, |r| r.conversations.len());
                *index = (*index + 1).min(count.saturating_sub(1));
            }
            (
                Overlay::Transfer { index, .. }
                | Overlay::Canned { index }
                | Overlay::Files { index, .. }
                | Overlay::Visitor { index, .. },
                Action::Up,
            ) => {
                *index = index.saturating_sub(1);
            }
            (Overlay::Finder, Action::Search) => self.open_finder(Mode::Search),
            (Overlay::Finder, action) => self.finder_act(action),
            (_, Action::Open) => self.choose(),
            _ => {}
        }
    }

    /// Enter in a picker.
    fn choose(&mut self) {
        match std::mem::replace(&mut self.overlay, Overlay::None) {
            Overlay::Transfer {
                conversation,
                choices,
                index,
            } => {
                if let Some((agent, _)) = choices.get(index) {
                    if !self.online() {
                        self.flash = Some("offline: cannot transfer now".into());
                        return;
                    }
                    self.asked.insert(
                        conversation.clone(),
                        Asked::Transfer {
                            to_agent: agent.clone(),
                        },
                    );
                    self.request(AgentRequest::Transfer {
                        conversation_id: conversation,
                        to_agent: agent.clone(),
                    });
                }
            }
            Overlay::Visitor {
                record: Some(record),
                index,
                ..
            } => {
                if let Some(summary) = record.conversations.get(index) {
                    let id = summary.id.clone();
                    // A past conversation is not in the queue: add it.
                    if !self.conversations.contains_key(&id) {
                        self.summary(summary.clone(), false);
                    }
                    self.open(&id);
                }
            }
            Overlay::Files { mut choices, index } => {
                if index < choices.len() {
                    self.show_file(choices.swap_remove(index));
                }
            }
            Overlay::Preview { attachment, .. } => self.fetch(attachment),
            Overlay::Canned { index } => {
                let text = self.prefs.canned.get(index).map(|c| c.text.clone());
                if let (Some(text), Some(draft)) = (text, self.open_draft()) {
                    draft.buffer.insert_str(&text);
                    self.focus = Focus::Compose;
                }
            }
            other => self.overlay = other,
        }
    }

    /// Moves the queue's highlight `step` rows (saturating at either end).
    pub(super) fn move_cursor(&mut self, step: isize) {
        let rows = self.rows();
        if rows.is_empty() {
            return;
        }
        let at = (self.selected_index(&rows) as isize).saturating_add(step);
        let at = at.clamp(0, rows.len() as isize - 1) as usize;
        self.selected = Some(rows[at].clone());
        if step > 0 && at + 1 == rows.len() {
            self.at_end_of_queue();
        }
    }

    pub(super) fn open_selected(&mut self) {
        let rows = self.rows();
        if let Some(id) = rows.get(self.selected_index(&rows)).cloned() {
            self.open(&id);
        }
    }

    /// Puts `id` on screen, follows it (asks for its history) and focuses
    /// the compose box.
    pub(super) fn open(&mut self, id: &str) {
        let online = self.online();
        let Some(conversation) = self.conversations.get_mut(id) else {
            return;
        };
        conversation.activity = false;
        conversation.scroll = 0;
        conversation.new_below = 0;
        let follow = !conversation.followed;
        // Offline, the welcome after the reconnect asks for it.
        conversation.followed = true;
        if follow && online {
            self.request(history_request(id, None));
        }
        self.stop_typing();
        self.open = Some(id.to_owned());
        self.selected = Some(id.to_owned());
        self.focus = Focus::Compose;
        self.mark_read(id);
    }

    /// Tab / Shift-Tab: the next row of the queue after the open one.
    fn switch(&mut self, step: isize) {
        let rows = self.rows();
        if rows.is_empty() {
            return;
        }
        let current = self
            .open
            .as_ref()
            .and_then(|id| rows.iter().position(|row| row == id));
        let next = match current {
            Some(at) => (at as isize + step).rem_euclid(rows.len() as isize) as usize,
            None if step > 0 => 0,
            None => rows.len() - 1,
        };
        let id = rows[next].clone();
        self.open(&id);
    }

    fn jump_to_activity(&mut self, forward: bool) {
        let busy = queue::with_activity(&self.conversations, self.me_id(), self.open.as_deref());
        let next = if forward { busy.first() } else { busy.last() };
        match next.cloned() {
            Some(id) => self.open(&id),
            None => self.flash = Some("nothing new".into()),
        }
    }

    /// The conversation a command is about: the open one while composing;
    /// with the queue focused, the highlighted row — which is the open
    /// conversation until the agent moves the highlight, and stays on the
    /// same conversation when the tab's list changes (see [`App::rows`]).
    fn target(&self) -> Option<String> {
        match self.focus {
            Focus::Compose => self.open.clone(),
            Focus::Queue | Focus::QueueFilter => match &self.selected {
                Some(id) => self.conversations.contains_key(id).then(|| id.clone()),
                None => self.rows().first().cloned(),
            },
        }
    }

    /// The target, if there is one and the relay can be asked now;
    /// otherwise says why not. Pins the highlight on it, so that it cannot
    /// slide to another conversation when the answer changes the list.
    pub(super) fn actionable_target(&mut self, what: &str) -> Option<String> {
        let Some(id) = self.target() else {
            self.flash = Some(format!("nothing to {what}"));
            return None;
        };
        if self.focus == Focus::Queue {
            self.selected = Some(id.clone());
        }
        if !self.online() {
            self.flash = Some(format!("offline: cannot {what} now"));
            return None;
        }
        Some(id)
    }

    fn claim(&mut self) {
        let Some(id) = self.actionable_target("claim") else {
            return;
        };
        self.asked.insert(id.clone(), Asked::Claim);
        self.request(AgentRequest::Claim {
            conversation_id: id,
        });
    }

    /// Resolving ends the visitor's chat: one that is not on screen, or not
    /// the agent's own, is asked about first, by name.
    fn resolve(&mut self) {
        let Some(id) = self.actionable_target("resolve") else {
            return;
        };
        let mine = self.conversations.get(&id).is_some_and(|c| {
            c.summary.status == ConversationStatus::Active
                && c.summary.assignee.as_deref() == self.me_id()
        });
        let why = match (self.open.as_deref() == Some(id.as_str()), mine) {
            (true, true) => return self.send_resolve(id),
            (false, true) => "It is not open.",
            (true, false) => "It is not yours.",
            (false, false) => "It is not open and not yours.",
        };
        self.overlay = Overlay::ConfirmResolve {
            name: self.visitor_name(&id),
            conversation: id,
            why,
        };
    }

    fn send_resolve(&mut self, id: String) {
        if !self.online() {
            self.flash = Some("offline: cannot resolve now".into());
            return;
        }
        self.asked.insert(id.clone(), Asked::Resolve);
        self.request(AgentRequest::Resolve {
            conversation_id: id,
        });
    }

    fn pick_transfer(&mut self) {
        let Some(conversation) = self.target() else {
            self.flash = Some("nothing to transfer".into());
            return;
        };
        if self.focus == Focus::Queue {
            self.selected = Some(conversation.clone());
        }
        let choices: Vec<(String, String)> = self
            .agents
            .iter()
            .filter(|agent| agent.online && Some(agent.id.as_str()) != self.me_id())
            .map(|agent| (agent.id.clone(), agent.name.clone()))
            .collect();
        if choices.is_empty() {
            self.flash = Some("no other agent is online".into());
            return;
        }
        self.overlay = Overlay::Transfer {
            conversation,
            choices,
            index: 0,
        };
    }

    /// Alt-v: asks the relay for the visitor of the highlighted (or open)
    /// conversation; the panel fills in when it answers.
    fn visitor_panel(&mut self) {
        let visitor_id = self
            .target()
            .and_then(|id| self.conversations.get(&id))
            .map(|conversation| conversation.summary.visitor.id.clone());
        let Some(visitor_id) = visitor_id else {
            self.flash = Some("no visitor to show".into());
            return;
        };
        if !self.online() {
            self.flash = Some("offline: cannot ask about the visitor now".into());
            return;
        }
        self.request(AgentRequest::Visitor {
            visitor_id: visitor_id.clone(),
        });
        self.overlay = Overlay::Visitor {
            visitor_id,
            record: None,
            index: 0,
        };
    }

    fn toggle_internal(&mut self) {
        let Some(id) = self.target() else { return };
        if let Some(conversation) = self.conversations.get_mut(&id) {
            conversation.draft.internal = !conversation.draft.internal;
        }
    }

    fn toggle_away(&mut self) {
        if !self.online() {
            self.flash = Some("offline: cannot change availability now".into());
            return;
        }
        self.wanted_state = match self.my_state {
            AgentState::Available => AgentState::Away,
            AgentState::Away => AgentState::Available,
        };
        self.request(AgentRequest::Status {
            state: self.wanted_state,
        });
    }

    fn pick_canned(&mut self) {
        if self.prefs.canned.is_empty() {
            self.flash = Some("no canned replies: add [[canned]] entries to tui.toml".into());
        } else if self.open.is_none() {
            self.flash = Some("open a conversation first".into());
        } else {
            self.overlay = Overlay::Canned { index: 0 };
        }
    }

    fn quit(&mut self) {
        if self.conversations.values().any(|c| c.has_unsent()) {
            self.overlay = Overlay::ConfirmQuit;
        } else {
            self.effects.push(Effect::Quit);
        }
    }

    /// Enter in the compose box: expand `/shortcut`, or send the draft.
    fn send(&mut self) {
        if self.attach_command() {
            return;
        }
        let canned = self.prefs.canned.clone();
        let online = self.online();
        let Some(id) = self.open.clone() else { return };
        let Some(conversation) = self.conversations.get_mut(&id) else {
            return;
        };
        let draft = &mut conversation.draft;
        if draft.uploading > 0 {
            self.flash = Some("a file is still uploading: send when it is attached".into());
            return;
        }
        if draft.buffer.is_blank() && draft.attachments.is_empty() {
            return;
        }
        if let Some(shortcut) = draft.buffer.text().trim().strip_prefix('/')
            && let Some(found) = canned.iter().find(|c| c.shortcut == shortcut)
        {
            draft.buffer.set(&found.text);
            return;
        }
        match bulk_command(draft.buffer.text()) {
            BulkCommand::None => {}
            BulkCommand::Resolve(request) if online => {
                draft.buffer.take();
                self.flash = Some("resolving waiting conversations…".into());
                return self.request(AgentRequest::ResolveWaiting(request));
            }
            BulkCommand::Resolve(_) => {
                self.flash = Some("offline: cannot resolve in bulk now".into());
                return;
            }
            BulkCommand::Usage => {
                self.flash = Some(USAGE.into());
                return;
            }
        }
        let link = match link_command(draft.buffer.text()) {
            LinkCommand::None => None,
            LinkCommand::Card(card) if !draft.internal => Some(card),
            LinkCommand::Card(_) => {
                self.flash = Some("a link card is for the visitor: not in a note".into());
                return;
            }
            LinkCommand::Usage => {
                self.flash = Some("usage: /link https://… label the visitor sees".into());
                return;
            }
        };
        let text = draft.buffer.take().trim_end().to_owned();
        let out = Outgoing {
            client_id: format!("tui-{}", uuid::Uuid::now_v7()),
            text: link.as_ref().map_or(text, |card| card.label.clone()),
            internal: draft.internal,
            link,
            attachments: std::mem::take(&mut draft.attachments),
            state: SendState::Pending,
        };
        let request = send_request(&id, &out);
        conversation.outgoing.push(out);
        conversation.scroll = 0;
        conversation.new_below = 0;
        if online {
            self.request(request);
        }
        self.stop_typing();
    }

    /// Text editing in the compose box.
    fn edit(&mut self, action: Action) {
        if self.focus != Focus::Compose {
            return;
        }
        let Some(draft) = self.open_draft() else {
            return;
        };
        let buffer = &mut draft.buffer;
        match action {
            Action::Insert(ch) => buffer.insert(ch),
            Action::Newline => buffer.insert('\n'),
            Action::Backspace => buffer.backspace(),
            Action::Delete => buffer.delete(),
            Action::Left => buffer.left(),
            Action::Right => buffer.right(),
            Action::Home => buffer.home(),
            Action::End => buffer.end(),
            Action::Up => buffer.up(),
            Action::Down => buffer.down(),
            Action::WordLeft => buffer.word_left(),
            Action::WordRight => buffer.word_right(),
            Action::DeleteWordBack => buffer.delete_word_back(),
            Action::KillToLineStart => buffer.kill_to_line_start(),
            Action::KillToLineEnd => buffer.kill_to_line_end(),
            _ => return,
        }
        if matches!(
            action,
            Action::Insert(_)
                | Action::Newline
                | Action::Backspace
                | Action::Delete
                | Action::DeleteWordBack
                | Action::KillToLineStart
                | Action::KillToLineEnd
        ) {
            self.typed();
        }
    }

    pub(super) fn paste(&mut self, text: &str) {
        if self.focus != Focus::Compose || self.overlay != Overlay::None {
            return;
        }
        // Pasted text is as untrusted as anything else that gets displayed.
        let text = sanitize::text(text);
        if let Some(draft) = self.open_draft() {
            draft.buffer.insert_str(&text);
            self.typed();
        }
    }

    pub(super) fn click(&mut self, column: u16, row: u16) {
        if self.overlay != Overlay::None {
            return;
        }
        let area = Rect::new(0, 0, self.size.0, self.size.1);
        let Some(queue) = self.screen(area).queue else {
            return;
        };
        let rows = self.rows();
        let selected = self.selected_index(&rows);
        let hit = layout::queue_hit(queue, selected, column, row);
        if let Some(id) = hit.and_then(|at| rows.get(at)).cloned() {
            self.open(&id);
        }
    }

    pub(super) fn open_draft(&mut self) -> Option<&mut super::Draft> {
        let id = self.open.as_ref()?;
        self.conversations.get_mut(id).map(|c| &mut c.draft)
    }

    /// Lets the visitor see the agent typing (not for notes), at most every
    /// few seconds.
    fn typed(&mut self) {
        let Some(conversation) = self.open_conversation() else {
            return;
        };
        let visible = !conversation.draft.internal
            && conversation.summary.status != ConversationStatus::Resolved;
        let due = self
            .typing_sent
            .is_none_or(|at| self.now - at >= TYPING_EVERY);
        if visible && due && self.online() {
            let conversation_id = conversation.summary.id.clone();
            self.typing_sent = Some(self.now);
            self.request(AgentRequest::Typing {
                conversation_id,
                active: true,
            });
        }
    }

    fn stop_typing(&mut self) {
        if self.typing_sent.take().is_some()
            && let Some(id) = self.open.clone()
            && self.online()
        {
            self.request(AgentRequest::Typing {
                conversation_id: id,
                active: false,
            });
        }
    }
}
