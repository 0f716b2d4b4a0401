//! `/ws/visitor`: a visitor's page over a WebSocket.

use kefu_protocol::Seq;
use kefu_protocol::visitor::{VisitorEvent, VisitorRequest};

use super::super::AppState;
use super::super::limits::websocket_outbox;
use super::super::session::{Ended, Event, Session};
use super::{Peer, REPLAY_PAGE, VisitorCore};
use crate::frame::{decode, encode};
use crate::hub::{Outbound, mailbox};

struct Visitor {
    core: VisitorCore,
    session: Box<Session>,
    /// Highest `seq` sent by the replay; live copies of those are skipped.
    replayed_up_to: Seq,
}

/// Serves one visitor connection until it ends.
///
/// The task lives as long as the connection, mostly idle in
/// [`Visitor::step`]; its future is as large as its largest await point.
/// Saying hello, the replay and each request are short-lived and large
/// (store calls, encoding), so they are boxed and only their pointer is in
/// the task: about 4 KiB less per idle connection (docs/benchmarks.md).
/// `peer` is boxed too, as the task keeps its arguments to the end.
pub(in crate::transport) async fn serve(
    state: AppState,
    mut session: Box<Session>,
    peer: Box<Peer>,
) {
    session.end_when_blocked(state.blocklist.watch(peer.address));
    let Some(mut visitor) = Box::pin(Visitor::hello(state, session, *peer)).await else {
        return;
    };
    if Box::pin(visitor.start()).await.is_ok() {
        while visitor.step().await.is_ok() {}
    }
    visitor.core.unregister().await;
}

impl Visitor {
    /// Waits for the client's `hello` and checks it; `None` if the session
    /// ended or the visitor was refused.
    async fn hello(state: AppState, mut session: Box<Session>, peer: Peer) -> Option<Visitor> {
        let Ok(VisitorRequest::Hello {
            token,
            after_seq,
            profile,
        }) = session.hello::<VisitorRequest>().await
        else {
            return None;
        };
        match VisitorCore::hello(state, session.id, peer, token, profile).await {
            Ok(core) => Some(Visitor {
                core,
                session,
                replayed_up_to: after_seq.unwrap_or(0),
            }),
            Err(error) => {
                session.reject(error).await;
                None
            }
        }
    }

    /// Registers with the hub, sends `welcome`, then replays the conversation.
    ///
    /// Registering before reading the replay means whatever commits in
    /// between is both in the replay and queued live; the live copy is
    /// skipped by `seq`. So the switch has no gap and no duplicate.
    async fn start(&mut self) -> Result<(), Ended> {
        let bounds = websocket_outbox(self.core.limits());
        let (outbox, inbox) = mailbox(self.session.id, bounds);
        let Some(welcome) = self.core.register(outbox, None).await else {
            return Err(Ended);
        };
        self.session.attach(inbox);
        self.session
            .send(encode(&VisitorEvent::Welcome(welcome)))
            .await?;
        loop {
            let messages = match self.core.messages_after(self.replayed_up_to).await {
                Ok(messages) => messages,
                Err(error) => {
                    self.session.reject(error).await;
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
            Event::Deliver(Outbound::Message { seq, frame }) => {
                if seq > self.replayed_up_to {
                    self.session.deliver(frame).await?;
                }
                Ok(())
            }
            Event::Deliver(outbound) => self.session.deliver(outbound.into_frame()).await,
            Event::Request(text) => Box::pin(self.request(&text)).await,
        }
    }

    /// Answers one request.
    async fn request(&mut self, text: &str) -> Result<(), Ended> {
        let answer = match decode::<VisitorRequest>(text) {
            Ok(request) => {
                // Deliveries go on while the request waits for the store.
                self.session
                    .while_waiting(self.core.handle(request), self.replayed_up_to)
                    .await?
            }
            Err(error) => Some(VisitorEvent::Error(error)),
        };
        match answer {
            Some(VisitorEvent::Error(error)) => self.session.send_error(error).await,
            Some(event) => self.session.send(encode(&event)).await,
            None => Ok(()),
        }
    }
}
