//! The visitor's page trail in the store, on both backends: nothing is
//! written for a visitor without a conversation; once there is one, views
//! are kept oldest first, bounded to the newest 50, and the newest is the
//! page agents see the visitor on.

use std::sync::Arc;

use kefu_protocol::trail::{LinkCard, MAX_TRAIL, PageView};
use kefu_relay::store::{self, Store, VisitorDetails};
use kefu_testkit::TestDatabase;
use time::{Duration, OffsetDateTime};

use super::{new_conversation, stored_summary};

/// The `n`th page, `n` ms after a fixed moment, so order by time is known.
pub(super) fn page(n: usize) -> PageView {
    PageView {
        url: format!("https://shop.example/page/{n}"),
        title: Some(format!("Page {n}")),
        referrer: Some("https://search.example/?q=shoes".into()),
        at: OffsetDateTime::UNIX_EPOCH + Duration::days(20_000) + Duration::milliseconds(n as i64),
    }
}

backend_test!(
    sqlite_a_page_view_alone_writes_nothing,
    postgres_a_page_view_alone_writes_nothing,
    a_page_view_alone_writes_nothing
);
async fn a_page_view_alone_writes_nothing(store: Arc<dyn Store>) {
    let stored = store
        .record_page_views("v1", vec![page(1)])
        .await
        .expect("record");
    assert!(!stored, "no conversation, nothing stored");
    assert!(store.page_trail("v1").await.expect("trail").is_empty());
    assert_eq!(store.visitor_conversation("v1").await.expect("read"), None);
}

backend_test!(
    sqlite_the_trail_keeps_the_newest_fifty_in_order,
    postgres_the_trail_keeps_the_newest_fifty_in_order,
    the_trail_keeps_the_newest_fifty_in_order
);
async fn the_trail_keeps_the_newest_fifty_in_order(store: Arc<dyn Store>) {
    let details = VisitorDetails {
        profile: kefu_protocol::visitor::VisitorProfile {
            referrer: Some("https://news.example/".into()),
            ..Default::default()
        },
        user_agent: None,
        address: None,
    };
    let mut send = super::visitor_send("v1", "c1", "hi");
    send.details = details;
    let conversation = store
        .visitor_send(send)
        .await
        .expect("send")
        .conversation_id;
    // Another visitor's trail is theirs alone.
    new_conversation(&store, "v2", "c1", "hello").await;
    store
        .record_page_views("v2", vec![page(1_000)])
        .await
        .expect("other visitor");

    // The views held before the conversation, in one write; then one by one.
    let held: Vec<PageView> = (0..30).map(page).collect();
    assert!(store.record_page_views("v1", held).await.expect("held"));
    for n in 30..MAX_TRAIL + 7 {
        assert!(
            store
                .record_page_views("v1", vec![page(n)])
                .await
                .expect("live")
        );
    }
    let trail = store.page_trail("v1").await.expect("trail");
    let expected: Vec<PageView> = (7..MAX_TRAIL + 7).map(page).collect();
    assert_eq!(trail, expected, "the newest 50, oldest first");

    let summary = stored_summary(&store, &conversation).await;
    let newest = page(MAX_TRAIL + 6);
    assert_eq!(
        summary.visitor.page_url.as_deref(),
        Some(newest.url.as_str())
    );
    assert_eq!(summary.visitor.page_title, newest.title);
    assert_eq!(
        summary.visitor.referrer.as_deref(),
        Some("https://news.example/"),
        "the visitor's referrer is where they came from to the site"
    );
    let other = store.page_trail("v2").await.expect("trail");
    assert_eq!(other, vec![page(1_000)]);
}

backend_test!(
    sqlite_views_without_a_title_clear_the_old_one,
    postgres_views_without_a_title_clear_the_old_one,
    views_without_a_title_clear_the_old_one
);
async fn views_without_a_title_clear_the_old_one(store: Arc<dyn Store>) {
    let conversation = new_conversation(&store, "v1", "c1", "hi").await;
    store
        .record_page_views("v1", vec![page(1)])
        .await
        .expect("titled");
    let untitled = PageView {
        title: None,
        referrer: None,
        ..page(2)
    };
    store
        .record_page_views("v1", vec![untitled.clone()])
        .await
        .expect("untitled");
    let summary = stored_summary(&store, &conversation).await;
    assert_eq!(summary.visitor.page_title, None, "not the previous page's");
    assert_eq!(store.page_trail("v1").await.expect("trail")[1], untitled);
}

backend_test!(
    sqlite_a_link_card_is_stored_and_read_back_as_a_message,
    postgres_a_link_card_is_stored_and_read_back_as_a_message,
    a_link_card_is_stored_and_read_back_as_a_message
);
async fn a_link_card_is_stored_and_read_back_as_a_message(store: Arc<dyn Store>) {
    let alice = super::agent(&store, "alice", kefu_protocol::agent::Role::Agent).await;
    let conversation = new_conversation(&store, "v1", "c1", "where do I pay?").await;
    let card = LinkCard {
        url: "https://shop.example/checkout".into(),
        label: "Open the checkout".into(),
    };
    let mut send = super::agent_send(&alice, &conversation, "a1", false);
    send.text = card.label.clone();
    send.link = Some(card.clone());
    let sent = store.agent_send(send).await.expect("link card");
    assert_eq!(sent.link.as_deref(), Some(&card));
    let plain = super::agent_send(&alice, &conversation, "a2", false);
    store.agent_send(plain).await.expect("plain reply");
    // The visitor reads it back too (it is no note), a plain reply has none.
    let read = super::conversation_messages(&store, &conversation, false).await;
    let links: Vec<_> = read.iter().map(|m| m.link.as_deref().cloned()).collect();
    assert_eq!(links, [None, Some(card), None]);
    assert_eq!(read[1], sent);
}
