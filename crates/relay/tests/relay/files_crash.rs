//! `kill -9` during uploads never leaves an acknowledged message naming a
//! missing file: a relay process is killed while files are being uploaded
//! (one of them half-sent) and sent; after a restart on the same data every
//! message of the conversation, acknowledged or not, downloads each of its
//! files with the bytes uploaded.

use std::collections::HashMap;

use kefu_protocol::Message;
use kefu_protocol::visitor::{VisitorEvent, VisitorRequest};
use kefu_testkit::RelayProcess;
use tokio::io::AsyncWriteExt as _;

use crate::files::{download, upload, uploaded};
use crate::support::{KEFU_RELAY, sqlite_url};

const RELAY_ARGS: &[&str] = &["--uploads-per-minute", "100000"];

#[tokio::test]
async fn sigkill_during_uploads_leaves_no_message_without_its_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = sqlite_url(&dir.path().join("kefu.db"));
    let relay = RelayProcess::start(KEFU_RELAY, &database, RELAY_ARGS).await;
    let (mut visitor, welcome) = relay.new_visitor().await;
    let token = welcome.token.clone();

    // An upload cut off by the kill: headers and half its body.
    let mut half_sent = tokio::net::TcpStream::connect(relay.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/files?name=big.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: 2000000\r\n\r\n"
    );
    half_sent.write_all(head.as_bytes()).await.expect("head");
    half_sent
        .write_all(&vec![b'z'; 1_000_000])
        .await
        .expect("half the body");

    // Upload and send, pipelining the sends, until some are acknowledged;
    // then kill the relay with uploads and sends in flight.
    let mut contents: HashMap<String, String> = HashMap::new();
    let mut acked = Vec::new();
    for i in 0.. {
        let body = format!("file {i} of the crash test");
        let file =
            uploaded(&upload(relay.addr, &token, "name=note.txt", body.clone().into()).await);
        contents.insert(file.id.clone(), body);
        visitor
            .send(&VisitorRequest::Send {
                client_id: format!("m{i}"),
                text: String::new(),
                attachments: vec![file.id],
            })
            .await;
        while let Ok(Some(event)) =
            tokio::time::timeout(std::time::Duration::ZERO, visitor.try_next()).await
        {
            if let VisitorEvent::Ack(ack) = event {
                acked.push(ack.client_id);
            }
        }
        if acked.len() >= 10 {
            break;
        }
    }
    // One more upload in flight as the process dies.
    let late = tokio::spawn({
        let (addr, token) = (relay.addr, token.clone());
        async move { upload(addr, &token, "name=late.txt", b"late".to_vec()).await }
    });
    relay.kill().await;
    let _ = late.await;
    drop(half_sent);

    let relay = RelayProcess::start(KEFU_RELAY, &database, RELAY_ARGS).await;
    let mut visitor = relay.visitor().await;
    visitor
        .send(&VisitorRequest::Hello {
            token: Some(token.clone()),
            after_seq: Some(0),
            profile: None,
        })
        .await;
    visitor
        .send(&VisitorRequest::Send {
            client_id: "marker".into(),
            text: "after restart".into(),
            attachments: Vec::new(),
        })
        .await;
    let mut stored: Vec<Message> = Vec::new();
    loop {
        match visitor.next().await {
            VisitorEvent::Message(message) => stored.push(message),
            VisitorEvent::Ack(ack) if ack.client_id == "marker" => break,
            _ => {}
        }
    }
    for client_id in &acked {
        assert!(
            stored.iter().any(|message| &message.client_id == client_id),
            "acked {client_id} survived"
        );
    }
    let mut files = 0;
    for message in &stored {
        for file in &message.attachments {
            let got = download(relay.addr, &token, &file.id).await;
            assert_eq!(
                got.status, 200,
                "{} names a missing file",
                message.client_id
            );
            assert_eq!(Some(&got.body), contents.get(&file.id));
            files += 1;
        }
    }
    assert!(files >= acked.len(), "every acked message's file came back");
    relay.kill().await;
}
