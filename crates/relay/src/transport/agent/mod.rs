//! `/ws/agent`: one agent's client (the TUI, or anything speaking protocol v1).

mod order;

use std::pin::Pin;
use std::sync::Arc;

use futures_util::future::Either;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::oneshot;

use kefu_protocol::agent::{
    AgentEvent, AgentInfo, AgentPresence, AgentRequest, AgentWelcome, HistoryPage, Role,
};
use kefu_protocol::{Ack, AgentState, Broadcast, ErrorCode, ErrorFrame};

use super::AppState;
use super::bulk;
use super::call;
use super::errors::{check_send, store_error};
use super::limits::websocket_outbox;
use super::lookup;
use super::revocation;
use super::session::{Ended, Event, Session};
use super::welcome;
use crate::auth::hash_agent_token;
use crate::frame::{Frame, decode, encode};
use crate::hub::mailbox;
use crate::ids::ConnId;
use crate::store::{AgentSend, Page, Reader, StoreError};
use order::InFlightOrder;

const DEFAULT_HISTORY: u32 = 50;
const MAX_HISTORY: u32 = 200;

/// An agent's requests answered at once, at most: past this many the
/// connection stops reading until the oldest is answered. Each agent of the
/// symmetric bench answers 250 conversations; with 16, at 7,000 visitor
/// msg/s its replies waited behind one another (agent → visitor p99 739 ms
/// against 195 ms the other way); with 128 both directions were alike
/// (205 / 221 ms) and p99 at 5,000 msg/s fell from 48 to 27 ms
/// (docs/benchmarks.md). A request in flight is a boxed future and its
/// frame: an authenticated agent holds at most this many.
const MAX_IN_FLIGHT: usize = 128;

/// A request's answer being worked out: a frame to send back, if any.
type Answer = Pin<Box<dyn Future<Output = Option<Frame>> + Send>>;

struct Agent {
    session: Box<Session>,
    requests: Arc<Requests>,
    /// Requests being answered, oldest first. An agent answering a hundred
    /// visitors a second cannot wait for each reply's commit before reading
    /// the next one; their answers still go out in request order.
    in_flight: FuturesOrdered<Answer>,
    /// What each of them waits for before it starts.
    order: InFlightOrder,
}

/// What a request must wait for before it starts.
enum WaitsFor {
    /// Earlier requests about the same conversation: the agent's order
    /// decides there (a reply, then resolve).
    Conversation(String),
    /// Every earlier request (status, broadcast: rare, and about no
    /// conversation in particular).
    Everything,
    /// Nothing: a malformed frame's error, a search.
    Nothing,
}

pub(super) async fn serve(state: AppState, mut session: Box<Session>) {
    let Ok(first) = session.hello::<AgentRequest>().await else {
        return;
    };
    let AgentRequest::Hello { token } = first else {
        return; // `hello()` returns nothing else
    };
    let token_hash = hash_agent_token(&token);
    let info = match state.store.agent_by_token_hash(&token_hash).await {
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
    // After the read that found the token: a later credentials read sees
    // at least what it saw.
    let signed_in_at = tokio::time::Instant::now();
    session.free_address_slot();
    tracing::info!(conn = %session.id, agent = %info.name, "agent connected");
    session.end_when(revocation::revoked(
        state.credentials.subscribe(),
        info.id.clone(),
        token_hash,
        signed_in_at,
    ));
    let mut agent = Agent {
        requests: Arc::new(Requests {
            state: state.clone(),
            info,
            conn: session.id,
        }),
        session,
        in_flight: FuturesOrdered::new(),
        order: InFlightOrder::default(),
    };
    if agent.start().await.is_ok() {
        while agent.step().await.is_ok() {}
    }
    state.hub.unregister(agent.session.id).await;
}

impl Agent {
    async fn start(&mut self) -> Result<(), Ended> {
        let state = self.requests.state.clone();
        let info = &self.requests.info;
        let accounts = match state.store.agents().await {
            Ok(accounts) => accounts,
            Err(error) => {
                self.session.reject(store_error(error, "hello")).await;
                return Err(Ended);
            }
        };
        let bounds = websocket_outbox(&state.config.limits);
        let (outbox, inbox) = mailbox(self.session.id, bounds);
        let Ok(snapshot) = state.hub.register_agent(info.clone(), outbox).await else {
            return Err(Ended);
        };
        self.session.attach(inbox);
        // After registering: a mark that moves meanwhile also comes as a
        // `read_mark` frame after the welcome (marks only move forward).
        let mut read_marks = match state.store.read_marks(&info.id).await {
            Ok(marks) => marks,
            Err(error) => {
                self.session.reject(store_error(error, "hello")).await;
                return Err(Ended);
            }
        };
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
        let (conversations, totals) =
            welcome::bounded(snapshot.conversations, &mut read_marks, &info.id);
        let welcome = AgentWelcome {
            agent: info.clone(),
            agents,
            conversations,
            read_marks,
            totals,
        };
        self.session
            .send(encode(&AgentEvent::Welcome(welcome)))
            .await
    }

    async fn step(&mut self) -> Result<(), Ended> {
        let next = if self.in_flight.is_empty() {
            Either::Left(self.session.next().await?)
        } else {
            self.session.next_or(self.in_flight.next()).await?
        };
        match next {
            Either::Left(Event::Deliver(outbound)) => {
                self.session.deliver(outbound.into_frame()).await
            }
            Either::Left(Event::Request(text)) => self.begin(decode::<AgentRequest>(&text)).await,
            Either::Right(answer) => self.answered(answer).await,
        }
    }

    /// Starts answering a request, after the earlier ones about the same
    /// conversation (in their order); a request about everything waits for
    /// all of them, passing the hub's frames on meanwhile.
    async fn begin(&mut self, request: Result<AgentRequest, ErrorFrame>) -> Result<(), Ended> {
        let waits_for = match &request {
            Ok(request) => waits_for(request),
            Err(_) => WaitsFor::Nothing,
        };
        let everything = matches!(waits_for, WaitsFor::Everything);
        while self.in_flight.len() >= MAX_IN_FLIGHT || (everything && !self.in_flight.is_empty()) {
            // Agents have no replay: every live message is new.
            let answer = self.session.while_waiting(self.in_flight.next(), 0).await?;
            self.answered(answer).await?;
        }
        let about = match waits_for {
            WaitsFor::Conversation(id) => Some(id),
            WaitsFor::Everything | WaitsFor::Nothing => None,
        };
        let answer: Answer = match request {
            Ok(request) => {
                let requests = self.requests.clone();
                let (done, answered) = oneshot::channel();
                let earlier = self.order.started(about.map(|id| (id, answered.shared())));
                Box::pin(async move {
                    if let Some(earlier) = earlier {
                        // Err only if the connection is going away.
                        let _ = earlier.await;
                    }
                    let frame = requests.answer(request).await;
                    let _ = done.send(());
                    frame
                })
            }
            Err(error) => {
                self.order.started(None);
                Box::pin(std::future::ready(Some(error_frame(error))))
            }
        };
        self.in_flight.push_back(answer);
        Ok(())
    }

    /// The oldest request in flight was answered.
    async fn answered(&mut self, answer: Option<Option<Frame>>) -> Result<(), Ended> {
        self.order.oldest_answered();
        match answer.flatten() {
            Some(frame) => self.session.send(frame).await,
            None => Ok(()),
        }
    }
}

fn waits_for(request: &AgentRequest) -> WaitsFor {
    match request {
        AgentRequest::History {
            conversation_id, ..
        }
        | AgentRequest::Send {
            conversation_id, ..
        }
        | AgentRequest::Claim { conversation_id }
        | AgentRequest::Transfer {
            conversation_id, ..
        }
        | AgentRequest::Resolve { conversation_id }
        | AgentRequest::Typing {
            conversation_id, ..
        }
        | AgentRequest::Read {
            conversation_id, ..
        }
        | AgentRequest::CallInvite { conversation_id } => {
            WaitsFor::Conversation(conversation_id.clone())
        }
        // A bulk resolve after the agent's own requests about any of them.
        AgentRequest::Hello { .. }
        | AgentRequest::CallHangup { .. }
        | AgentRequest::Broadcast { .. }
        | AgentRequest::Status { .. }
        | AgentRequest::ResolveWaiting(_) => WaitsFor::Everything,
        // A read that changes nothing need not wait for anything.
        AgentRequest::Visitor { .. } => WaitsFor::Nothing,
        // Reads of what is stored, about no conversation in particular.
        AgentRequest::Search(_) | AgentRequest::Conversations(_) => WaitsFor::Nothing,
    }
}

fn error_frame(error: ErrorFrame) -> Frame {
    encode(&AgentEvent::Error(error))
}

/// What one agent's requests mean. Answers are frames to send back; the
/// socket is not touched here, so the session can keep delivering while
/// requests wait for the store.
struct Requests {
    state: AppState,
    info: AgentInfo,
    conn: ConnId,
}

impl Requests {
    async fn answer(&self, request: AgentRequest) -> Option<Frame> {
        let store = &self.state.store;
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
                mut text,
                internal,
                link,
                attachments,
            } => {
                let link = match link.map(super::trail::checked_link) {
                    Some(Ok(_)) if internal => {
                        return Some(error_frame(
                            ErrorFrame::new(
                                ErrorCode::BadRequest,
                                "a link card is for the visitor: not internal",
                            )
                            .with_ref(client_id),
                        ));
                    }
                    Some(Ok(card)) => {
                        text = card.label.clone();
                        Some(card)
                    }
                    Some(Err(error)) => return Some(error_frame(error.with_ref(client_id))),
                    None => None,
                };
                let max_chars = self.state.config.limits.max_message_chars;
                if let Err(error) = check_send(&client_id, &text, &attachments, max_chars) {
                    return Some(error_frame(error));
                }
                let send = AgentSend {
                    agent: self.info.clone(),
                    conversation_id,
                    client_id: client_id.clone(),
                    text,
                    internal,
                    link,
                    attachments,
                    origin: Some(self.conn),
                };
                match store.agent_send(send).await {
                    Ok(message) => return Some(encode(&AgentEvent::Ack(Ack::from(&message)))),
                    Err(error) => Some(store_error(error, &client_id)),
                }
            }
            AgentRequest::Claim { conversation_id } => refusal(
                store.claim(&conversation_id, &self.info).await,
                &conversation_id,
            ),
            AgentRequest::Transfer {
                conversation_id,
                to_agent,
            } => refusal(
                store
                    .transfer(&conversation_id, &self.info, &to_agent)
                    .await,
                &conversation_id,
            ),
            AgentRequest::Resolve { conversation_id } => refusal(
                store.resolve(&conversation_id, &self.info).await,
                &conversation_id,
            ),
            AgentRequest::Typing {
                conversation_id,
                active,
            } => {
                self.state
                    .hub
                    .typing(self.conn, Some(conversation_id), active)
                    .await;
                None
            }
            AgentRequest::Read {
                conversation_id,
                up_to_seq,
            } => refusal(
                store
                    .mark_read(&conversation_id, Reader::Agent(&self.info), up_to_seq)
                    .await,
                &conversation_id,
            ),
            AgentRequest::Broadcast { text } => self.broadcast(text).await,
            AgentRequest::Status { state } => {
                self.state.hub.set_state(self.conn, state).await;
                None
            }
            AgentRequest::Visitor { visitor_id } => {
                return Some(super::trail::visitor_record(store.as_ref(), &visitor_id).await);
            }
            AgentRequest::Search(request) => {
                return Some(lookup::search(&self.state, request).await);
            }
            AgentRequest::Conversations(request) => {
                return Some(lookup::conversations(&self.state, request).await);
            }
            AgentRequest::CallInvite { conversation_id } => {
                let link = call::invite(&self.state, self.conn, &self.info, conversation_id);
                return Some(encode(&link.await));
            }
            AgentRequest::CallHangup { call_id } => {
                call::leave(&self.state, self.conn, call_id, true).await
            }
            AgentRequest::ResolveWaiting(request) => {
                return Some(
                    match bulk::resolve_waiting(&self.state, &self.info, request).await {
                        Ok(answer) => encode(&AgentEvent::ResolvedWaiting(answer)),
                        Err(error) => error_frame(error),
                    },
                );
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
        let state = &self.state;
        match state.store.conversation(&conversation_id).await {
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
        if state
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
        match state.store.messages(&conversation_id, page, true).await {
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
        let state = &self.state;
        if let Err(error) = check_send(
            "broadcast",
            &text,
            &[],
            state.config.limits.max_message_chars,
        ) {
            return Some(error);
        }
        let broadcast = Broadcast {
            text,
            at: crate::store::now_millis(),
        };
        state.hub.broadcast(broadcast).await;
        None
    }
}

/// What a request whose success reaches the agent as a broadcast answers:
/// nothing, or why it was refused.
fn refusal<T>(done: Result<T, StoreError>, reference: &str) -> Option<ErrorFrame> {
    done.err().map(|error| store_error(error, reference))
}
