//! A reference relay: the ceiling of our stack on this machine.
//!
//! It speaks the subset of protocol v1 that a chat run uses — visitor and
//! agent `hello`, `send`, `claim`; `welcome`, `ack`, `message` — over the
//! same tokio and tokio-tungstenite the relay is built on, keeping
//! everything in memory: no storage, no accounts, no limits, no budgets.
//! What kefu does on top (durable writes before anyone sees a message,
//! summaries, presence, slow-client protection) is exactly what a run
//! against both, on the same machine at the same time, weighs as a ratio.
//!
//! Routing follows the relay's: a visitor's message goes to its
//! conversation's agent once one claimed or answered it, to every agent
//! before; an agent's answer to the visitor. Each frame is serialised once
//! and shared by its recipients, and each connection's writer sends
//! whatever has queued in one flush, as the relay does. It is a measuring
//! stick, not a server: any token signs in, and a client that stops
//! reading grows its queue without bound.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::{SinkExt, StreamExt};
use kefu_protocol::agent::{AgentEvent, AgentInfo, AgentRequest, AgentWelcome, Role};
use kefu_protocol::visitor::{VisitorEvent, VisitorRequest, VisitorWelcome};
use kefu_protocol::{Ack, Author, AuthorKind, Message};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};

/// The relay's own read buffer size for chat-sized frames.
const READ_BUFFER: usize = 4 * 1024;

/// Frames waiting for one connection's writer; each is JSON text shared by
/// every recipient.
type Outbox = mpsc::UnboundedSender<Utf8Bytes>;

/// Accepts connections on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    let hub = Arc::new(Hub::default());
    loop {
        let (stream, _) = listener.accept().await?;
        let hub = hub.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            connection(hub, stream).await;
        });
    }
}

#[derive(Default)]
struct Hub {
    next_id: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Signed-in agents by connection id.
    agents: HashMap<u64, Outbox>,
    conversations: HashMap<String, Conversation>,
}

struct Conversation {
    visitor: Outbox,
    /// The agent connection that claimed or answered it.
    owner: Option<u64>,
    last_seq: u64,
}

impl Hub {
    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain maps behind, still
        // usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Which endpoint a connection asked for in its upgrade request.
#[derive(Clone, Copy)]
enum Endpoint {
    Visitor,
    Agent,
    Other,
}

async fn connection(hub: Arc<Hub>, stream: TcpStream) {
    let mut endpoint = Endpoint::Other;
    #[expect(
        clippy::result_large_err,
        reason = "tungstenite's handshake callback returns its own error response"
    )]
    let pick = |request: &Request, response: Response| {
        endpoint = match request.uri().path() {
            "/ws/visitor" => Endpoint::Visitor,
            "/ws/agent" => Endpoint::Agent,
            _ => Endpoint::Other,
        };
        Ok(response)
    };
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(stream, pick, Some(config)).await
    else {
        return;
    };
    let (outbox, queued) = mpsc::unbounded_channel();
    let (sink, frames) = ws.split();
    let id = hub.id();
    let reader = async {
        match endpoint {
            Endpoint::Visitor => visitor(&hub, id, frames, &outbox).await,
            Endpoint::Agent => agent(&hub, id, frames, &outbox).await,
            Endpoint::Other => {}
        }
    };
    tokio::select! {
        () = reader => {}
        () = write(sink, queued) => {}
    }
    let mut state = hub.state();
    state.agents.remove(&id);
    state.conversations.remove(&conversation_id(id));
}

type Sink = futures_util::stream::SplitSink<WebSocketStream<TcpStream>, WsMessage>;
type Frames = futures_util::stream::SplitStream<WebSocketStream<TcpStream>>;

/// Writes every queued frame, those that queued together in one flush.
async fn write(mut sink: Sink, mut queued: mpsc::UnboundedReceiver<Utf8Bytes>) {
    while let Some(frame) = queued.recv().await {
        if sink.feed(WsMessage::Text(frame)).await.is_err() {
            return;
        }
        while let Ok(frame) = queued.try_recv() {
            if sink.feed(WsMessage::Text(frame)).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// The next request, or `None` once the connection is over or sends
/// something that is not a frame of this endpoint.
async fn next<T: serde::de::DeserializeOwned>(frames: &mut Frames) -> Option<T> {
    loop {
        match frames.next().await? {
            Ok(WsMessage::Text(text)) => return serde_json::from_str(&text).ok(),
            Ok(WsMessage::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

fn json(frame: &impl Serialize) -> Utf8Bytes {
    serde_json::to_string(frame)
        .expect("protocol frames always serialise")
        .into()
}

/// A visitor's conversation is named after its connection.
fn conversation_id(connection: u64) -> String {
    format!("c{connection}")
}

async fn visitor(hub: &Hub, id: u64, mut frames: Frames, outbox: &Outbox) {
    let Some(VisitorRequest::Hello { .. }) = next(&mut frames).await else {
        return;
    };
    let conversation = conversation_id(id);
    let agents_online = {
        let mut state = hub.state();
        state.conversations.insert(
            conversation.clone(),
            Conversation {
                visitor: outbox.clone(),
                owner: None,
                last_seq: 0,
            },
        );
        u32::try_from(state.agents.len()).unwrap_or(u32::MAX)
    };
    let welcome = VisitorEvent::Welcome(VisitorWelcome {
        visitor_id: format!("v{id}"),
        token: format!("t{id}"),
        conversation_id: Some(conversation.clone()),
        agents_online,
        greeting: String::new(),
        session: None,
    });
    let _ = outbox.send(json(&welcome));
    let author = Author {
        kind: AuthorKind::Visitor,
        id: format!("v{id}"),
        name: "visitor".to_owned(),
    };
    while let Some(request) = next(&mut frames).await {
        let VisitorRequest::Send {
            client_id, text, ..
        } = request
        else {
            continue;
        };
        // Only the routing under the lock; serialising happens outside it.
        let (message, recipients) = {
            let mut state = hub.state();
            let State {
                agents,
                conversations,
            } = &mut *state;
            let Some(entry) = conversations.get_mut(&conversation) else {
                return;
            };
            let message = message(hub, entry, &conversation, client_id, &author, text);
            let recipients: Vec<Outbox> = match entry.owner.and_then(|owner| agents.get(&owner)) {
                Some(owner) => vec![owner.clone()],
                None => agents.values().cloned().collect(),
            };
            (message, recipients)
        };
        let _ = outbox.send(json(&VisitorEvent::Ack(Ack::from(&message))));
        let frame = json(&AgentEvent::Message(message));
        for agent in recipients {
            let _ = agent.send(frame.clone());
        }
    }
}

async fn agent(hub: &Hub, id: u64, mut frames: Frames, outbox: &Outbox) {
    let Some(AgentRequest::Hello { .. }) = next(&mut frames).await else {
        return;
    };
    let info = AgentInfo {
        id: format!("a{id}"),
        name: format!("agent {id}"),
        role: Role::Agent,
    };
    let author = Author {
        kind: AuthorKind::Agent,
        id: info.id.clone(),
        name: info.name.clone(),
    };
    let welcome = AgentEvent::Welcome(AgentWelcome {
        agent: info,
        agents: Vec::new(),
        conversations: Vec::new(),
        read_marks: Vec::new(),
        totals: None,
    });
    let _ = outbox.send(json(&welcome));
    hub.state().agents.insert(id, outbox.clone());
    while let Some(request) = next(&mut frames).await {
        match request {
            AgentRequest::Claim { conversation_id } => {
                if let Some(entry) = hub.state().conversations.get_mut(&conversation_id) {
                    entry.owner.get_or_insert(id);
                }
            }
            AgentRequest::Send {
                conversation_id,
                client_id,
                text,
                ..
            } => {
                let answered = {
                    let mut state = hub.state();
                    state.conversations.get_mut(&conversation_id).map(|entry| {
                        entry.owner.get_or_insert(id);
                        let message =
                            message(hub, entry, &conversation_id, client_id, &author, text);
                        (message, entry.visitor.clone())
                    })
                };
                let Some((message, visitor)) = answered else {
                    continue;
                };
                let _ = outbox.send(json(&AgentEvent::Ack(Ack::from(&message))));
                let _ = visitor.send(json(&VisitorEvent::Message(message)));
            }
            _ => {}
        }
    }
}

/// The conversation's next message.
fn message(
    hub: &Hub,
    conversation: &mut Conversation,
    conversation_id: &str,
    client_id: String,
    author: &Author,
    text: String,
) -> Message {
    conversation.last_seq += 1;
    Message {
        conversation_id: conversation_id.to_owned(),
        seq: conversation.last_seq,
        id: format!("m{}", hub.id()),
        client_id,
        author: author.clone(),
        text,
        at: OffsetDateTime::now_utc(),
        internal: false,
        event: None,
        link: None,
        attachments: Vec::new(),
    }
}
