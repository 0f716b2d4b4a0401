//! Search and the resolved conversations against a real relay: the agent
//! types a Chinese query, the answer comes over the socket, Enter opens the
//! resolved conversation at the hit; `H` lists it too.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use kefu_protocol::agent::{AgentEvent, AgentRequest, ConversationStatus, Role};
use kefu_testkit::TestRelay;
use kefu_tui::app::finder::DEBOUNCE;
use kefu_tui::app::{Input, Overlay};

use crate::support::pump_until;
use crate::{client, press};

#[tokio::test]
async fn an_agent_finds_a_resolved_chat_and_opens_it_at_the_hit() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let colleague = relay.add_agent("bob", Role::Agent).await;
    let (mut visitor, _) = relay.new_visitor().await;
    visitor.say("v1", "我的订单还没到").await;
    let id = visitor.say("v2", "thanks").await.conversation_id;
    // Bob resolves it: it leaves every queue.
    let mut bob = relay.signed_in_agent(&colleague).await;
    for request in [
        AgentRequest::Claim {
            conversation_id: id.clone(),
        },
        AgentRequest::Resolve {
            conversation_id: id.clone(),
        },
    ] {
        bob.send(&request).await;
    }
    bob.until(|event| match event {
        AgentEvent::Conversation(frame) if frame.summary.status == ConversationStatus::Resolved => {
            Some(())
        }
        _ => None,
    })
    .await;

    let mut core = client(relay.addr, token);
    pump_until(&mut core, "the welcome", |app| app.online()).await;
    assert!(
        !core.app.conversations.contains_key(&id),
        "not in the queue"
    );

    core.handle(Input::Key(KeyEvent::new(
        KeyCode::Char('f'),
        KeyModifiers::CONTROL,
    )));
    "订单"
        .chars()
        .for_each(|ch| press(&mut core, KeyCode::Char(ch)));
    let still = core.app.now + DEBOUNCE;
    core.handle(Input::Tick(still));
    pump_until(&mut core, "the search results", |app| {
        !app.finder.hits.is_empty()
    })
    .await;
    let hit = &core.app.finder.hits[0];
    assert_eq!(
        (hit.conversation.id.as_str(), hit.seq),
        (id.as_str(), Some(1))
    );
    assert_eq!(hit.snippet, "我的订单还没到");

    press(&mut core, KeyCode::Enter);
    assert_eq!(core.app.overlay, Overlay::None);
    assert_eq!(core.app.open.as_deref(), Some(id.as_str()));
    pump_until(&mut core, "the history with the hit", |app| {
        app.conversations[&id].messages.contains_key(&1)
    })
    .await;
    assert_eq!(
        core.app.conversations[&id].hit.as_ref().map(|hit| hit.seq),
        Some(1)
    );

    press(&mut core, KeyCode::Esc);
    press(&mut core, KeyCode::Char('H'));
    pump_until(&mut core, "the resolved conversations", |app| {
        !app.finder.resolved.is_empty()
    })
    .await;
    let listed: Vec<&str> = core
        .app
        .finder
        .resolved
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(listed, [id.as_str()]);
}
