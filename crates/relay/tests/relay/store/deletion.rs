//! Deleting conversations, on both backends: a resolved one goes with its
//! messages, notes, events, files' rows, search rows, read marks and
//! visitor; an open or unknown one is skipped; a visitor who writes again
//! starts afresh; the retention read finds only resolved ones gone quiet.

use std::sync::Arc;

use kefu_protocol::AuthorKind;
use kefu_protocol::agent::Role;
use kefu_relay::store::{self, Reader, Store};
use kefu_testkit::TestDatabase;

use super::files::{owner, thumbnail_digest, upload};
use super::search::search;
use super::trail::page;
use super::{agent, agent_send, conversation_messages, new_conversation, visitor_send};

async fn search_hits(store: &Arc<dyn Store>, text: &str) -> Vec<String> {
    let hits = search(store, text).await;
    hits.into_iter().map(|hit| hit.conversation.id).collect()
}

backend_test!(
    sqlite_deleting_removes_a_resolved_conversation_whole,
    postgres_deleting_removes_a_resolved_conversation_whole,
    deleting_removes_a_resolved_conversation_whole
);
async fn deleting_removes_a_resolved_conversation_whole(store: Arc<dyn Store>) {
    let alice = agent(&store, "alice", Role::Agent).await;
    let gone = new_conversation(&store, "v1", "c1", "my parcel zebrafish").await;
    // Same id length, so the same made-up digest: a blob both share.
    let file = upload(&store, "f1", owner(AuthorKind::Visitor, "v1"), Some(&gone)).await;
    let mut with_file = visitor_send("v1", "c2", "the photo");
    with_file.attachments = vec![file.id.clone()];
    store.visitor_send(with_file).await.expect("send file");
    // An upload never sent is the visitor's too.
    upload(&store, "pending-1", owner(AuthorKind::Visitor, "v1"), None).await;
    store
        .agent_send(agent_send(&alice, &gone, "a1", false))
        .await
        .expect("reply");
    store
        .agent_send(agent_send(&alice, &gone, "n1", true))
        .await
        .expect("note");
    store
        .mark_read(&gone, Reader::Agent(&alice), 4)
        .await
        .expect("read");
    // (A read mark left behind would fail the deletion: a foreign key.)
    assert!(
        store
            .record_page_views("v1", vec![page(1)])
            .await
            .expect("trail")
    );
    store.resolve(&gone, &alice).await.expect("resolve");

    let open = new_conversation(&store, "v2", "c1", "another zebrafish").await;
    let kept = upload(&store, "f2", owner(AuthorKind::Visitor, "v2"), Some(&open)).await;
    let mut with_kept = visitor_send("v2", "c2", "mine");
    with_kept.attachments = vec![kept.id.clone()];
    store.visitor_send(with_kept).await.expect("send file");

    let asked = [gone.clone(), open.clone(), "no-such".to_owned()];
    let deleted = store.delete_conversations(&asked).await.expect("delete");
    assert_eq!(
        deleted.conversations,
        std::slice::from_ref(&gone),
        "open and unknown skipped"
    );
    let mut digests = deleted.digests.clone();
    digests.sort();
    let mut expected = vec![
        format!("{:064}", 2),
        thumbnail_digest("f1"),
        format!("{:064}", 9),
        thumbnail_digest("pending-1"),
    ];
    expected.sort();
    assert_eq!(digests, expected);

    assert!(store.conversation(&gone).await.expect("read").is_none());
    assert!(conversation_messages(&store, &gone, true).await.is_empty());
    assert_eq!(store.visitor_conversation("v1").await.expect("read"), None);
    assert!(store.page_trail("v1").await.expect("trail").is_empty());
    assert!(store.file(&file.id).await.expect("file").is_none());
    assert_eq!(
        search_hits(&store, "zebrafish").await,
        std::slice::from_ref(&open)
    );
    // The other conversation's file still names the shared blob.
    let named = store.file_digests().await.expect("digests");
    assert!(named.contains(&format!("{:064}", 2)));
    // Asked one by one, as a deletion asks of its files' blobs: the shared
    // file and thumbnail are still named, the unsent upload's are not.
    for (digest, still_named) in [
        (format!("{:064}", 2), true),
        (thumbnail_digest("f1"), true),
        (format!("{:064}", 9), false),
        (thumbnail_digest("pending-1"), false),
    ] {
        assert_eq!(
            store.names_digest(&digest).await.expect("named"),
            still_named,
            "{digest}"
        );
    }
    assert!(store.file(&kept.id).await.expect("file").is_some());
    assert_eq!(conversation_messages(&store, &open, true).await.len(), 2);

    // Again: nothing left to delete.
    let again = store
        .delete_conversations(std::slice::from_ref(&gone))
        .await
        .expect("again");
    assert!(again.conversations.is_empty());

    // The visitor starts afresh.
    let back = store
        .visitor_send(visitor_send("v1", "c1", "hello again"))
        .await
        .expect("send");
    assert_ne!(back.conversation_id, gone);
    assert_eq!(back.seq, 1);
}

backend_test!(
    sqlite_retention_finds_resolved_conversations_gone_quiet,
    postgres_retention_finds_resolved_conversations_gone_quiet,
    retention_finds_resolved_conversations_gone_quiet
);
async fn retention_finds_resolved_conversations_gone_quiet(store: Arc<dyn Store>) {
    let alice = agent(&store, "alice", Role::Agent).await;
    let old = new_conversation(&store, "v1", "c1", "old").await;
    let resolved = store.resolve(&old, &alice).await.expect("resolve");
    let open_old = new_conversation(&store, "v2", "c1", "still open").await;
    // A cutoff strictly after everything so far, in the store's milliseconds.
    let cutoff = resolved.updated_at + time::Duration::milliseconds(1);
    while time::OffsetDateTime::now_utc() < cutoff {
        tokio::task::yield_now().await;
    }
    let recent = new_conversation(&store, "v3", "c1", "recent").await;
    store.resolve(&recent, &alice).await.expect("resolve");

    let expired = store
        .expired_conversations(cutoff, 10)
        .await
        .expect("expired");
    assert_eq!(
        expired,
        [old],
        "not {open_old} (open) nor {recent} (recent)"
    );
}
