//! The page trail's and link cards' JSON, as docs/protocol.md shows it; and
//! frames from before them still parse.

use kefu_protocol::Message;
use kefu_protocol::agent::PageViewFrame;
use kefu_protocol::agent::{AgentEvent, AgentRequest};
use kefu_protocol::trail::{LinkCard, PageView, PageViewReport};
use kefu_protocol::visitor::VisitorRequest;
use serde_json::json;
use time::macros::datetime;

#[test]
fn a_page_view_parses_with_or_without_its_optional_fields() {
    let full: VisitorRequest = serde_json::from_value(json!({
        "type": "page_view", "url": "https://shop.example/checkout", "title": "Checkout",
        "referrer": "https://search.example/?q=shoes", "at": "2026-12-02T17:40:01.250Z"
    }))
    .expect("page_view");
    assert_eq!(
        full,
        VisitorRequest::PageView(PageViewReport {
            url: "https://shop.example/checkout".into(),
            title: Some("Checkout".into()),
            referrer: Some("https://search.example/?q=shoes".into()),
            at: Some(datetime!(2026-12-02 17:40:01.25 UTC)),
        })
    );
    let bare: VisitorRequest =
        serde_json::from_value(json!({"type": "page_view", "url": "https://shop.example/"}))
            .expect("bare page_view");
    let VisitorRequest::PageView(bare) = bare else {
        panic!("not a page view");
    };
    assert_eq!((bare.title, bare.referrer, bare.at), (None, None, None));
    assert!(
        serde_json::from_value::<VisitorRequest>(json!({"type": "page_view"})).is_err(),
        "url is required"
    );
}

#[test]
fn agents_get_page_views_and_ask_for_visitors_as_documented() {
    let frame = AgentEvent::PageView(PageViewFrame {
        conversation_id: "c1".into(),
        visitor_id: "v1".into(),
        view: PageView {
            url: "https://shop.example/checkout".into(),
            title: None,
            referrer: None,
            at: datetime!(2026-12-02 17:40:01.25 UTC),
        },
    });
    assert_eq!(
        serde_json::to_value(&frame).expect("serialize"),
        json!({"type": "page_view", "conversation_id": "c1", "visitor_id": "v1",
               "view": {"url": "https://shop.example/checkout", "at": "2026-12-02T17:40:01.25Z"}})
    );
    let ask: AgentRequest =
        serde_json::from_value(json!({"type": "visitor", "visitor_id": "v1"})).expect("visitor");
    assert_eq!(
        ask,
        AgentRequest::Visitor {
            visitor_id: "v1".into()
        }
    );
}

#[test]
fn a_link_card_rides_on_send_and_message_and_older_frames_still_parse() {
    let send: AgentRequest = serde_json::from_value(json!({
        "type": "send", "conversation_id": "c1", "client_id": "a1", "text": "",
        "link": {"url": "https://shop.example/checkout", "label": "Open the checkout"}
    }))
    .expect("send with a card");
    let AgentRequest::Send { link, .. } = send else {
        panic!("not a send");
    };
    let card = LinkCard {
        url: "https://shop.example/checkout".into(),
        label: "Open the checkout".into(),
    };
    assert_eq!(link.as_ref(), Some(&card));

    // A message from before link cards has none, and one without a card
    // is written without the field.
    let old = json!({
        "conversation_id": "c1", "seq": 2, "id": "m2", "client_id": "a1",
        "author": {"kind": "agent", "id": "a", "name": "alice"},
        "text": "hello", "at": "2026-12-02T17:40:01Z"
    });
    let message: Message = serde_json::from_value(old).expect("an old message");
    assert_eq!(message.link, None);
    assert!(
        serde_json::to_value(&message)
            .expect("serialize")
            .get("link")
            .is_none()
    );
    let with_card = Message {
        link: Some(Box::new(card)),
        ..message
    };
    let value = serde_json::to_value(&with_card).expect("serialize");
    assert_eq!(value["link"]["label"], "Open the checkout");
}
