//! The page trail and link cards between kefu-tui and a real relay: the
//! header follows the visitor's pages, the visitor panel shows the stored
//! trail and grows live, and `/link` reaches the visitor as a card.

use crossterm::event::KeyCode;
use kefu_protocol::agent::Role;
use kefu_protocol::trail::PageViewReport;
use kefu_protocol::visitor::{VisitorEvent, VisitorRequest};
use kefu_testkit::TestRelay;
use kefu_tui::app::{App, Overlay};

use super::support::{pump_until, shop_visitor};
use super::{client, press, write};

fn page_view(path: &str, title: &str) -> VisitorRequest {
    VisitorRequest::PageView(PageViewReport {
        url: format!("https://shop.example{path}"),
        title: Some(title.into()),
        referrer: None,
        at: None,
    })
}

/// The paths of the trail the visitor panel shows, once the relay answered.
fn panel_paths(app: &App) -> Vec<String> {
    match &app.overlay {
        Overlay::Visitor {
            record: Some(record),
            ..
        } => (record.trail.iter())
            .map(|view| view.url.replace("https://shop.example", ""))
            .collect(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn the_agent_follows_the_visitor_and_points_them_to_a_page() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut core = client(relay.addr, token);
    pump_until(&mut core, "the welcome", |app| app.online()).await;

    let (mut visitor, _) = shop_visitor(relay.addr, None, None).await;
    visitor.send(&page_view("/shoes", "Shoes")).await;
    let id = visitor
        .say("v1", "Do you have size 44?")
        .await
        .conversation_id;
    pump_until(&mut core, "the stored trail in the header", |app| {
        app.conversations.get(&id).is_some_and(|c| {
            c.summary.visitor.page_url.as_deref() == Some("https://shop.example/shoes")
        })
    })
    .await;

    // The panel of the highlighted conversation: the stored trail, then live.
    press(&mut core, KeyCode::Char('v'));
    pump_until(&mut core, "the visitor record", |app| {
        panel_paths(app) == ["/shoes"]
    })
    .await;
    visitor.send(&page_view("/checkout", "Checkout")).await;
    pump_until(&mut core, "the live page view", |app| {
        panel_paths(app) == ["/shoes", "/checkout"]
    })
    .await;
    pump_until(&mut core, "the header's new page", |app| {
        app.conversations
            .get(&id)
            .and_then(|c| c.summary.visitor.page_title.as_deref())
            == Some("Checkout")
    })
    .await;

    // Enter opens the conversation; /link sends the visitor a card.
    press(&mut core, KeyCode::Enter);
    assert_eq!(core.app.open.as_deref(), Some(id.as_str()));
    write(
        &mut core,
        "/link https://shop.example/shoes/44 Size 44 shoes",
    );
    let card = visitor
        .until(|event| match event {
            VisitorEvent::Message(message) => message.link,
            _ => None,
        })
        .await;
    assert_eq!(card.url, "https://shop.example/shoes/44");
    assert_eq!(card.label, "Size 44 shoes");
}
