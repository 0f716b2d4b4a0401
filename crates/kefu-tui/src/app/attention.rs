//! Drawing the agent's attention without a bell storm.
//!
//! Each notifiable event has a [`Kind`] the agent can turn off. What is
//! left is counted (the title and status line show the count until the
//! agent presses a key) and rung at most once per quiet period: the first
//! event rings at once, the others during the period are held and rung
//! together when it ends, as one notification saying how many there were.
//! While the agent is away only their own chats ring.

use kefu_protocol::AgentState;
use time::{Duration, OffsetDateTime};

use super::{App, Effect, Notification};
use crate::config::Notify;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A visitor nobody has taken yet.
    NewVisitor,
    /// A visitor wrote in one of the agent's own chats, off screen.
    OwnMessage,
    /// A colleague handed a chat to the agent.
    TransferToMe,
}

impl Kind {
    /// About a chat that is the agent's own: these ring even while away.
    fn own(self) -> bool {
        matches!(self, Kind::OwnMessage | Kind::TransferToMe)
    }

    fn wanted(self, prefs: &Notify) -> bool {
        match self {
            Kind::NewVisitor => prefs.new_visitor,
            Kind::OwnMessage => prefs.new_message,
            Kind::TransferToMe => prefs.transfer,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Attention {
    /// Notifiable events since the agent last pressed a key.
    pub unseen: usize,
    last_rung: Option<OffsetDateTime>,
    /// The newest event held back by the quiet period, and how many it
    /// stands for.
    held: Option<(Notification, usize)>,
}

impl Attention {
    /// Counts `notification`; returns it if it may ring now, else holds it.
    fn offer(
        &mut self,
        now: OffsetDateTime,
        quiet: Duration,
        notification: Notification,
    ) -> Option<Notification> {
        self.unseen += 1;
        if self.last_rung.is_some_and(|at| now - at < quiet) {
            let count = self.held.as_ref().map_or(0, |(_, count)| *count) + 1;
            self.held = Some((notification, count));
            return None;
        }
        self.last_rung = Some(now);
        Some(notification)
    }

    /// The held events as one notification, once the quiet period is over.
    fn due(&mut self, now: OffsetDateTime, quiet: Duration) -> Option<Notification> {
        let at = self.next_due(quiet)?;
        if now < at {
            return None;
        }
        let (latest, count) = self.held.take()?;
        self.last_rung = Some(now);
        Some(match count {
            1 => latest,
            _ => Notification {
                title: format!("{count} new"),
                body: format!("latest: {}: {}", latest.title, latest.body),
            },
        })
    }

    /// When the held events will ring, if any are held.
    pub fn next_due(&self, quiet: Duration) -> Option<OffsetDateTime> {
        let last = self.last_rung?;
        self.held.as_ref().map(|_| last + quiet)
    }

    /// The agent is at the keyboard: the count is read, nothing more rings
    /// for what happened before.
    fn seen(&mut self) {
        self.unseen = 0;
        self.held = None;
    }
}

impl App {
    /// The quiet period between two rings.
    pub(super) fn quiet(&self) -> Duration {
        Duration::seconds(i64::from(self.prefs.notify.quiet_seconds))
    }

    /// Something happened that may be worth a bell.
    pub(super) fn notify(&mut self, kind: Kind, title: &str, body: String) {
        let away = self.my_state == AgentState::Away;
        if !kind.wanted(&self.prefs.notify) || (away && !kind.own()) {
            return;
        }
        let notification = Notification {
            title: title.to_owned(),
            body,
        };
        let (now, quiet) = (self.now, self.quiet());
        if let Some(ring) = self.attention.offer(now, quiet, notification) {
            self.effects.push(Effect::Notify(ring));
        }
    }

    /// The clock moved: ring what the quiet period held back.
    pub(super) fn ring_held(&mut self) {
        let (now, quiet) = (self.now, self.quiet());
        if let Some(ring) = self.attention.due(now, quiet) {
            self.effects.push(Effect::Notify(ring));
        }
    }

    pub(super) fn attention_seen(&mut self) {
        self.attention.seen();
    }
}
