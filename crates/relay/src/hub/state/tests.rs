//! Who gets which `conversation` frame, and when: the hub's state driven
//! directly, its flush called by hand instead of by the timer.

use std::time::Duration;

use kefu_protocol::agent::{
    AgentEvent, AgentInfo, ConversationStatus, ConversationSummary, Role, VisitorSummary,
};
use kefu_protocol::{Author, AuthorKind, Message, PresenceKind, Seq};
use time::OffsetDateTime;
use tokio::time::Instant;

use super::HubState;
use crate::hub::{HubOptions, Inbox, ROOMY, mailbox};
use crate::ids::ConnId;
use crate::store::Change;

const GRACE: Duration = Duration::from_secs(10);

/// A hub with one open conversation, `k1`, assigned to alice.
fn hub() -> HubState {
    let options = HubOptions {
        presence_grace: GRACE,
        heartbeat: crate::cluster::Heartbeat::default(),
        auto_assign: None,
        store: None,
        ice: crate::config::IceServers::default(),
    };
    HubState::new(vec![summary(1, "alice")], None, options)
}

fn summary(last_seq: Seq, assignee: &str) -> ConversationSummary {
    ConversationSummary {
        id: "k1".into(),
        visitor: VisitorSummary {
            id: "v1".into(),
            name: "Ming".into(),
            ..VisitorSummary::default()
        },
        status: ConversationStatus::Active,
        assignee: Some(assignee.into()),
        last_seq,
        unread: u32::try_from(last_seq).unwrap_or(u32::MAX),
        visitor_messages: 0,
        preview: format!("message {last_seq}"),
        visitor_read_seq: 0,
        waiting_since: None,
        updated_at: OffsetDateTime::UNIX_EPOCH,
    }
}

/// The visitor's message `seq` in `k1`, as the store commits it.
fn visitor_writes(hub: &mut HubState, seq: Seq) {
    let message = Message {
        attachments: Vec::new(),
        conversation_id: "k1".into(),
        seq,
        id: format!("m{seq}"),
        client_id: format!("c{seq}"),
        author: Author {
            kind: AuthorKind::Visitor,
            id: "v1".into(),
            name: "Ming".into(),
        },
        text: format!("message {seq}"),
        at: OffsetDateTime::UNIX_EPOCH,
        internal: false,
        event: None,
        link: None,
    };
    hub.apply(Change::Message {
        message,
        summary: summary(seq, "alice"),
        origin: None,
    });
}

fn connect(hub: &mut HubState, conn: u64, agent: &str) -> Inbox {
    let (outbox, inbox) = mailbox(ConnId::from_raw(conn), ROOMY);
    let info = AgentInfo {
        id: agent.into(),
        name: agent.into(),
        role: Role::Agent,
    };
    hub.add_agent(info, outbox);
    inbox
}

/// The summaries of the `conversation` frames queued for a connection, in
/// order, leaving out every other frame.
fn summaries(inbox: &mut Inbox) -> Vec<ConversationSummary> {
    let mut found = Vec::new();
    while let Ok(item) = inbox.frames.try_recv() {
        let frame = item.into_frame();
        if let Ok(AgentEvent::Conversation(conversation)) = serde_json::from_str(frame.as_str()) {
            found.push(conversation.summary);
        }
    }
    found
}

fn seqs(summaries: &[ConversationSummary]) -> Vec<Seq> {
    summaries.iter().map(|s| s.last_seq).collect()
}

#[test]
fn the_owner_gets_every_summary_and_the_others_one_per_flush() {
    let mut hub = hub();
    let mut alice = connect(&mut hub, 1, "alice");
    let mut bob = connect(&mut hub, 2, "bob");
    let mut to_alice = Vec::new();
    for seq in 2..=4 {
        visitor_writes(&mut hub, seq);
        // Read as it comes: a summary still queued would be superseded.
        to_alice.extend(summaries(&mut alice));
    }
    assert_eq!(seqs(&to_alice), [2, 3, 4]);
    assert!(summaries(&mut bob).is_empty(), "nothing for bob yet");
    assert!(hub.throttle.flush_at().is_some(), "a flush is due");

    hub.flush();
    assert_eq!(seqs(&summaries(&mut bob)), [4], "the latest, once");
    assert!(summaries(&mut alice).is_empty(), "alice had it already");
    assert_eq!(hub.throttle.flush_at(), None);
    hub.flush();
    assert!(summaries(&mut bob).is_empty(), "flushed once only");
}

/// What a connection's outbox holds, in order: `m3` for message 3 of
/// `k1`, `s3` for a summary at `last_seq` 3.
fn queued(inbox: &mut Inbox) -> Vec<String> {
    let mut found = Vec::new();
    while let Ok(item) = inbox.frames.try_recv() {
        match serde_json::from_str(item.into_frame().as_str()) {
            Ok(AgentEvent::Message(message)) => found.push(format!("m{}", message.seq)),
            Ok(AgentEvent::Conversation(frame)) => {
                found.push(format!("s{}", frame.summary.last_seq));
            }
            _ => {}
        }
    }
    found
}

#[test]
fn an_owner_behind_gets_every_message_then_only_the_latest_summary() {
    let mut hub = hub();
    let mut alice = connect(&mut hub, 1, "alice");
    for seq in 2..=4 {
        visitor_writes(&mut hub, seq);
    }
    assert_eq!(queued(&mut alice), ["m2", "m3", "m4", "s4"]);
}

#[test]
fn a_transfer_reaches_everybody_at_once_and_settles_what_was_due() {
    let mut hub = hub();
    let mut alice = connect(&mut hub, 1, "alice");
    let mut bob = connect(&mut hub, 2, "bob");
    let mut carol = connect(&mut hub, 3, "carol");
    let assignees = |inbox: &mut Inbox| -> Vec<String> {
        let got = summaries(inbox).into_iter();
        got.filter_map(|s| s.assignee).collect()
    };
    visitor_writes(&mut hub, 2);
    assert_eq!(assignees(&mut alice), ["alice"]);
    assert!(summaries(&mut bob).is_empty());

    hub.apply(Change::Summary {
        summary: summary(2, "carol"),
    });
    assert_eq!(assignees(&mut alice), ["carol"]);
    assert_eq!(assignees(&mut bob), ["carol"], "at once, and only that");
    assert_eq!(assignees(&mut carol), ["carol"]);
    hub.flush();
    assert!(summaries(&mut bob).is_empty(), "bob has the latest already");
}

#[test]
fn opening_a_conversation_brings_its_summary_up_to_date() {
    let mut hub = hub();
    let _alice = connect(&mut hub, 1, "alice");
    let mut bob = connect(&mut hub, 2, "bob");
    visitor_writes(&mut hub, 2);
    assert!(summaries(&mut bob).is_empty());

    hub.watch(ConnId::from_raw(2), "k1".into());
    assert_eq!(seqs(&summaries(&mut bob)), [2]);
    visitor_writes(&mut hub, 3);
    assert_eq!(seqs(&summaries(&mut bob)), [3], "following it, at once");
    hub.flush();
    assert!(summaries(&mut bob).is_empty(), "nothing left to flush");
    hub.watch(ConnId::from_raw(2), "k1".into());
    assert!(summaries(&mut bob).is_empty(), "up to date already");
}

#[test]
fn no_flush_is_due_when_every_agent_sees_the_conversation() {
    let mut hub = hub();
    let mut alice = connect(&mut hub, 1, "alice");
    visitor_writes(&mut hub, 2);
    assert_eq!(seqs(&summaries(&mut alice)), [2]);
    assert_eq!(hub.throttle.flush_at(), None, "no timer wakes the hub");
}

/// The visitor presence frames queued for a connection, as `online` flags.
fn visitor_presence(inbox: &mut Inbox) -> Vec<bool> {
    let mut found = Vec::new();
    while let Ok(item) = inbox.frames.try_recv() {
        let frame = item.into_frame();
        if let Ok(AgentEvent::Presence(presence)) = serde_json::from_str(frame.as_str())
            && presence.kind == PresenceKind::Visitor
        {
            found.push(presence.online);
        }
    }
    found
}

#[test]
fn agents_hear_of_a_visitor_leaving_only_once_the_grace_ends() {
    let mut hub = hub();
    let mut alice = connect(&mut hub, 1, "alice");
    let (outbox, _first_tab) = mailbox(ConnId::from_raw(10), ROOMY);
    hub.add_visitor("v1".into(), outbox);
    assert_eq!(visitor_presence(&mut alice), [true]);

    drop(hub.remove(ConnId::from_raw(10)));
    let (outbox, _next_page) = mailbox(ConnId::from_raw(11), ROOMY);
    hub.add_visitor("v1".into(), outbox);
    hub.expire(Instant::now() + GRACE * 2);
    assert!(
        visitor_presence(&mut alice).is_empty(),
        "back within the grace"
    );

    drop(hub.remove(ConnId::from_raw(11)));
    let left = Instant::now();
    hub.expire(left);
    assert!(
        visitor_presence(&mut alice).is_empty(),
        "still within the grace"
    );
    hub.expire(left + GRACE * 2);
    assert_eq!(visitor_presence(&mut alice), [false]);
}
