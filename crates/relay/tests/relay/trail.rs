//! The visitor's page trail end to end: views reported before the first
//! message (over several page loads) are stored with it, later ones reach
//! the agents live after they are stored, bad reports change nothing, the
//! trail survives a restart, travels over long-poll too, and in a cluster
//! reaches an agent on the other relay. Agents' link cards reach the
//! visitor like messages.

use kefu_protocol::agent::VisitorRecord;
use kefu_protocol::agent::{AgentEvent, AgentRequest, Role};
use kefu_protocol::trail::{LinkCard, PageView, PageViewReport};
use kefu_protocol::visitor::{VisitorEvent, VisitorRequest};
use kefu_protocol::{ErrorCode, ErrorFrame};
use kefu_testkit::{Client, RelayProcess, TestDatabase, TestRelay, accounts, assert_error};
use serde_json::json;

use crate::longpoll::PollVisitor;
use crate::support::KEFU_RELAY;

fn page_view(path: &str) -> VisitorRequest {
    VisitorRequest::PageView(PageViewReport {
        url: format!("https://shop.example{path}"),
        title: Some(format!("Title of {path}")),
        referrer: Some("https://search.example/?q=kefu".into()),
        at: None,
    })
}

/// A report the relay refuses: its error frame, which also shows that
/// every frame sent before it was handled.
async fn refused_view(visitor: &mut Client<VisitorEvent>) -> ErrorFrame {
    visitor
        .send(&VisitorRequest::PageView(PageViewReport {
            url: "javascript:alert(1)".into(),
            title: None,
            referrer: None,
            at: None,
        }))
        .await;
    visitor.next_error().await
}

fn paths(trail: &[PageView]) -> Vec<&str> {
    (trail.iter())
        .map(|view| view.url.trim_start_matches("https://shop.example"))
        .collect()
}

async fn visitor_record(agent: &mut Client<AgentEvent>, visitor_id: &str) -> VisitorRecord {
    agent
        .send(&AgentRequest::Visitor {
            visitor_id: visitor_id.to_owned(),
        })
        .await;
    agent
        .until(|event| match event {
            AgentEvent::Visitor(record) => Some(record),
            AgentEvent::Error(error) => panic!("visitor refused: {error:?}"),
            _ => None,
        })
        .await
}

/// The next `page_view` an agent gets for `conversation`.
async fn live_view(agent: &mut Client<AgentEvent>, conversation: &str) -> PageView {
    agent
        .until(|event| match event {
            AgentEvent::PageView(frame) if frame.conversation_id == conversation => {
                Some(frame.view)
            }
            _ => None,
        })
        .await
}

#[tokio::test]
async fn the_trail_is_stored_with_the_first_message_and_followed_live() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut alice = relay.signed_in_agent(&token).await;

    // Two pages, then a page load (a new connection) and a third page.
    let (mut visitor, welcome) = relay.new_visitor().await;
    visitor.send(&page_view("/")).await;
    visitor.send(&page_view("/shoes")).await;
    assert_error(&refused_view(&mut visitor).await, ErrorCode::BadRequest);
    drop(visitor);
    let mut visitor = relay.visitor().await;
    visitor.hello(Some(&welcome.token), None).await;
    visitor.send(&page_view("/checkout")).await;
    // Nobody hears of a visitor who has not written.
    alice
        .send(&AgentRequest::Visitor {
            visitor_id: welcome.visitor_id.clone(),
        })
        .await;
    let unknown = alice.next_error().await;
    assert_error(&unknown, ErrorCode::NotFound);

    let conversation = visitor
        .say("c1", "where is my order?")
        .await
        .conversation_id;
    let first_stored = live_view(&mut alice, &conversation).await;
    assert_eq!(paths(&[first_stored]), ["/"]);
    let record = visitor_record(&mut alice, &welcome.visitor_id).await;
    assert_eq!(paths(&record.trail), ["/", "/shoes", "/checkout"]);
    assert_eq!(record.conversations.len(), 1);
    assert_eq!(record.conversations[0].id, conversation);
    assert_eq!(record.visitor.id, welcome.visitor_id);

    // Live: stored, then the agent told, with the summary's page.
    visitor.send(&page_view("/checkout/pay")).await;
    let view = live_view(&mut alice, &conversation).await;
    assert_eq!(view.title.as_deref(), Some("Title of /checkout/pay"));
    let summary = alice
        .summary_where(&conversation, |s| {
            s.visitor.page_url.as_deref() == Some("https://shop.example/checkout/pay")
        })
        .await;
    assert_eq!(
        summary.visitor.page_title.as_deref(),
        Some("Title of /checkout/pay")
    );
    // A refused report changes nothing.
    assert_error(&refused_view(&mut visitor).await, ErrorCode::BadRequest);

    drop((alice, visitor));
    let relay = TestRelay::reopen(relay.stop().await).await;
    let mut alice = relay.signed_in_agent(&token).await;
    let record = visitor_record(&mut alice, &welcome.visitor_id).await;
    assert_eq!(
        paths(&record.trail),
        ["/", "/shoes", "/checkout", "/checkout/pay"],
        "the trail survives a restart"
    );
}

/// The page a tab reported and the relay stored is not carried by that
/// tab's next message: it would put back its page over the one another
/// tab of the same visitor opened since.
#[tokio::test]
async fn a_tabs_message_keeps_the_page_another_tab_opened_since() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut alice = relay.signed_in_agent(&token).await;
    let (mut first_tab, welcome) = relay.new_visitor().await;
    let conversation = first_tab.say("c1", "hello").await.conversation_id;
    let on_page = |path: &'static str| {
        move |s: &kefu_protocol::agent::ConversationSummary| {
            s.visitor.page_url.as_deref() == Some(&*format!("https://shop.example{path}"))
        }
    };
    first_tab.send(&page_view("/shoes")).await;
    alice.summary_where(&conversation, on_page("/shoes")).await;

    let mut second_tab = relay.visitor().await;
    second_tab.hello(Some(&welcome.token), None).await;
    second_tab.send(&page_view("/checkout")).await;
    alice
        .summary_where(&conversation, on_page("/checkout"))
        .await;

    let ack = first_tab.say("c2", "still deciding").await;
    let summary = alice
        .summary_where(&conversation, |s| s.last_seq == ack.seq)
        .await;
    assert_eq!(
        summary.visitor.page_url.as_deref(),
        Some("https://shop.example/checkout"),
        "the page opened last"
    );
    assert_eq!(
        summary.visitor.page_title.as_deref(),
        Some("Title of /checkout")
    );
}

#[tokio::test]
async fn long_polling_visitors_report_pages_too() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut alice = relay.signed_in_agent(&token).await;
    let poller = PollVisitor::hello(relay.addr, None).await;
    let (status, body) = poller
        .post(json!({"type": "send", "client_id": "c1", "text": "hi"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let view = json!({"type": "page_view", "url": "https://shop.example/faq", "title": "FAQ"});
    let (status, body) = poller.post(view).await;
    assert_eq!(status, 204, "stored, nothing to answer: {body}");
    let frame = alice
        .until(|event| match event {
            AgentEvent::PageView(frame) => Some(frame),
            _ => None,
        })
        .await;
    assert_eq!(frame.view.url, "https://shop.example/faq");
    let bad = json!({"type": "page_view", "url": "data:text/html,<b>hi</b>"});
    let (status, body) = poller.post(bad).await;
    assert!(body.contains("bad_request"), "{status} {body}");
}

/// A page the visitor opens on one relay reaches an agent on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_on_another_relay_follows_the_trail() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let token = accounts::add_agent(&database.url, "alice", Role::Agent).await;
    let a = RelayProcess::start(KEFU_RELAY, &database.url, &[]).await;
    let b = RelayProcess::start(KEFU_RELAY, &database.url, &[]).await;
    let mut alice = b.agent().await;
    alice.hello(&token).await;
    let mut visitor = a.visitor().await;
    let welcome = visitor.hello(None, None).await;
    visitor.send(&page_view("/pricing")).await;
    let conversation = visitor.say("c1", "a question").await.conversation_id;
    assert_eq!(
        paths(&[live_view(&mut alice, &conversation).await]),
        ["/pricing"]
    );
    visitor.send(&page_view("/signup")).await;
    assert_eq!(
        paths(&[live_view(&mut alice, &conversation).await]),
        ["/signup"]
    );
    let record = visitor_record(&mut alice, &welcome.visitor_id).await;
    assert_eq!(paths(&record.trail), ["/pricing", "/signup"]);
    a.kill().await;
    b.kill().await;
    database.drop_database().await;
}

/// An agent's link card reaches the visitor as a message carrying the
/// card, and comes back in the visitor's replay; bad cards change nothing.
#[tokio::test]
async fn a_link_card_reaches_the_visitor_and_is_replayed() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut alice = relay.signed_in_agent(&token).await;
    let (mut visitor, welcome) = relay.new_visitor().await;
    let conversation = visitor.say("c1", "how do I pay?").await.conversation_id;
    let card = |url: &str, internal: bool| AgentRequest::Send {
        conversation_id: conversation.clone(),
        client_id: format!("card-{url}-{internal}"),
        text: "ignored: the label is the text".into(),
        internal,
        link: Some(LinkCard {
            url: url.into(),
            label: "  Open the checkout ".into(),
        }),
        attachments: Vec::new(),
    };
    for refused in [
        card("javascript:alert(1)", false),
        card("https://shop.example/", true),
    ] {
        alice.send(&refused).await;
        assert_error(&alice.next_error().await, ErrorCode::BadRequest);
    }
    alice
        .send(&card("https://shop.example/checkout", false))
        .await;
    let got = visitor.next_message().await;
    let expected = LinkCard {
        url: "https://shop.example/checkout".into(),
        label: "Open the checkout".into(),
    };
    assert_eq!(got.link.as_deref(), Some(&expected));
    assert_eq!(got.text, "Open the checkout");
    assert_eq!(got.seq, 2, "the refused cards stored nothing");

    let mut again = relay.visitor().await;
    again.hello(Some(&welcome.token), Some(0)).await;
    let replayed = again.next_message().await;
    assert_eq!(replayed.seq, 1);
    assert_eq!(again.next_message().await, got);
}
