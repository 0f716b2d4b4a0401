//! Visitors, over either transport.
//!
//! [`VisitorCore`] is what a visitor's requests mean — hello, send, typing,
//! read, profile — independent of how frames travel. [`ws`] carries them over
//! a WebSocket, [`longpoll`] over plain HTTP requests for visitors behind
//! proxies that break WebSockets. Agents cannot tell the two apart.

pub(super) mod longpoll;
pub(super) mod ws;

use std::net::IpAddr;

use axum::http::{HeaderMap, header};
use kefu_protocol::trail::PageViewReport;
use kefu_protocol::visitor::{VisitorEvent, VisitorProfile, VisitorRequest, VisitorWelcome};
use kefu_protocol::{Ack, ErrorCode, ErrorFrame, Message, Seq};

use super::AppState;
use super::call;
use super::errors::{check_send, store_error};
use super::trail;
use crate::hub::Outbox;
use crate::ids::ConnId;
use crate::store::{Page, Reader, VisitorDetails, VisitorSend};

/// Messages read from the store per replay query.
pub(super) const REPLAY_PAGE: u32 = 500;
/// Longest profile field kept, in characters: enough for any real URL.
const MAX_PROFILE_FIELD: usize = 2048;

/// Where a visitor's connection comes from, as the transport saw it.
pub(super) struct Peer {
    pub address: IpAddr,
    /// The browser's user agent, bounded.
    pub user_agent: Option<String>,
}

impl Peer {
    pub fn new(address: IpAddr, headers: &HeaderMap) -> Peer {
        let user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|value| bounded(value).to_owned());
        Peer {
            address,
            user_agent,
        }
    }
}

/// Cuts untrusted header or profile text to a sane length.
fn bounded(value: &str) -> &str {
    match value.char_indices().nth(MAX_PROFILE_FIELD) {
        Some((cut, _)) => &value[..cut],
        None => value,
    }
}

/// Trims and bounds every field; empty ones count as not given.
fn bounded_profile(profile: VisitorProfile) -> VisitorProfile {
    let field = |value: Option<String>| {
        value
            .map(|v| bounded(v.trim()).to_owned())
            .filter(|v| !v.is_empty())
    };
    VisitorProfile {
        name: field(profile.name),
        email: field(profile.email),
        page_url: field(profile.page_url),
        page_title: field(profile.page_title),
        referrer: field(profile.referrer),
        lang: field(profile.lang),
    }
}

/// Fields of `update` that were given replace those of `profile`.
fn merge_profile(profile: &mut VisitorProfile, update: VisitorProfile) {
    let VisitorProfile {
        name,
        email,
        page_url,
        page_title,
        referrer,
        lang,
    } = update;
    for (field, value) in [
        (&mut profile.name, name),
        (&mut profile.email, email),
        (&mut profile.page_url, page_url),
        (&mut profile.page_title, page_title),
        (&mut profile.referrer, referrer),
        (&mut profile.lang, lang),
    ] {
        if value.is_some() {
            *field = value;
        }
    }
}

/// One visitor connection's meaning, whatever carries its frames.
pub(super) struct VisitorCore {
    state: AppState,
    pub conn: ConnId,
    visitor_id: String,
    /// Whose budget a new conversation is taken from.
    address: IpAddr,
    /// The connection's browser and address, carried by every write that
    /// stores the visitor, and the profile fields it learned (its hello's,
    /// later changes, the page it is on) and has not stored yet: those are
    /// carried by the next such write, then forgotten. A connection that
    /// carried its whole profile with every write put back, in a tab opened
    /// earlier, the name another tab had changed since.
    details: VisitorDetails,
    conversation_id: Option<String>,
}

impl VisitorCore {
    /// Checks a `hello` and looks up the visitor's conversation. The visitor
    /// is not registered with the hub yet: see [`VisitorCore::register`].
    pub async fn hello(
        state: AppState,
        conn: ConnId,
        peer: Peer,
        token: Option<String>,
        profile: Option<VisitorProfile>,
    ) -> Result<VisitorCore, ErrorFrame> {
        let shared = state.clone();
        let visitor_id = match token {
            None => crate::ids::new_id(),
            Some(token) => shared.visitor_tokens.verify(&token).ok_or_else(|| {
                ErrorFrame::new(
                    ErrorCode::Unauthorized,
                    "invalid visitor token; say hello without one to start afresh",
                )
            })?,
        };
        let mut details = VisitorDetails {
            profile: bounded_profile(profile.unwrap_or_default()),
            user_agent: peer.user_agent,
            address: shared.config.visitor_address.show(peer.address),
        };
        let conversation_id = shared
            .store
            .visitor_conversation(&visitor_id)
            .await
            .map_err(|error| store_error(error, "hello"))?;
        if conversation_id.is_some() {
            // Agents see which page the visitor is on now.
            let _turn = shared.visitor_writes.turn().await;
            let update = shared
                .store
                .update_visitor(&visitor_id, details.clone())
                .await;
            match update {
                Ok(()) => details.profile = VisitorProfile::default(),
                Err(error) => tracing::warn!(%error, "could not update a visitor's profile"),
            }
        }
        Ok(VisitorCore {
            state,
            conn,
            visitor_id,
            address: peer.address,
            details,
            conversation_id,
        })
    }

    /// Starts routing to `outbox`; answers the `welcome` to send.
    pub async fn register(
        &self,
        outbox: Outbox,
        session: Option<String>,
    ) -> Option<VisitorWelcome> {
        let shared = &self.state;
        let agents_online = shared
            .hub
            .register_visitor(self.visitor_id.clone(), outbox)
            .await
            .ok()?;
        Some(VisitorWelcome {
            visitor_id: self.visitor_id.clone(),
            token: shared.visitor_tokens.issue(&self.visitor_id),
            conversation_id: self.conversation_id.clone(),
            agents_online,
            greeting: shared.config.greeting.clone(),
            session,
        })
    }

    pub fn limits(&self) -> &crate::config::Limits {
        &self.state.config.limits
    }

    pub async fn unregister(&self) {
        self.state.hub.unregister(self.conn).await;
    }

    /// Looks the conversation up again if this connection has none yet: it
    /// may have been started by the visitor's requests on another relay or
    /// in another tab.
    pub async fn refresh_conversation(&mut self) -> Result<(), ErrorFrame> {
        if self.conversation_id.is_none() {
            self.conversation_id = self
                .state
                .0
                .store
                .visitor_conversation(&self.visitor_id)
                .await
                .map_err(|error| store_error(error, "conversation"))?;
        }
        Ok(())
    }

    /// Refuses a message that would start a conversation when the queue is
    /// full or this address has started too many lately; nothing is stored
    /// then. A visitor who has a conversation may always write.
    async fn may_start_conversation(&mut self, client_id: &str) -> Result<(), ErrorFrame> {
        self.refresh_conversation().await?;
        if self.conversation_id.is_some() {
            return Ok(());
        }
        let shared = &self.state;
        let busy = |why: &str| ErrorFrame::new(ErrorCode::RateLimited, why).with_ref(client_id);
        // The queue first, so that a refusal there costs the address nothing.
        let waiting = shared.hub.stats().await.map_or(0, |stats| stats.waiting);
        if waiting >= shared.config.limits.max_waiting {
            return Err(busy(
                "too many visitors are waiting; please try again later or leave your email",
            ));
        }
        if !shared.new_conversations.allow(&self.address) {
            return Err(busy(
                "too many new conversations from this address; please try again in a minute",
            ));
        }
        Ok(())
    }

    /// Public messages after `after`, oldest first, at most [`REPLAY_PAGE`].
    pub async fn messages_after(&self, after: Seq) -> Result<Vec<Message>, ErrorFrame> {
        let Some(conversation_id) = &self.conversation_id else {
            return Ok(Vec::new());
        };
        let page = Page::After {
            after,
            limit: REPLAY_PAGE,
        };
        self.state
            .0
            .store
            .messages(conversation_id, page, false)
            .await
            .map_err(|error| store_error(error, conversation_id))
    }

    /// Handles a request after `hello`; returns the direct answer, if any.
    pub async fn handle(&mut self, request: VisitorRequest) -> Option<VisitorEvent> {
        let shared = self.state.clone();
        let refused = match request {
            VisitorRequest::Hello { .. } => {
                ErrorFrame::new(ErrorCode::BadRequest, "hello was already said")
            }
            VisitorRequest::Send {
                client_id,
                text,
                attachments,
            } => {
                let max_chars = shared.config.limits.max_message_chars;
                if let Err(error) = check_send(&client_id, &text, &attachments, max_chars) {
                    return Some(VisitorEvent::Error(error));
                }
                if let Err(error) = self.may_start_conversation(&client_id).await {
                    return Some(VisitorEvent::Error(error));
                }
                let send = VisitorSend {
                    visitor_id: self.visitor_id.clone(),
                    details: self.details.clone(),
                    client_id: client_id.clone(),
                    text,
                    attachments,
                    origin: Some(self.conn),
                };
                let first = self.conversation_id.is_none();
                // Held until the held views are stored too.
                let _turn = shared.visitor_writes.turn().await;
                match shared.store.visitor_send(send).await {
                    Ok(message) => {
                        self.details.profile = VisitorProfile::default();
                        self.conversation_id = Some(message.conversation_id.clone());
                        if first {
                            self.store_held_views().await;
                        }
                        return Some(VisitorEvent::Ack(Ack::from(&message)));
                    }
                    Err(error) => store_error(error, &client_id),
                }
            }
            VisitorRequest::Typing { active } => {
                shared.hub.typing(self.conn, None, active).await;
                return None;
            }
            VisitorRequest::Read { up_to_seq } => {
                if let Err(error) = self.refresh_conversation().await {
                    return Some(VisitorEvent::Error(error));
                }
                let conversation_id = self.conversation_id.as_deref()?;
                let _turn = shared.visitor_writes.turn().await;
                match shared
                    .store
                    .mark_read(conversation_id, Reader::Visitor, up_to_seq)
                    .await
                {
                    Ok(()) => return None,
                    Err(error) => store_error(error, conversation_id),
                }
            }
            VisitorRequest::PageView(report) => match self.page_view(report).await {
                Ok(()) => return None,
                Err(error) => error,
            },
            VisitorRequest::Profile(update) => {
                merge_profile(&mut self.details.profile, bounded_profile(update));
                // Without a conversation nothing is written: the profile is
                // stored with the first message.
                if let Err(error) = self.refresh_conversation().await {
                    return Some(VisitorEvent::Error(error));
                }
                self.conversation_id.as_ref()?;
                let _turn = shared.visitor_writes.turn().await;
                match shared
                    .store
                    .update_visitor(&self.visitor_id, self.details.clone())
                    .await
                {
                    Ok(()) => {
                        self.details.profile = VisitorProfile::default();
                        return None;
                    }
                    Err(error) => store_error(error, "profile"),
                }
            }
            // With `?`, a call request that passed answers nothing.
            VisitorRequest::CallAccept { call_id } => {
                call::answer(&shared, self.conn, call_id, true).await?
            }
            VisitorRequest::CallDecline { call_id } => {
                call::answer(&shared, self.conn, call_id, false).await?
            }
            VisitorRequest::CallSignal(signal) => call::signal(&shared, self.conn, signal).await?,
            VisitorRequest::CallHangup { call_id } => {
                call::leave(&shared, self.conn, call_id, true).await?
            }
        };
        Some(VisitorEvent::Error(refused))
    }
}

impl VisitorCore {
    /// Stores a page view if the visitor has a conversation, or holds it
    /// until they do (see [`super::trail`]).
    async fn page_view(&mut self, report: PageViewReport) -> Result<(), ErrorFrame> {
        let view = trail::checked_view(report)?;
        let shared = self.state.clone();
        if !shared.trails.allow(&self.visitor_id) {
            return Err(
                ErrorFrame::new(ErrorCode::RateLimited, "too many page views; slow down")
                    .with_ref("page_view"),
            );
        }
        let profile = &mut self.details.profile;
        // Until a write stores it, the connection carries the page the
        // visitor is on (the first message stores it).
        profile.page_url = Some(view.url.clone());
        profile.page_title = view.title.clone();
        self.refresh_conversation().await?;
        if self.conversation_id.is_none() {
            shared.trails.hold(&self.visitor_id, view);
            return Ok(());
        }
        let _turn = shared.visitor_writes.turn().await;
        match shared
            .store
            .record_page_views(&self.visitor_id, vec![view.clone()])
            .await
        {
            Ok(true) => {
                // Stored with the view: carried again, it would put back
                // this page over one another tab opened since.
                let profile = &mut self.details.profile;
                (profile.page_url, profile.page_title) = (None, None);
                Ok(())
            }
            Ok(false) => {
                shared.trails.hold(&self.visitor_id, view);
                Ok(())
            }
            Err(error) => Err(store_error(error, "page_view")),
        }
    }

    /// Stores the views held while the visitor had no conversation, now
    /// that their first message made one, in that message's write turn
    /// (taking a second would wait for itself when turns are few). A
    /// failure loses only the trail.
    async fn store_held_views(&self) {
        let held = self.state.trails.take(&self.visitor_id);
        if held.is_empty() {
            return;
        }
        if let Err(error) = self
            .state
            .store
            .record_page_views(&self.visitor_id, held)
            .await
        {
            tracing::warn!(%error, "could not store a visitor's page trail");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_updates_keep_fields_not_given() {
        let mut profile = VisitorProfile {
            name: Some("Ming".into()),
            page_url: Some("https://shop.example/".into()),
            ..Default::default()
        };
        let update = bounded_profile(VisitorProfile {
            email: Some("  ming@example.com ".into()),
            name: Some("   ".into()),
            ..Default::default()
        });
        merge_profile(&mut profile, update);
        assert_eq!(profile.name.as_deref(), Some("Ming"), "blank is not given");
        assert_eq!(profile.email.as_deref(), Some("ming@example.com"));
        assert_eq!(profile.page_url.as_deref(), Some("https://shop.example/"));
    }

    #[test]
    fn bounded_cuts_on_a_character_boundary() {
        let long = "字".repeat(MAX_PROFILE_FIELD + 10);
        assert_eq!(bounded(&long).chars().count(), MAX_PROFILE_FIELD);
        assert_eq!(bounded("short"), "short");
    }
}
