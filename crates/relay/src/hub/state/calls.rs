//! The calls going on, as the committed timeline events describe them, and
//! which of this relay's assist-page connections is which peer.
//!
//! Invariants: a call is here from its committed start to its committed
//! end; its `peers` are those whose join was committed and who have not
//! left; `spent` holds every peer id that ever joined or is joining, so a
//! one-time code (an assist peer's id) joins once; each assist connection
//! is bound to one peer of one call.

use std::collections::{HashMap, HashSet};

use kefu_protocol::Author;
use kefu_protocol::call::CallPeer;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::ids::ConnId;

#[derive(Default)]
pub(super) struct Calls {
    calls: HashMap<String, Call>,
    /// Assist-page connections on this relay: (call id, peer id).
    assists: HashMap<ConnId, (String, String)>,
}

pub(super) struct Call {
    pub conversation_id: String,
    pub visitor_id: String,
    pub started_at: OffsetDateTime,
    /// The agent who asked for the screen, named in the visitor's prompt.
    pub invited_by: Author,
    /// On the relay that started it, until somebody joins: when it ends
    /// unanswered.
    unanswered_at: Option<Instant>,
    /// Joined and not left, in the order they joined.
    pub peers: Vec<CallPeer>,
    spent: HashSet<String>,
    /// Its end is being stored: no more steps.
    pub ending: bool,
}

impl Call {
    pub(super) fn has(&self, peer: &str) -> bool {
        self.peers.iter().any(|p| p.peer == peer)
    }

    pub(super) fn is_spent(&self, peer: &str) -> bool {
        self.spent.contains(peer)
    }

    pub(super) fn spend(&mut self, peer: &str) {
        self.spent.insert(peer.to_owned());
    }

    /// The agents still in the call but `except`.
    pub(super) fn agents_but(&self, except: &str) -> usize {
        (self.peers.iter())
            .filter(|p| p.peer != except && p.peer != self.visitor_id)
            .count()
    }
}

impl Calls {
    pub(super) fn start(
        &mut self,
        call_id: &str,
        conversation_id: &str,
        visitor_id: &str,
        started_at: OffsetDateTime,
        invited_by: &Author,
        unanswered_at: Option<Instant>,
    ) {
        self.calls.insert(
            call_id.to_owned(),
            Call {
                conversation_id: conversation_id.to_owned(),
                visitor_id: visitor_id.to_owned(),
                started_at,
                invited_by: invited_by.clone(),
                unanswered_at,
                peers: Vec::new(),
                spent: HashSet::new(),
                ending: false,
            },
        );
    }

    /// The calls `visitor_id` was asked to join and has not answered yet.
    pub(super) fn unanswered_by(&self, visitor_id: &str) -> impl Iterator<Item = (&str, &Call)> {
        (self.calls.iter())
            .filter(move |(_, call)| {
                call.visitor_id == visitor_id && !call.ending && !call.has(visitor_id)
            })
            .map(|(call_id, call)| (call_id.as_str(), call))
    }

    pub(super) fn get(&self, call_id: &str) -> Option<&Call> {
        self.calls.get(call_id)
    }

    pub(super) fn get_mut(&mut self, call_id: &str) -> Option<&mut Call> {
        self.calls.get_mut(call_id)
    }

    /// The call going on in a conversation.
    pub(super) fn in_conversation(&self, conversation_id: &str) -> Option<&str> {
        (self.calls.iter())
            .find(|(_, call)| call.conversation_id == conversation_id && !call.ending)
            .map(|(id, _)| id.as_str())
    }

    /// The calls a visitor is invited to or in.
    pub(super) fn of_visitor(&self, visitor_id: &str) -> Vec<String> {
        (self.calls.iter())
            .filter(|(_, call)| call.visitor_id == visitor_id && !call.ending)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// A committed join; false if the peer was in already.
    pub(super) fn joined(&mut self, call_id: &str, peer: CallPeer) -> bool {
        let Some(call) = self.calls.get_mut(call_id) else {
            return false;
        };
        call.spent.insert(peer.peer.clone());
        call.unanswered_at = None;
        if call.has(&peer.peer) {
            return false;
        }
        call.peers.push(peer);
        true
    }

    pub(super) fn left(&mut self, call_id: &str, peer: &str) {
        if let Some(call) = self.calls.get_mut(call_id) {
            call.peers.retain(|p| p.peer != peer);
        }
    }

    /// A committed end: the call and its assist connections here.
    pub(super) fn end(&mut self, call_id: &str) -> Option<(Call, Vec<ConnId>)> {
        let call = self.calls.remove(call_id)?;
        let conns: Vec<ConnId> = (self.assists.iter())
            .filter(|(_, (call, _))| call == call_id)
            .map(|(conn, _)| *conn)
            .collect();
        for conn in &conns {
            self.assists.remove(conn);
        }
        Some((call, conns))
    }

    pub(super) fn bind(&mut self, conn: ConnId, call_id: &str, peer: &str) {
        (self.assists).insert(conn, (call_id.to_owned(), peer.to_owned()));
    }

    pub(super) fn unbind(&mut self, conn: ConnId) -> Option<(String, String)> {
        self.assists.remove(&conn)
    }

    /// The call and peer an assist connection is.
    pub(super) fn assist(&self, conn: ConnId) -> Option<(&str, &str)> {
        (self.assists.get(&conn)).map(|(call, peer)| (call.as_str(), peer.as_str()))
    }

    /// The assist connection here that is `peer` of `call_id`.
    pub(super) fn conn_of(&self, call_id: &str, peer: &str) -> Option<ConnId> {
        (self.assists.iter())
            .find(|(_, (call, p))| call == call_id && p == peer)
            .map(|(conn, _)| *conn)
    }

    /// The assist connections here of a call's peers but `except`.
    pub(super) fn conns_but(&self, call_id: &str, except: &str) -> Vec<ConnId> {
        (self.assists.iter())
            .filter(|(_, (call, p))| call == call_id && p != except)
            .map(|(conn, _)| *conn)
            .collect()
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        (self.calls.values())
            .filter(|call| !call.ending)
            .filter_map(|call| call.unanswered_at)
            .min()
    }

    /// The calls nobody joined in time, now marked ending.
    pub(super) fn unanswered(&mut self, now: Instant) -> Vec<String> {
        let mut due = Vec::new();
        for (id, call) in &mut self.calls {
            if !call.ending && call.unanswered_at.is_some_and(|at| at <= now) {
                call.ending = true;
                call.unanswered_at = None;
                due.push(id.clone());
            }
        }
        due
    }
}

/// A visitor as a call peer: their peer id is their visitor id.
pub(super) fn visitor_peer(visitor_id: &str, name: &str) -> CallPeer {
    CallPeer {
        peer: visitor_id.to_owned(),
        who: Author {
            kind: kefu_protocol::AuthorKind::Visitor,
            id: visitor_id.to_owned(),
            name: name.to_owned(),
        },
    }
}
