//! The cluster's message bus over PostgreSQL `LISTEN`/`NOTIFY`.
//!
//! Each committing transaction also `NOTIFY`s a [`ChangeRef`], delivered to
//! every node (this one included) once committed and in commit order. The
//! [`listen`] task feeds the hub with it — a new message as carried in the
//! notification (whole, or as the rows a message write of migration 0012
//! wrote), anything else read back from the rows — so a node's own
//! writes and those of other nodes reach clients in one order.

use std::time::Duration;

use kefu_protocol::agent::{AgentReadMark, ConversationSummary};
use kefu_protocol::trail::PageView;
use kefu_protocol::{AuthorKind, Message, ReadReceipt};
use sqlx::PgConnection;
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::super::rows::{
    MESSAGE_SELECT, MessageRow, PAGE_VIEW_SELECT, PageViewRow, SummaryRow, seq_to_sql,
};
use super::super::{AgentMark, Change, Reads, StoreError};
use crate::cluster::{
    self, Carried, ChangeRef, ClusterEvent, ClusterInput, ClusterLink, Envelope, NodeId,
};
use crate::ids::ConnId;

/// Ephemeral events waiting to be published before new ones are dropped.
const EVENT_QUEUE: usize = 1024;
/// Cluster input waiting for the hub before the listener waits.
const INPUT_QUEUE: usize = 4096;

/// Starts listening to the cluster and publishing this node's events;
/// returns the tasks (for the store to stop) and the hub's end.
pub(super) async fn start(
    pool: &PgPool,
    node: &NodeId,
    changes: mpsc::Sender<Change>,
) -> Result<(Vec<JoinHandle<()>>, ClusterLink), StoreError> {
    let (outgoing, to_publish) = mpsc::channel(EVENT_QUEUE);
    let (to_hub, incoming) = mpsc::channel(INPUT_QUEUE);
    let listener = PgListener::connect_with(pool).await?;
    let tasks = vec![
        tokio::spawn(listen(
            listener,
            pool.clone(),
            node.clone(),
            changes,
            to_hub,
        )),
        tokio::spawn(publish(pool.clone(), node.clone(), to_publish)),
    ];
    let link = ClusterLink {
        node: node.clone(),
        outgoing,
        incoming,
    };
    Ok((tasks, link))
}

/// Sends `change` inside the caller's transaction: PostgreSQL delivers it
/// when, and only if, the transaction commits.
pub(super) async fn notify(conn: &mut PgConnection, change: &ChangeRef) -> Result<(), StoreError> {
    send(conn, &encode(change)?).await
}

fn encode(change: &ChangeRef) -> Result<String, StoreError> {
    serde_json::to_string(change)
        .map_err(|error| StoreError::Corrupt(format!("change reference: {error}")))
}

async fn send(conn: &mut PgConnection, payload: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(cluster::CHANGES_CHANNEL)
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}

pub(super) async fn notify_summary(
    conn: &mut PgConnection,
    conversation_id: &str,
) -> Result<(), StoreError> {
    let change = ChangeRef::Summary {
        conversation_id: conversation_id.to_owned(),
    };
    notify(conn, &change).await
}

/// Tells the cluster of a new message, carrying it and `summary` (the
/// conversation as this transaction leaves it) when they fit in one
/// payload, so that no node reads them back; else by reference.
pub(super) async fn notify_message(
    conn: &mut PgConnection,
    node: &NodeId,
    message: &Message,
    summary: ConversationSummary,
    origin: Option<ConnId>,
) -> Result<(), StoreError> {
    send(conn, &message_payload(node, message, summary, origin)?).await
}

fn message_payload(
    node: &NodeId,
    message: &Message,
    summary: ConversationSummary,
    origin: Option<ConnId>,
) -> Result<String, StoreError> {
    let mut change = ChangeRef::Message {
        conversation_id: message.conversation_id.clone(),
        seq: message.seq,
        node: node.clone(),
        origin: origin.map(ConnId::raw),
        carried: Some(Box::new(Carried {
            message: message.clone(),
            summary,
        })),
        rows: None,
    };
    let whole = encode(&change)?;
    if whole.len() <= cluster::MAX_PAYLOAD {
        return Ok(whole);
    }
    if let ChangeRef::Message { carried, .. } = &mut change {
        *carried = None;
    }
    encode(&change)
}

/// Listens to both channels; turns change references into [`Change`]s for
/// the hub and forwards other nodes' events.
async fn listen(
    mut listener: PgListener,
    pool: PgPool,
    node: NodeId,
    changes: mpsc::Sender<Change>,
    to_hub: mpsc::Sender<ClusterInput>,
) {
    if let Err(error) = listener
        .listen_all([cluster::CHANGES_CHANNEL, cluster::EVENTS_CHANNEL])
        .await
    {
        tracing::error!(%error, "cannot LISTEN; cross-node fan-out is off");
        return;
    }
    loop {
        // `try_recv` answers `None` when the connection dropped (and will be
        // re-established): whatever was sent meanwhile is lost to us.
        let notification = match listener.try_recv().await {
            Ok(Some(notification)) => notification,
            Ok(None) => {
                tracing::warn!("lost the LISTEN connection; resyncing clients");
                match pool.open_conversations().await {
                    Ok(open) => {
                        if to_hub.send(ClusterInput::Resync(open)).await.is_err() {
                            return;
                        }
                    }
                    Err(error) => tracing::error!(%error, "cannot reload conversations"),
                }
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "LISTEN failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let payload = notification.payload();
        if notification.channel() == cluster::EVENTS_CHANNEL {
            match serde_json::from_str::<Envelope>(payload) {
                Ok(envelope) if envelope.node == node => {}
                Ok(envelope) => {
                    if to_hub.send(ClusterInput::Event(envelope)).await.is_err() {
                        return;
                    }
                }
                Err(error) => tracing::warn!(%error, "undecodable cluster event"),
            }
            continue;
        }
        // Nearly every change is a message with its rows: decoded straight
        // into them, anything else as a reference.
        let change = match serde_json::from_str::<MessageWithRows>(payload) {
            Ok(notice) => (notice.rows)
                .into_change(notice.origin, &notice.node, &node)
                .map(Some),
            Err(_) => match serde_json::from_str::<ChangeRef>(payload) {
                Ok(change) => resolve_change(&pool, &node, change).await,
                Err(error) => {
                    tracing::warn!(%error, "undecodable change reference");
                    continue;
                }
            },
        };
        match change {
            Ok(Some(change)) => {
                if changes.send(change).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(error) => tracing::error!(%error, "cannot read a committed change"),
        }
    }
}

/// A new message and its summary as the rows PostgreSQL's message writes
/// (migration 0012) carry in their notification.
#[derive(serde::Deserialize)]
struct CarriedRows {
    message: MessageRow,
    summary: SummaryRow,
}

impl CarriedRows {
    /// The change for the hub; `origin` (on node `from`) is the connection
    /// to `ack`, if it is on this `node`.
    fn into_change(
        self,
        origin: Option<u64>,
        from: &str,
        node: &str,
    ) -> Result<Change, StoreError> {
        Ok(Change::Message {
            message: self.message.try_into()?,
            summary: self.summary.try_into()?,
            origin: origin.filter(|_| from == node).map(ConnId::from_raw),
        })
    }
}

/// A [`ChangeRef::Message`] that carries its rows, decoded without the
/// detour a `ChangeRef` takes: serde reads an internally tagged enum into
/// a buffer of its own first, and the rows into a `serde_json::Value`
/// before they are read again, an allocation for every field. With the
/// typed writes of `batch`, a relay's CPU per message write fell by about
/// a tenth (docs/benchmarks.md). Fails at once on another kind of change,
/// whose tag comes first.
#[derive(serde::Deserialize)]
struct MessageWithRows {
    #[serde(rename = "t")]
    _kind: MessageKind,
    node: NodeId,
    origin: Option<u64>,
    rows: CarriedRows,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum MessageKind {
    Message,
}

/// Reads what a change reference names.
async fn resolve_change(
    pool: &PgPool,
    node: &str,
    change: ChangeRef,
) -> Result<Option<Change>, StoreError> {
    Ok(match change {
        ChangeRef::Message {
            node: from,
            origin,
            rows: Some(rows),
            ..
        } => {
            let rows: CarriedRows = serde_json::from_value(*rows)
                .map_err(|error| StoreError::Corrupt(format!("carried rows: {error}")))?;
            Some(rows.into_change(origin, &from, node)?)
        }
        ChangeRef::Message {
            node: from,
            origin,
            carried: Some(carried),
            ..
        } => {
            let Carried { message, summary } = *carried;
            Some(Change::Message {
                message,
                summary,
                origin: origin.filter(|_| from == node).map(ConnId::from_raw),
            })
        }
        ChangeRef::Message {
            conversation_id,
            seq,
            node: from,
            origin,
            carried: None,
            rows: None,
        } => {
            let row: Option<MessageRow> = sqlx::query_as(&format!(
                "{MESSAGE_SELECT} WHERE conversation_id = $1 AND seq = $2"
            ))
            .bind(&conversation_id)
            .bind(seq_to_sql(seq))
            .fetch_optional(pool)
            .await?;
            let Some(message) = row.map(Message::try_from).transpose()? else {
                return Ok(None);
            };
            let Some(summary) = pool.conversation(&conversation_id).await? else {
                return Ok(None);
            };
            let origin = origin.filter(|_| from == node).map(ConnId::from_raw);
            Some(Change::Message {
                message,
                summary,
                origin,
            })
        }
        ChangeRef::PageViews {
            conversation_id,
            ids,
        } => {
            let rows: Vec<PageViewRow> = sqlx::query_as(&format!(
                "{PAGE_VIEW_SELECT} WHERE id = ANY($1) ORDER BY at, id"
            ))
            .bind(&ids)
            .fetch_all(pool)
            .await?;
            let views = rows.into_iter().map(PageView::from).collect();
            pool.conversation(&conversation_id)
                .await?
                .map(|summary| Change::PageViews { summary, views })
        }
        ChangeRef::Summary { conversation_id } => pool
            .conversation(&conversation_id)
            .await?
            .map(|summary| Change::Summary { summary }),
        ChangeRef::Read {
            conversation_id,
            reader,
            up_to_seq,
        } => pool
            .conversation(&conversation_id)
            .await?
            .map(|summary| Change::Read {
                receipt: Some(ReadReceipt {
                    conversation_id,
                    reader,
                    up_to_seq,
                }),
                mark: None,
                summary,
            }),
        ChangeRef::AgentRead {
            conversation_id,
            agent_id,
            up_to_seq,
            visitor_messages,
            own,
            seen,
        } => pool
            .conversation(&conversation_id)
            .await?
            .map(|summary| Change::Read {
                receipt: seen.then(|| ReadReceipt {
                    conversation_id: conversation_id.clone(),
                    reader: AuthorKind::Agent,
                    up_to_seq,
                }),
                mark: own.then_some(AgentMark {
                    agent_id,
                    mark: AgentReadMark {
                        conversation_id,
                        up_to_seq,
                        visitor_messages,
                    },
                }),
                summary,
            }),
    })
}

/// Publishes this node's ephemeral events, in order.
async fn publish(pool: PgPool, node: NodeId, mut events: mpsc::Receiver<ClusterEvent>) {
    while let Some(event) = events.recv().await {
        let envelope = Envelope {
            node: node.clone(),
            event,
        };
        let Ok(payload) = serde_json::to_string(&envelope) else {
            continue;
        };
        if payload.len() > cluster::MAX_PAYLOAD {
            tracing::warn!(bytes = payload.len(), "cluster event too large to publish");
            continue;
        }
        if let Err(error) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(cluster::EVENTS_CHANNEL)
            .bind(&payload)
            .execute(&pool)
            .await
        {
            tracing::warn!(%error, "cannot publish a cluster event");
        }
    }
}

#[cfg(test)]
mod tests {
    use kefu_protocol::agent::{ConversationStatus, VisitorSummary};
    use kefu_protocol::{Author, AuthorKind};
    use time::OffsetDateTime;

    use super::*;

    fn message(text: &str) -> Message {
        Message {
            conversation_id: "c1".to_owned(),
            seq: 7,
            id: "m1".to_owned(),
            client_id: "k1".to_owned(),
            author: Author {
                kind: AuthorKind::Visitor,
                id: "v1".to_owned(),
                name: "Visitor".to_owned(),
            },
            text: text.to_owned(),
            at: OffsetDateTime::UNIX_EPOCH,
            internal: false,
            event: None,
            link: None,
            attachments: Vec::new(),
        }
    }

    fn summary(preview: &str) -> ConversationSummary {
        ConversationSummary {
            id: "c1".to_owned(),
            visitor: VisitorSummary::default(),
            status: ConversationStatus::Waiting,
            assignee: None,
            last_seq: 7,
            unread: 1,
            visitor_messages: 1,
            preview: preview.to_owned(),
            visitor_read_seq: 0,
            waiting_since: None,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn decode(payload: &str) -> ChangeRef {
        assert!(
            payload.len() <= cluster::MAX_PAYLOAD,
            "{} bytes",
            payload.len()
        );
        serde_json::from_str(payload).expect("a change reference")
    }

    #[test]
    fn a_message_that_fits_travels_whole_and_a_long_one_by_reference() {
        let node = "n1".to_owned();
        let short = message("hello");
        let payload = message_payload(&node, &short, summary("hello"), None).expect("encode");
        let ChangeRef::Message { carried, seq, .. } = decode(&payload) else {
            panic!("a message change");
        };
        let carried = carried.expect("carried whole");
        assert_eq!((seq, &carried.message), (7, &short));
        assert_eq!(carried.summary.preview, "hello");

        let long = message(&"é".repeat(cluster::MAX_PAYLOAD));
        let payload = message_payload(&node, &long, summary("é"), None).expect("encode");
        let ChangeRef::Message { carried, seq, .. } = decode(&payload) else {
            panic!("a message change");
        };
        assert_eq!((seq, carried), (7, None), "named, to be read back");
    }

    /// A message write's notification as migration 0015 builds it
    /// (`json_build_object` around two `row_to_json`s).
    fn notification_with_rows(node: &str, origin: u64) -> String {
        format!(
            r#"{{"t" : "message", "conversation_id" : "c1", "seq" : 7, "node" : "{node}", "origin" : {origin}, "rows" : {{"message" : {{"conversation_id":"c1","seq":7,"id":"m1","client_id":"k1","author_kind":"visitor","author_id":"v1","author_name":"Visitor","text":"hello","internal":false,"at":0,"event":null,"link":null,"attachments":null}}, "summary" : {{"id":"c1","status":"waiting","assignee":null,"last_seq":7,"unread":1,"visitor_messages":1,"preview":"hello","visitor_read_seq":0,"waiting_since":null,"updated_at":0,"visitor_id":"v1","name":null,"email":null,"page_url":null,"page_title":null,"referrer":null,"lang":null,"user_agent":null,"address":null}}}}}}"#
        )
    }

    #[test]
    fn a_message_with_its_rows_is_decoded_straight_into_a_change() {
        let payload = notification_with_rows("n1", 42);
        for (node, origin) in [("n1", Some(ConnId::from_raw(42))), ("n2", None)] {
            let notice: MessageWithRows = serde_json::from_str(&payload).expect("decoded");
            let change = (notice.rows)
                .into_change(notice.origin, &notice.node, node)
                .expect("rows convert");
            let Change::Message {
                message,
                summary,
                origin: acked,
            } = change
            else {
                panic!("a message change");
            };
            let expected = self::message("hello");
            assert_eq!((message.id, message.text), (expected.id, expected.text));
            assert_eq!((summary.last_seq, summary.preview.as_str()), (7, "hello"));
            assert_eq!(acked, origin, "acked only by its own node, on {node}");
        }
        // Read the long way, as before, the same payload gives the same.
        let ChangeRef::Message {
            rows: Some(rows), ..
        } = decode(&payload)
        else {
            panic!("a message change with its rows");
        };
        let rows: CarriedRows = serde_json::from_value(*rows).expect("rows");
        let Ok(Change::Message { message, .. }) = rows.into_change(None, "n1", "n1") else {
            panic!("a message change");
        };
        assert_eq!((message.id.as_str(), message.seq), ("m1", 7));
    }

    #[test]
    fn any_other_change_is_left_to_the_reference() {
        let summary = serde_json::to_string(&ChangeRef::Summary {
            conversation_id: "c1".to_owned(),
        })
        .expect("encode");
        assert!(serde_json::from_str::<MessageWithRows>(&summary).is_err());
        let by_reference =
            r#"{"t":"message","conversation_id":"c1","seq":3,"node":"n","origin":null}"#;
        assert!(serde_json::from_str::<MessageWithRows>(by_reference).is_err());
        assert!(matches!(decode(by_reference), ChangeRef::Message { .. }));
    }

    #[test]
    fn a_reference_from_an_older_relay_still_parses() {
        let old = r#"{"t":"message","conversation_id":"c1","seq":3,"node":"n","origin":null}"#;
        let ChangeRef::Message { carried, .. } = decode(old) else {
            panic!("a message change");
        };
        assert!(carried.is_none());
    }
}
