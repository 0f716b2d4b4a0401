//! Timeline events in the store, on both backends: each granted claim,
//! transfer, resolve and reopen leaves one event in the same write, in
//! order with the messages; refusals and no-ops leave none; visitors'
//! reads never include one.

use std::sync::Arc;

use kefu_protocol::agent::{ConversationStatus, Role};
use kefu_protocol::{Author, AuthorKind, Message, TimelineEvent};
use kefu_relay::store::{self, Page, Store, StoreError};
use kefu_testkit::TestDatabase;

use super::{
    agent, agent_send, author_of, conversation_messages, new_conversation, stored_summary,
    visitor_send,
};

backend_test!(
    sqlite_timeline_events_are_kept_in_order_with_the_messages,
    postgres_timeline_events_are_kept_in_order_with_the_messages,
    timeline_events_are_kept_in_order_with_the_messages
);
async fn timeline_events_are_kept_in_order_with_the_messages(store: Arc<dyn Store>) {
    let alice = agent(&store, "alice", Role::Agent).await;
    let bob = agent(&store, "bob", Role::Agent).await;
    let conversation = new_conversation(&store, "v1", "c1", "hi").await;

    let claimed = store.claim(&conversation, &alice).await.expect("claim");
    assert_eq!(claimed.last_seq, 2, "the event took the next seq");
    assert_eq!(claimed.unread, 1, "an event is not a message to read");
    assert_eq!(claimed.preview, "hi", "nor a preview");
    // Neither a no-op nor a refusal leaves an event.
    store
        .claim(&conversation, &alice)
        .await
        .expect("claim again");
    assert!(matches!(
        store.claim(&conversation, &bob).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.resolve(&conversation, &bob).await,
        Err(StoreError::Forbidden(_))
    ));
    store
        .agent_send(agent_send(&alice, &conversation, "a1", false))
        .await
        .expect("reply");
    let moved = (store.transfer(&conversation, &alice, &bob.id))
        .await
        .expect("transfer");
    assert_eq!(moved.last_seq, 4);
    let resolved = store.resolve(&conversation, &bob).await.expect("resolve");
    assert_eq!(resolved.last_seq, 5);
    store.resolve(&conversation, &bob).await.expect("no-op");
    let again = store
        .visitor_send(visitor_send("v1", "c2", "one more thing"))
        .await
        .expect("reopening send");
    assert_eq!(again.seq, 7, "the reopen event comes just before it");

    let all = conversation_messages(&store, &conversation, true).await;
    let seqs: Vec<u64> = all.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 7]);
    let visitor = Author {
        kind: AuthorKind::Visitor,
        id: "v1".into(),
        name: all[0].author.name.clone(),
    };
    assert_eq!(
        events(&all),
        [
            (
                2,
                TimelineEvent::Claimed {
                    by: author_of(&alice)
                }
            ),
            (
                4,
                TimelineEvent::Transferred {
                    by: author_of(&alice),
                    to: author_of(&bob),
                }
            ),
            (
                5,
                TimelineEvent::Resolved {
                    by: author_of(&bob)
                }
            ),
            (6, TimelineEvent::Reopened { by: visitor }),
        ]
    );
    for event in all.iter().filter(|m| m.is_event()) {
        assert_eq!(event.author.kind, AuthorKind::System);
        assert!(event.internal, "events are for agents");
        let described = event.event.as_deref().map(TimelineEvent::describe);
        assert_eq!(Some(event.text.clone()), described);
    }
    let public: Vec<u64> = (conversation_messages(&store, &conversation, false).await)
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(public, [1, 3, 7], "a visitor's replay holds no event");

    // Pages cut through events like through messages.
    let page = |page| {
        let store = store.clone();
        let conversation = conversation.clone();
        async move {
            let messages = store.messages(&conversation, page, true).await;
            messages
                .expect("page")
                .iter()
                .map(|m| m.seq)
                .collect::<Vec<_>>()
        }
    };
    let before = Page::Before {
        before: Some(6),
        limit: 2,
    };
    assert_eq!(page(before).await, [4, 5]);
    let after = Page::After { after: 1, limit: 2 };
    assert_eq!(page(after).await, [2, 3]);

    let summary = stored_summary(&store, &conversation).await;
    assert_eq!(
        (summary.status, summary.assignee, summary.last_seq),
        (ConversationStatus::Waiting, None, 7)
    );
    assert_eq!(
        (summary.unread, summary.preview.as_str()),
        (1, "one more thing")
    );
}

fn events(messages: &[Message]) -> Vec<(u64, TimelineEvent)> {
    (messages.iter())
        .filter_map(|m| Some((m.seq, m.event.as_deref()?.clone())))
        .collect()
}

backend_test!(
    sqlite_call_steps_are_timeline_events_in_history_and_export,
    postgres_call_steps_are_timeline_events_in_history_and_export,
    call_steps_are_timeline_events_in_history_and_export
);
async fn call_steps_are_timeline_events_in_history_and_export(store: Arc<dyn Store>) {
    let alice = agent(&store, "alice", Role::Agent).await;
    let conversation = new_conversation(&store, "v1", "c1", "my screen is odd").await;
    let by = author_of(&alice);
    let steps = [
        TimelineEvent::CallStarted {
            call_id: "k1".into(),
            by: by.clone(),
        },
        TimelineEvent::CallJoined {
            call_id: "k1".into(),
            peer: "p1".into(),
            who: by.clone(),
        },
        TimelineEvent::CallEnded {
            call_id: "k1".into(),
            duration_secs: 75,
            reason: kefu_protocol::call::CallEndReason::HungUp,
            by: by.clone(),
        },
    ];
    for step in steps.clone() {
        (store.record_event(&conversation, step, None).await).expect("record");
    }
    let missing = store.record_event("nope", steps[0].clone(), None).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );

    let timeline = conversation_messages(&store, &conversation, true).await;
    let recorded: Vec<(u64, TimelineEvent)> = (timeline.iter())
        .filter_map(|m| Some((m.seq, m.event.as_deref()?.clone())))
        .collect();
    let expected: Vec<(u64, TimelineEvent)> = (2..).zip(steps).collect();
    assert_eq!(recorded, expected, "in order after the first message");
    assert_eq!(
        timeline.last().map(|m| m.text.as_str()),
        Some("the call ended (hung up) after 1m 15s")
    );
    assert_eq!(stored_summary(&store, &conversation).await.last_seq, 4);
    let visitors = conversation_messages(&store, &conversation, false).await;
    assert!(visitors.iter().all(|m| !m.is_event()), "{visitors:?}");

    let mut export = Vec::new();
    (kefu_relay::export::write_jsonl(store.as_ref(), None, &mut export).await).expect("export");
    let export = String::from_utf8(export).expect("UTF-8");
    assert!(export.contains(r#""kind":"call_ended""#), "{export}");
    assert!(export.contains(r#""duration_secs":75"#), "{export}");
}
