//! Files in a cluster: relays sharing one PostgreSQL database and one
//! `files_dir` serve every file whichever relay took the upload; a
//! long-poll visitor uploads and sends like a WebSocket one; a PostgreSQL
//! relay told no `files_dir` refuses uploads instead of keeping files only
//! it could serve.

use kefu_protocol::ErrorCode;
use kefu_protocol::agent::Role;
use kefu_testkit::{TestDatabase, TestRelay};
use serde_json::json;

use crate::files::{download, upload, uploaded};
use crate::longpoll::PollVisitor;

const PDF: &[u8] = b"%PDF-1.4\n% uploaded through relay A\n%%EOF\n";

#[tokio::test]
async fn a_file_uploaded_through_one_relay_downloads_through_another() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let shared = tempfile::tempdir().expect("shared files dir");
    let files_dir = shared.path().to_owned();
    let a = TestRelay::on_database(&database.url, |config| {
        config.files_dir = Some(files_dir.clone());
    })
    .await;
    let b = TestRelay::on_database(&database.url, |config| {
        config.files_dir = Some(files_dir.clone());
    })
    .await;
    let token = b.add_agent("alice", Role::Agent).await;
    let (mut agent, _) = b.welcomed_agent(&token).await;

    // A long-poll visitor on relay A uploads and sends.
    let visitor = PollVisitor::hello(a.addr, None).await;
    let answer = upload(a.addr, visitor.token(), "name=invoice.pdf", PDF.to_vec()).await;
    let file = uploaded(&answer);
    let (status, body) = visitor
        .post(json!({"type": "send", "client_id": "c1", "text": "", "attachments": [file.id]}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"ack\""), "{body}");

    // The agent on relay B sees it and fetches it from relay B.
    let message = agent.next_message().await;
    assert_eq!(message.attachments, vec![file.clone()]);
    let got = download(b.addr, &token, &file.id).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body.as_bytes(), PDF);

    // Without files_dir a PostgreSQL relay keeps no files.
    let c = TestRelay::on_database(&database.url, |_| {}).await;
    let refused = upload(c.addr, visitor.token(), "name=x.pdf", PDF.to_vec()).await;
    assert_eq!(refused.status, 404, "{}", refused.body);
    assert!(refused.body.contains(ErrorCode::NotFound.as_str()));
    for relay in [a, b, c] {
        relay.stop().await;
    }
    database.drop_database().await;
}
