//! Uploaded HTML and SVG with scripts, fetched by a real headless Chromium
//! from the relay's own origin: the scripts never run (the relay serves
//! them as plain-text attachments with `nosniff` and a sandboxing CSP).
//! Were a download ever rendered as HTML or SVG, its script would reach
//! the page through `parent` (same origin) and the test would fail.

use kefu_protocol::Attachment;
use kefu_protocol::files::FileLink;
use kefu_testkit::TestRelay;
use kefu_testkit::http::{Client, Method};

use crate::browser::Browser;

const HTML: &str = "<html><body><script>parent.ran = 'html'</script></body></html>";
const SVG: &str = "<svg xmlns='http://www.w3.org/2000/svg' onload=\"parent.ran = 'svg-onload'\">\
    <script>parent.ran = 'svg'</script></svg>";

async fn signed_link(relay: &TestRelay, token: &str, name: &str, body: &str) -> String {
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    let client = Client::new();
    let path = format!("/api/files?name={name}");
    let uploaded = client
        .post(relay.addr, &path, &auth, body.to_owned())
        .await
        .expect("upload");
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    let file: Attachment = serde_json::from_str(&uploaded.body).expect("attachment");
    let path = format!("/api/files/{}/link", file.id);
    let link = client
        .request(Method::GET, relay.addr, &path, &auth, Vec::new())
        .await
        .expect("link");
    let link: FileLink = serde_json::from_str(&link.body).expect("link");
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
