//! Files on the wire (issue 18): `attachments` is optional both ways, so
//! frames from before it still parse and messages without files look as
//! they always did.

use kefu_protocol::agent::AgentRequest;
use kefu_protocol::files::Thumbnail;
use kefu_protocol::visitor::VisitorRequest;
use kefu_protocol::{Attachment, Message};
use serde_json::json;

#[test]
fn sends_without_attachments_still_parse_and_with_them_name_ids() {
    let old: VisitorRequest =
        serde_json::from_value(json!({"type": "send", "client_id": "c1", "text": "hi"}))
            .expect("an older send");
    assert!(matches!(old, VisitorRequest::Send { attachments, .. } if attachments.is_empty()));
    let with: AgentRequest = serde_json::from_value(json!({
        "type": "send", "conversation_id": "k1", "client_id": "c1", "text": "",
        "attachments": ["f1", "f2"]
    }))
    .expect("a send with files");
    assert!(matches!(with, AgentRequest::Send { attachments, .. } if attachments == ["f1", "f2"]));
}

#[test]
fn a_message_carries_attachments_only_when_it_has_some() {
    let mut message: Message = serde_json::from_value(json!({
        "conversation_id": "k1", "seq": 3, "id": "m3", "client_id": "c3",
        "author": {"kind": "visitor", "id": "v1", "name": "Ming"},
        "text": "see", "at": "2026-11-23T10:00:00.123Z"
    }))
    .expect("an older message");
    assert!(message.attachments.is_empty());
    let plain = serde_json::to_value(&message).expect("json");
    assert!(plain.get("attachments").is_none(), "{plain}");

    message.attachments = vec![Attachment {
        id: "f1".into(),
        name: "screenshot.png".into(),
        size: 48213,
        content_type: "image/png".into(),
        width: Some(1280),
        height: Some(720),
        thumbnail: None,
    }];
    let with = serde_json::to_value(&message).expect("json");
    assert_eq!(
        with["attachments"],
        json!([{"id": "f1", "name": "screenshot.png", "size": 48213,
                "content_type": "image/png", "width": 1280, "height": 720}])
    );
    assert!(message.attachments[0].is_raster_image());

    message.attachments[0].thumbnail = Some(Thumbnail {
        width: 320,
        height: 180,
    });
    let thumbed = serde_json::to_value(&message).expect("json");
    assert_eq!(
        thumbed["attachments"][0]["thumbnail"],
        json!({"width": 320, "height": 180})
    );
    let back: Message = serde_json::from_value(thumbed).expect("parses back");
    assert_eq!(back, message);
}
