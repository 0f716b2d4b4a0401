//! The registry of this relay's visitor and agent connections, and the one
//! place frames are queued for them.
//!
//! Invariants:
//! - Sending never waits: a frame goes into the connection's bounded outbox
//!   or, if that refuses it (too slow, see [`crate::hub::OutboxBounds`]) or
//!   is closed, the connection is marked dead. Dead
//!   connections stay registered until the hub reaps them after the current
//!   step, so a fan-out never changes the registry it walks.
//! - A dead connection is kicked when reaped, which makes it tell its client
//!   to resync.

use std::collections::HashMap;

use tokio::time::Instant;

use crate::hub::queue::Refused;
use crate::hub::{Outbound, Outbox};
use crate::ids::ConnId;

#[derive(Default)]
pub(super) struct Connections {
    visitors: HashMap<ConnId, VisitorConn>,
    agents: HashMap<ConnId, AgentConn>,
    /// Assist pages: each one peer of one call (see `calls`).
    assists: HashMap<ConnId, Outbox>,
    /// Connections whose outbox overflowed or closed, to drop after the
    /// current fan-out.
    dead: Vec<ConnId>,
}

struct VisitorConn {
    outbox: Outbox,
    visitor_id: String,
}

struct AgentConn {
    outbox: Outbox,
    agent_id: String,
}

/// A connection taken out of the registry.
pub(super) enum Removed {
    Visitor { visitor_id: String, outbox: Outbox },
    Agent { agent_id: String, outbox: Outbox },
    Assist { outbox: Outbox },
}

impl Connections {
    pub(super) fn add_visitor(&mut self, visitor_id: String, outbox: Outbox) {
        let conn = outbox.id;
        self.visitors
            .insert(conn, VisitorConn { outbox, visitor_id });
    }

    pub(super) fn add_agent(&mut self, agent_id: String, outbox: Outbox) {
        let conn = outbox.id;
        self.agents.insert(conn, AgentConn { outbox, agent_id });
    }

    pub(super) fn add_assist(&mut self, outbox: Outbox) {
        self.assists.insert(outbox.id, outbox);
    }

    pub(super) fn remove(&mut self, conn: ConnId) -> Option<Removed> {
        if let Some(outbox) = self.assists.remove(&conn) {
            Some(Removed::Assist { outbox })
        } else if let Some(visitor) = self.visitors.remove(&conn) {
            Some(Removed::Visitor {
                visitor_id: visitor.visitor_id,
                outbox: visitor.outbox,
            })
        } else {
            let agent = self.agents.remove(&conn)?;
            Some(Removed::Agent {
                agent_id: agent.agent_id,
                outbox: agent.outbox,
            })
        }
    }

    /// The visitor on a connection, if it is a visitor's.
    pub(super) fn visitor_of(&self, conn: ConnId) -> Option<&str> {
        self.visitors.get(&conn).map(|c| c.visitor_id.as_str())
    }

    /// The agent on a connection, if it is an agent's.
    pub(super) fn agent_of(&self, conn: ConnId) -> Option<&str> {
        self.agents.get(&conn).map(|c| c.agent_id.as_str())
    }

    pub(super) fn visitor_conns(&self) -> Vec<ConnId> {
        self.visitors.keys().copied().collect()
    }

    pub(super) fn agent_conns(&self) -> Vec<ConnId> {
        self.agents.keys().copied().collect()
    }

    /// Every agent connection, with its agent.
    pub(super) fn agents(&self) -> impl Iterator<Item = (ConnId, &str)> {
        (self.agents.iter()).map(|(conn, agent)| (*conn, agent.agent_id.as_str()))
    }

    pub(super) fn agent_count(&self) -> usize {
        self.agents.len()
    }

    /// Queues `item` for each of `targets` that is still registered; marks
    /// those that cannot take it dead.
    pub(super) fn send_all(&mut self, targets: &[ConnId], item: &Outbound) {
        let now = Instant::now();
        for conn in targets {
            let outbox = self
                .visitors
                .get(conn)
                .map(|c| &c.outbox)
                .or_else(|| self.agents.get(conn).map(|c| &c.outbox))
                .or_else(|| self.assists.get(conn));
            let Some(outbox) = outbox else { continue };
            match outbox.frames.try_send(item.clone(), now) {
                Ok(()) => {}
                Err(Refused::Waited(waited)) => {
                    let waited_ms = waited.as_millis();
                    tracing::info!(conn = %conn, waited_ms, "connection too slow, asking it to resync");
                    crate::telemetry::slow_client("wait");
                    self.dead.push(*conn);
                }
                Err(Refused::Bytes(bytes)) => {
                    tracing::info!(conn = %conn, bytes, "connection too slow, asking it to resync");
                    crate::telemetry::slow_client("bytes");
                    self.dead.push(*conn);
                }
                Err(Refused::Closed) => self.dead.push(*conn),
            }
        }
    }

    /// A connection marked dead, to reap, latest first.
    pub(super) fn next_dead(&mut self) -> Option<ConnId> {
        self.dead.pop()
    }

    /// Marks every connection dead, so that every client resyncs.
    pub(super) fn kill_all(&mut self) {
        self.dead.extend(self.visitors.keys().copied());
        self.dead.extend(self.agents.keys().copied());
        self.dead.extend(self.assists.keys().copied());
    }
}

/// Tells a connection the hub gave up on it.
pub(super) fn kick(outbox: Outbox) {
    let _ = outbox.kick.send(());
}

#[cfg(test)]
mod tests {
    use crate::frame::encode;
    use crate::hub::{OutboxBounds, ROOMY, mailbox};

    use super::*;

    fn frame(n: u32) -> Outbound {
        Outbound::Frame(encode(&n))
    }

    #[test]
    fn an_overflowing_outbox_marks_its_connection_dead_and_the_rest_still_receive() {
        let mut connections = Connections::default();
        let (slow, fast) = (ConnId::from_raw(1), ConnId::from_raw(2));
        // Room for one small frame.
        let tight = OutboxBounds {
            max_wait: None,
            max_bytes: 1,
        };
        let (outbox, _slow_inbox) = mailbox(slow, tight);
        connections.add_agent("alice".into(), outbox);
        let (outbox, mut fast_inbox) = mailbox(fast, ROOMY);
        connections.add_visitor("v1".into(), outbox);

        connections.send_all(&[slow, fast], &frame(1));
        assert_eq!(connections.next_dead(), None);
        connections.send_all(&[slow, fast, ConnId::from_raw(3)], &frame(2));
        assert_eq!(connections.next_dead(), Some(slow));
        assert_eq!(connections.next_dead(), None);
        assert_eq!(connections.agent_of(slow), Some("alice"), "reaped later");
        let mut received = 0;
        while fast_inbox.frames.try_recv().is_ok() {
            received += 1;
        }
        assert_eq!(received, 2);
    }

    #[test]
    fn a_closed_outbox_marks_its_connection_dead() {
        let mut connections = Connections::default();
        let conn = ConnId::from_raw(1);
        let (outbox, inbox) = mailbox(conn, ROOMY);
        connections.add_visitor("v1".into(), outbox);
        drop(inbox);
        connections.send_all(&[conn], &frame(1));
        assert_eq!(connections.next_dead(), Some(conn));
        assert!(matches!(
            connections.remove(conn),
            Some(Removed::Visitor { visitor_id, .. }) if visitor_id == "v1"
        ));
        assert_eq!(connections.visitor_of(conn), None);
    }
}
