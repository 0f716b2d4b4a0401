//! `/ws/visitor`: one visitor's page.

use axum::extract::ws::WebSocket;
use kefu_protocol::visitor::{VisitorEvent, VisitorProfile, VisitorRequest, VisitorWelcome};
use kefu_protocol::{Ack, AuthorKind, ErrorCode, ErrorFrame, Seq};

use super::session::{Ended, Event, Session};
use super::{AppState, check_send, store_error};
use crate::frame::{decode, encode};
use crate::hub::{Outbound, mailbox};
use crate::store::{Page, VisitorDetails, VisitorSend};

/// Messages read from the store per replay query.
const REPLAY_PAGE: u32 = 500;
/// Longest profile field kept, in characters: enough for any real URL.
const MAX_PROFILE_FIELD: usize = 2048;

/// Cuts untrusted header or profile text to a sane length.
pub(super) fn bounded(value: &str) -> &str {
    match value.char_indices().nth(MAX_PROFILE_FIELD) {
        Some((cut, _)) => &value[..cut],
        None => value,
    }
}

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

struct Visitor {
    state: AppState,
    session: Session,
    visitor_id: String,
    details: VisitorDetails,
    conversation_id: Option<String>,
    /// Highest `seq` sent by the replay; live copies of those are skipped.
    replayed_up_to: Seq,
}

pub(super) async fn serve(state: AppState, socket: WebSocket, user_agent: Option<String>) {
    let shared = &state.0;
    let mut session = state.session(socket);
    let Ok(first) = session.hello::<VisitorRequest>().await else {
        return;
    };
    let VisitorRequest::Hello {
        token,
        after_seq,
        profile,
    } = first
    else {
        return; // `hello()` returns nothing else
    };
    let visitor_id = match token {
        None => crate::auth::new_id(),
        Some(token) => match shared.visitor_tokens.verify(&token) {
            Some(visitor_id) => visitor_id,
            None => {
                session
                    .reject(ErrorFrame::new(
                        ErrorCode::Unauthorized,
                        "invalid visitor token; say hello without one to start afresh",
                    ))
                    .await;
                return;
            }
        },
    };
    let details = VisitorDetails {
        profile: bounded_profile(profile.unwrap_or_default()),
        user_agent,
    };
    let mut visitor = Visitor {
        state: state.clone(),
        session,
        visitor_id,
        details,
        conversation_id: None,
        replayed_up_to: after_seq.unwrap_or(0),
    };
    if visitor.start().await.is_ok() {
        while visitor.step().await.is_ok() {}
    }
    state.0.hub.unregister(visitor.session.id).await;
}

impl Visitor {
    /// Registers with the hub, sends `welcome`, then replays the conversation.
    async fn start(&mut self) -> Result<(), Ended> {
        let shared = &self.state.0;
        match shared.store.visitor_conversation(&self.visitor_id).await {
            Ok(conversation_id) => self.conversation_id = conversation_id,
            Err(error) => {
                self.session.reject(store_error(error, "hello")).await;
                return Err(Ended);
            }
        }
        if self.conversation_id.is_some() {
            // Agents see which page the visitor is on now.
            let details = self.details.clone();
            if let Err(error) = shared.store.update_visitor(&self.visitor_id, details).await {
                tracing::warn!(%error, "could not update a visitor's profile");
            }
        }

        // Register before reading the replay: whatever commits in between is
        // both in the replay and queued live, and the live copy is skipped.
        let (outbox, inbox) = mailbox(self.session.id, shared.config.limits.outbound_queue);
        let Ok(agents_online) = shared
            .hub
            .register_visitor(self.visitor_id.clone(), outbox)
            .await
        else {
            return Err(Ended);
        };
        self.session.attach(inbox);
        let welcome = VisitorWelcome {
            visitor_id: self.visitor_id.clone(),
            token: shared.visitor_tokens.issue(&self.visitor_id),
            conversation_id: self.conversation_id.clone(),
            agents_online,
            greeting: shared.config.greeting.clone(),
        };
        self.session
            .send(encode(&VisitorEvent::Welcome(welcome)))
            .await?;
        self.replay().await
    }

    async fn replay(&mut self) -> Result<(), Ended> {
        let Some(conversation_id) = self.conversation_id.clone() else {
            return Ok(());
        };
        loop {
            let page = Page::After {
                after: self.replayed_up_to,
                limit: REPLAY_PAGE,
            };
            let messages = match self
                .state
                .0
                .store
                .messages(&conversation_id, page, false)
                .await
            {
                Ok(messages) => messages,
                Err(error) => {
                    self.session.reject(store_error(error, "hello")).await;
                    return Err(Ended);
                }
            };
            let full_page = messages.len() == REPLAY_PAGE as usize;
            for message in messages {
                self.replayed_up_to = message.seq;
                self.session
                    .send(encode(&VisitorEvent::Message(message)))
                    .await?;
            }
            if !full_page {
                return Ok(());
            }
        }
    }

    async fn step(&mut self) -> Result<(), Ended> {
        match self.session.next().await? {
            Event::Deliver(Outbound::Frame(frame)) => self.session.send(frame).await,
            Event::Deliver(Outbound::Message { seq, frame }) => {
                if seq > self.replayed_up_to {
                    self.session.send(frame).await?;
                }
                Ok(())
            }
            Event::Request(text) => match decode::<VisitorRequest>(&text) {
                Ok(request) => self.handle(request).await,
                Err(error) => self.session.send_error(error).await,
            },
        }
    }

    async fn handle(&mut self, request: VisitorRequest) -> Result<(), Ended> {
        let shared = self.state.0.clone();
        match request {
            VisitorRequest::Hello { .. } => {
                let error = ErrorFrame::new(ErrorCode::BadRequest, "hello was already said");
                self.session.send_error(error).await
            }
            VisitorRequest::Send { client_id, text } => {
                let max_chars = shared.config.limits.max_message_chars;
                if let Err(error) = check_send(&client_id, &text, max_chars) {
                    return self.session.send_error(error).await;
                }
                let send = VisitorSend {
                    visitor_id: self.visitor_id.clone(),
                    details: self.details.clone(),
                    client_id: client_id.clone(),
                    text,
                    origin: Some(self.session.id),
                };
                match shared.store.visitor_send(send).await {
                    Ok(message) => {
                        self.conversation_id = Some(message.conversation_id.clone());
                        let ack = Ack::from(&message);
                        self.session.send(encode(&VisitorEvent::Ack(ack))).await
                    }
                    Err(error) => {
                        self.session
                            .send_error(store_error(error, &client_id))
                            .await
                    }
                }
            }
            VisitorRequest::Typing { active } => {
                shared.hub.typing(self.session.id, None, active).await;
                Ok(())
            }
            VisitorRequest::Read { up_to_seq } => {
                let Some(conversation_id) = self.conversation_id.clone() else {
                    return Ok(());
                };
                match shared
                    .store
                    .mark_read(&conversation_id, AuthorKind::Visitor, up_to_seq)
                    .await
                {
                    Ok(()) => Ok(()),
                    Err(error) => {
                        self.session
                            .send_error(store_error(error, &conversation_id))
                            .await
                    }
                }
            }
        }
    }
}
