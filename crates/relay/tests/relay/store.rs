//! The store's guarantees, checked on both backends with the same tests:
//! each `backend_test!` runs its body once on a SQLite file and once on a
//! fresh PostgreSQL database.

use std::sync::Arc;

use kefu_protocol::agent::{AgentInfo, ConversationStatus, ConversationSummary, Role};
use kefu_protocol::{Author, AuthorKind, TimelineEvent};
use kefu_relay::store::{
    self, AgentSend, Page, Reader, Store, StoreError, VisitorDetails, VisitorSend,
};
use kefu_testkit::TestDatabase;

/// Runs `$body` (an async fn taking `Arc<dyn Store>`) on both backends.
macro_rules! backend_test {
    ($sqlite:ident, $postgres:ident, $body:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("kefu.db").display());
            let store = store::open(&url, None).await.expect("open SQLite");
            $body(store.clone()).await;
            store.close().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let Some(database) = TestDatabase::create().await else {
                return;
            };
            let store = store::open(&database.url, None)
                .await
                .expect("open PostgreSQL");
            $body(store.clone()).await;
            store.close().await;
            database.drop_database().await;
        }
    };
}

pub(crate) fn visitor_send(visitor_id: &str, client_id: &str, text: &str) -> VisitorSend {
    VisitorSend {
        attachments: Vec::new(),
        visitor_id: visitor_id.to_owned(),
        details: VisitorDetails::default(),
        client_id: client_id.to_owned(),
        text: text.to_owned(),
        origin: None,
    }
}

pub(crate) fn agent_send(
    agent: &AgentInfo,
    conversation_id: &str,
    client_id: &str,
    internal: bool,
) -> AgentSend {
    AgentSend {
        attachments: Vec::new(),
        agent: agent.clone(),
        conversation_id: conversation_id.to_owned(),
        client_id: client_id.to_owned(),
        text: format!("reply {client_id}"),
        internal,
        link: None,
        origin: None,
    }
}

/// Every message of a conversation (at most 1,000), oldest first.
async fn conversation_messages(
    store: &Arc<dyn Store>,
    conversation_id: &str,
    include_internal: bool,
) -> Vec<kefu_protocol::Message> {
    let all = Page::After {
        after: 0,
        limit: 1_000,
    };
    store
        .messages(conversation_id, all, include_internal)
        .await
        .expect("messages")
}

/// The conversation a visitor's first message opens.
pub(crate) async fn new_conversation(
    store: &Arc<dyn Store>,
    visitor_id: &str,
    client_id: &str,
    text: &str,
) -> String {
    store
        .visitor_send(visitor_send(visitor_id, client_id, text))
        .await
        .expect("send")
        .conversation_id
}

/// A conversation's summary as the store reads it back.
pub(crate) async fn stored_summary(
    store: &Arc<dyn Store>,
    conversation_id: &str,
) -> ConversationSummary {
    store
        .conversation(conversation_id)
        .await
        .expect("read")
        .expect("exists")
}

/// An agent as a timeline event names it.
fn author_of(agent: &AgentInfo) -> Author {
    Author {
        kind: AuthorKind::Agent,
        id: agent.id.clone(),
        name: agent.name.clone(),
    }
}

pub(crate) async fn agent(store: &Arc<dyn Store>, name: &str, role: Role) -> AgentInfo {
    store
        .add_agent(name, role, &format!("hash-of-{name}"))
        .await
        .expect("add agent")
}

backend_test!(
    sqlite_sends_are_idempotent,
    postgres_sends_are_idempotent,
    sends_are_idempotent
);
async fn sends_are_idempotent(store: Arc<dyn Store>) {
    assert_eq!(store.visitor_conversation("v1").await.expect("read"), None);
    let first = store
        .visitor_send(visitor_send("v1", "c1", "hi"))
        .await
        .expect("send");
    assert_eq!(first.seq, 1);
    let again = store
        .visitor_send(visitor_send("v1", "c1", "hi"))
        .await
        .expect("resend");
    assert_eq!(first, again, "the original comes back");
    // The same client_id from another author is another message.
    let other = store
        .visitor_send(visitor_send("v2", "c1", "hi"))
        .await
        .expect("send");
    assert_ne!(other.id, first.id);
    assert_eq!(
        store.visitor_conversation("v1").await.expect("read"),
        Some(first.conversation_id.clone())
    );
    let messages = conversation_messages(&store, &first.conversation_id, true).await;
    assert_eq!(messages, vec![first]);
}

backend_test!(
    sqlite_concurrent_resends_store_one_message,
    postgres_concurrent_resends_store_one_message,
    concurrent_resends_store_one_message
);
async fn concurrent_resends_store_one_message(store: Arc<dyn Store>) {
    store
        .visitor_send(visitor_send("v1", "c0", "first"))
        .await
        .expect("send");
    let sends = (0..16).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.visitor_send(visitor_send("v1", "dup", "again")).await })
    });
    let mut ids = std::collections::HashSet::new();
    for send in sends {
        ids.insert(send.await.expect("task").expect("send").id);
    }
    assert_eq!(ids.len(), 1, "every resend got the one stored message");
    let conversation = store
        .visitor_conversation("v1")
        .await
        .expect("read")
        .expect("exists");
    let summary = stored_summary(&store, &conversation).await;
    assert_eq!(summary.last_seq, 2);
}

backend_test!(
    sqlite_concurrent_writers_keep_seq_gap_free,
    postgres_concurrent_writers_keep_seq_gap_free,
    concurrent_writers_keep_seq_gap_free
);
async fn concurrent_writers_keep_seq_gap_free(store: Arc<dyn Store>) {
    let alice = agent(&store, "alice", Role::Agent).await;
    let first = store
        .visitor_send(visitor_send("v1", "v-0", "hi"))
        .await
        .expect("send");
    let conversation = first.conversation_id.clone();
    store.claim(&conversation, &alice).await.expect("claim");
    const EACH: usize = 100;
    let mut tasks = Vec::new();
    for i in 1..=EACH {
        let visitor_store = store.clone();
        tasks.push(tokio::spawn(async move {
            visitor_store
                .visitor_send(visitor_send("v1", &format!("v-{i}"), "from the visitor"))
                .await
        }));
        let store = store.clone();
        let (alice, conversation) = (alice.clone(), conversation.clone());
        tasks.push(tokio::spawn(async move {
            store
                .agent_send(agent_send(
                    &alice,
                    &conversation,
                    &format!("a-{i}"),
                    i % 10 == 0,
                ))
                .await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("write");
    }
    let messages = conversation_messages(&store, &conversation, true).await;
    let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
    // The claim's timeline event took a seq too (2).
    assert_eq!(seqs, (1..=(2 * EACH as u64 + 2)).collect::<Vec<_>>());
    let visible = conversation_messages(&store, &conversation, false).await;
    assert_eq!(
        visible.len(),
        2 * EACH + 1 - EACH / 10,
        "notes are hidden from visitors"
    );
}

backend_test!(
    sqlite_a_refused_write_undoes_only_itself,
    postgres_a_refused_write_undoes_only_itself,
    a_refused_write_undoes_only_itself
);
/// Refusals land in the same commits as accepted writes (the SQLite writer
/// batches whatever is queued); they must neither undo those writes nor
/// leave a trace of their own, and the next writes must count from what was
/// committed.
async fn a_refused_write_undoes_only_itself(store: Arc<dyn Store>) {
    let alice = agent(&store, "alice", Role::Agent).await;
    let bob = agent(&store, "bob", Role::Agent).await;
    let conversation = new_conversation(&store, "v1", "v-0", "hi").await;
    store.claim(&conversation, &alice).await.expect("claim");
    const SENDS: u64 = 60;
    let mut sends = Vec::new();
    let mut refused = Vec::new();
    for i in 1..=SENDS {
        let store_for_send = store.clone();
        sends.push(tokio::spawn(async move {
            store_for_send
                .visitor_send(visitor_send("v1", &format!("v-{i}"), "more"))
                .await
        }));
        if i % 6 == 0 {
            let (store, bob, conversation) = (store.clone(), bob.clone(), conversation.clone());
            refused.push(tokio::spawn(async move {
                let claim = store.claim(&conversation, &bob).await.map(|_| ());
                let reply = agent_send(&bob, &conversation, &format!("b-{i}"), false);
                (claim, store.agent_send(reply).await.map(|_| ()))
            }));
        }
    }
    for send in sends {
        send.await.expect("task").expect("accepted send");
    }
    for attempt in refused {
        let (claim, reply) = attempt.await.expect("task");
        assert!(matches!(claim, Err(StoreError::Conflict(_))), "{claim:?}");
        assert!(matches!(reply, Err(StoreError::Conflict(_))), "{reply:?}");
    }
    let messages = conversation_messages(&store, &conversation, true).await;
    let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
    // Alice's claim left its timeline event (seq 2); the refused ones none.
    assert_eq!(seqs, (1..=SENDS + 2).collect::<Vec<_>>());
    assert_eq!(
        messages[1].event.as_deref(),
        Some(&TimelineEvent::Claimed {
            by: author_of(&alice)
        })
    );
    assert!((messages.iter().filter(|m| m.seq != 2)).all(|m| m.author.kind == AuthorKind::Visitor));
    let summary = stored_summary(&store, &conversation).await;
    assert_eq!(summary.assignee.as_deref(), Some(alice.id.as_str()));
    assert_eq!(summary.last_seq, SENDS + 2);
    assert_eq!(summary.unread, SENDS as u32 + 1);
    let next = store
        .visitor_send(visitor_send("v1", "v-last", "last"))
        .await
        .expect("send");
    assert_eq!(next.seq, SENDS + 3);
}

backend_test!(
    sqlite_exactly_one_claim_wins,
    postgres_exactly_one_claim_wins,
    exactly_one_claim_wins
);
async fn exactly_one_claim_wins(store: Arc<dyn Store>) {
    let mut agents = Vec::new();
    for i in 0..8 {
        agents.push(agent(&store, &format!("agent{i}"), Role::Agent).await);
    }
    let conversation = new_conversation(&store, "v1", "c1", "help").await;
    let claims: Vec<_> = agents
        .iter()
        .cloned()
        .map(|agent| {
            let store = store.clone();
            let conversation = conversation.clone();
            tokio::spawn(async move { store.claim(&conversation, &agent).await })
        })
        .collect();
    let mut winners = Vec::new();
    for claim in claims {
        match claim.await.expect("task") {
            Ok(summary) => winners.push(summary.assignee),
            Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let summary = stored_summary(&store, &conversation).await;
    assert_eq!(summary.assignee, winners[0]);
    assert_eq!(summary.status, ConversationStatus::Active);
}

backend_test!(
    sqlite_assignment_rules_hold,
    postgres_assignment_rules_hold,
    assignment_rules_hold
);
async fn assignment_rules_hold(store: Arc<dyn Store>) {
    let alice = agent(&store, "alice", Role::Agent).await;
    let bob = agent(&store, "bob", Role::Agent).await;
    let root = agent(&store, "root", Role::Admin).await;
    let conversation = new_conversation(&store, "v1", "c1", "help").await;
    // Replying takes a waiting conversation.
    store
        .agent_send(agent_send(&alice, &conversation, "a1", false))
        .await
        .expect("reply");
    let summary = stored_summary(&store, &conversation).await;
    assert_eq!(summary.assignee.as_deref(), Some(alice.id.as_str()));
    assert_eq!(summary.unread, 0);
    assert!(matches!(
        store
            .agent_send(agent_send(&bob, &conversation, "b1", false))
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .agent_send(agent_send(&bob, &conversation, "b2", true))
        .await
        .expect("notes are free");
    assert!(matches!(
        store.resolve(&conversation, &bob).await,
        Err(StoreError::Forbidden(_))
    ));
    assert!(matches!(
        store.transfer(&conversation, &bob, &bob.id).await,
        Err(StoreError::Forbidden(_))
    ));
    assert!(matches!(
        store.transfer(&conversation, &alice, "nobody").await,
        Err(StoreError::NotFound(_))
    ));
    let moved = store
        .transfer(&conversation, &root, &bob.id)
        .await
        .expect("admin transfers");
    assert_eq!(moved.assignee.as_deref(), Some(bob.id.as_str()));
    let resolved = store.resolve(&conversation, &bob).await.expect("resolve");
    assert_eq!(resolved.status, ConversationStatus::Resolved);
    assert!(store.open_conversations().await.expect("read").is_empty());

    // The visitor writing again reopens it, unassigned.
    let again = store
        .visitor_send(visitor_send("v1", "c2", "one more"))
        .await
        .expect("send");
    assert_eq!(again.conversation_id, conversation);
    let summary = stored_summary(&store, &conversation).await;
    assert_eq!(
        (summary.status, summary.assignee),
        (ConversationStatus::Waiting, None)
    );
    assert_eq!(summary.preview, "one more");
    assert!(matches!(
        store.claim("missing", &alice).await,
        Err(StoreError::NotFound(_))
    ));
}

backend_test!(
    sqlite_read_marks_move_forward_and_count_unread,
    postgres_read_marks_move_forward_and_count_unread,
    read_marks_move_forward_and_count_unread
);
async fn read_marks_move_forward_and_count_unread(store: Arc<dyn Store>) {
    let alice = agent(&store, "alice", Role::Agent).await;
    let conversation = new_conversation(&store, "v1", "c1", "one").await;
    // `unread` counts for the agent who answers the visitor: the assignee.
    // (The claim's timeline event takes seq 2: "two" is 3, "three" 4.)
    store.claim(&conversation, &alice).await.expect("claim");
    store
        .visitor_send(visitor_send("v1", "c2", "two"))
        .await
        .expect("send");
    store
        .visitor_send(visitor_send("v1", "c3", "three"))
        .await
        .expect("send");
    let unread = |store: Arc<dyn Store>, conversation: String| async move {
        stored_summary(&store, &conversation).await.unread
    };
    assert_eq!(unread(store.clone(), conversation.clone()).await, 3);
    store
        .mark_read(&conversation, Reader::Agent(&alice), 3)
        .await
        .expect("read");
    assert_eq!(unread(store.clone(), conversation.clone()).await, 1);
    store
        .mark_read(&conversation, Reader::Agent(&alice), 2)
        .await
        .expect("backwards is a no-op");
    assert_eq!(unread(store.clone(), conversation.clone()).await, 1);
    store
        .mark_read(&conversation, Reader::Visitor, 99)
        .await
        .expect("read");
    let summary = stored_summary(&store, &conversation).await;
    assert_eq!(summary.visitor_read_seq, 4, "capped at the last message");
}

backend_test!(
    sqlite_agents_and_profiles_round_trip,
    postgres_agents_and_profiles_round_trip,
    agents_and_profiles_round_trip
);
async fn agents_and_profiles_round_trip(store: Arc<dyn Store>) {
    let alice = agent(&store, "alice", Role::Admin).await;
    assert!(matches!(
        store.add_agent("alice", Role::Agent, "other-hash").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .agent_by_token_hash("hash-of-alice")
            .await
            .expect("read"),
        Some(alice.clone())
    );
    store.disable_agent("alice").await.expect("disable");
    assert_eq!(
        store
            .agent_by_token_hash("hash-of-alice")
            .await
            .expect("read"),
        None
    );
    assert!(matches!(
        store.disable_agent("nobody").await,
        Err(StoreError::NotFound(_))
    ));
    let accounts = store.agents().await.expect("list");
    assert!(accounts[0].disabled);

    // A visitor without a conversation is not written; one with is updated.
    let details = VisitorDetails {
        profile: kefu_protocol::visitor::VisitorProfile {
            email: Some("ming@example.com".into()),
            ..Default::default()
        },
        user_agent: Some("test".into()),
        address: Some("203.0.113.0/24".into()),
    };
    store
        .update_visitor("v1", details.clone())
        .await
        .expect("update");
    assert_eq!(store.visitor_conversation("v1").await.expect("read"), None);
    let conversation = new_conversation(&store, "v1", "c1", "hi").await;
    store.update_visitor("v1", details).await.expect("update");
    let summary = stored_summary(&store, &conversation).await;
    assert_eq!(summary.visitor.email.as_deref(), Some("ming@example.com"));
    assert_eq!(summary.visitor.user_agent.as_deref(), Some("test"));
    assert_eq!(summary.visitor.address.as_deref(), Some("203.0.113.0/24"));
    assert!(!store.visitor_secret().await.expect("secret").is_empty());
}

backend_test!(
    sqlite_a_send_changes_the_visitor_only_by_what_it_says,
    postgres_a_send_changes_the_visitor_only_by_what_it_says,
    a_send_changes_the_visitor_only_by_what_it_says
);
/// What a send says of its visitor is stored with it, and a field it does
/// not give keeps the stored value: on PostgreSQL, a send that says
/// nothing new no longer writes the visitor's row at all.
async fn a_send_changes_the_visitor_only_by_what_it_says(store: Arc<dyn Store>) {
    let said = |name: Option<&str>, page: Option<&str>| VisitorDetails {
        profile: kefu_protocol::visitor::VisitorProfile {
            name: name.map(str::to_owned),
            page_url: page.map(str::to_owned),
            ..Default::default()
        },
        user_agent: None,
        address: None,
    };
    let sends = [
        (said(Some("Ann"), Some("https://example.com/a")), "Ann"),
        (said(Some("Ann"), Some("https://example.com/a")), "Ann"),
        (said(Some("Anna"), None), "Anna"),
        (said(None, None), "Anna"),
        (said(Some("Anna"), Some("https://example.com/b")), "Anna"),
    ];
    let mut conversation = String::new();
    for (n, (details, author)) in sends.into_iter().enumerate() {
        let mut send = visitor_send("v1", &format!("c{n}"), "hi");
        send.details = details;
        let message = store.visitor_send(send).await.expect("send");
        assert_eq!(message.author.name, author, "send {n}");
        conversation = message.conversation_id;
    }
    let summary = stored_summary(&store, &conversation).await;
    assert_eq!(summary.visitor.name, "Anna");
    assert_eq!(
        summary.visitor.page_url.as_deref(),
        Some("https://example.com/b"),
        "a field that changed alone is stored"
    );
    assert_eq!(summary.last_seq, 5);
}

backend_test!(
    sqlite_export_pages_through_every_conversation,
    postgres_export_pages_through_every_conversation,
    export_pages_through_every_conversation
);
async fn export_pages_through_every_conversation(store: Arc<dyn Store>) {
    store.health().await.expect("a fresh store is healthy");
    let mut expected = Vec::new();
    for visitor in ["v1", "v2", "v3"] {
        let message = store
            .visitor_send(visitor_send(visitor, "c1", "hello"))
            .await
            .expect("send");
        expected.push(message.conversation_id);
    }
    expected.sort();
    let first = store.conversation_ids(None, None, 2).await.expect("page 1");
    assert_eq!(first, expected[..2]);
    let rest = store
        .conversation_ids(None, first.last().map(String::as_str), 2)
        .await
        .expect("page 2");
    assert_eq!(rest, expected[2..]);
    let future = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    assert!(
        store
            .conversation_ids(Some(future), None, 10)
            .await
            .expect("none since")
            .is_empty()
    );
}

/// The SQLite writer keeps summaries in memory and applies messages to them
/// there; what it publishes must be what the database then says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_published_summaries_match_the_database() {
    use kefu_protocol::visitor::VisitorProfile;
    use kefu_relay::store::Change;

    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("kefu.db").display());
    let (feed, mut changes) = tokio::sync::mpsc::channel(16);
    let store = store::open(&url, Some(feed)).await.expect("open SQLite");
    let alice = agent(&store, "alice", Role::Agent).await;

    // Each step must publish exactly one change (a reopen two: its event,
    // then the message), the last with a summary the database agrees with.
    async fn published_matches(
        store: &Arc<dyn Store>,
        changes: &mut tokio::sync::mpsc::Receiver<Change>,
        step: &str,
    ) -> String {
        let summary_of = |change| match change {
            Change::Message { summary, .. }
            | Change::Summary { summary }
            | Change::PageViews { summary, .. }
            | Change::Read { summary, .. } => summary,
        };
        let mut summary = summary_of(changes.try_recv().expect(step));
        if step.starts_with("reopening") {
            summary = summary_of(changes.try_recv().expect(step));
        }
        assert!(changes.try_recv().is_err(), "{step}: one change");
        let stored = stored_summary(store, &summary.id).await;
        assert_eq!(summary, stored, "{step}");
        summary.id
    }

    let conversation = new_conversation(&store, "v1", "c1", "hello").await;
    published_matches(&store, &mut changes, "first message").await;
    let mut with_profile = visitor_send("v1", "c2", "it is about my order");
    with_profile.details = VisitorDetails {
        profile: VisitorProfile {
            name: Some("Ann".into()),
            page_url: Some("https://shop.example/cart".into()),
            ..VisitorProfile::default()
        },
        user_agent: Some("Firefox".into()),
        address: Some("2001:db8::7".into()),
    };
    store.visitor_send(with_profile).await.expect("send");
    published_matches(&store, &mut changes, "message with a profile").await;
    store
        .visitor_send(visitor_send("v1", "c2", "it is about my order"))
        .await
        .expect("resend");
    assert!(changes.try_recv().is_err(), "a resend publishes nothing");

    store
        .agent_send(agent_send(&alice, &conversation, "a1", false))
        .await
        .expect("reply");
    published_matches(&store, &mut changes, "reply that assigns").await;
    store
        .agent_send(agent_send(&alice, &conversation, "a2", true))
        .await
        .expect("note");
    published_matches(&store, &mut changes, "internal note").await;
    store
        .visitor_send(visitor_send("v1", "c3", "thanks"))
        .await
        .expect("send");
    published_matches(&store, &mut changes, "message to an assigned conversation").await;
    store
        .mark_read(&conversation, Reader::Agent(&alice), 99)
        .await
        .expect("read");
    published_matches(&store, &mut changes, "agent read").await;
    store.resolve(&conversation, &alice).await.expect("resolve");
    published_matches(&store, &mut changes, "resolve").await;
    store
        .visitor_send(visitor_send("v1", "c4", "one more thing"))
        .await
        .expect("send");
    let reopened = published_matches(&store, &mut changes, "reopening message").await;
    assert_eq!(reopened, conversation);
    store.close().await;
}

mod deletion;
mod files;
mod search;
mod timeline;
mod trail;
