//! Remote-assistance calls, for every role: what a call request means (the
//! hub says who may, the store records the step, the committed event
//! changes the call everywhere), and the one-time codes of assist links.
//!
//! An assist code is `a1.<call>.<peer>.<agent>.<expiry>` signed with the
//! relay's secret (shared by a cluster's relays through the store): it
//! names the call, the agent whose page it opens and the peer id the page
//! will have. Its peer id is what makes it single-use: a call remembers
//! every peer id that joined (`hub::state::calls`), cluster-wide, since
//! joins are committed events. It never carries the agent's token.

use std::time::Duration;

use kefu_protocol::agent::{AgentEvent, AgentInfo};
use kefu_protocol::call::{CallLink, MAX_SIGNAL_BYTES, SignalTo};
use kefu_protocol::{Author, AuthorKind, ErrorCode, ErrorFrame, TimelineEvent};
use time::OffsetDateTime;

use super::AppState;
use super::errors::store_error;
use crate::auth::VisitorTokens;
use crate::hub::call::{CallRefusal, Recording};
use crate::ids::ConnId;

/// How long an assist link works: long enough to open it, short enough
/// that one found later in a terminal's scrollback is dead.
pub(super) const LINK_LIFETIME: Duration = Duration::from_secs(120);
const CODE_VERSION: &str = "a1";

/// What a valid assist code names.
pub(super) struct Code {
    pub call_id: String,
    pub peer: String,
    pub agent_id: String,
}

/// A code for `agent_id` to join `call_id` until `expires_at`, as a new
/// peer.
fn mint_code(
    tokens: &VisitorTokens,
    call_id: &str,
    agent_id: &str,
    expires_at: OffsetDateTime,
) -> String {
    let peer = crate::ids::new_id();
    let body = format!(
        "{CODE_VERSION}.{call_id}.{peer}.{agent_id}.{}",
        expires_at.unix_timestamp()
    );
    tokens.sign(&body)
}

/// The code's call, peer and agent, if it is genuine and not expired.
pub(super) fn open_code(state: &AppState, code: &str) -> Result<Code, ErrorFrame> {
    open_code_at(&state.visitor_tokens, code, OffsetDateTime::now_utc())
}

fn open_code_at(
    tokens: &VisitorTokens,
    code: &str,
    now: OffsetDateTime,
) -> Result<Code, ErrorFrame> {
    let refused = |why: &str| ErrorFrame::new(ErrorCode::Forbidden, why);
    let body = (tokens.open(code)).ok_or_else(|| refused("not a valid assist link"))?;
    let mut fields = body.split('.');
    let (Some(CODE_VERSION), Some(call_id), Some(peer), Some(agent_id), Some(expiry), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(refused("not a valid assist link"));
    };
    let expiry: i64 = expiry
        .parse()
        .map_err(|_| refused("not a valid assist link"))?;
    if now.unix_timestamp() >= expiry {
        return Err(refused("this assist link has expired; ask for a new one"));
    }
    Ok(Code {
        call_id: call_id.to_owned(),
        peer: peer.to_owned(),
        agent_id: agent_id.to_owned(),
    })
}

/// An agent's `call_invite`: starts a call in the conversation (or finds
/// the one going on) and answers a one-time link to join it.
pub(super) async fn invite(
    state: &AppState,
    conn: ConnId,
    agent: &AgentInfo,
    conversation_id: String,
) -> AgentEvent {
    let error = |frame: ErrorFrame| AgentEvent::Error(frame.with_ref(conversation_id.clone()));
    match state.store.conversation(&conversation_id).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return error(ErrorFrame::new(
                ErrorCode::NotFound,
                "conversation not found",
            ));
        }
        Err(err) => return AgentEvent::Error(store_error(err, &conversation_id)),
    }
    let Ok(running) = state.hub.call_in(conversation_id.clone()).await else {
        return error(ErrorFrame::new(
            ErrorCode::Internal,
            "the relay is shutting down",
        ));
    };
    let call_id = match running {
        Some(call_id) => call_id,
        None => {
            let call_id = crate::ids::new_id();
            let event = TimelineEvent::CallStarted {
                call_id: call_id.clone(),
                by: Author {
                    kind: AuthorKind::Agent,
                    id: agent.id.clone(),
                    name: agent.name.clone(),
                },
            };
            let started = state
                .store
                .record_event(&conversation_id, event, Some(conn));
            if let Err(err) = started.await {
                return AgentEvent::Error(store_error(err, &conversation_id));
            }
            call_id
        }
    };
    let expires_at = OffsetDateTime::now_utc() + LINK_LIFETIME;
    let code = mint_code(&state.visitor_tokens, &call_id, &agent.id, expires_at);
    let path = format!("/assist#code={code}");
    let url = (state.config.public_url.as_deref())
        .map(|public| format!("{}{path}", public.trim_end_matches('/')));
    AgentEvent::CallLink(CallLink {
        call_id,
        conversation_id,
        path,
        url,
        expires_at,
    })
}

/// Stores the step the hub answered, or says why it was refused.
pub(super) async fn record(
    state: &AppState,
    conn: ConnId,
    call_id: &str,
    step: Result<Result<Recording, CallRefusal>, crate::hub::HubClosed>,
) -> Option<ErrorFrame> {
    let recording = match step {
        Ok(Ok(recording)) => recording,
        Ok(Err(refusal)) => return Some(refusal.frame(call_id)),
        Err(_) => {
            return Some(ErrorFrame::new(
                ErrorCode::Internal,
                "the relay is shutting down",
            ));
        }
    };
    let Recording {
        conversation_id,
        event,
    } = recording;
    (state
        .store
        .record_event(&conversation_id, event, Some(conn))
        .await)
        .err()
        .map(|error| store_error(error, call_id))
}

/// Forwards a signal to another peer of the sender's call.
pub(super) async fn signal(state: &AppState, conn: ConnId, signal: SignalTo) -> Option<ErrorFrame> {
    if signal.data.len() > MAX_SIGNAL_BYTES {
        return Some(
            ErrorFrame::new(
                ErrorCode::TooLarge,
                format!("a call signal carries at most {MAX_SIGNAL_BYTES} bytes"),
            )
            .with_ref(signal.call_id),
        );
    }
    let call_id = signal.call_id.clone();
    match state.hub.signal(conn, signal).await {
        Ok(Ok(())) => None,
        Ok(Err(refusal)) => Some(refusal.frame(&call_id)),
        Err(_) => Some(ErrorFrame::new(
            ErrorCode::Internal,
            "the relay is shutting down",
        )),
    }
}

/// A participant leaves, or ends the call (`hang_up`).
pub(super) async fn leave(
    state: &AppState,
    conn: ConnId,
    call_id: String,
    hang_up: bool,
) -> Option<ErrorFrame> {
    let step = state.hub.leave_call(conn, call_id.clone(), hang_up).await;
    record(state, conn, &call_id, step).await
}

/// The visitor accepts (joins) or declines a call.
pub(super) async fn answer(
    state: &AppState,
    conn: ConnId,
    call_id: String,
    accept: bool,
) -> Option<ErrorFrame> {
    let step = state.hub.answer_call(conn, call_id.clone(), accept).await;
    record(state, conn, &call_id, step).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_open_until_they_expire_and_never_when_altered() {
        let tokens = VisitorTokens::new(b"relay secret".to_vec());
        let now = OffsetDateTime::now_utc();
        let code = mint_code(&tokens, "call1", "agent1", now + LINK_LIFETIME);
        let opened = open_code_at(&tokens, &code, now).expect("fresh");
        assert_eq!(
            (opened.call_id.as_str(), opened.agent_id.as_str()),
            ("call1", "agent1")
        );
        let later = now + LINK_LIFETIME + Duration::from_secs(1);
        let expired = open_code_at(&tokens, &code, later)
            .map(|_| ())
            .expect_err("expired");
        assert!(expired.message.contains("expired"), "{expired:?}");
        let other = mint_code(&tokens, "call2", "agent1", now + LINK_LIFETIME);
        assert_ne!(
            open_code_at(&tokens, &other, now).expect("fresh").peer,
            opened.peer,
            "every link is a new peer"
        );
        let forged = code.replace("call1", "call2");
        assert!(open_code_at(&tokens, &forged, now).is_err());
        let visitor_token = tokens.issue("v1");
        assert!(
            open_code_at(&tokens, &visitor_token, now).is_err(),
            "no kind passes for another"
        );
        let elsewhere = VisitorTokens::new(b"another relay".to_vec());
        assert!(open_code_at(&elsewhere, &code, now).is_err());
    }
}
