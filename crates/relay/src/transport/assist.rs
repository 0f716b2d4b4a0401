//! `/ws/assist`: an agent's assist page, one peer of one call. It signs in
//! with the one-time code of its link (never an agent token), and may do
//! nothing but signal the call's other peers, leave or hang up.

use kefu_protocol::call::AssistRequest;
use kefu_protocol::{Author, AuthorKind, ErrorCode, ErrorFrame};

use super::AppState;
use super::call;
use super::limits::websocket_outbox;
use super::revocation;
use super::session::{Ended, Event, Session};
use crate::frame::decode;
use crate::hub::mailbox;

pub(super) async fn serve(state: AppState, mut session: Box<Session>) {
    let Ok(AssistRequest::Hello { code }) = session.hello::<AssistRequest>().await else {
        return;
    };
    if let Err(error) = join(&state, &mut session, &code).await {
        session.reject(error).await;
    } else {
        while step(&state, &mut session).await.is_ok() {}
    }
    state.hub.unregister(session.id).await;
}

/// Joins the call the code names, as the agent it names, who must still
/// be enabled; the page is closed as soon as the agent is disabled or
/// gets a new token, like the agent's own connections.
async fn join(state: &AppState, session: &mut Session, code: &str) -> Result<(), ErrorFrame> {
    let code = call::open_code(state, code)?;
    let forbidden = || ErrorFrame::new(ErrorCode::Forbidden, "this agent may not join calls");
    let credentials = (state.store.agent_credentials().await)
        .map_err(|error| super::errors::store_error(error, "hello"))?;
    let (_, token_hash) = (credentials.into_iter())
        .find(|(agent_id, _)| *agent_id == code.agent_id)
        .ok_or_else(forbidden)?;
    let agent = (state.store.agent_by_token_hash(&token_hash).await)
        .map_err(|error| super::errors::store_error(error, "hello"))?
        .ok_or_else(forbidden)?;
    // After the reads that found the agent enabled (see `revocation`).
    let signed_in_at = tokio::time::Instant::now();
    session.end_when(revocation::revoked(
        state.credentials.subscribe(),
        agent.id.clone(),
        token_hash,
        signed_in_at,
    ));
    let who = Author {
        kind: AuthorKind::Agent,
        id: agent.id,
        name: agent.name,
    };
    let (outbox, inbox) = mailbox(session.id, websocket_outbox(&state.config.limits));
    let step = state
        .hub
        .join_call(code.call_id.clone(), code.peer, who, outbox)
        .await;
    session.attach(inbox);
    match call::record(state, session.id, &code.call_id, step).await {
        Some(error) => Err(error),
        None => {
            tracing::info!(conn = %session.id, "assist page joined a call");
            Ok(())
        }
    }
}

async fn step(state: &AppState, session: &mut Session) -> Result<(), Ended> {
    let text = match session.next().await? {
        Event::Deliver(outbound) => return session.deliver(outbound.into_frame()).await,
        Event::Request(text) => text,
    };
    let conn = session.id;
    let refused = match decode::<AssistRequest>(&text) {
        Err(error) => Some(error),
        Ok(AssistRequest::Hello { .. }) => Some(ErrorFrame::new(
            ErrorCode::BadRequest,
            "hello was already said",
        )),
        Ok(AssistRequest::CallSignal(signal)) => {
            session
                .while_waiting(call::signal(state, conn, signal), 0)
                .await?
        }
        Ok(AssistRequest::CallLeave { call_id }) => {
            let leave = call::leave(state, conn, call_id, false);
            session.while_waiting(leave, 0).await?
        }
        Ok(AssistRequest::CallHangup { call_id }) => {
            let hang_up = call::leave(state, conn, call_id, true);
            session.while_waiting(hang_up, 0).await?
        }
    };
    match refused {
        Some(error) => session.send_error(error).await,
        None => Ok(()),
    }
}
