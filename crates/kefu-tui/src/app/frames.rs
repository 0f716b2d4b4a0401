//! What the relay's frames (and the connection's ups and downs) do to the
//! state. Every frame is cleaned of terminal escapes before it is looked at.

use std::collections::{HashMap, HashSet};

use kefu_protocol::agent::{
    AgentEvent, AgentReadMark, AgentRequest, AgentWelcome, ConversationStatus, ConversationSummary,
    HistoryPage,
};
use kefu_protocol::trail::MAX_TRAIL;
use kefu_protocol::{
    Ack, Author, AuthorKind, ErrorFrame, Message, Presence, PresenceKind, ReadReceipt, Typing,
};

use super::failed::retry_can_succeed;
use super::queue::Filter;
use super::requests::{history_request, send_request};
use super::{
    App, Asked, Connection, Conversation, Kind, MoreWaiting, NetEvent, Overlay, SendState,
};
use crate::sanitize;

impl App {
    pub(super) fn net(&mut self, event: NetEvent) {
        match event {
            NetEvent::Connecting { attempt } => {
                self.connection = Connection::Connecting { attempt };
            }
            NetEvent::Disconnected { reason, retry_in } => {
                self.typing_sent = None;
                self.connection = Connection::Offline { reason, retry_in };
            }
            NetEvent::Rejected(reason) => self.connection = Connection::Rejected(reason),
            NetEvent::Frame(frame) => self.frame(sanitize::agent_event(*frame)),
        }
    }

    fn frame(&mut self, frame: AgentEvent) {
        match frame {
            AgentEvent::Welcome(welcome) => self.welcome(welcome),
            AgentEvent::Conversation(frame) => self.summary(frame.summary, true),
            AgentEvent::History(page) => self.history(page),
            AgentEvent::Ack(ack) => self.ack(ack),
            AgentEvent::Message(message) => self.message(message),
            AgentEvent::Typing(typing) => self.typing(typing),
            AgentEvent::Read(receipt) => self.read(receipt),
            AgentEvent::ReadMark(mark) => {
                if let Some(conversation) = self.conversations.get_mut(&mark.conversation_id) {
                    conversation.read_up_to(mark);
                }
            }
            AgentEvent::Presence(presence) => self.presence(presence),
            AgentEvent::Visitor(answer) => {
                if let Overlay::Visitor {
                    visitor_id, record, ..
                } = &mut self.overlay
                    && *visitor_id == answer.visitor.id
                {
                    *record = Some(Box::new(answer));
                }
            }
            // The header's page comes with the summary that follows; an
            // open visitor panel adds the page to the trail it shows.
            AgentEvent::PageView(view) => {
                if let Overlay::Visitor {
                    visitor_id,
                    record: Some(record),
                    ..
                } = &mut self.overlay
                    && *visitor_id == view.visitor_id
                {
                    record.trail.push(view.view);
                    let excess = record.trail.len().saturating_sub(MAX_TRAIL);
                    record.trail.drain(..excess);
                }
            }
            AgentEvent::SearchResults(results) => self.search_results(results),
            AgentEvent::Conversations(page) => {
                if let Some(page) = self.waiting_page(page) {
                    self.conversation_page(page);
                }
            }
            AgentEvent::Error(error) => self.error(error),
            AgentEvent::CallLink(link) => self.call_link(link),
            AgentEvent::ResolvedWaiting(answer) => self.flash = Some(super::bulk::answered(answer)),
            AgentEvent::Reconnect(reconnect) => {
                let reason = reconnect.reason.as_deref().unwrap_or("reconnect");
                self.flash = Some(format!(
                    "relay asked to reconnect ({reason}) in {:.1} s",
                    reconnect.after_ms as f32 / 1000.0
                ));
            }
        }
    }

    /// A (re)connection: take the relay's view of the queue, then repair
    /// ours — resend what was never acknowledged, follow again what we
    /// followed, restore the availability the agent chose.
    fn welcome(&mut self, welcome: AgentWelcome) {
        let reconnect = self.welcomed;
        self.welcomed = true;
        self.connection = Connection::Online;
        // Whatever was said about the old connection is over.
        self.flash = None;
        self.thumbnails.forget_failures();
        self.me = Some(welcome.agent.clone());
        self.agents = welcome.agents;
        if let Some(me) = self.agents.iter().find(|a| a.id == welcome.agent.id) {
            self.my_state = me.state;
        }
        let listed_waiting = (welcome.conversations.iter())
            .filter(|c| c.status == ConversationStatus::Waiting)
            .count();
        self.more_waiting = MoreWaiting::new(welcome.totals.map_or(0, |totals| {
            totals.waiting.saturating_sub(listed_waiting as u64)
        }));
        let live: HashSet<String> = welcome.conversations.iter().map(|c| c.id.clone()).collect();
        for summary in welcome.conversations {
            self.summary(summary, reconnect);
        }
        // The relay's marks replace ours: one sent on the old connection may
        // have been lost with it, and is then sent again below.
        let mut marks: HashMap<String, AgentReadMark> = (welcome.read_marks.into_iter())
            .map(|mark| (mark.conversation_id.clone(), mark))
            .collect();
        for id in &live {
            if let Some(conversation) = self.conversations.get_mut(id) {
                conversation.read_mark = marks.remove(id);
            }
        }
        // Missing from the welcome means resolved meanwhile. Keep those the
        // agent is looking at or still has text for; forget the rest.
        let open = self.open.clone();
        let selected = self.selected.clone();
        self.conversations.retain(|id, c| {
            let keep = live.contains(id)
                || open.as_ref() == Some(id)
                || selected.as_ref() == Some(id)
                || c.has_unsent();
            if keep && !live.contains(id) {
                c.summary.status = ConversationStatus::Resolved;
            }
            keep
        });
        let mut requests = Vec::new();
        for conversation in self.conversations.values_mut() {
            // Marks sent on the old connection may have been lost with it.
            conversation.read_sent = 0;
            for out in conversation.pending() {
                requests.push(send_request(conversation.id(), out));
            }
            if conversation.followed {
                conversation.loading_older = false;
                requests.push(history_request(conversation.id(), None));
            }
        }
        requests.into_iter().for_each(|r| self.request(r));
        if let Some(open) = self.open.clone() {
            self.mark_read(&open);
        }
        if self.my_state != self.wanted_state {
            self.request(AgentRequest::Status {
                state: self.wanted_state,
            });
        }
    }

    /// A summary changed. `notify` is false while loading the first welcome,
    /// whose waiting visitors are not news.
    pub(super) fn summary(&mut self, summary: ConversationSummary, notify: bool) {
        let was_waiting = self
            .conversations
            .get(&summary.id)
            .map(|c| c.summary.status == ConversationStatus::Waiting);
        let now_waiting = summary.status == ConversationStatus::Waiting;
        let announce = notify && now_waiting && was_waiting != Some(true);
        let handed_over = self.handed_to_me(&summary).filter(|_| notify);
        let name = summary.visitor.name.clone();
        let preview = summary.preview.clone();
        let id = summary.id.clone();
        match self.conversations.get_mut(&id) {
            Some(conversation) => conversation.summary = summary,
            None => {
                self.conversations
                    .insert(id.clone(), Conversation::new(summary));
            }
        }
        self.answered(&id);
        if announce {
            self.notify(
                Kind::NewVisitor,
                "New visitor",
                format!("{name}: {preview}"),
            );
        }
        if let Some(from) = handed_over {
            self.transferred_to_me(&id, &from);
        }
        // The relay sends the counts of a conversation this connection does
        // not follow only every couple of seconds, so the summary that comes
        // after opening one may count messages the mark on opening did not.
        if self.open.as_deref() == Some(id.as_str()) {
            self.mark_read(&id);
        }
    }

    /// Who held the conversation `summary` now gives to this agent, when
    /// that is a colleague's hand-over (not the agent's own claim or reply).
    fn handed_to_me(&self, summary: &ConversationSummary) -> Option<String> {
        let me = self.me_id()?;
        let before = self
            .conversations
            .get(&summary.id)?
            .summary
            .assignee
            .as_deref()?;
        let mine_now =
            summary.status == ConversationStatus::Active && summary.assignee.as_deref() == Some(me);
        (mine_now && before != me).then(|| before.to_owned())
    }

    /// A colleague gave the agent a chat: say so on screen, mark it as news
    /// (so `Ctrl-N` reaches it first) and ring.
    fn transferred_to_me(&mut self, id: &str, from: &str) {
        let from = self.agent_name(from).unwrap_or(from).to_owned();
        let name = self.visitor_name(id);
        if let Some(conversation) = self.conversations.get_mut(id)
            && self.open.as_deref() != Some(id)
        {
            conversation.activity = true;
        }
        self.flash = Some(format!("{from} transferred {name} to you"));
        self.notify(
            Kind::TransferToMe,
            "Transferred to you",
            format!("{name} (from {from})"),
        );
    }

    /// Names the visitor in the result of a claim, resolve or transfer
    /// once a summary shows it done.
    fn answered(&mut self, id: &str) {
        let Some(asked) = self.asked.get(id) else {
            return;
        };
        let Some(summary) = self.conversations.get(id).map(|c| &c.summary) else {
            return;
        };
        let name = &summary.visitor.name;
        let assignee = summary.assignee.as_deref();
        let result = match asked {
            Asked::Claim
                if summary.status == ConversationStatus::Active && assignee == self.me_id() =>
            {
                format!("Claimed {name}")
            }
            Asked::Resolve if summary.status == ConversationStatus::Resolved => {
                format!("Resolved {name}")
            }
            Asked::Transfer { to_agent } if assignee == Some(to_agent.as_str()) => {
                let to = self.agent_name(to_agent).unwrap_or(to_agent);
                format!("Transferred {name} to {to}")
            }
            // Claimed by someone else meanwhile: this claim will not be
            // answered by name, and a later change must not look like it.
            Asked::Claim if summary.status != ConversationStatus::Waiting => {
                self.asked.remove(id);
                return;
            }
            _ => return,
        };
        self.flash = Some(result);
        self.asked.remove(id);
    }

    fn history(&mut self, page: HistoryPage) {
        let history_width = self.history_area().map_or(0, |area| area.width);
        let Some(conversation) = self.conversations.get_mut(&page.conversation_id) else {
            return;
        };
        conversation.loading_older = false;
        let first = page.messages.first().map(|m| m.seq);
        for message in page.messages {
            // After a reconnect the newest page brings what came meanwhile.
            conversation.insert_below_reader(message, history_width, &self.thumbnails);
        }
        // After a reconnect the newest page may not reach what we held:
        // page back until the hole is closed.
        if let Some(first) = first
            && conversation.gap_below(first)
        {
            conversation.loading_older = true;
            let request = history_request(&page.conversation_id, Some(first));
            self.request(request);
        }
        self.show_hit(&page.conversation_id);
    }

    /// Our reply is stored: it becomes a message with its `seq`.
    fn ack(&mut self, ack: Ack) {
        let Some(me) = self.me.clone() else { return };
        let Some(conversation) = self.conversations.get_mut(&ack.conversation_id) else {
            return;
        };
        // An ack for a reply already confirmed (a resend's answer, or one
        // a history page showed stored) changes nothing.
        let Some(at) = conversation
            .outgoing
            .iter()
            .position(|out| out.client_id == ack.client_id)
        else {
            return;
        };
        let out = conversation.outgoing.remove(at);
        conversation.insert(Message {
            conversation_id: ack.conversation_id,
            seq: ack.seq,
            id: ack.id,
            client_id: ack.client_id,
            author: Author {
                kind: AuthorKind::Agent,
                id: me.id,
                name: me.name,
            },
            text: out.text,
            at: ack.at,
            internal: out.internal,
            event: None,
            link: out.link.map(Box::new),
            attachments: out.attachments,
        });
    }

    fn message(&mut self, message: Message) {
        let id = message.conversation_id.clone();
        let from_visitor = message.author.kind == AuthorKind::Visitor;
        let mine = Some(message.author.id.as_str()) == self.me_id();
        let on_screen = self.open.as_deref() == Some(id.as_str());
        let body = format!("{}: {}", message.author.name, message.text);
        let known = self.conversations.contains_key(&id);
        let history_width = self.history_area().map_or(0, |area| area.width);
        let conversation = self
            .conversations
            .entry(id.clone())
            .or_insert_with(|| Conversation::from_first_message(&message));
        let event = message.is_event();
        if !conversation.insert_below_reader(message, history_width, &self.thumbnails) || event {
            // A claim, transfer, resolve or reopen is shown in the
            // timeline; it is nobody's new message and rings nothing.
            return;
        }
        if from_visitor {
            conversation.visitor_typing = None;
            // The summary that follows will say so too; counting now lets
            // an open conversation be marked read at once.
            conversation.summary.visitor_messages += 1;
        }
        if on_screen {
            self.mark_read(&id);
            return;
        }
        if !mine {
            conversation.activity = true;
        }
        let own = Filter::Mine.admits(conversation, self.me.as_ref().map(|me| me.id.as_str()));
        if !known {
            self.notify(Kind::NewVisitor, "New visitor", body);
        } else if own && !mine {
            self.notify(Kind::OwnMessage, "New message", body);
        }
    }

    fn typing(&mut self, typing: Typing) {
        if typing.author.kind != AuthorKind::Visitor {
            return;
        }
        if let Some(conversation) = self.conversations.get_mut(&typing.conversation_id) {
            conversation.visitor_typing = typing.active.then_some(self.now);
        }
    }

    fn read(&mut self, receipt: ReadReceipt) {
        if receipt.reader != AuthorKind::Visitor {
            return;
        }
        if let Some(conversation) = self.conversations.get_mut(&receipt.conversation_id) {
            let seen = &mut conversation.summary.visitor_read_seq;
            *seen = (*seen).max(receipt.up_to_seq);
        }
    }

    fn presence(&mut self, presence: Presence) {
        match presence.kind {
            PresenceKind::Agent => {
                if let Some(agent) = self.agents.iter_mut().find(|a| a.id == presence.id) {
                    agent.online = presence.online;
                    if let Some(state) = presence.state {
                        agent.state = state;
                    }
                }
                if Some(presence.id.as_str()) == self.me_id()
                    && let Some(state) = presence.state
                {
                    self.my_state = state;
                }
            }
            PresenceKind::Visitor => {
                for conversation in self.conversations.values_mut() {
                    if conversation.summary.visitor.id == presence.id {
                        conversation.summary.visitor.online = presence.online;
                    }
                }
            }
        }
    }

    /// A refused request: a reply becomes failed (the agent can retry), any
    /// other refusal is shown.
    fn error(&mut self, error: ErrorFrame) {
        let reference = error.reference.as_deref().unwrap_or_default();
        for conversation in self.conversations.values_mut() {
            if let Some(out) = conversation
                .outgoing
                .iter_mut()
                .find(|out| out.client_id == reference)
            {
                out.state = SendState::Failed {
                    reason: error.message.clone(),
                    retry: retry_can_succeed(error.code),
                };
                self.flash = Some(format!("reply not sent: {}", error.message));
                return;
            }
        }
        self.asked.remove(reference);
        let about = match self.conversations.get_mut(reference) {
            Some(conversation) => {
                conversation.loading_older = false;
                format!("{}: ", conversation.summary.visitor.name)
            }
            None => String::new(),
        };
        self.flash = Some(format!("{about}{}", error.message));
    }

    /// Tells the relay the agent has read `id` up to its newest message, if
    /// there is anything it has not read that was not marked already. The
    /// mark is this agent's own: the relay shows the visitor "seen" only if
    /// the agent is the one answering them, so opening (peeking at) a
    /// waiting chat shows the visitor nothing and leaves colleagues' counts.
    pub(super) fn mark_read(&mut self, id: &str) {
        let online = self.online();
        let Some(conversation) = self.conversations.get_mut(id) else {
            return;
        };
        let up_to_seq = conversation.summary.last_seq;
        if conversation.unread() == 0 || up_to_seq <= conversation.read_sent || !online {
            return;
        }
        conversation.read_up_to(AgentReadMark {
            conversation_id: id.to_owned(),
            up_to_seq,
            visitor_messages: conversation.summary.visitor_messages,
        });
        conversation.read_sent = up_to_seq;
        self.request(AgentRequest::Read {
            conversation_id: id.to_owned(),
            up_to_seq,
        });
    }
}
