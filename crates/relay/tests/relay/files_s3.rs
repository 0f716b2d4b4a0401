//! Files in a cluster kept in an S3-compatible store: a file uploaded
//! through relay A downloads through relay B, both relay processes on one
//! PostgreSQL database and one bucket of a local S3 server (moto's server
//! mode, `pip install 'moto[server]'`).
//!
//! Without `moto_server` (or PostgreSQL) the test prints a notice and
//! passes, unless `KEFU_REQUIRE_S3=1` (CI sets it) makes that a failure.

use std::ffi::OsStr;
use std::process::Stdio;

use kefu_protocol::agent::Role;
use kefu_protocol::visitor::VisitorRequest;
use kefu_testkit::http::{Client, Method};
use kefu_testkit::{PATIENCE, RelayProcess, TestDatabase, accounts};
use tokio::process::{Child, Command};

use crate::files::{download, upload, uploaded};
use crate::support::KEFU_RELAY;

const BUCKET: &str = "kefu-files";
const PDF: &[u8] = b"%PDF-1.4\n% kept in S3\n%%EOF\n";

/// A moto S3 server on a free port with the bucket made, or `None`.
async fn moto() -> Option<(Child, String)> {
    let port = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.ok()?;
        listener.local_addr().ok()?.port()
    };
    let spawned = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let Ok(child) = spawned else {
        assert!(
            std::env::var_os("KEFU_REQUIRE_S3").is_none(),
            "KEFU_REQUIRE_S3 is set but moto_server does not start"
        );
        eprintln!("notice: skipping an S3 test: pip install 'moto[server]' to run it");
        return None;
    };
    let addr = format!("127.0.0.1:{port}").parse().ok()?;
    let client = Client::new();
    // Made once the server answers: moto takes a moment to start.
    let made = tokio::time::timeout(PATIENCE * 3, async {
        loop {
            let answer = client
                .request(Method::PUT, addr, &format!("/{BUCKET}"), &[], Vec::new())
                .await;
            if answer.is_ok_and(|answer| answer.status == 200) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(made.is_ok(), "moto_server did not answer");
    Some((child, format!("http://127.0.0.1:{port}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_uploaded_through_one_relay_downloads_through_another_from_s3() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let Some((_moto, endpoint)) = moto().await else {
        database.drop_database().await;
        return;
    };
    let env: Vec<(&str, &OsStr)> = vec![
        ("AWS_ENDPOINT", OsStr::new(&endpoint)),
        ("AWS_ALLOW_HTTP", OsStr::new("true")),
        ("AWS_REGION", OsStr::new("us-east-1")),
        ("AWS_ACCESS_KEY_ID", OsStr::new("test")),
        ("AWS_SECRET_ACCESS_KEY", OsStr::new("test")),
    ];
    let url = format!("s3://{BUCKET}");
    let args = ["--files-url", url.as_str()];
    let token = accounts::add_agent(&database.url, "alice", Role::Agent).await;
    let a = RelayProcess::start_with_env(KEFU_RELAY, &database.url, &args, &env).await;
    let b = RelayProcess::start_with_env(KEFU_RELAY, &database.url, &args, &env).await;
    let mut agent = b.agent().await;
    agent.hello(&token).await;

    let mut visitor = a.visitor().await;
    let welcome = visitor.hello(None, None).await;
    let answer = upload(a.addr, &welcome.token, "name=invoice.pdf", PDF.to_vec()).await;
    let file = uploaded(&answer);
    visitor
        .send(&VisitorRequest::Send {
            client_id: "c1".into(),
            text: "from A".into(),
            attachments: vec![file.id.clone()],
        })
        .await;

    let message = agent.next_message().await;
    assert_eq!(message.attachments, vec![file.clone()]);
    let got = download(b.addr, &token, &file.id).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.body.as_bytes(), PDF);

    a.kill().await;
    b.kill().await;
    database.drop_database().await;
}
