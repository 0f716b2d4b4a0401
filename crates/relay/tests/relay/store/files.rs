//! Files in the store, on both backends: a send attaches its author's
//! pending uploads in the message's own write; any other file (somebody
//! else's, one already sent, a made-up id) refuses the whole send and
//! stores nothing; who may read a file; pruning forgets only unsent ones.

use std::sync::Arc;

use kefu_protocol::agent::Role;
use kefu_protocol::files::Thumbnail;
use kefu_protocol::{Attachment, AuthorKind};
use kefu_relay::store::{self, FileOwner, FileReader, NewFile, Store, StoreError};
use kefu_testkit::TestDatabase;

use super::{agent, agent_send, conversation_messages, stored_summary, visitor_send};

pub(super) fn owner(kind: AuthorKind, id: &str) -> FileOwner {
    FileOwner {
        kind,
        id: id.to_owned(),
    }
}

/// Records a 100-byte PNG `id` uploaded by `by`, with a thumbnail.
pub(super) async fn upload(
    store: &Arc<dyn Store>,
    id: &str,
    by: FileOwner,
    conversation_id: Option<&str>,
) -> Attachment {
    let attachment = Attachment {
        id: id.to_owned(),
        name: format!("{id}.png"),
        size: 100,
        content_type: "image/png".to_owned(),
        width: Some(4),
        height: Some(3),
        thumbnail: Some(Thumbnail {
            width: 4,
            height: 3,
        }),
    };
    let file = NewFile {
        attachment: attachment.clone(),
        digest: format!("{:064}", id.len()),
        thumbnail_digest: Some(thumbnail_digest(id)),
        owner: by,
        conversation_id: conversation_id.map(str::to_owned),
    };
    store.add_file(file).await.expect("add file");
    attachment
}

/// The made-up digest of `id`'s thumbnail blob.
pub(super) fn thumbnail_digest(id: &str) -> String {
    format!("t{:063}", id.len())
}

backend_test!(
    sqlite_a_send_attaches_pending_uploads,
    postgres_a_send_attaches_pending_uploads,
    a_send_attaches_pending_uploads
);
async fn a_send_attaches_pending_uploads(store: Arc<dyn Store>) {
    let shot = upload(&store, "f1", owner(AuthorKind::Visitor, "v1"), None).await;
    let pending = store.file("f1").await.expect("read").expect("recorded");
    assert_eq!(pending.message_id, None);
    assert_eq!(pending.attachment, shot, "the thumbnail kept");
    assert_eq!(pending.thumbnail_digest, Some(thumbnail_digest("f1")));
    let stranger = FileReader::Visitor {
        visitor_id: "v2",
        conversation_id: None,
    };
    assert!(
        !pending.readable_by(stranger),
        "pending: its uploader's alone"
    );
    let uploader = owner(AuthorKind::Visitor, "v1");
    assert_eq!(store.file_bytes(None, &uploader).await.expect("bytes"), 100);

    let mut send = visitor_send("v1", "c1", "");
    send.attachments = vec!["f1".to_owned()];
    let message = store.visitor_send(send).await.expect("send");
    assert_eq!(message.attachments, vec![shot.clone()]);
    let stored = conversation_messages(&store, &message.conversation_id, false).await;
    assert_eq!(stored[0].attachments, vec![shot], "history carries them");
    let summary = stored_summary(&store, &message.conversation_id).await;
    assert_eq!(
        summary.preview, "📎 1 file",
        "not an empty line in the queue"
    );

    let sent = store.file("f1").await.expect("read").expect("recorded");
    assert_eq!(sent.message_id.as_deref(), Some(message.id.as_str()));
    let conversation = Some(message.conversation_id.as_str());
    assert!(sent.readable_by(FileReader::Visitor {
        visitor_id: "v1",
        conversation_id: conversation,
    }));
    assert!(sent.readable_by(FileReader::Agent { agent_id: "any" }));
    assert_eq!(
        store
            .file_bytes(conversation, &uploader)
            .await
            .expect("bytes"),
        100,
        "counted once, now in the conversation"
    );

    // An agent's file on an internal note never reaches the visitor.
    let alice = agent(&store, "alice", Role::Agent).await;
    let alice_owns = owner(AuthorKind::Agent, &alice.id);
    upload(&store, "f2", alice_owns, conversation).await;
    let mut note = agent_send(&alice, &message.conversation_id, "n1", true);
    note.attachments = vec!["f2".to_owned()];
    store.agent_send(note).await.expect("note");
    let noted = store.file("f2").await.expect("read").expect("recorded");
    assert!(!noted.public);
    assert!(!noted.readable_by(FileReader::Visitor {
        visitor_id: "v1",
        conversation_id: conversation,
    }));
}

backend_test!(
    sqlite_a_send_naming_another_file_stores_nothing,
    postgres_a_send_naming_another_file_stores_nothing,
    a_send_naming_another_file_stores_nothing
);
async fn a_send_naming_another_file_stores_nothing(store: Arc<dyn Store>) {
    let first = visitor_send("v1", "c1", "hello");
    let conversation = store
        .visitor_send(first)
        .await
        .expect("send")
        .conversation_id;
    upload(&store, "mine", owner(AuthorKind::Visitor, "v1"), None).await;
    upload(&store, "theirs", owner(AuthorKind::Visitor, "v2"), None).await;
    let alice = agent(&store, "alice", Role::Agent).await;

    let refused = |result: Result<kefu_protocol::Message, StoreError>| {
        assert!(matches!(result, Err(StoreError::NotFound(_))), "{result:?}");
    };
    for ids in [
        vec!["theirs"],
        vec!["mine", "made-up"],
        vec!["mine", "mine"],
    ] {
        let mut send = visitor_send("v1", "c2", "look");
        send.attachments = ids.iter().map(|id| id.to_string()).collect();
        refused(store.visitor_send(send).await);
    }
    // The visitor's file is not the agent's to send.
    let mut reply = agent_send(&alice, &conversation, "r1", false);
    reply.attachments = vec!["mine".to_owned()];
    refused(store.agent_send(reply).await);

    assert_eq!(stored_summary(&store, &conversation).await.last_seq, 1);
    let mine = store.file("mine").await.expect("read").expect("recorded");
    assert_eq!(mine.message_id, None, "a refused send attaches nothing");

    let mut send = visitor_send("v1", "c3", "now");
    send.attachments = vec!["mine".to_owned()];
    store.visitor_send(send).await.expect("send");
    // Once sent, it cannot be sent again.
    let mut again = visitor_send("v1", "c4", "again");
    again.attachments = vec!["mine".to_owned()];
    refused(store.visitor_send(again).await);
}

backend_test!(
    sqlite_pruning_forgets_only_unsent_uploads,
    postgres_pruning_forgets_only_unsent_uploads,
    pruning_forgets_only_unsent_uploads
);
async fn pruning_forgets_only_unsent_uploads(store: Arc<dyn Store>) {
    upload(&store, "sent", owner(AuthorKind::Visitor, "v1"), None).await;
    upload(&store, "unsent", owner(AuthorKind::Visitor, "v1"), None).await;
    let mut send = visitor_send("v1", "c1", "");
    send.attachments = vec!["sent".to_owned()];
    store.visitor_send(send).await.expect("send");

    let past = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    assert_eq!(store.prune_files(past).await.expect("prune"), 0, "too new");
    let future = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    assert_eq!(store.prune_files(future).await.expect("prune"), 1);
    assert!(store.file("unsent").await.expect("read").is_none());
    assert!(store.file("sent").await.expect("read").is_some());
    let mut digests = store.file_digests().await.expect("digests");
    digests.sort();
    assert_eq!(
        digests,
        vec![format!("{:064}", "sent".len()), thumbnail_digest("sent")],
        "the sent file's blob and its thumbnail's are kept"
    );
}
