//! The two message writes, a visitor's and an agent's: each put together
//! as `kefu_send_batch` takes it (migrations 0012 to 0015), made
//! in the next batch when it locks one conversation known beforehand (see
//! [`batch`]) or else alone, and a refusal turned back into the store's
//! error (the rules' own, for an agent's reply).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kefu_protocol::{AuthorKind, Message};
use sqlx::postgres::PgPool;

use super::super::files::attachments_refused;
use super::super::rows::link_to_sql;
use super::super::rules::{self, Decision};
use super::super::{
    AgentSend, StoreError, VisitorSend, default_visitor_name, now_millis, preview_of, to_millis,
};
use super::batch::{self, AgentWrite, Batcher, VisitorWrite, Write};
use super::writes::{self, existing_message};
use crate::cluster::NodeId;
use crate::ids::{self, ConnId};

/// Visitors whose conversation a relay remembers, for batching their sends.
const SEEN_CONVERSATIONS: usize = 100_000;

pub(super) struct Sends {
    pool: PgPool,
    node: NodeId,
    batcher: Arc<Batcher>,
    /// Visitor id → the conversation this relay last saw them write in.
    conversations: Mutex<HashMap<String, String>>,
}

impl Sends {
    pub(super) fn start(pool: &PgPool, node: &NodeId) -> Sends {
        Sends {
            pool: pool.clone(),
            node: node.clone(),
            batcher: Batcher::start(pool, node),
            conversations: Mutex::new(HashMap::new()),
        }
    }

    pub(super) async fn visitor_send(&self, send: VisitorSend) -> Result<Message, StoreError> {
        // A visitor whose conversation this relay has seen is batched
        // under it (see `batch`); a first send, or one with files, goes
        // alone.
        let known = (send.attachments.is_empty())
            .then(|| self.visitor_conversation_seen(&send.visitor_id))
            .flatten();
        let visitor_id = send.visitor_id.clone();
        let client_id = send.client_id.clone();
        let write = self.visitor_write(send);
        let message = self
            .write_message(write, known, AuthorKind::Visitor, &visitor_id, &client_id)
            .await
            .map_err(|refused| refused.into_error(|_| None))?;
        self.saw_visitor_conversation(&visitor_id, &message.conversation_id);
        Ok(message)
    }

    pub(super) async fn agent_send(&self, send: AgentSend) -> Result<Message, StoreError> {
        // The rule for a reply, decided here for every state the
        // conversation may be in; the write picks the one it finds.
        let states = rules::states(&send.agent);
        let decisions: Vec<&'static str> = states
            .iter()
            .map(
                |state| match rules::reply(state, &send.agent, send.internal) {
                    Ok(Decision::Assign) => "assign",
                    Ok(_) => "proceed",
                    Err(_) => "refuse",
                },
            )
            .collect();
        let batched = send
            .attachments
            .is_empty()
            .then(|| send.conversation_id.clone());
        let (agent, internal, client_id) =
            (send.agent.clone(), send.internal, send.client_id.clone());
        let write = self.agent_write(send, decisions);
        self.write_message(write, batched, AuthorKind::Agent, &agent.id, &client_id)
            .await
            .map_err(|refused| {
                refused.into_error(|state| match states.get(state) {
                    Some(state) => rules::reply(state, &agent, internal).err(),
                    None => None,
                })
            })
    }

    /// Makes the writes queued for a batch, then stops the batch writers.
    pub(super) async fn close(&self) {
        self.batcher.close().await;
    }

    /// `send` as `kefu_send_batch` (migration 0015) takes a visitor's
    /// message, its ids made once: made again alone after its batch
    /// failed, it is the same write.
    fn visitor_write(&self, send: VisitorSend) -> Write {
        let profile = send.details.profile;
        Write::Visitor(VisitorWrite {
            message_id: ids::new_id(),
            event_id: ids::new_id(),
            conversation_id: ids::new_id(),
            preview: preview_of(&send.text, send.attachments.len()),
            at: to_millis(now_millis()),
            default_name: default_visitor_name(&send.visitor_id),
            visitor_id: send.visitor_id,
            client_id: send.client_id,
            text: send.text,
            name: profile.name,
            email: profile.email,
            page_url: profile.page_url,
            page_title: profile.page_title,
            referrer: profile.referrer,
            lang: profile.lang,
            user_agent: send.details.user_agent,
            address: send.details.address,
            attachments: send.attachments,
            origin: origin_to_sql(send.origin),
        })
    }

    /// `send` as `kefu_send_batch` takes an agent's message, given what the
    /// rule for a reply decides in each of `rules::states`.
    fn agent_write(&self, send: AgentSend, decisions: Vec<&'static str>) -> Write {
        Write::Agent(AgentWrite {
            message_id: ids::new_id(),
            preview: preview_of(&send.text, send.attachments.len()),
            link: link_to_sql(send.link.as_ref()),
            at: to_millis(now_millis()),
            conversation_id: send.conversation_id,
            agent_id: send.agent.id,
            agent_name: send.agent.name,
            client_id: send.client_id,
            text: send.text,
            internal: send.internal,
            attachments: send.attachments,
            decisions,
            origin: origin_to_sql(send.origin),
        })
    }

    /// The conversation this relay last saw `visitor_id` write in.
    fn visitor_conversation_seen(&self, visitor_id: &str) -> Option<String> {
        let seen = self.conversations.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(visitor_id).cloned()
    }

    fn saw_visitor_conversation(&self, visitor_id: &str, conversation_id: &str) {
        let mut seen = self.conversations.lock().unwrap_or_else(|e| e.into_inner());
        if seen.get(visitor_id).map(String::as_str) == Some(conversation_id) {
            return;
        }
        // Bounded: forgetting costs a visitor's next send its batch.
        if seen.len() >= SEEN_CONVERSATIONS {
            seen.clear();
        }
        seen.insert(visitor_id.to_owned(), conversation_id.to_owned());
    }

    /// Makes a message write of migration 0012: in the next batch if it
    /// locks the row of conversation `batched` and no other (see
    /// [`batch`]), else alone, one statement that is its own transaction,
    /// committed when it answers (sqlx reads to `ReadyForQuery`). Either
    /// way it finishes, durable, whether or not the caller still waits
    /// (see `writes::begin`). The stored message, or the original of a
    /// resend, also when it raced the original.
    async fn write_message(
        &self,
        write: Write,
        batched: Option<String>,
        kind: AuthorKind,
        author_id: &str,
        client_id: &str,
    ) -> Result<Message, Refused> {
        let written = match batched {
            Some(conversation_id) => self.batcher.write(conversation_id, write).await?,
            None => {
                let (pool, node) = (self.pool.clone(), self.node.clone());
                writes::detached(async move { Ok(batch::write_alone(&pool, &node, write).await) })
                    .await?
            }
        };
        match written {
            Ok(row) => Ok(Message::try_from(row)?),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                Ok(self.original(kind, author_id, client_id).await?)
            }
            Err(sqlx::Error::Database(error)) => Err(match error.code().as_deref() {
                Some("KF404") => Refused::Store(StoreError::NotFound("conversation")),
                Some("KF403") => Refused::Store(attachments_refused()),
                Some("KF409") => match error.message().parse() {
                    Ok(state) => Refused::Rule(state),
                    Err(_) => Refused::Store(StoreError::from(sqlx::Error::Database(error))),
                },
                _ => Refused::Store(StoreError::from(sqlx::Error::Database(error))),
            }),
            Err(error) => Err(Refused::Store(error.into())),
        }
    }

    /// The message a resend refers to, after a lost race with the original.
    async fn original(
        &self,
        kind: AuthorKind,
        author_id: &str,
        client_id: &str,
    ) -> Result<Message, StoreError> {
        existing_message(&self.pool, kind, author_id, client_id)
            .await?
            .ok_or(StoreError::Conflict("client_id is in use".into()))
    }
}

/// A connection's id as `kefu_send_batch` takes it, to carry in the
/// notification.
fn origin_to_sql(origin: Option<ConnId>) -> Option<i64> {
    origin.and_then(|origin| i64::try_from(origin.raw()).ok())
}

/// Why a message write did not store a message.
enum Refused {
    Store(StoreError),
    /// The store's rules refused it in state `.0` of `rules::states`.
    Rule(usize),
}

impl Refused {
    /// The error; a rule's refusal asks `rule` for it, given the state.
    fn into_error(self, rule: impl FnOnce(usize) -> Option<StoreError>) -> StoreError {
        match self {
            Refused::Store(error) => error,
            Refused::Rule(state) => rule(state).unwrap_or_else(|| {
                StoreError::Corrupt(format!(
                    "a write refused in state {state}, which the rules allow"
                ))
            }),
        }
    }
}

impl From<StoreError> for Refused {
    fn from(error: StoreError) -> Self {
        Refused::Store(error)
    }
}
