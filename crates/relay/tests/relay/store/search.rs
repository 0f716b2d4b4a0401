//! Search and the paged conversation list, on both backends: Latin,
//! Chinese (terms shorter than a trigram too) and email hits, internal
//! notes flagged, timeline events never found, filters and pages.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use kefu_protocol::agent::search::{SearchField, SearchHit};
use kefu_protocol::agent::{ConversationStatus, Role};
use kefu_protocol::visitor::VisitorProfile;
use kefu_relay::store::{self, AgentSend, ListQuery, SearchQuery, Store, VisitorDetails};
use kefu_testkit::TestDatabase;

use super::{agent, new_conversation, visitor_send};

const BUDGET: Duration = Duration::from_secs(10);

pub(super) async fn search(store: &Arc<dyn Store>, text: &str) -> Vec<SearchHit> {
    let query = SearchQuery::new(text, 50, BUDGET).expect("a query");
    store.search(&query).await.expect("search").hits
}

/// `(conversation, seq)` of each hit, in order.
fn positions(hits: &[SearchHit]) -> Vec<(String, Option<u64>)> {
    hits.iter()
        .map(|hit| (hit.conversation.id.clone(), hit.seq))
        .collect()
}

backend_test!(
    sqlite_search_finds_latin_chinese_and_email_hits,
    postgres_search_finds_latin_chinese_and_email_hits,
    search_finds_latin_chinese_and_email_hits
);
async fn search_finds_latin_chinese_and_email_hits(store: Arc<dyn Store>) {
    let alice = agent(&store, "alice", Role::Agent).await;
    let mut first = visitor_send("v1", "c1", "我想买一件蓝色的衬衫");
    first.details = VisitorDetails {
        profile: VisitorProfile {
            name: Some("Wang Fang".into()),
            email: Some("wang.fang@example.com".into()),
            ..VisitorProfile::default()
        },
        user_agent: None,
        address: None,
    };
    let wang = store
        .visitor_send(first)
        .await
        .expect("send")
        .conversation_id;
    store
        .visitor_send(visitor_send("v1", "c2", "订单号 12345 还没到"))
        .await
        .expect("send");
    let other = new_conversation(&store, "v2", "c1", "Where is my Order? It was blue.").await;
    store.claim(&other, &alice).await.expect("claim");
    let note = AgentSend {
        agent: alice.clone(),
        conversation_id: other.clone(),
        client_id: "n1".into(),
        text: "VIP: refund the order".into(),
        internal: true,
        link: None,
        attachments: Vec::new(),
        origin: None,
    };
    let note = store.agent_send(note).await.expect("note");

    // Two characters: below a trigram, found all the same.
    let blue = search(&store, "蓝色").await;
    assert_eq!(positions(&blue), [(wang.clone(), Some(1))]);
    assert_eq!(blue[0].snippet, "我想买一件蓝色的衬衫");
    assert_eq!(blue[0].field, SearchField::Text);
    assert_eq!(
        positions(&search(&store, "订单").await),
        [(wang.clone(), Some(2))]
    );
    assert_eq!(
        positions(&search(&store, "12345").await),
        [(wang.clone(), Some(2))]
    );
    assert_eq!(
        positions(&search(&store, "衬衫 蓝色").await),
        [(wang.clone(), Some(1))]
    );
    // A pair at the very end of a message, a pair with a longer term, a
    // pair that occurs nowhere, a single character.
    assert_eq!(
        positions(&search(&store, "没到").await),
        [(wang.clone(), Some(2))]
    );
    assert_eq!(
        positions(&search(&store, "12345 订单").await),
        [(wang.clone(), Some(2))]
    );
    assert!(search(&store, "火车").await.is_empty());
    assert!(search(&store, "订单 火车").await.is_empty());
    assert_eq!(
        positions(&search(&store, "衫").await),
        [(wang.clone(), Some(1))]
    );

    // Newest first, ignoring case; the note is found and says it is one.
    let order = search(&store, "ORDER").await;
    assert_eq!(
        positions(&order),
        [(other.clone(), Some(note.seq)), (other.clone(), Some(1))]
    );
    assert!(order[0].internal && !order[1].internal);
    // Every term must be there, inside words too.
    assert_eq!(
        positions(&search(&store, "rder blu").await),
        [(other.clone(), Some(1))]
    );
    assert!(search(&store, "order shirt").await.is_empty());
    // The claim's timeline event ("alice claimed …") is not searchable.
    assert!(search(&store, "claimed").await.is_empty());
    // Wildcards are plain characters.
    assert!(search(&store, "%").await.is_empty());

    let email = search(&store, "wang.fang@example").await;
    assert_eq!(positions(&email), [(wang.clone(), None)]);
    assert_eq!(email[0].field, SearchField::Email);
    assert_eq!(email[0].snippet, "wang.fang@example.com");
    let name = search(&store, "fang").await;
    assert_eq!(name[0].field, SearchField::Name, "{name:?}");
    assert_eq!(name[0].snippet, "Wang Fang");
}

backend_test!(
    sqlite_search_filters_and_pages,
    postgres_search_filters_and_pages,
    search_filters_and_pages
);
async fn search_filters_and_pages(store: Arc<dyn Store>) {
    let alice = agent(&store, "alice", Role::Agent).await;
    let mut conversations = Vec::new();
    for visitor in ["v1", "v2", "v3"] {
        for n in 0..8 {
            let text = format!("ticket {visitor}-{n}");
            let sent = store
                .visitor_send(visitor_send(visitor, &format!("c{n}"), &text))
                .await
                .expect("send");
            if n == 0 {
                conversations.push(sent.conversation_id);
            }
        }
    }
    let middle = store
        .messages(
            &conversations[1],
            store::Page::After { after: 4, limit: 1 },
            false,
        )
        .await
        .expect("read")[0]
        .at;
    store.claim(&conversations[0], &alice).await.expect("claim");
    store
        .resolve(&conversations[0], &alice)
        .await
        .expect("resolve");
    store.claim(&conversations[1], &alice).await.expect("claim");

    // Pages of ten: all 24 once each, newest first.
    let mut query = SearchQuery::new("ticket", 10, BUDGET).expect("query");
    let mut seen = Vec::new();
    loop {
        let page = store.search(&query).await.expect("search");
        assert!(page.hits.len() <= 10);
        seen.extend(page.hits);
        match page.next {
            Some(next) => query.before = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 24);
    let unique: HashSet<_> = positions(&seen).into_iter().collect();
    assert_eq!(unique.len(), 24, "no hit twice");
    assert!(
        seen.windows(2).all(|pair| pair[0].at >= pair[1].at),
        "newest first"
    );
    assert_eq!(seen[0].snippet, "ticket v3-7");

    let filtered = |edit: &dyn Fn(&mut SearchQuery)| {
        let mut query = SearchQuery::new("ticket", 50, BUDGET).expect("query");
        edit(&mut query);
        let store = store.clone();
        async move { store.search(&query).await.expect("search").hits }
    };
    let resolved = filtered(&|q| q.status = Some(ConversationStatus::Resolved)).await;
    assert_eq!(resolved.len(), 8);
    assert!(
        resolved
            .iter()
            .all(|hit| hit.conversation.id == conversations[0])
    );
    let mine = filtered(&|q| q.assignee = Some(alice.id.clone())).await;
    assert_eq!(mine.len(), 16);
    let v3 = filtered(&|q| q.visitor_id = Some("v3".into())).await;
    assert!(v3.len() == 8 && v3.iter().all(|hit| hit.conversation.id == conversations[2]));
    let since = filtered(&|q| q.since = Some(middle)).await;
    assert!(since.iter().all(|hit| hit.at >= middle) && since.len() >= 11);
    let until = filtered(&|q| q.until = Some(middle)).await;
    assert_eq!(
        since.len() + until.len(),
        24,
        "since and until split the hits"
    );
}

backend_test!(
    sqlite_conversations_are_listed_newest_first_in_pages,
    postgres_conversations_are_listed_newest_first_in_pages,
    conversations_are_listed_newest_first_in_pages
);
async fn conversations_are_listed_newest_first_in_pages(store: Arc<dyn Store>) {
    let alice = agent(&store, "alice", Role::Agent).await;
    let mut resolved = Vec::new();
    for n in 0..7 {
        let id = new_conversation(&store, &format!("v{n}"), "c1", "hello").await;
        if n % 2 == 0 {
            store.claim(&id, &alice).await.expect("claim");
            store.resolve(&id, &alice).await.expect("resolve");
            resolved.push(id);
        }
    }
    let mut query = ListQuery {
        status: Some(ConversationStatus::Resolved),
        after: None,
        limit: 3,
        budget: BUDGET,
    };
    let mut listed = Vec::new();
    loop {
        let page = store.list_conversations(&query).await.expect("list");
        listed.extend(page.conversations);
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    let ids: Vec<&str> = listed.iter().map(|c| c.id.as_str()).collect();
    let newest_first: Vec<&str> = resolved.iter().rev().map(String::as_str).collect();
    assert_eq!(ids, newest_first);
    assert!(
        listed
            .iter()
            .all(|c| c.status == ConversationStatus::Resolved)
    );

    query.status = None;
    query.after = None;
    query.limit = 50;
    let all = store.list_conversations(&query).await.expect("list");
    assert_eq!(all.conversations.len(), 7);
    assert_eq!(all.next, None);
}

backend_test!(
    sqlite_a_search_past_its_budget_is_stopped,
    postgres_a_search_past_its_budget_is_stopped,
    a_search_past_its_budget_is_stopped
);
async fn a_search_past_its_budget_is_stopped(store: Arc<dyn Store>) {
    new_conversation(&store, "v1", "c1", "where is my order").await;
    let spent = SearchQuery::new("order", 10, Duration::ZERO).expect("query");
    assert!(
        matches!(
            store.search(&spent).await,
            Err(store::StoreError::TimedOut(_))
        ),
        "a search with no time left is refused"
    );
    let list = ListQuery {
        status: None,
        after: None,
        limit: 10,
        budget: Duration::ZERO,
    };
    assert!(matches!(
        store.list_conversations(&list).await,
        Err(store::StoreError::TimedOut(_))
    ));
    // The connection it held serves the next search, within its budget.
    assert_eq!(search(&store, "order").await.len(), 1);
}

backend_test!(
    sqlite_a_search_sees_every_message_acked_before_it,
    postgres_a_search_sees_every_message_acked_before_it,
    a_search_sees_every_message_acked_before_it
);
/// SQLite indexes after the commit (migration 0015): a search must still
/// find every message whose send returned before the search started, even
/// when they come faster than one batch and none had time to be indexed.
async fn a_search_sees_every_message_acked_before_it(store: Arc<dyn Store>) {
    const SENDS: usize = 300;
    let sends = (0..SENDS).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let send = visitor_send(&format!("v{i}"), "c1", &format!("parcel {i}"));
            store.visitor_send(send).await.expect("send");
        })
    });
    for send in sends.collect::<Vec<_>>() {
        send.await.expect("sender");
    }
    let mut found = HashSet::new();
    let mut query = SearchQuery::new("parcel", 50, BUDGET).expect("a query");
    loop {
        let page = store.search(&query).await.expect("search");
        found.extend(page.hits.iter().map(|hit| hit.conversation.id.clone()));
        match page.next {
            Some(before) => query.before = Some(before),
            None => break,
        }
    }
    assert_eq!(found.len(), SENDS, "one hit per conversation");
}

backend_test!(
    sqlite_a_resend_is_found_once,
    postgres_a_resend_is_found_once,
    a_resend_is_found_once
);
/// A resend answers with its original and adds nothing to search, whether
/// it comes alone or in the same batch as other writes (on PostgreSQL the
/// batch itself writes the search rows of the messages it stored).
async fn a_resend_is_found_once(store: Arc<dyn Store>) {
    let alice = agent(&store, "alice", Role::Agent).await;
    let conversation = new_conversation(&store, "v1", "c1", "parcel one").await;
    let writes = (0..4).map(|_| {
        let store = store.clone();
        let reply = super::agent_send(&alice, &conversation, "a1", false);
        tokio::spawn(async move {
            let resent = store.visitor_send(visitor_send("v1", "c1", "parcel one"));
            let reply = store.agent_send(AgentSend {
                text: "parcel two".into(),
                ..reply
            });
            (resent.await.expect("resend"), reply.await.expect("reply"))
        })
    });
    for write in writes.collect::<Vec<_>>() {
        let (resent, reply) = write.await.expect("writer");
        assert_eq!((resent.seq, reply.seq), (1, 2));
    }
    let hits = positions(&search(&store, "parcel").await);
    assert_eq!(
        hits,
        [(conversation.clone(), Some(2)), (conversation, Some(1))]
    );
}

/// Without any search asking, SQLite indexes a message within a bounded
/// time of its ack (about 2 × 200 ms; the deadline here leaves room for a
/// loaded machine): the backlog's mark reaches the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_indexes_messages_nobody_searches_for() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kefu.db");
    let store = store::open(&format!("sqlite://{}", path.display()), None)
        .await
        .expect("open SQLite");
    new_conversation(&store, "v1", "c1", "where is my parcel").await;

    let file = rusqlite::Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("open the file");
    let indexed = || {
        file.query_row(
            "SELECT count(*) FROM message_search WHERE message_search MATCH 'parcel'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .expect("read the index")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while indexed() == 0 {
        assert!(std::time::Instant::now() < deadline, "indexed in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(file);
    store.close().await;
}

/// Another process opening the database (an admin command while the relay
/// runs) indexes what it finds in the backlog; the relay's own writer must
/// then not index the same messages again, or a search finds each twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_messages_indexed_by_another_opener_are_not_indexed_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("kefu.db").display());
    let relay = store::open(&url, None).await.expect("open SQLite");
    let mut conversations = Vec::new();
    for visitor in ["v1", "v2", "v3"] {
        conversations.push(new_conversation(&relay, visitor, "c1", "lost walrus").await);
    }
    // Opened at once, with the three still in the backlog: its writer
    // indexes them on opening.
    let admin = store::open(&url, None).await.expect("open it again");
    assert_eq!(search(&admin, "walrus").await.len(), 3);
    // The relay's writer indexes when its own search asks.
    let mut found = positions(&search(&relay, "walrus").await);
    found.sort();
    conversations.sort();
    let once: Vec<_> = conversations.into_iter().map(|id| (id, Some(1))).collect();
    assert_eq!(found, once, "each found once");
    admin.close().await;
    relay.close().await;
}
