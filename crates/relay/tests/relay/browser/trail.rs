//! The page trail in a real browser: a visitor browses three pages of a
//! host site carrying the widget (full page loads) and one single-page-app
//! step, then opens the chat and writes; the agent gets the trail in order,
//! and later steps live; the agent's link card takes the host page there.

use axum::response::Html;
use kefu_protocol::agent::{AgentEvent, AgentRequest, Role};
use kefu_protocol::trail::{LinkCard, PageView};
use kefu_relay::Config;
use tokio::net::TcpListener;

use super::{Browser, agent_receives};
use kefu_testkit::TestRelay;

/// A host page titled after its path, carrying the widget of `relay`.
fn page(relay: std::net::SocketAddr, path: &str) -> String {
    format!(
        r#"<!doctype html><html><head><title>Acme {path}</title></head>
        <body><h1>Acme {path}</h1><a id="next" href="/">home</a>
        <script src="http://{relay}/widget.js" async></script></body></html>"#
    )
}

/// The paths of the next `count` page views the agent gets.
async fn live_paths(
    agent: &mut kefu_testkit::Client<AgentEvent>,
    origin: &str,
    count: usize,
) -> Vec<(String, Option<String>)> {
    let mut views: Vec<PageView> = Vec::new();
    while views.len() < count {
        let view = agent
            .until(|event| match event {
                AgentEvent::PageView(frame) => Some(frame.view),
                _ => None,
            })
            .await;
        views.push(view);
    }
    (views.into_iter())
        .map(|view| (view.url.replacen(origin, "", 1), view.title))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_sees_the_pages_a_widget_visitor_browsed() {
    let host_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let host_addr = host_listener.local_addr().expect("addr");
    let origin = format!("http://{host_addr}");
    let allowed = origin.clone();
    let relay = TestRelay::with_config(|config: &mut Config| {
        config.allowed_origins = vec![allowed];
    })
    .await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&token).await;
    let relay_addr = relay.addr;
    let app = axum::Router::new()
        .fallback(move |uri: axum::http::Uri| async move { Html(page(relay_addr, uri.path())) });
    tokio::spawn(async move { axum::serve(host_listener, app).await });

    let Some(browser) = Browser::start().await else {
        return;
    };
    for path in ["/", "/shoes", "/checkout"] {
        (browser.client.goto(&format!("{origin}{path}")).await).expect("open host page");
        browser.wait_for("#kefu-widget").await;
    }
    // A single-page app moves on without a page load.
    browser
        .eval("history.pushState({}, '', '/checkout/pay'); document.title = 'Acme pay';")
        .await;
    let frame = browser.enter_widget().await;
    browser.type_and_send("Can I pay later?").await;
    let conversation = agent_receives(&mut agent, "Can I pay later?").await;

    // Held until the first message, then stored and told, in order.
    assert_eq!(
        live_paths(&mut agent, &origin, 4).await,
        [
            ("/".to_owned(), Some("Acme /".to_owned())),
            ("/shoes".to_owned(), Some("Acme /shoes".to_owned())),
            ("/checkout".to_owned(), Some("Acme /checkout".to_owned())),
            ("/checkout/pay".to_owned(), Some("Acme pay".to_owned())),
        ]
    );
    // Live from now on: a history step of the host page.
    (browser.client.enter_parent_frame().await).expect("back to the host page");
    browser
        .eval("document.title = 'Acme thanks'; history.pushState({}, '', '/thanks');")
        .await;
    assert_eq!(
        live_paths(&mut agent, &origin, 1).await,
        [("/thanks".to_owned(), Some("Acme thanks".to_owned()))]
    );

    // The agent's link card is a button that takes the host page there;
    // the widget comes back on that page and reports it.
    agent
        .send(&AgentRequest::Send {
            conversation_id: conversation.clone(),
            client_id: "card".into(),
            text: String::new(),
            internal: false,
            link: Some(LinkCard {
                url: format!("{origin}/shoes/44"),
                label: "Size 44 shoes".into(),
            }),
            attachments: Vec::new(),
        })
        .await;
    frame.enter_frame().await.expect("enter the chat frame");
    let card = browser.wait_for("a.link-card").await;
    assert_eq!(card.text().await.expect("label"), "Size 44 shoes");
    card.click().await.expect("open the card");
    assert_eq!(
        live_paths(&mut agent, &origin, 1).await,
        [("/shoes/44".to_owned(), Some("Acme /shoes/44".to_owned()))]
    );
    (browser.client.enter_parent_frame().await).ok();
    let url = browser.client.current_url().await.expect("url");
    assert_eq!(
        url.as_str(),
        format!("{origin}/shoes/44"),
        "in the same tab"
    );
    browser.close().await;
}
