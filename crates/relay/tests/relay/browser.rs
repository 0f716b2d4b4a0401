//! The visitor page and the widget in a real headless Chromium, driven over
//! WebDriver (chromedriver), against a real relay and a real agent socket.
//!
//! Without `chromium` and `chromedriver` these tests print a notice and
//! pass, unless `KEFU_REQUIRE_BROWSER=1` (CI sets it) makes that a failure.
//! Screenshots land in `target/tmp/kefu-artifacts/`.
//!
//! The harness ([`Browser`]) and the chat page's and widget's own tests,
//! hence over 600 lines; the other browser tests (files, calls, deletion,
//! the trail) have files of their own and use the harness from here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use fantoccini::{Client, ClientBuilder, Locator};
use kefu_protocol::AuthorKind;
use kefu_protocol::agent::{AgentEvent, AgentRequest, Role};
use kefu_relay::Config;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

use kefu_testkit::{PATIENCE, TestRelay, http};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// One browser at a time: two cores do not run several Chromiums well.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) struct Browser {
    pub(crate) client: Client,
    /// chromedriver, the parent of the Chromium it starts (see the `Drop`).
    driver: Child,
    _profile: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Browser {
    /// A fresh headless Chromium, or `None` (after a notice) where there is none.
    pub(crate) async fn start() -> Option<Browser> {
        Browser::start_with(&[]).await
    }

    /// The same with more Chromium flags (fake media, say).
    pub(crate) async fn start_with(extra: &[&str]) -> Option<Browser> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            assert!(
                std::env::var_os("KEFU_REQUIRE_BROWSER").is_none(),
                "KEFU_REQUIRE_BROWSER is set but {CHROMIUM} or {CHROMEDRIVER} is missing"
            );
            eprintln!(
                "notice: skipping a browser test: install the Debian packages chromium and chromium-driver to run it"
            );
            return None;
        }
        let turn = ONE_BROWSER.lock().await;
        let port = free_port().await;
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn chromedriver");
        let mut lines = BufReader::new(driver.stdout.take().expect("stdout")).lines();
        tokio::time::timeout(PATIENCE, async {
            while let Some(line) = lines.next_line().await.expect("chromedriver output") {
                if line.contains("started successfully") {
                    return;
                }
            }
            panic!("chromedriver exited before it was ready");
        })
        .await
        .expect("chromedriver did not start");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let profile = tempfile::tempdir().expect("profile dir");
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-dev-shm-usage", "--lang=en-US",
                    "--window-size=420,760",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let mut capabilities = capabilities;
        let args = &mut capabilities["goog:chromeOptions"]["args"];
        if let serde_json::Value::Array(args) = args {
            args.extend(extra.iter().map(|arg| serde_json::Value::from(*arg)));
        }
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal");
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("WebDriver session");
        Some(Browser {
            client,
            driver,
            _profile: profile,
            _turn: turn,
        })
    }

    /// Opens the chat page and waits until it is connected with an agent
    /// online.
    pub(crate) async fn open_chat(&self, url: &str) {
        self.client.goto(url).await.expect("open page");
        self.wait_for(".status.online").await;
    }

    /// Opens the widget's chat on the host page shown and enters its frame,
    /// once connected with an agent online; the frame, to enter again.
    pub(crate) async fn enter_widget(&self) -> fantoccini::elements::Element {
        let widget = self.wait_for("#kefu-widget").await;
        let root = widget.shadow_root().await.expect("shadow root");
        let button = (root.find(Locator::Css("button.bubble")).await).expect("chat bubble");
        button.click().await.expect("open the chat");
        let frame = root.find(Locator::Css("iframe")).await.expect("panel");
        frame.enter_frame().await.expect("enter the chat frame");
        self.wait_for(".status.online").await;
        frame
    }

    pub(crate) async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no {css} in time: {error}"))
    }

    /// Waits for a chat bubble of `kind` (mine, theirs, system) holding `text`.
    pub(crate) async fn wait_for_bubble(
        &self,
        kind: &str,
        text: &str,
    ) -> fantoccini::elements::Element {
        let xpath = format!(
            "//li[contains(concat(' ', @class, ' '), ' {kind} ')]/div[@class='bubble'][contains(., {})]",
            xpath_literal(text)
        );
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|error| panic!("no {kind} bubble with {text:?} in time: {error}"))
    }

    pub(crate) async fn type_and_send(&self, text: &str) {
        let input = self.wait_for("#input").await;
        input.send_keys(text).await.expect("type");
        input.send_keys("\u{E007}").await.expect("press Enter");
    }

    pub(crate) async fn eval(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, vec![])
            .await
            .expect("execute script")
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kefu-artifacts");
        std::fs::create_dir_all(&dir).expect("artifact dir");
        let path = dir.join(name);
        std::fs::write(&path, &png).expect("write screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        path
    }

    pub(crate) async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// Chromium is chromedriver's child: killing chromedriver alone (what
    /// `kill_on_drop` does) left every Chromium of a test that failed or
    /// never closed its session running after the test run, taking CPU
    /// from whatever ran next. So its children go first (Chromium's own
    /// processes end with it). A test run stopped by Ctrl-C still ends
    /// them all: they stay in the terminal's process group.
    fn drop(&mut self) {
        if let Some(driver) = self.driver.id() {
            let _ = std::process::Command::new("pkill")
                .args(["-KILL", "-P", &driver.to_string()])
                .status();
        }
    }
}

/// Quotes `text` for XPath 1.0, which has no escape character.
fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        return format!("'{text}'");
    }
    let parts: Vec<String> = text.split('\'').map(|part| format!("'{part}'")).collect();
    format!("concat({})", parts.join(", \"'\", "))
}

async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A tiny web server for "someone else's site": serves one HTML page.
async fn host_site(html: String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let html = html.clone();
            async move { axum::response::Html(html) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The visitor's first message reaches the agent; returns the conversation.
pub(crate) async fn agent_receives(
    agent: &mut kefu_testkit::Client<AgentEvent>,
    text: &str,
) -> String {
    let message = agent.next_message().await;
    assert_eq!(message.text, text);
    assert_eq!(message.author.kind, AuthorKind::Visitor);
    message.conversation_id
}

/// The whole visitor flow on the full page, over either transport.
async fn chat_and_reload(query: &str, expected_transport: &str, screenshot: &str) {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser
        .open_chat(&format!("http://{}/{query}", relay.addr))
        .await;
    let transport = browser
        .eval("return document.documentElement.dataset.transport")
        .await;
    assert_eq!(transport, expected_transport);

    browser.type_and_send("Hello from the browser").await;
    let conversation = agent_receives(&mut agent, "Hello from the browser").await;
    browser.wait_for("li.mine[data-delivery='sent']").await;

    agent
        .reply(
            &conversation,
            "a1",
            "Hi! See https://example.com/help, or <b>bold</b>",
        )
        .await;
    let reply = browser
        .wait_for_bubble("theirs", "See https://example.com/help")
        .await;
    let link = reply
        .find(Locator::Css("a"))
        .await
        .expect("the URL became a link");
    assert_eq!(
        link.attr("href").await.expect("href").as_deref(),
        Some("https://example.com/help")
    );
    assert_eq!(
        link.attr("rel").await.expect("rel").as_deref(),
        Some("noopener noreferrer nofollow ugc")
    );
    assert!(
        reply.text().await.expect("text").contains("<b>bold</b>"),
        "markup is shown as text"
    );

    // Replying means the agent read it: the visitor's message turns "seen".
    browser.wait_for("li.mine[data-delivery='seen']").await;
    // So does an explicit read receipt, for a message not replied to.
    browser.type_and_send("One more thing").await;
    agent.next_message().await;
    browser.wait_for("li.mine[data-delivery='sent']").await;
    agent
        .send(&AgentRequest::Read {
            conversation_id: conversation.clone(),
            up_to_seq: 3,
        })
        .await;
    browser
        .client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::XPath(
            "//li[@data-delivery='seen'][div[@class='bubble'][contains(., 'One more thing')]]",
        ))
        .await
        .expect("the read receipt marks the second message seen");
    let shot = browser.screenshot(screenshot).await;
    eprintln!("screenshot: {}", shot.display());

    // A reload restores the conversation from the relay.
    browser.client.refresh().await.expect("reload");
    browser
        .wait_for_bubble("mine", "Hello from the browser")
        .await;
    browser
        .wait_for_bubble("theirs", "See https://example.com/help")
        .await;
    browser.wait_for_bubble("mine", "One more thing").await;
    let count = browser
        .eval("return document.querySelectorAll('#log li.mine').length")
        .await;
    assert_eq!(count, 2, "the history holds each message once");

    // The title's U+0000 (`%00` in the link), which the relay refuses in
    // any frame, was dropped by the page, not the whole hello.
    let (_, welcome) = relay.welcomed_agent(&token).await;
    let summary = welcome
        .conversations
        .iter()
        .find(|summary| summary.id == conversation)
        .expect("the conversation");
    assert_eq!(summary.visitor.page_title.as_deref(), Some("Shop home"));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_chats_with_an_agent_and_restores_history_after_reload() {
    chat_and_reload(
        "?page_title=Shop%00%20home",
        "websocket",
        "visitor-page.png",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_chats_over_long_polling_too() {
    chat_and_reload(
        "?transport=longpoll&page_title=Shop%00%20home",
        "longpoll",
        "visitor-page-longpoll.png",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_typed_by_anyone_renders_as_text_and_runs_nothing() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.open_chat(&format!("http://{}/", relay.addr)).await;

    let attack = "<img src=x onerror=alert(1)>";
    browser.type_and_send(attack).await;
    let conversation = agent_receives(&mut agent, attack).await;
    agent
        .reply(
            &conversation,
            "a1",
            "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">",
        )
        .await;
    browser
        .wait_for_bubble("theirs", "<script>window.pwned=1</script>")
        .await;
    let mine = browser.wait_for_bubble("mine", attack).await;
    assert_eq!(mine.text().await.expect("text"), attack);
    let outcome = browser
        .eval("return [typeof window.pwned, document.querySelectorAll('#log img, #log script').length]")
        .await;
    assert_eq!(outcome, serde_json::json!(["undefined", 0]));
    assert!(
        browser.client.get_alert_text().await.is_err(),
        "no alert was opened"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_to_the_page_cannot_set_the_greeting_nor_bidi_text_reorder_it() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    // Opened from a link, not inside the widget's frame: the company's
    // configured greeting, whatever the address says.
    browser
        .open_chat(&format!(
            "http://{}/?embed=1&greeting=Your+account+is+locked.+Pay+at+https://evil.example",
            relay.addr
        ))
        .await;
    browser
        .wait_for_bubble("system", &Config::default().greeting)
        .await;
    let spoofed = browser
        .eval("return document.getElementById('log').textContent.includes('evil.example')")
        .await;
    assert_eq!(spoofed, serde_json::json!(false));

    // U+202E (right-to-left override) in a message and in a name stays
    // inside its own element: the time and delivery marks keep their order.
    let reversed = "\u{202E}moc.elpmaxe";
    browser.type_and_send(reversed).await;
    let conversation = agent_receives(&mut agent, reversed).await;
    agent.reply(&conversation, "a1", reversed).await;
    browser.wait_for_bubble("theirs", "moc.elpmaxe").await;
    let isolation = browser
        .eval(
            "const styles = [...document.querySelectorAll('#log .bubble, #log .author')]
               .map(el => [el.dir, getComputedStyle(el).unicodeBidi]);
             return [styles.length, [...new Set(styles.map(s => s.join(' ')))].sort()]",
        )
        .await;
    // greeting + mine + theirs bubbles, and the agent's name.
    assert_eq!(
        isolation,
        serde_json::json!([4, ["auto isolate", "auto plaintext"]])
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_explained_kindly_with_the_email_form() {
    let relay = TestRelay::with_config(|config| config.limits.max_waiting = 1).await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let _agent = relay.signed_in_agent(&token).await;
    let (mut first, _) = relay.new_visitor().await;
    first.say("c1", "I was here first").await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.open_chat(&format!("http://{}/", relay.addr)).await;
    browser.type_and_send("hello?").await;
    browser.wait_for("li.msg.mine.failed").await;
    let banner = browser.wait_for("#banner:not([hidden])").await;
    let text = banner.text().await.expect("banner text");
    assert!(text.contains("a lot of chats"), "{text}");
    browser.wait_for("#email-form:not([hidden])").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_on_an_allowed_site_opens_and_chats() {
    // The host site's origin must be known before the relay starts.
    let host_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let host_addr = host_listener.local_addr().expect("addr");
    drop(host_listener);
    let host_origin = format!("http://{host_addr}");
    let relay = TestRelay::with_config(|config| {
        config.allowed_origins = vec![host_origin.clone()];
    })
    .await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let html = format!(
        r##"<!doctype html><html><head><title>Acme shoes</title></head>
        <body style="font-family: serif; background: #fafafa">
        <h1>Acme shoes</h1><p>The best shoes on the web.</p>
        <script src="http://{}/widget.js" async data-color="#c0392b" data-greeting="Hello from Acme!"></script>
        </body></html>"##,
        relay.addr
    );
    let listener = TcpListener::bind(host_addr)
        .await
        .expect("rebind host port");
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let html = html.clone();
            async move { axum::response::Html(html) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let Some(browser) = Browser::start().await else {
        return;
    };
    browser
        .client
        .goto(&host_origin)
        .await
        .expect("open host page");
    let widget = browser.wait_for("#kefu-widget").await;
    let root = widget.shadow_root().await.expect("shadow root");
    let button = root
        .find(Locator::Css("button.bubble"))
        .await
        .expect("chat bubble");
    assert_eq!(
        button.attr("aria-expanded").await.expect("attr").as_deref(),
        Some("false")
    );
    button.click().await.expect("open the chat");
    assert_eq!(
        button.attr("aria-expanded").await.expect("attr").as_deref(),
        Some("true")
    );
    let frame = root.find(Locator::Css("iframe")).await.expect("panel");
    frame.enter_frame().await.expect("enter the chat frame");

    browser.wait_for(".status.online").await;
    browser.wait_for_bubble("system", "Hello from Acme!").await;
    browser.type_and_send("Do you have size 44?").await;
    let conversation = agent_receives(&mut agent, "Do you have size 44?").await;
    agent
        .reply(&conversation, "a1", "Yes, in black and brown.")
        .await;
    browser
        .wait_for_bubble("theirs", "Yes, in black and brown.")
        .await;

    // The agent sees which page the visitor is on.
    let summary = agent
        .summary_where(&conversation, |s| s.visitor.page_url.is_some())
        .await;
    assert_eq!(
        summary.visitor.page_url.as_deref(),
        Some(format!("{host_origin}/").as_str())
    );

    browser
        .client
        .enter_parent_frame()
        .await
        .expect("back to the host page");
    let shot = browser.screenshot("widget-open.png").await;
    eprintln!("screenshot: {}", shot.display());

    // Closed, the button counts unread replies.
    button.click().await.expect("close the chat");
    assert_eq!(
        button.attr("aria-expanded").await.expect("attr").as_deref(),
        Some("false")
    );
    agent.reply(&conversation, "a2", "Anything else?").await;
    let badge = root.find(Locator::Css(".badge")).await.expect("badge");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while badge.text().await.expect("badge text") != "1" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the unread badge never showed 1"
        );
    }
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_typed_while_the_relay_is_down_are_sent_once_it_is_back() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let agent = relay.signed_in_agent(&token).await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    let addr = relay.addr;
    browser.open_chat(&format!("http://{addr}/")).await;

    drop(agent);
    let stopped = relay.stop().await;
    browser.wait_for("#banner:not([hidden])").await;
    browser.type_and_send("typed while you were away").await;
    browser.wait_for("li.mine[data-delivery='sending']").await;

    let relay = TestRelay::reopen_at(stopped, addr).await;
    let mut agent = relay.signed_in_agent(&token).await;
    browser.wait_for("li.mine[data-delivery='sent']").await;
    let conversation = agent_receives(&mut agent, "typed while you were away").await;
    browser.wait_for("#banner[hidden]").await;

    // Exactly once: the history holds it a single time.
    let history = agent.history(&conversation, None, 50).await;
    assert_eq!(history.len(), 1, "{history:?}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_a_disallowed_origin_is_refused() {
    let relay = TestRelay::start().await;
    // Over HTTP: the long-poll endpoints answer 403 to a foreign Origin.
    let status = post_from(
        relay.addr,
        "/api/visitor/hello",
        "http://evil.example",
        "{\"type\":\"hello\"}",
    )
    .await;
    assert_eq!(status, 403);
    let status = post_from(
        relay.addr,
        "/api/visitor/hello",
        &format!("http://{}", relay.addr),
        "{\"type\":\"hello\"}",
    )
    .await;
    assert_eq!(status, 200, "the relay's own origin may");

    // In a browser: a WebSocket from someone else's page never opens.
    let html = format!(
        r#"<!doctype html><html><body><p id="result">pending</p><script>
        const ws = new WebSocket("ws://{}/ws/visitor");
        const done = (what) => {{ const p = document.getElementById('result'); p.textContent = what; p.dataset.done = '1'; }};
        ws.onopen = () => done('opened');
        ws.onerror = () => done('refused');
        </script></body></html>"#,
        relay.addr
    );
    let host = host_site(html).await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser
        .client
        .goto(&format!("http://{host}/"))
        .await
        .expect("open");
    let result = browser.wait_for("#result[data-done]").await;
    assert_eq!(result.text().await.expect("text"), "refused");
    browser.close().await;
}

/// POSTs `body` with an `Origin` header; returns the HTTP status.
async fn post_from(addr: SocketAddr, path: &str, origin: &str, body: &str) -> u16 {
    let headers = [("origin", origin), ("content-type", "application/json")];
    http::post(addr, path, &headers, body.to_owned())
        .await
        .expect("an HTTP response")
        .status
}

#[tokio::test]
async fn the_page_and_widget_are_served_with_a_strict_policy() {
    let relay = TestRelay::with_config(|config| {
        config.allowed_origins = vec!["https://shop.example".into()];
    })
    .await;
    let page = http::get(relay.addr, "/").await.expect("the page");
    assert_eq!(page.status, 200, "{page:?}");
    let policy = page
        .header("content-security-policy")
        .expect("a content security policy")
        .to_ascii_lowercase();
    assert!(policy.starts_with("default-src 'none'; script-src 'self'"));
    assert!(policy.contains("frame-ancestors 'self' https://shop.example"));
    assert!(
        page.body
            .contains("<script src=\"chat.js\" defer></script>")
    );

    let widget = http::get(relay.addr, "/widget.js")
        .await
        .expect("the widget");
    assert!(
        widget
            .header("content-type")
            .is_some_and(|kind| kind.to_ascii_lowercase().starts_with("text/javascript"))
    );
    assert!(widget.body.contains("attachShadow"));
}

mod trail;
