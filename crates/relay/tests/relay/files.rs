//! Files over HTTP on a real relay: upload, send, signed link, download,
//! for visitors and agents; every limit refused with its documented error
//! and nothing stored; another conversation's file and tampered links
//! refused; what a download's headers promise.

use std::net::SocketAddr;

use kefu_protocol::agent::Role;
use kefu_protocol::agent::{AgentEvent, AgentRequest};
use kefu_protocol::files::FileLink;
use kefu_protocol::visitor::{VisitorEvent, VisitorRequest};
use kefu_protocol::{Attachment, ErrorCode, ErrorFrame};
use kefu_testkit::TestRelay;
use kefu_testkit::http::{Client, Response};

/// A 32×16 JPEG whose EXIF segment carries a GPS position.
fn jpeg_with_exif() -> Vec<u8> {
    let mut jpeg = vec![0xFF, 0xD8];
    // APP0 JFIF.
    jpeg.extend([0xFF, 0xE0, 0x00, 0x10]);
    jpeg.extend(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    // APP1 EXIF.
    let exif = b"Exif\0\0GPS-LATITUDE-48.8584N";
    jpeg.extend([0xFF, 0xE1, 0x00, (exif.len() + 2) as u8]);
    jpeg.extend(exif);
    // SOF0: 8 bits, 16 high, 32 wide, one component.
    jpeg.extend([
        0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x10, 0x00, 0x20, 0x01, 0x01, 0x11, 0x00,
    ]);
    // SOS, a little scan data, EOI.
    jpeg.extend([0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
    jpeg.extend([0x12, 0x34, 0x56, 0xFF, 0xD9]);
    jpeg
}

pub(crate) const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n";

/// `POST /api/files?{query}` as the holder of `token`.
pub(crate) async fn upload(addr: SocketAddr, token: &str, query: &str, body: Vec<u8>) -> Response {
    let bearer = format!("Bearer {token}");
    Client::new()
        .post(
            addr,
            &format!("/api/files?{query}"),
            &[("authorization", bearer.as_str())],
            body,
        )
        .await
        .expect("upload")
}

pub(crate) fn uploaded(response: &Response) -> Attachment {
    assert_eq!(response.status, 201, "{}", response.body);
    serde_json::from_str(&response.body).expect("an attachment")
}

fn refused(response: &Response, status: u16, code: ErrorCode) {
    assert_eq!(response.status, status, "{}", response.body);
    let error: VisitorEvent = serde_json::from_str(&response.body).expect("an error frame");
    let VisitorEvent::Error(ErrorFrame { code: got, .. }) = error else {
        panic!("not an error: {}", response.body);
    };
    assert_eq!(got, code);
}

/// `GET /api/files/{file_id}/link` as the holder of `token`.
pub(crate) async fn link(addr: SocketAddr, token: &str, file_id: &str) -> Response {
    let bearer = format!("Bearer {token}");
    Client::new()
        .request(
            kefu_testkit::http::Method::GET,
            addr,
            &format!("/api/files/{file_id}/link"),
            &[("authorization", bearer.as_str())],
            Vec::new(),
        )
        .await
        .expect("link")
}

/// A fresh link to `file_id` as the holder of `token`.
pub(crate) async fn signed(addr: SocketAddr, token: &str, file_id: &str) -> FileLink {
    let answer = link(addr, token, file_id).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    serde_json::from_str(&answer.body).expect("a link")
}

/// The file through a fresh link, as the holder of `token`.
pub(crate) async fn download(addr: SocketAddr, token: &str, file_id: &str) -> Response {
    let link = signed(addr, token, file_id).await;
    Client::new().get(addr, &link.url).await.expect("download")
}

/// `kefu-relay prune-files` with no grace: what it removed.
pub(crate) async fn prune_now(relay: &TestRelay) -> kefu_relay::prune::Pruned {
    let root = relay.dir.path().join("kefu.db.files");
    let store = kefu_relay::store::open(&relay.database, None)
        .await
        .expect("open");
    let blobs = kefu_relay::blobs::BlobDir::open(&root).expect("blobs");
    let zero = std::time::Duration::ZERO;
    let pruned = kefu_relay::prune::prune_files(store.as_ref(), &blobs, zero, zero)
        .await
        .expect("prune");
    store.close().await;
    pruned
}

/// The blobs the relay keeps (beside its SQLite file).
pub(crate) fn blob_count(relay: &TestRelay) -> usize {
    blobs_under(&relay.dir.path().join("kefu.db.files"))
}

/// The blobs in a files directory.
pub(crate) fn blobs_under(root: &std::path::Path) -> usize {
    std::fs::read_dir(root)
        .expect("files dir")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name() != "tmp")
        .map(|fan_out| std::fs::read_dir(fan_out.path()).expect("fan-out").count())
        .sum()
}

#[tokio::test]
async fn a_visitors_screenshot_goes_to_the_agent_without_its_exif() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let (mut agent, _) = relay.welcomed_agent(&token).await;
    let (mut visitor, welcome) = relay.new_visitor().await;

    let shot = uploaded(
        &upload(
            relay.addr,
            &welcome.token,
            "name=..%2Fshot.jpg",
            jpeg_with_exif(),
        )
        .await,
    );
    assert_eq!(shot.name, "shot.jpg", "no path survives");
    assert_eq!(shot.content_type, "image/jpeg");
    assert_eq!((shot.width, shot.height), (Some(32), Some(16)));
    visitor
        .send(&VisitorRequest::Send {
            client_id: "c1".into(),
            text: String::new(),
            attachments: vec![shot.id.clone()],
        })
        .await;
    visitor
        .until(|event| match event {
            VisitorEvent::Ack(ack) => Some(ack),
            VisitorEvent::Error(error) => panic!("refused: {error:?}"),
            _ => None,
        })
        .await;
    let message = agent.next_message().await;
    assert_eq!(message.attachments, vec![shot.clone()]);

    let got = download(relay.addr, &token, &shot.id).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some("image/jpeg"));
    assert!(
        got.header("content-disposition")
            .is_some_and(|d| d.starts_with("inline"))
    );
    assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
    assert!(!got.body.contains("GPS-LATITUDE"), "EXIF stripped");
    let length = shot.size.to_string();
    assert_eq!(got.header("content-length"), Some(length.as_str()));
    // The visitor may fetch their own file too.
    assert_eq!(
        download(relay.addr, &welcome.token, &shot.id).await.status,
        200
    );
}

#[tokio::test]
async fn an_agents_pdf_reaches_the_visitor_as_an_attachment() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let (mut agent, _) = relay.welcomed_agent(&token).await;
    let (mut visitor, welcome) = relay.new_visitor().await;
    let conversation = visitor.say("c1", "invoice please").await.conversation_id;

    let missing = upload(relay.addr, &token, "name=invoice.pdf", PDF.to_vec()).await;
    refused(&missing, 400, ErrorCode::BadRequest);
    let query = format!("name=invoice.pdf&conversation_id={conversation}");
    let invoice = uploaded(&upload(relay.addr, &token, &query, PDF.to_vec()).await);
    assert_eq!(invoice.content_type, "application/pdf");
    agent
        .send(&AgentRequest::Send {
            conversation_id: conversation.clone(),
            client_id: "r1".into(),
            text: "here it is".into(),
            internal: false,
            attachments: vec![invoice.id.clone()],
            link: None,
        })
        .await;
    agent
        .until(|event| match event {
            AgentEvent::Ack(ack) => Some(ack),
            AgentEvent::Error(error) => panic!("refused: {error:?}"),
            _ => None,
        })
        .await;
    let message = visitor.next_message().await;
    assert_eq!(message.attachments, vec![invoice.clone()]);

    let got = download(relay.addr, &welcome.token, &invoice.id).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body.as_bytes(), PDF);
    assert_eq!(
        got.header("content-disposition"),
        Some("attachment; filename=\"invoice.pdf\"; filename*=UTF-8''invoice.pdf")
    );
    assert!(
        got.header("content-security-policy")
            .is_some_and(|csp| csp.contains("sandbox"))
    );
}

#[tokio::test]
async fn html_and_svg_are_kept_as_plain_text_downloads() {
    let relay = TestRelay::start().await;
    let (_visitor, welcome) = relay.new_visitor().await;
    for (name, body) in [
        ("page.html", "<html><script>alert(1)</script></html>"),
        (
            "logo.svg",
            "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        ),
    ] {
        let file = uploaded(
            &upload(
                relay.addr,
                &welcome.token,
                &format!("name={name}"),
                body.into(),
            )
            .await,
        );
        assert_eq!(file.content_type, "text/plain", "{name}");
        let got = download(relay.addr, &welcome.token, &file.id).await;
        assert_eq!(
            got.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert!(
            got.header("content-disposition")
                .is_some_and(|d| d.starts_with("attachment"))
        );
        assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
    }
}

#[tokio::test]
async fn each_limit_is_refused_with_nothing_stored() {
    let relay = TestRelay::with_config(|config| {
        config.limits.max_file_bytes = 1000;
        config.limits.max_conversation_file_bytes = 1500;
        config.limits.uploads_per_minute = 4;
    })
    .await;
    let (_visitor, welcome) = relay.new_visitor().await;
    let token = welcome.token.as_str();

    refused(
        &upload(relay.addr, token, "name=big", vec![b'a'; 1001]).await,
        413,
        ErrorCode::TooLarge,
    );
    let elf = [b"\x7fELF\x02\x01\x01\0".as_slice(), &[0; 64]].concat();
    refused(
        &upload(relay.addr, token, "name=run", elf).await,
        415,
        ErrorCode::BadRequest,
    );
    assert_eq!(blob_count(&relay), 0);

    uploaded(&upload(relay.addr, token, "name=a.txt", vec![b'a'; 1000]).await);
    let over = upload(relay.addr, token, "name=b.txt", vec![b'b'; 1000]).await;
    refused(&over, 413, ErrorCode::TooLarge);
    assert_eq!(blob_count(&relay), 1, "the conversation's budget held");

    // Four uploads a minute: the fifth attempt is one too many.
    let fifth = upload(relay.addr, token, "name=c.txt", vec![b'c'; 10]).await;
    refused(&fifth, 429, ErrorCode::RateLimited);
    assert_eq!(blob_count(&relay), 1);

    let anonymous = upload(relay.addr, "v1.nobody.AAAA", "name=x", vec![b'x'; 10]).await;
    refused(&anonymous, 401, ErrorCode::Unauthorized);
}

#[tokio::test]
async fn another_conversations_file_and_tampered_links_are_refused() {
    let relay = TestRelay::start().await;
    let (mut owner, mine) = relay.new_visitor().await;
    let (mut other, theirs) = relay.new_visitor().await;
    owner.say("c1", "hello").await;
    other.say("c1", "hello").await;
    let file = uploaded(&upload(relay.addr, &mine.token, "name=a.pdf", PDF.to_vec()).await);
    owner
        .send(&VisitorRequest::Send {
            client_id: "c2".into(),
            text: "see".into(),
            attachments: vec![file.id.clone()],
        })
        .await;
    owner
        .until(|event| matches!(event, VisitorEvent::Ack(_)).then_some(()))
        .await;

    refused(
        &link(relay.addr, &theirs.token, &file.id).await,
        404,
        ErrorCode::NotFound,
    );
    // Nor can the other visitor send it as theirs.
    other
        .send(&VisitorRequest::Send {
            client_id: "c2".into(),
            text: "mine now".into(),
            attachments: vec![file.id.clone()],
        })
        .await;
    assert_eq!(other.next_error().await.code, ErrorCode::NotFound);

    let answer = link(relay.addr, &mine.token, &file.id).await;
    let good: FileLink = serde_json::from_str(&answer.body).expect("a link");
    let client = Client::new();
    assert_eq!(
        client.get(relay.addr, &good.url).await.expect("get").status,
        200
    );
    let later = good.url.replace(
        &format!("expires={}", good.expires_at),
        &format!("expires={}", good.expires_at + 3600),
    );
    let expired = good
        .url
        .replace(&format!("expires={}", good.expires_at), "expires=1");
    let elsewhere = good.url.replace(&file.id, "another-file");
    for url in [
        later,
        expired,
        elsewhere,
        format!("/files/{}?expires=9999999999&sig=AAAA", file.id),
    ] {
        let got = client.get(relay.addr, &url).await.expect("get");
        refused(&got, 403, ErrorCode::Forbidden);
    }
}

#[tokio::test]
async fn pruning_removes_unsent_uploads_and_their_blobs_only() {
    let relay = TestRelay::start().await;
    let (mut visitor, welcome) = relay.new_visitor().await;
    let sent = uploaded(&upload(relay.addr, &welcome.token, "name=a.pdf", PDF.to_vec()).await);
    visitor
        .send(&VisitorRequest::Send {
            client_id: "c1".into(),
            text: "see".into(),
            attachments: vec![sent.id.clone()],
        })
        .await;
    visitor
        .until(|event| matches!(event, VisitorEvent::Ack(_)).then_some(()))
        .await;
    let unsent =
        uploaded(&upload(relay.addr, &welcome.token, "name=b.txt", b"draft".to_vec()).await);
    // What a crash in the middle of an upload leaves: a partial file.
    let root = relay.dir.path().join("kefu.db.files");
    std::fs::write(root.join("tmp").join("partial"), b"half").expect("partial");
    assert_eq!(blob_count(&relay), 2);

    assert_eq!(
        prune_now(&relay).await,
        kefu_relay::prune::Pruned {
            unsent: 1,
            blobs: 1,
            staged: 1
        }
    );
    assert_eq!(blob_count(&relay), 1);
    refused(
        &link(relay.addr, &welcome.token, &unsent.id).await,
        404,
        ErrorCode::NotFound,
    );
    assert_eq!(
        download(relay.addr, &welcome.token, &sent.id).await.status,
        200
    );
}

/// A browser sends the whole body before it reads the answer (no `Expect:
/// 100-continue`): a refusal the relay makes before reading must still
/// reach it, not a connection reset.
#[tokio::test]
async fn a_refusal_reaches_an_uploader_that_sends_the_whole_body_first() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let relay = TestRelay::start().await;
    // Several times any socket buffer: the relay must read it for the
    // upload to get through.
    let body = vec![b'x'; 4 * 1024 * 1024];
    let mut socket = tokio::net::TcpStream::connect(relay.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/files?name=a.bin HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer not-a-token\r\n\
         Connection: close\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        relay.addr,
        body.len()
    );
    socket.write_all(head.as_bytes()).await.expect("head");
    socket
        .write_all(&body)
        .await
        .expect("the relay reads the body");
    let mut answer = Vec::new();
    socket
        .read_to_end(&mut answer)
        .await
        .expect("the answer, not a reset");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("\"code\":\"unauthorized\""), "{answer}");
}
