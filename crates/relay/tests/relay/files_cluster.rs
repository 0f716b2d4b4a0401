//! Files in a cluster: relays sharing one PostgreSQL database and one
//! `files_dir` serve every file whichever relay took the upload; a
//! long-poll visitor uploads and sends like a WebSocket one; a PostgreSQL
//! relay told no `files_dir` refuses uploads instead of keeping files only
//! it could serve.

use kefu_protocol::agent::Role;
use kefu_protocol::files::FileLink;
use kefu_protocol::{Attachment, ErrorCode};
use kefu_testkit::http::{Client, Method};
use kefu_testkit::{TestDatabase, TestRelay};
use serde_json::json;

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
    let bearer = format!("Bearer {}", visitor.token());
    let client = Client::new();
    let answer = client
        .post(
            a.addr,
            "/api/files?name=invoice.pdf",
            &[("authorization", bearer.as_str())],
            PDF.to_vec(),
        )
        .await
        .expect("upload");
    assert_eq!(answer.status, 201, "{}", answer.body);
    let file: Attachment = serde_json::from_str(&answer.body).expect("attachment");
    let (status, body) = visitor
        .post(json!({"type": "send", "client_id": "c1", "text": "", "attachments": [file.id]}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"ack\""), "{body}");

    // The agent on relay B sees it and fetches it from relay B.
    let message = agent.next_message().await;
    assert_eq!(message.attachments, vec![file.clone()]);
    let agent_bearer = format!("Bearer {token}");
    let path = format!("/api/files/{}/link", file.id);
    let link = client
        .request(
            Method::GET,
            b.addr,
            &path,
            &[("authorization", agent_bearer.as_str())],
            Vec::new(),
        )
        .await
        .expect("link");
    assert_eq!(link.status, 200, "{}", link.body);
    let link: FileLink = serde_json::from_str(&link.body).expect("link");
    let got = client.get(b.addr, &link.url).await.expect("download");
    assert_eq!(got.status, 200);
    assert_eq!(got.body.as_bytes(), PDF);

    // Without files_dir a PostgreSQL relay keeps no files.
    let c = TestRelay::on_database(&database.url, |_| {}).await;
    let refused = client
        .post(
            c.addr,
            "/api/files?name=x.pdf",
            &[("authorization", bearer.as_str())],
            PDF.to_vec(),
        )
        .await
        .expect("upload");
    assert_eq!(refused.status, 404, "{}", refused.body);
    assert!(refused.body.contains(ErrorCode::NotFound.as_str()));
    for relay in [a, b, c] {
        relay.stop().await;
    }
    database.drop_database().await;
}
