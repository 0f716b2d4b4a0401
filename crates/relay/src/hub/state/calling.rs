//! The hub's steps for remote-assistance calls (see `hub::call`): answering
//! connections' call requests, applying committed call events, forwarding
//! signals between a call's peers only, and ending calls whose
//! participants are gone. Part of [`HubState`], kept apart for length.

use std::time::Duration;

use kefu_protocol::call::{
    CallEndReason, CallEnded, CallInvite, CallPeer, CallPeerChange, CallWelcome, MAX_CALL_PEERS,
    SignalFrom, SignalTo,
};
use kefu_protocol::visitor::VisitorEvent;
use kefu_protocol::{Author, AuthorKind, Message, TimelineEvent};
use time::OffsetDateTime;
use tokio::time::Instant;

use super::HubState;
use super::calls::visitor_peer;
use crate::cluster::ClusterEvent;
use crate::frame::{Frame, encode};
use crate::hub::Outbound;
use crate::hub::call::{CallCommand, CallRefusal, Recording};
use crate::ids::ConnId;

/// How long an agent's request waits for anybody to join before the call
/// ends unanswered: as long as its one-time link lasts.
pub(crate) const UNANSWERED_AFTER: Duration = Duration::from_secs(120);

impl HubState {
    /// Asks a visitor's new connection (a reload, another tab) again to
    /// join the calls it has not answered: the prompt was on the page that
    /// went away.
    pub(super) fn reinvite(&mut self, visitor_id: &str, conn: ConnId) {
        let invites: Vec<Frame> = (self.calls.unanswered_by(visitor_id))
            .map(|(call_id, call)| invite_frame(call_id, &call.conversation_id, &call.invited_by))
            .collect();
        for frame in invites {
            self.send_frame(&[conn], frame);
        }
    }

    pub(super) fn handle_call(&mut self, command: CallCommand) {
        match command {
            CallCommand::Find {
                conversation_id,
                reply,
            } => {
                let found = self.calls.in_conversation(&conversation_id);
                let _ = reply.send(found.map(str::to_owned));
            }
            CallCommand::Answer {
                conn,
                call_id,
                accept,
                reply,
            } => {
                let _ = reply.send(self.answer(conn, &call_id, accept));
            }
            CallCommand::Join {
                call_id,
                peer,
                who,
                outbox,
                reply,
            } => {
                let conn = outbox.id;
                let joining = self.join(&call_id, peer.clone(), who);
                if joining.is_ok() {
                    self.connections.add_assist(outbox);
                    self.calls.bind(conn, &call_id, &peer);
                }
                let _ = reply.send(joining);
            }
            CallCommand::Signal {
                conn,
                signal,
                reply,
            } => {
                let _ = reply.send(self.forward(conn, signal));
            }
            CallCommand::Leave {
                conn,
                call_id,
                hang_up,
                reply,
            } => {
                let _ = reply.send(self.leave(conn, &call_id, hang_up));
            }
        }
    }

    fn answer(
        &mut self,
        conn: ConnId,
        call_id: &str,
        accept: bool,
    ) -> Result<Recording, CallRefusal> {
        let visitor_id = self
            .connections
            .visitor_of(conn)
            .ok_or(CallRefusal::NoCall)?;
        let name = self.visitor_name(visitor_id);
        let call = (self.calls.get_mut(call_id))
            .filter(|call| call.visitor_id == visitor_id && !call.ending)
            .ok_or(CallRefusal::NoCall)?;
        if call.has(visitor_id) {
            return Err(CallRefusal::Joined);
        }
        let me = visitor_peer(visitor_id, &name);
        if !accept {
            call.ending = true;
            return Ok(ended(call_id, call, CallEndReason::Declined, me.who));
        }
        if call.peers.len() >= MAX_CALL_PEERS {
            return Err(CallRefusal::Full);
        }
        Ok(Recording {
            conversation_id: call.conversation_id.clone(),
            event: TimelineEvent::CallJoined {
                call_id: call_id.to_owned(),
                peer: me.peer,
                who: me.who,
            },
        })
    }

    fn join(&mut self, call_id: &str, peer: String, who: Author) -> Result<Recording, CallRefusal> {
        let call = (self.calls.get_mut(call_id))
            .filter(|call| !call.ending)
            .ok_or(CallRefusal::NoCall)?;
        if call.is_spent(&peer) {
            return Err(CallRefusal::Spent);
        }
        if call.peers.len() >= MAX_CALL_PEERS {
            return Err(CallRefusal::Full);
        }
        call.spend(&peer);
        Ok(Recording {
            conversation_id: call.conversation_id.clone(),
            event: TimelineEvent::CallJoined {
                call_id: call_id.to_owned(),
                peer,
                who,
            },
        })
    }

    /// The peer a connection is in a call: its assist page's, or the
    /// visitor's once they joined (from any of their connections).
    fn peer_of(&self, conn: ConnId, call_id: &str) -> Option<String> {
        if let Some((call, peer)) = self.calls.assist(conn) {
            return (call == call_id).then(|| peer.to_owned());
        }
        let visitor_id = self.connections.visitor_of(conn)?;
        let call = self.calls.get(call_id)?;
        (call.visitor_id == visitor_id && call.has(visitor_id)).then(|| visitor_id.to_owned())
    }

    fn forward(&mut self, conn: ConnId, signal: SignalTo) -> Result<(), CallRefusal> {
        let from = self
            .peer_of(conn, &signal.call_id)
            .ok_or(CallRefusal::NoCall)?;
        let call = self.calls.get(&signal.call_id).ok_or(CallRefusal::NoCall)?;
        if signal.to == from || !call.has(&signal.to) {
            return Err(CallRefusal::NoPeer);
        }
        let SignalTo {
            call_id,
            to,
            kind,
            data,
        } = signal;
        let signal = SignalFrom {
            call_id,
            from,
            kind,
            data,
        };
        if !self.deliver_signal(&to, &signal) {
            self.peers.publish(ClusterEvent::CallSignal { to, signal });
        }
        Ok(())
    }

    /// Gives a signal to peer `to` if it is on this relay; false if not.
    pub(super) fn deliver_signal(&mut self, to: &str, signal: &SignalFrom) -> bool {
        let Some(call) = self.calls.get(&signal.call_id) else {
            return false;
        };
        let targets = self.peer_conns(&signal.call_id, &call.visitor_id, to);
        let frame = encode(&VisitorEvent::CallSignal(signal.clone()));
        self.connections.send_all(&targets, &Outbound::Frame(frame));
        !targets.is_empty()
    }

    /// This relay's connections of one peer of a call.
    fn peer_conns(&self, call_id: &str, visitor_id: &str, peer: &str) -> Vec<ConnId> {
        if peer == visitor_id {
            self.presence.visitor_conns(visitor_id).to_vec()
        } else {
            self.calls.conn_of(call_id, peer).into_iter().collect()
        }
    }

    fn leave(
        &mut self,
        conn: ConnId,
        call_id: &str,
        hang_up: bool,
    ) -> Result<Recording, CallRefusal> {
        if hang_up && let Some(agent_id) = self.connections.agent_of(conn) {
            // An agent's own connection may end any call.
            let by = self.presence.agent(agent_id).map(|entry| {
                let info = entry.info();
                Author {
                    kind: AuthorKind::Agent,
                    id: info.id.clone(),
                    name: info.name.clone(),
                }
            });
            let by = by.ok_or(CallRefusal::NoCall)?;
            let call = (self.calls.get_mut(call_id))
                .filter(|call| !call.ending)
                .ok_or(CallRefusal::NoCall)?;
            call.ending = true;
            return Ok(ended(call_id, call, CallEndReason::HungUp, by));
        }
        let peer = self.peer_of(conn, call_id).ok_or(CallRefusal::NoCall)?;
        self.leaving(call_id, &peer, hang_up)
            .ok_or(CallRefusal::NoCall)
    }

    /// What `peer` leaving (or hanging up) records: the call's end when it
    /// hangs up, is the visitor, or is the last agent; else its leave.
    fn leaving(&mut self, call_id: &str, peer: &str, hang_up: bool) -> Option<Recording> {
        let call = self.calls.get_mut(call_id).filter(|call| !call.ending)?;
        let who = call.peers.iter().find(|p| p.peer == peer)?.who.clone();
        if hang_up || peer == call.visitor_id || call.agents_but(peer) == 0 {
            call.ending = true;
            let reason = if hang_up {
                CallEndReason::HungUp
            } else {
                CallEndReason::Left
            };
            return Some(ended(call_id, call, reason, who));
        }
        Some(Recording {
            conversation_id: call.conversation_id.clone(),
            event: TimelineEvent::CallLeft {
                call_id: call_id.to_owned(),
                peer: peer.to_owned(),
                who,
            },
        })
    }

    /// Applies a committed call event: the timeline message `message`
    /// carries it, in the conversation of visitor `visitor_id`. `origin`
    /// is set on the relay whose connection made it happen.
    pub(super) fn call_event(
        &mut self,
        message: &Message,
        visitor_id: &str,
        origin: Option<ConnId>,
    ) {
        let Some(event) = message.event.as_deref() else {
            return;
        };
        match event {
            TimelineEvent::CallStarted { call_id, by } => {
                // The relay whose agent asked ends it if nobody answers.
                let unanswered_at = origin.map(|_| Instant::now() + UNANSWERED_AFTER);
                let conversation_id = &message.conversation_id;
                (self.calls).start(
                    call_id,
                    conversation_id,
                    visitor_id,
                    message.at,
                    by,
                    unanswered_at,
                );
                let targets = self.presence.visitor_conns(visitor_id).to_vec();
                self.send_frame(&targets, invite_frame(call_id, conversation_id, by));
            }
            TimelineEvent::CallJoined { call_id, peer, who } => {
                let joiner = CallPeer {
                    peer: peer.clone(),
                    who: who.clone(),
                };
                if self.calls.joined(call_id, joiner.clone()) {
                    self.welcome(call_id, joiner);
                }
            }
            TimelineEvent::CallLeft { call_id, peer, who } => {
                self.calls.left(call_id, peer);
                let change = CallPeerChange {
                    call_id: call_id.clone(),
                    peer: CallPeer {
                        peer: peer.clone(),
                        who: who.clone(),
                    },
                };
                let targets = self.call_conns_but(call_id, peer);
                self.send_frame(&targets, encode(&VisitorEvent::CallLeft(change)));
            }
            TimelineEvent::CallEnded {
                call_id, reason, ..
            } => {
                let Some((call, assists)) = self.calls.end(call_id) else {
                    return;
                };
                let mut targets = self.presence.visitor_conns(&call.visitor_id).to_vec();
                targets.extend(assists);
                let ended = VisitorEvent::CallEnded(CallEnded {
                    call_id: call_id.clone(),
                    reason: *reason,
                });
                self.send_frame(&targets, encode(&ended));
            }
            _ => {}
        }
    }

    /// Tells a peer that just joined who is there, and the others that it
    /// came.
    fn welcome(&mut self, call_id: &str, joiner: CallPeer) {
        let Some(call) = self.calls.get(call_id) else {
            return;
        };
        let others: Vec<CallPeer> = (call.peers.iter())
            .filter(|p| p.peer != joiner.peer)
            .cloned()
            .collect();
        let welcome = VisitorEvent::CallWelcome(CallWelcome {
            call_id: call_id.to_owned(),
            conversation_id: call.conversation_id.clone(),
            you: joiner.peer.clone(),
            peers: others,
            ice_servers: self.ice.servers_for(&joiner.who.name),
        });
        let own = self.peer_conns(call_id, &call.visitor_id, &joiner.peer);
        let others = self.call_conns_but(call_id, &joiner.peer);
        self.send_frame(&own, encode(&welcome));
        let joined = VisitorEvent::CallJoined(CallPeerChange {
            call_id: call_id.to_owned(),
            peer: joiner,
        });
        self.send_frame(&others, encode(&joined));
    }

    /// This relay's connections of every joined peer of a call but one.
    fn call_conns_but(&self, call_id: &str, except: &str) -> Vec<ConnId> {
        let Some(call) = self.calls.get(call_id) else {
            return Vec::new();
        };
        let mut targets = self.calls.conns_but(call_id, except);
        if call.visitor_id != except && call.has(&call.visitor_id) {
            targets.extend(self.presence.visitor_conns(&call.visitor_id));
        }
        targets
    }

    fn send_frame(&mut self, targets: &[ConnId], frame: Frame) {
        self.connections.send_all(targets, &Outbound::Frame(frame));
    }

    /// An assist page's connection closed: its peer leaves.
    pub(super) fn assist_gone(&mut self, conn: ConnId) {
        let Some((call_id, peer)) = self.calls.unbind(conn) else {
            return;
        };
        if let Some(recording) = self.leaving(&call_id, &peer, false) {
            self.record(recording, conn);
        }
    }

    /// A visitor went offline (past the presence grace, on every relay):
    /// their calls end.
    pub(super) fn visitor_gone(&mut self, visitor_id: &str) {
        let name = self.visitor_name(visitor_id);
        for call_id in self.calls.of_visitor(visitor_id) {
            let Some(call) = self.calls.get_mut(&call_id) else {
                continue;
            };
            call.ending = true;
            let who = visitor_peer(visitor_id, &name).who;
            let recording = ended(&call_id, call, CallEndReason::Left, who);
            self.record_by_hub(recording);
        }
    }

    /// Ends the calls nobody joined in time.
    pub(super) fn calls_due(&mut self, now: Instant) {
        for call_id in self.calls.unanswered(now) {
            let Some(call) = self.calls.get(&call_id) else {
                continue;
            };
            let by = Author {
                kind: AuthorKind::System,
                id: "kefu".to_owned(),
                name: "kefu".to_owned(),
            };
            let recording = ended(&call_id, call, CallEndReason::Unanswered, by);
            self.record_by_hub(recording);
        }
    }

    fn record_by_hub(&self, recording: Recording) {
        self.spawn_record(recording, None);
    }

    fn record(&self, recording: Recording, origin: ConnId) {
        self.spawn_record(recording, Some(origin));
    }

    /// Stores a step the hub took itself; its committed event comes back
    /// as a change like any other.
    fn spawn_record(&self, recording: Recording, origin: Option<ConnId>) {
        let Some(store) = self.store.clone() else {
            return;
        };
        tokio::spawn(async move {
            let Recording {
                conversation_id,
                event,
            } = recording;
            if let Err(error) = store.record_event(&conversation_id, event, origin).await {
                tracing::warn!(%error, "could not record a call's step");
            }
        });
    }

    fn visitor_name(&self, visitor_id: &str) -> String {
        (self.routes.conversation_of(visitor_id))
            .map(|summary| summary.visitor.name.clone())
            .unwrap_or_else(|| crate::store::default_visitor_name(visitor_id))
    }
}

/// The end of a call, `by` whom, lasting from its start until now.
fn ended(call_id: &str, call: &super::calls::Call, reason: CallEndReason, by: Author) -> Recording {
    let duration = OffsetDateTime::now_utc() - call.started_at;
    Recording {
        conversation_id: call.conversation_id.clone(),
        event: TimelineEvent::CallEnded {
            call_id: call_id.to_owned(),
            duration_secs: duration.whole_seconds().max(0) as u64,
            reason,
            by,
        },
    }
}

fn invite_frame(call_id: &str, conversation_id: &str, by: &Author) -> Frame {
    encode(&VisitorEvent::CallInvite(CallInvite {
        call_id: call_id.to_owned(),
        conversation_id: conversation_id.to_owned(),
        by: by.clone(),
    }))
}
