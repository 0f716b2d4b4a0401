//! Agents: each claims the conversations of its own share of the visitors
//! and answers them.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use kefu_protocol::AuthorKind;
use kefu_protocol::agent::{AgentEvent, AgentRequest};
use tokio::sync::watch;

use crate::config::{Shard, Target};
use crate::ledger::Direction;
use crate::net::{self, ConnectError, WireError, Ws};
use crate::phase::{self, Phase};
use crate::report::Recorder;

/// What a bench agent answers.
const TEXT: &str = "Yes, we have it in all sizes. Shall I reserve one for you?";

/// An agent, signed in with `token`.
pub async fn connect(
    target: &Target,
    source: Option<IpAddr>,
    token: &str,
) -> Result<Ws, ConnectError> {
    let hello = AgentRequest::Hello {
        token: token.to_owned(),
    };
    match net::handshake(target, "/ws/agent", source, &hello).await? {
        (ws, AgentEvent::Welcome(_)) => Ok(ws),
        (_, AgentEvent::Error(error)) => Err(ConnectError::refused(Some(&error))),
        _ => Err(ConnectError::refused(None)),
    }
}

/// Which visitors an agent answers. Every agent sees the messages of
/// waiting conversations, so each must know which are its own: the local
/// visitors of its shard, dealt round-robin over the shard's agents.
#[derive(Debug, Clone, Copy)]
pub struct Duty {
    pub shard: Shard,
    /// This agent's position among the shard's agents.
    pub slot: u32,
    pub slots: u32,
    /// Answer every `reply_every`-th message of a visitor (at least 1).
    pub reply_every: u32,
}

impl Duty {
    pub fn owns(&self, visitor: u32) -> bool {
        self.shard.owns(visitor) && self.shard.local(visitor) % self.slots == self.slot
    }
}

/// One agent of a chat run, until the run stops or the relay drops it.
pub async fn chat(
    mut ws: Ws,
    duty: Duty,
    recorder: Arc<Recorder>,
    mut phase: watch::Receiver<Phase>,
) {
    // Conversations this agent already claimed.
    let mut claimed = HashSet::new();
    loop {
        tokio::select! {
            event = net::recv::<AgentEvent>(&mut ws) => {
                if let Err(reason) = on_event(&mut ws, event, duty, &mut claimed, &recorder).await {
                    return recorder.dropped(reason);
                }
            }
            () = phase::stopped(&mut phase) => {
                return net::close(ws).await;
            }
        }
    }
}

/// Records one frame and answers it if it is a message for this agent;
/// `Err` with a reason once the connection is over.
async fn on_event(
    ws: &mut Ws,
    event: Result<AgentEvent, WireError>,
    duty: Duty,
    claimed: &mut HashSet<String>,
    recorder: &Recorder,
) -> Result<(), &'static str> {
    let message = match event {
        Ok(AgentEvent::Message(message)) => message,
        Ok(AgentEvent::Ack(ack)) => {
            recorder.ack(&ack.client_id);
            return Ok(());
        }
        Ok(AgentEvent::Error(error)) => {
            recorder.error(error.code);
            return Ok(());
        }
        Ok(AgentEvent::Reconnect(reconnect)) => return Err(net::reconnect_label(&reconnect)),
        Ok(_) => return Ok(()),
        Err(error) => return Err(error.label()),
    };
    if message.author.kind != AuthorKind::Visitor {
        return Ok(());
    }
    let Some(key) = recorder.ids().parse(&message.client_id) else {
        return Ok(());
    };
    if key.direction != Direction::ToAgent || !duty.owns(key.visitor) {
        return Ok(());
    }
    recorder.deliver(key);
    let conversation_id = message.conversation_id;
    if !claimed.contains(&conversation_id) {
        let claim = AgentRequest::Claim {
            conversation_id: conversation_id.clone(),
        };
        net::send(ws, &claim).await.map_err(|e| e.label())?;
        claimed.insert(conversation_id.clone());
    }
    if key.n % duty.reply_every.max(1) == 0 {
        let reply = AgentRequest::Send {
            attachments: Vec::new(),
            conversation_id,
            client_id: recorder.send(Direction::ToVisitor, key.visitor),
            text: TEXT.to_owned(),
            internal: false,
            link: None,
        };
        net::send(ws, &reply).await.map_err(|e| e.label())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_visitor_has_exactly_one_owning_agent_across_shards() {
        let shards = [Shard { index: 0, count: 2 }, Shard { index: 1, count: 2 }];
        let duties: Vec<Duty> = shards
            .iter()
            .flat_map(|&shard| {
                (0..3).map(move |slot| Duty {
                    shard,
                    slot,
                    slots: 3,
                    reply_every: 1,
                })
            })
            .collect();
        for visitor in 0..60 {
            let owners = duties.iter().filter(|duty| duty.owns(visitor)).count();
            assert_eq!(owners, 1, "visitor {visitor}");
        }
    }
}
