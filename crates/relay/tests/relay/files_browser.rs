//! Uploaded HTML and SVG with scripts, fetched by a real headless Chromium
//! from the relay's own origin: the scripts never run (the relay serves
//! them as plain-text attachments with `nosniff` and a sandboxing CSP).
//! Were a download ever rendered as HTML or SVG, its script would reach
//! the page through `parent` (same origin) and the test would fail.

use kefu_protocol::files::FileLink;
use kefu_testkit::TestRelay;

use crate::browser::Browser;
use crate::files::{link, upload, uploaded};

const HTML: &str = "<html><body><script>parent.ran = 'html'</script></body></html>";
const SVG: &str = "<svg xmlns='http://www.w3.org/2000/svg' onload=\"parent.ran = 'svg-onload'\">\
    <script>parent.ran = 'svg'</script></svg>";

async fn signed_link(relay: &TestRelay, token: &str, name: &str, body: &str) -> String {
    let answer = upload(relay.addr, token, &format!("name={name}"), body.into()).await;
    let file = uploaded(&answer);
    let answer = link(relay.addr, token, &file.id).await;
    let link: FileLink = serde_json::from_str(&answer.body).expect("link");
    link.url
}

#[tokio::test]
async fn uploaded_html_and_svg_never_run_in_chromium() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let relay = TestRelay::start().await;
    let (_visitor, welcome) = relay.new_visitor().await;
    let html = signed_link(&relay, &welcome.token, "page.html", HTML).await;
    let svg = signed_link(&relay, &welcome.token, "logo.svg", SVG).await;

    // A page of the relay's own origin, so that a script that ran could
    // reach it.
    browser
        .client
        .goto(&relay.http_url("/healthz"))
        .await
        .expect("open the relay");
    // Every way a page might show a file: a frame, an object, an image.
    // Nothing signals "a script did not run", so each gets a load event or
    // two seconds, whichever comes first.
    let script = r#"
        const [html, svg, done] = arguments;
        window.ran = null;
        const embed = (tag, attribute, url) => new Promise((resolve) => {
            const element = document.createElement(tag);
            element.onload = element.onerror = () => resolve();
            element[attribute] = url;
            document.body.appendChild(element);
            setTimeout(resolve, 2000);
        });
        Promise.all([
            embed('iframe', 'src', html),
            embed('iframe', 'src', svg),
            embed('object', 'data', svg),
            embed('img', 'src', svg),
        ]).then(() => done(window.ran));
    "#;
    let ran = browser
        .client
        .execute_async(script, vec![html.into(), svg.into()])
        .await
        .expect("embed the downloads");
    assert_eq!(
        ran,
        serde_json::Value::Null,
        "a download's script ran: {ran}"
    );
}

/// A 1×1 PNG.
const PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

/// The agent's files appear in the visitor's page: the image as the
/// relay's thumbnail, loaded, the PDF as a download chip.
async fn agents_files_appear_for_the_visitor(query: &str) {
    use base64::Engine as _;
    use kefu_protocol::agent::{AgentEvent, AgentRequest, Role};

    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.open_chat(&relay.http_url(query)).await;
    browser.type_and_send("my screen is blank").await;
    let conversation = crate::browser::agent_receives(&mut agent, "my screen is blank").await;

    let mut ids = Vec::new();
    let png = base64::engine::general_purpose::STANDARD
        .decode(PNG)
        .expect("png");
    for (name, body) in [
        ("dot.png", png),
        ("invoice.pdf", b"%PDF-1.4\n%%EOF\n".to_vec()),
    ] {
        let query = format!("name={name}&conversation_id={conversation}");
        ids.push(uploaded(&upload(relay.addr, &token, &query, body).await).id);
    }
    agent
        .send(&AgentRequest::Send {
            conversation_id: conversation,
            client_id: "r1".into(),
            text: "here you go".into(),
            internal: false,
            attachments: ids,
            link: None,
        })
        .await;
    agent
        .until(|event| matches!(event, AgentEvent::Ack(_)).then_some(()))
        .await;

    browser.wait_for("li.theirs .files .chip").await;
    let loaded = browser
        .client
        .execute_async(
            r#"
            const done = arguments[0];
            const image = document.querySelector('li.theirs .files .thumb img');
            const check = () => image.complete && image.naturalWidth > 0
                ? done({ src: image.getAttribute('src'), chip: document.querySelector('li.theirs .files .chip').textContent })
                : setTimeout(check, 50);
            check();
            "#,
            vec![],
        )
        .await
        .expect("the thumbnail loads");
    assert!(
        loaded["src"]
            .as_str()
            .is_some_and(|src| src.starts_with("/files/") && src.contains("/thumbnail?")),
        "{loaded}"
    );
    assert_eq!(loaded["chip"], "📎 invoice.pdf (15 B)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_files_appear_in_the_chat_page() {
    agents_files_appear_for_the_visitor("/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_files_appear_in_the_chat_page_over_long_polling() {
    agents_files_appear_for_the_visitor("/?transport=longpoll").await;
}

/// The visitor sends files three ways: the attach button, pasting an image
/// and dropping a file; the agent gets each as a message with the file. A
/// file past the limit is refused with a clear line and sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_visitor_attaches_pastes_and_drops_files() {
    use kefu_protocol::agent::Role;

    let relay = TestRelay::with_config(|config| config.limits.max_file_bytes = 4096).await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.open_chat(&relay.http_url("/")).await;
    browser.type_and_send("hello").await;
    crate::browser::agent_receives(&mut agent, "hello").await;

    // The attach button's file picker, given a file on disk.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "my order number is 42").expect("write");
    let picker = browser.wait_for("#attach-input").await;
    picker
        .send_keys(&path.display().to_string())
        .await
        .expect("choose a file");
    let message = agent.next_message().await;
    assert_eq!(message.attachments.len(), 1, "{message:?}");
    assert_eq!(message.attachments[0].name, "notes.txt");
    assert_eq!(message.attachments[0].content_type, "text/plain");

    // A pasted screenshot and a dropped file, as the browser hands them over.
    let png = format!("'{PNG}'");
    let script = format!(
        r#"
        const bytes = Uint8Array.from(atob({png}), (c) => c.charCodeAt(0));
        const pasted = new DataTransfer();
        pasted.items.add(new File([bytes], 'screenshot.png', {{ type: 'image/png' }}));
        document.getElementById('input').dispatchEvent(
            new ClipboardEvent('paste', {{ clipboardData: pasted, bubbles: true }}));
        const dropped = new DataTransfer();
        dropped.items.add(new File(['dropped text'], 'dropped.txt', {{ type: 'text/plain' }}));
        document.getElementById('log').dispatchEvent(
            new DragEvent('drop', {{ dataTransfer: dropped, bubbles: true }}));
        "#
    );
    browser.eval(&script).await;
    let mut names = Vec::new();
    for _ in 0..2 {
        let message = agent.next_message().await;
        names.extend(message.attachments.into_iter().map(|file| file.name));
    }
    names.sort();
    assert_eq!(names, ["dropped.txt", "screenshot.png"]);
    // The visitor sees their own screenshot as a thumbnail.
    browser.wait_for("li.mine .files .thumb img").await;

    // Too large: a clear line, nothing sent.
    browser
        .eval(
            "const big = new DataTransfer();
             big.items.add(new File([new Uint8Array(5000).fill(97)], 'big.txt'));
             document.getElementById('log').dispatchEvent(
                 new DragEvent('drop', { dataTransfer: big, bubbles: true }));",
        )
        .await;
    let said = browser.wait_for("li.upload-error").await;
    let text = said.text().await.expect("text");
    assert!(text.contains("big.txt is too large to send."), "{text}");
    browser.type_and_send("after the refusal").await;
    let next = agent.next_message().await;
    assert_eq!(next.text, "after the refusal", "the big file sent nothing");
}

/// A `width` × `height` PNG, as a photo or screenshot would be.
fn png_of(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .expect("encode a PNG");
    bytes
}

/// Waits until `count` images match `css` and have all loaded; their
/// `src` and natural width.
async fn loaded_images(browser: &Browser, css: &str, count: usize) -> Vec<(String, u64)> {
    let images = browser
        .client
        .execute_async(
            r#"
            const [css, count, done] = arguments;
            const check = () => {
                const images = Array.from(document.querySelectorAll(css));
                if (images.length >= count && images.every((i) => i.complete && i.naturalWidth > 0)) {
                    done(images.map((i) => [i.getAttribute('src'), i.naturalWidth]));
                } else {
                    setTimeout(check, 50);
                }
            };
            check();
            "#,
            vec![css.into(), count.into()],
        )
        .await
        .expect("the images load");
    serde_json::from_value(images).expect("src and width pairs")
}

/// The widget on somebody else's site, one `<script>` line: the visitor
/// attaches, pastes and drops images; each reaches the agent with its
/// thumbnail and shows in the widget as the relay's 320-pixel thumbnail;
/// the agent's image appears for the visitor the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_in_the_widget_show_as_thumbnails() {
    use base64::Engine as _;
    use kefu_protocol::agent::{AgentEvent, AgentRequest, Role};

    let host = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", host.local_addr().expect("addr"));
    let allowed = origin.clone();
    let relay = TestRelay::with_config(|config| config.allowed_origins = vec![allowed]).await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let page = format!(
        r#"<!doctype html><html><head><title>Acme</title></head><body><h1>Acme</h1>
        <script src="http://{}/widget.js" async></script></body></html>"#,
        relay.addr
    );
    let app = axum::Router::new().fallback(move || async move { axum::response::Html(page) });
    tokio::spawn(async move { axum::serve(host, app).await });

    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.client.goto(&origin).await.expect("open host page");
    browser.enter_widget().await;
    browser.type_and_send("hello").await;
    let conversation = crate::browser::agent_receives(&mut agent, "hello").await;

    // 400 × 200: the thumbnail (320 wide) is told from the image itself.
    let png = png_of(400, 200);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("photo.png");
    std::fs::write(&path, &png).expect("write");
    let picker = browser.wait_for("#attach-input").await;
    (picker.send_keys(&path.display().to_string()).await).expect("choose a file");
    let script = r#"
        const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
        const pasted = new DataTransfer();
        pasted.items.add(new File([bytes], 'screenshot.png', { type: 'image/png' }));
        document.getElementById('input').dispatchEvent(
            new ClipboardEvent('paste', { clipboardData: pasted, bubbles: true }));
        const dropped = new DataTransfer();
        dropped.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
        document.getElementById('log').dispatchEvent(
            new DragEvent('drop', { dataTransfer: dropped, bubbles: true }));
    "#;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&png);
    (browser.client.execute(script, vec![encoded.into()]).await).expect("paste and drop");
    let mut names = Vec::new();
    for _ in 0..3 {
        let message = agent.next_message().await;
        let [file] = &message.attachments[..] else {
            panic!("one file a message: {message:?}");
        };
        assert_eq!(
            file.thumbnail.map(|t| (t.width, t.height)),
            Some((320, 160)),
            "{file:?}"
        );
        names.push(file.name.clone());
    }
    names.sort();
    assert_eq!(names, ["dropped.png", "photo.png", "screenshot.png"]);
    for (src, width) in loaded_images(&browser, "li.mine .files .thumb img", 3).await {
        assert!(src.contains("/thumbnail?"), "{src}");
        assert_eq!(width, 320, "the thumbnail, not the image: {src}");
    }

    // The agent's image, shown to the visitor as its thumbnail.
    let query = format!("name=answer.png&conversation_id={conversation}");
    let answer = uploaded(&upload(relay.addr, &token, &query, png_of(640, 480)).await);
    agent
        .send(&AgentRequest::Send {
            conversation_id: conversation,
            client_id: "r1".into(),
            text: "like this".into(),
            internal: false,
            attachments: vec![answer.id],
            link: None,
        })
        .await;
    agent
        .until(|event| matches!(event, AgentEvent::Ack(_)).then_some(()))
        .await;
    let theirs = loaded_images(&browser, "li.theirs .files .thumb img", 1).await;
    assert!(theirs[0].0.contains("/thumbnail?"), "{theirs:?}");
    assert_eq!(theirs[0].1, 320);
}
