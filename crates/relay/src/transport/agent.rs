//! `/ws/agent`: one agent's client (the TUI, or anything speaking protocol v1).

use kefu_protocol::agent::{
    AgentEvent, AgentInfo, AgentPresence, AgentRequest, AgentWelcome, HistoryPage, Role,
};
use kefu_protocol::{Ack, AgentState, AuthorKind, Broadcast, ErrorCode, ErrorFrame};

use super::session::{Ended, Event, Session};
use super::{AppState, check_send, store_error};
use crate::ConnId;
use crate::auth::hash_agent_token;
use crate::frame::{Frame, decode, encode};
use crate::hub::{Outbound, mailbox};
use crate::store::{AgentSend, Page};

const DEFAULT_HISTORY: u32 = 50;
const MAX_HISTORY: u32 = 200;

struct Agent {
    state: AppState,
    session: Box<Session>,
    info: AgentInfo,
}

pub(super) async fn serve(state: AppState, mut session: Box<Session>) {
    let shared = &state.0;
    let Ok(first) = session.hello::<AgentRequest>().await else {
        return;
    };
    let AgentRequest::Hello { token } = first else {
        return; // `hello()` returns nothing else
    };
    let info = match shared
        .store
        .agent_by_token_hash(&hash_agent_token(&token))
        .await
    {
        Ok(Some(info)) => info,
        Ok(None) => {
            session
                .reject(ErrorFrame::new(
                    ErrorCode::Unauthorized,
                    "unknown or disabled agent token",
                ))
                .await;
            return;
        }
        Err(error) => {
            session.reject(store_error(error, "hello")).await;
            return;
        }
    };
    tracing::info!(conn = %session.id, agent = %info.name, "agent connected");
    let mut agent = Agent {
        state: state.clone(),
        session,
        info,
    };
    if agent.start().await.is_ok() {
        while agent.step().await.is_ok() {}
    }
    state.0.hub.unregister(agent.session.id).await;
}

impl Agent {
    async fn start(&mut self) -> Result<(), Ended> {
        let shared = self.state.0.clone();
        let accounts = match shared.store.agents().await {
            Ok(accounts) => accounts,
            Err(error) => {
                self.session.reject(store_error(error, "hello")).await;
                return Err(Ended);
            }
        };
        let (outbox, inbox) = mailbox(self.session.id, shared.config.limits.outbound_queue);
        let Ok(snapshot) = shared.hub.register_agent(self.info.clone(), outbox).await else {
            return Err(Ended);
        };
        self.session.attach(inbox);
        let agents = accounts
            .into_iter()
            .filter(|account| !account.disabled)
            .map(|account| {
                let online = snapshot.online.iter().find(|a| a.id == account.info.id);
                AgentPresence {
                    online: online.is_some(),
                    state: online.map_or(AgentState::Available, |a| a.state),
                    id: account.info.id,
                    name: account.info.name,
                }
            })
            .collect();
        let welcome = AgentWelcome {
            agent: self.info.clone(),
            agents,
            conversations: snapshot.conversations,
        };
        self.session
            .send(encode(&AgentEvent::Welcome(welcome)))
            .await
    }

    async fn step(&mut self) -> Result<(), Ended> {
        let answer = match self.session.next().await? {
            Event::Deliver(Outbound::Frame(frame) | Outbound::Message { frame, .. }) => {
                return self.session.deliver(frame).await;
            }
            Event::Request(text) => match decode::<AgentRequest>(&text) {
                Ok(request) => {
                    let requests = Requests {
                        state: &self.state,
                        info: &self.info,
                        conn: self.session.id,
                    };
                    // Agents have no replay: every live message is new.
                    self.session
                        .while_waiting(requests.answer(request), 0)
                        .await?
                }
                Err(error) => Some(error_frame(error)),
            },
        };
        match answer {
            Some(frame) => self.session.send(frame).await,
            None => Ok(()),
        }
    }
}

fn error_frame(error: ErrorFrame) -> Frame {
    encode(&AgentEvent::Error(error))
}

/// What one agent's requests mean. Answers are frames to send back; the
/// socket is not touched here, so the session can keep delivering while a
/// request waits for the store.
struct Requests<'a> {
    state: &'a AppState,
    info: &'a AgentInfo,
    conn: ConnId,
}

impl Requests<'_> {
    async fn answer(&self, request: AgentRequest) -> Option<Frame> {
        let shared = &self.state.0;
        let store = &shared.store;
        let refused = match request {
            AgentRequest::Hello { .. } => Some(ErrorFrame::new(
                ErrorCode::BadRequest,
                "hello was already said",
            )),
            AgentRequest::History {
                conversation_id,
                before_seq,
                limit,
            } => return Some(self.history(conversation_id, before_seq, limit).await),
            AgentRequest::Send {
                conversation_id,
                client_id,
                text,
                internal,
            } => {
                let max_chars = shared.config.limits.max_message_chars;
                if let Err(error) = check_send(&client_id, &text, max_chars) {
                    return Some(error_frame(error));
                }
                let send = AgentSend {
                    agent: self.info.clone(),
                    conversation_id,
                    client_id: client_id.clone(),
                    text,
                    internal,
                    origin: Some(self.conn),
                };
                match store.agent_send(send).await {
                    Ok(message) => return Some(encode(&AgentEvent::Ack(Ack::from(&message)))),
                    Err(error) => Some(store_error(error, &client_id)),
                }
            }
            AgentRequest::Claim { conversation_id } => store
                .claim(&conversation_id, self.info)
                .await
                .err()
                .map(|error| store_error(error, &conversation_id)),
            AgentRequest::Transfer {
                conversation_id,
                to_agent,
            } => store
                .transfer(&conversation_id, self.info, &to_agent)
                .await
                .err()
                .map(|error| store_error(error, &conversation_id)),
            AgentRequest::Resolve { conversation_id } => store
                .resolve(&conversation_id, self.info)
                .await
                .err()
                .map(|error| store_error(error, &conversation_id)),
            AgentRequest::Typing {
                conversation_id,
                active,
            } => {
                shared
                    .hub
                    .typing(self.conn, Some(conversation_id), active)
                    .await;
                None
            }
            AgentRequest::Read {
                conversation_id,
                up_to_seq,
            } => store
                .mark_read(&conversation_id, AuthorKind::Agent, up_to_seq)
                .await
                .err()
                .map(|error| store_error(error, &conversation_id)),
            AgentRequest::Broadcast { text } => self.broadcast(text).await,
            AgentRequest::Status { state } => {
                shared.hub.set_state(self.conn, state).await;
                None
            }
        };
        refused.map(error_frame)
    }

    async fn history(
        &self,
        conversation_id: String,
        before_seq: Option<u64>,
        limit: Option<u32>,
    ) -> Frame {
        let shared = &self.state.0;
        match shared.store.conversation(&conversation_id).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return error_frame(
                    ErrorFrame::new(ErrorCode::NotFound, "conversation not found")
                        .with_ref(conversation_id),
                );
            }
            Err(error) => return error_frame(store_error(error, &conversation_id)),
        }
        // Follow before reading, so no message falls between the two; the
        // client drops live copies of what the page already holds by `seq`.
        if shared
            .hub
            .watch(self.conn, conversation_id.clone())
            .await
            .is_err()
        {
            return error_frame(
                ErrorFrame::new(ErrorCode::Internal, "the relay is shutting down")
                    .with_ref(conversation_id),
            );
        }
        let page = Page::Before {
            before: before_seq,
            limit: limit.unwrap_or(DEFAULT_HISTORY).clamp(1, MAX_HISTORY),
        };
        match shared.store.messages(&conversation_id, page, true).await {
            Ok(messages) => encode(&AgentEvent::History(HistoryPage {
                conversation_id,
                messages,
            })),
            Err(error) => error_frame(store_error(error, &conversation_id)),
        }
    }

    async fn broadcast(&self, text: String) -> Option<ErrorFrame> {
        if self.info.role != Role::Admin {
            return Some(ErrorFrame::new(
                ErrorCode::Forbidden,
                "only admins may broadcast",
            ));
        }
        let shared = &self.state.0;
        if let Err(error) = check_send("broadcast", &text, shared.config.limits.max_message_chars) {
            return Some(error);
        }
        let broadcast = Broadcast {
            text,
            at: crate::store::now_millis(),
        };
        shared.hub.broadcast(broadcast).await;
        None
    }
}
