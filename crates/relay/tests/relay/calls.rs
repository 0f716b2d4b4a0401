//! Remote-assistance calls over real sockets: the relay forwards each
//! signal to the named peer of the sender's call and to nobody else (other
//! conversations' visitors, on WebSocket or long-poll, and agents' own
//! connections never see one); one-time links work once; the call ends
//! when its participants leave or hang up; and every step is in the
//! conversation's timeline.

use kefu_protocol::agent::{AgentEvent, AgentRequest, Role};
use kefu_protocol::call::{
    AssistEvent, AssistRequest, CallEndReason, CallLink, CallWelcome, MAX_SIGNAL_BYTES, SignalFrom,
    SignalKind, SignalTo,
};
use kefu_protocol::visitor::{VisitorEvent, VisitorRequest};
use kefu_protocol::{ErrorCode, ErrorFrame, Message, TimelineEvent};
use kefu_testkit::{Client, TestRelay, assert_error};
use serde_json::json;

use crate::longpoll::PollVisitor;

/// Asks for the visitor's screen in `conversation`; the link answered.
pub(crate) async fn invite(agent: &mut Client<AgentEvent>, conversation: &str) -> CallLink {
    agent
        .send(&AgentRequest::CallInvite {
            conversation_id: conversation.to_owned(),
        })
        .await;
    agent
        .until(|frame| match frame {
            AgentEvent::CallLink(link) => Some(link),
            AgentEvent::Error(error) => panic!("invite refused: {error:?}"),
            _ => None,
        })
        .await
}

/// The code of a link's `/assist#code=…`.
pub(crate) fn code_of(link: &CallLink) -> String {
    let code = link
        .path
        .strip_prefix("/assist#code=")
        .expect("an assist path");
    code.to_owned()
}

/// An assist page that said hello with `code`.
async fn assist_page(relay: &TestRelay, code: &str) -> Client<AssistEvent> {
    page_at(&relay.url("/ws/assist"), code).await
}

async fn page_at(url: &str, code: &str) -> Client<AssistEvent> {
    let mut page = Client::connect(url).await;
    page.send(&AssistRequest::Hello {
        code: code.to_owned(),
    })
    .await;
    page
}

/// An assist page in the call; its welcome.
async fn joined_page(relay: &TestRelay, link: &CallLink) -> (Client<AssistEvent>, CallWelcome) {
    let mut page = assist_page(relay, &code_of(link)).await;
    let welcome = page
        .until(|frame| match frame {
            AssistEvent::CallWelcome(welcome) => Some(welcome),
            AssistEvent::Error(error) => panic!("join refused: {error:?}"),
            _ => None,
        })
        .await;
    (page, welcome)
}

/// The page's next error; a signal before it would be a leak.
async fn refused(page: &mut Client<AssistEvent>) -> ErrorFrame {
    page.until(|frame| match frame {
        AssistEvent::Error(error) => Some(error),
        AssistEvent::CallSignal(signal) => panic!("expected an error, got {signal:?}"),
        _ => None,
    })
    .await
}

fn signal(call_id: &str, to: &str, kind: SignalKind, data: &str) -> SignalTo {
    SignalTo {
        call_id: call_id.to_owned(),
        to: to.to_owned(),
        kind,
        data: data.to_owned(),
    }
}

async fn visitor_signal(visitor: &mut Client<VisitorEvent>) -> SignalFrom {
    visitor
        .until(|frame| match frame {
            VisitorEvent::CallSignal(signal) => Some(signal),
            VisitorEvent::Error(error) => panic!("refused: {error:?}"),
            _ => None,
        })
        .await
}

async fn page_signal(page: &mut Client<AssistEvent>) -> SignalFrom {
    page.until(|frame| match frame {
        AssistEvent::CallSignal(signal) => Some(signal),
        AssistEvent::Error(error) => panic!("refused: {error:?}"),
        _ => None,
    })
    .await
}

/// Reads a visitor's frames up to its next message, failing on any call
/// frame: a message sent after the call's traffic fences what came before.
async fn no_call_frames_before_message(visitor: &mut Client<VisitorEvent>) {
    visitor
        .until(|frame| match frame {
            VisitorEvent::Message(message) => Some(message),
            VisitorEvent::CallInvite(_)
            | VisitorEvent::CallWelcome(_)
            | VisitorEvent::CallJoined(_)
            | VisitorEvent::CallLeft(_)
            | VisitorEvent::CallSignal(_)
            | VisitorEvent::CallEnded(_) => panic!("a call frame outside its call: {frame:?}"),
            _ => None,
        })
        .await;
}

/// A conversation's call events, in order, as short words.
fn call_steps(messages: &[Message]) -> Vec<String> {
    (messages.iter())
        .filter_map(|message| match message.event.as_deref()? {
            TimelineEvent::CallStarted { by, .. } => Some(format!("started by {}", by.name)),
            TimelineEvent::CallJoined { who, .. } => Some(format!("{} joined", who.name)),
            TimelineEvent::CallLeft { who, .. } => Some(format!("{} left", who.name)),
            TimelineEvent::CallEnded { reason, .. } => Some(format!("ended: {reason:?}")),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn signals_reach_exactly_the_other_peers_of_the_call_and_the_call_ends_when_they_leave() {
    let relay = TestRelay::start().await;
    let alice_token = relay.add_agent("alice", Role::Agent).await;
    let bob_token = relay.add_agent("bob", Role::Agent).await;
    let mut alice = relay.signed_in_agent(&alice_token).await;
    let mut bob = relay.signed_in_agent(&bob_token).await;
    let (mut visitor, welcome) = relay.new_visitor().await;
    let visitor_id = welcome.visitor_id.clone();
    let conversation = visitor
        .say("v1", "my screen is blank")
        .await
        .conversation_id;
    // Visitors of other conversations, over both transports.
    let (mut other, _) = relay.new_visitor().await;
    let other_conversation = other.say("o1", "hi").await.conversation_id;
    let poller = PollVisitor::hello(relay.addr, None).await;
    let (status, body) = poller
        .post(json!({"type": "send", "client_id": "p1", "text": "hello"}))
        .await;
    assert_eq!(status, 200, "{body}");

    let link = invite(&mut alice, &conversation).await;
    assert_eq!(link.conversation_id, conversation);
    assert!(
        !link.path.contains(&alice_token),
        "the link never holds the token"
    );
    let invited = visitor
        .until(|frame| match frame {
            VisitorEvent::CallInvite(invite) => Some(invite),
            _ => None,
        })
        .await;
    assert_eq!(invited.call_id, link.call_id);
    assert_eq!(invited.by.name, "alice");
    let call = link.call_id.clone();

    let (mut page_a, welcome_a) = joined_page(&relay, &link).await;
    assert!(welcome_a.peers.is_empty(), "nobody else yet");
    let peer_a = welcome_a.you.clone();

    // The link works once.
    let mut replay = assist_page(&relay, &code_of(&link)).await;
    assert_error(&refused(&mut replay).await, ErrorCode::Forbidden);
    // A forged one not at all.
    let mut forged = assist_page(&relay, &format!("{}x", code_of(&link))).await;
    assert_error(&refused(&mut forged).await, ErrorCode::Forbidden);

    visitor
        .send(&VisitorRequest::CallAccept {
            call_id: call.clone(),
        })
        .await;
    let visitor_welcome = visitor
        .until(|frame| match frame {
            VisitorEvent::CallWelcome(welcome) => Some(welcome),
            _ => None,
        })
        .await;
    assert_eq!(visitor_welcome.you, visitor_id);
    assert_eq!(visitor_welcome.peers.len(), 1);
    assert_eq!(visitor_welcome.peers[0].peer, peer_a);
    let joined = page_a
        .until(|frame| match frame {
            AssistEvent::CallJoined(joined) => Some(joined),
            _ => None,
        })
        .await;
    assert_eq!(joined.peer.peer, visitor_id);

    // Offer, answer and a candidate, each to its peer.
    let offer = signal(&call, &peer_a, SignalKind::Offer, "v=0 offer");
    visitor.send(&VisitorRequest::CallSignal(offer)).await;
    let got = page_signal(&mut page_a).await;
    assert_eq!(
        (got.from.as_str(), got.kind, got.data.as_str()),
        (visitor_id.as_str(), SignalKind::Offer, "v=0 offer")
    );
    let answer = signal(&call, &visitor_id, SignalKind::Answer, "v=0 answer");
    page_a.send(&AssistRequest::CallSignal(answer)).await;
    let got = visitor_signal(&mut visitor).await;
    assert_eq!(
        (got.from.as_str(), got.kind),
        (peer_a.as_str(), SignalKind::Answer)
    );
    let candidate = signal(&call, &peer_a, SignalKind::Ice, r#"{"candidate":"c1"}"#);
    visitor.send(&VisitorRequest::CallSignal(candidate)).await;
    assert_eq!(page_signal(&mut page_a).await.kind, SignalKind::Ice);

    // A second agent joins the same call from a link of its own.
    let bob_link = invite(&mut bob, &conversation).await;
    assert_eq!(bob_link.call_id, call, "one call per conversation");
    let (mut page_b, welcome_b) = joined_page(&relay, &bob_link).await;
    let peers: Vec<&str> = welcome_b.peers.iter().map(|p| p.peer.as_str()).collect();
    assert_eq!(peers, [peer_a.as_str(), visitor_id.as_str()]);
    let peer_b = welcome_b.you.clone();
    let offer_b = signal(&call, &peer_b, SignalKind::Offer, "v=0 for bob");
    visitor.send(&VisitorRequest::CallSignal(offer_b)).await;
    let got = page_signal(&mut page_b).await;
    assert_eq!(got.data, "v=0 for bob");

    // Outside the call: refused, and nothing reaches anyone.
    let stray = signal(&call, &peer_a, SignalKind::Offer, "from outside");
    other.send(&VisitorRequest::CallSignal(stray)).await;
    assert_error(&other.next_error().await, ErrorCode::NotFound);
    let to_outsider = signal(&call, "somebody-else", SignalKind::Offer, "x");
    page_a.send(&AssistRequest::CallSignal(to_outsider)).await;
    assert_error(&refused(&mut page_a).await, ErrorCode::NotFound);
    let (status, body) = poller
        .post(json!({"type": "call_signal", "call_id": call, "to": peer_a, "kind": "offer", "data": "x"}))
        .await;
    assert!(body.contains("not_found"), "{status} {body}");
    let huge = signal(
        &call,
        &peer_a,
        SignalKind::Offer,
        &"s".repeat(MAX_SIGNAL_BYTES + 1),
    );
    visitor.send(&VisitorRequest::CallSignal(huge)).await;
    assert_error(&visitor.next_error().await, ErrorCode::TooLarge);

    // Fences: a message to each outsider comes after anything the call
    // could have queued for them. (An agent's connection cannot even
    // decode a call signal: `AgentEvent` has none.)
    alice.reply(&other_conversation, "a-o", "fence").await;
    no_call_frames_before_message(&mut other).await;
    let polled = poller.events(0).await;
    assert!(
        polled.iter().all(|frame| !matches!(
            frame,
            VisitorEvent::CallInvite(_) | VisitorEvent::CallSignal(_) | VisitorEvent::CallJoined(_)
        )),
        "{polled:?}"
    );

    // Bob's page closes: he leaves; the call goes on.
    drop(page_b);
    let left = page_a
        .until(|frame| match frame {
            AssistEvent::CallLeft(left) => Some(left),
            _ => None,
        })
        .await;
    assert_eq!(left.peer.peer, peer_b);
    // Alice leaves too: the last agent, so the call ends for the visitor.
    page_a
        .send(&AssistRequest::CallLeave {
            call_id: call.clone(),
        })
        .await;
    let ended = visitor
        .until(|frame| match frame {
            VisitorEvent::CallEnded(ended) => Some(ended),
            _ => None,
        })
        .await;
    assert_eq!(
        (ended.call_id.as_str(), ended.reason),
        (call.as_str(), CallEndReason::Left)
    );

    let history = alice.history(&conversation, None, 100).await;
    assert_eq!(
        call_steps(&history),
        [
            "started by alice",
            "alice joined",
            &format!("{} joined", welcome_name(&history)),
            "bob joined",
            "bob left",
            "ended: Left",
        ]
    );
    let ended = history.iter().find_map(|m| match m.event.as_deref() {
        Some(TimelineEvent::CallEnded { duration_secs, .. }) => Some(*duration_secs),
        _ => None,
    });
    assert!(ended.is_some_and(|secs| secs < 60), "{ended:?}");
}

/// The visitor's name as their join recorded it.
fn welcome_name(messages: &[Message]) -> String {
    (messages.iter())
        .find_map(|m| match m.event.as_deref() {
            Some(TimelineEvent::CallJoined { who, .. })
                if who.kind == kefu_protocol::AuthorKind::Visitor =>
            {
                Some(who.name.clone())
            }
            _ => None,
        })
        .expect("the visitor joined")
}

#[tokio::test]
async fn a_declined_call_ends_at_once_and_its_link_joins_nothing() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut alice = relay.signed_in_agent(&token).await;
    let (mut visitor, _) = relay.new_visitor().await;
    let conversation = visitor.say("v1", "hi").await.conversation_id;
    let link = invite(&mut alice, &conversation).await;
    visitor
        .send(&VisitorRequest::CallDecline {
            call_id: link.call_id.clone(),
        })
        .await;
    let ended = visitor
        .until(|frame| match frame {
            VisitorEvent::CallEnded(ended) => Some(ended),
            _ => None,
        })
        .await;
    assert_eq!(ended.reason, CallEndReason::Declined);
    // The chat goes on.
    alice.reply(&conversation, "a1", "no problem").await;
    assert_eq!(visitor.next_message().await.text, "no problem");
    let mut page = assist_page(&relay, &code_of(&link)).await;
    assert_error(&refused(&mut page).await, ErrorCode::NotFound);
    let history = alice.history(&conversation, None, 100).await;
    assert_eq!(
        call_steps(&history),
        ["started by alice", "ended: Declined"]
    );
}

/// A call in which the visitor shares with alice's assist page.
struct SharedScreen {
    /// Alice's own connection, kept open.
    _alice: Client<AgentEvent>,
    visitor: Client<VisitorEvent>,
    page: Client<AssistEvent>,
    link: CallLink,
    /// The assist page's peer id.
    page_peer: String,
}

async fn shared_screen(relay: &TestRelay) -> SharedScreen {
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut alice = relay.signed_in_agent(&token).await;
    let (mut visitor, _) = relay.new_visitor().await;
    let conversation = visitor.say("v1", "hi").await.conversation_id;
    let link = invite(&mut alice, &conversation).await;
    let (mut page, welcome) = joined_page(relay, &link).await;
    visitor
        .send(&VisitorRequest::CallAccept {
            call_id: link.call_id.clone(),
        })
        .await;
    page.until(|frame| matches!(frame, AssistEvent::CallJoined(_)).then_some(()))
        .await;
    SharedScreen {
        _alice: alice,
        visitor,
        page,
        link,
        page_peer: welcome.you,
    }
}

#[tokio::test]
async fn the_visitor_stopping_ends_the_call_for_every_agent() {
    let relay = TestRelay::start().await;
    let SharedScreen {
        mut visitor,
        mut page,
        link,
        ..
    } = shared_screen(&relay).await;
    visitor
        .send(&VisitorRequest::CallHangup {
            call_id: link.call_id.clone(),
        })
        .await;
    let ended = page
        .until(|frame| match frame {
            AssistEvent::CallEnded(ended) => Some(ended),
            _ => None,
        })
        .await;
    assert_eq!(ended.reason, CallEndReason::HungUp);
    // Over: signals and a new join are refused.
    let late = signal(&link.call_id, "anyone", SignalKind::Ice, "{}");
    visitor.send(&VisitorRequest::CallSignal(late)).await;
    assert_error(&visitor.next_error().await, ErrorCode::NotFound);
}

#[tokio::test]
async fn a_visitor_gone_past_the_presence_grace_ends_the_call() {
    let relay = TestRelay::with_config(|config| {
        config.presence_grace = std::time::Duration::from_millis(200);
    })
    .await;
    let SharedScreen {
        visitor, mut page, ..
    } = shared_screen(&relay).await;
    drop(visitor);
    let ended = page
        .until(|frame| match frame {
            AssistEvent::CallEnded(ended) => Some(ended),
            _ => None,
        })
        .await;
    assert_eq!(ended.reason, CallEndReason::Left);
}

/// Two relays on one PostgreSQL: the visitor on one, the agent and its
/// assist page on the other; the call's steps and signals cross.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_works_across_two_relays() {
    let Some(cluster) = crate::cluster::Cluster::start().await else {
        return;
    };
    let mut alice = cluster.agent_on_b().await;
    let mut visitor = cluster.a.visitor().await;
    let visitor_id = visitor.hello(None, None).await.visitor_id;
    let conversation = visitor.say("v1", "hi").await.conversation_id;
    let link = invite(&mut alice, &conversation).await;
    visitor
        .until(|frame| matches!(frame, VisitorEvent::CallInvite(_)).then_some(()))
        .await;
    let mut page = page_at(
        &format!("ws://{}/ws/assist", cluster.b.addr),
        &code_of(&link),
    )
    .await;
    let you = page
        .until(|frame| match frame {
            AssistEvent::CallWelcome(welcome) => Some(welcome.you),
            _ => None,
        })
        .await;
    visitor
        .send(&VisitorRequest::CallAccept {
            call_id: link.call_id.clone(),
        })
        .await;
    page.until(|frame| matches!(frame, AssistEvent::CallJoined(_)).then_some(()))
        .await;
    // As a real page does, the visitor signals the page once its own relay
    // says the page is in the call: relay A may apply the visitor's own
    // join before relay B's notification of the page's arrives, and then
    // names the page in a `CallJoined` after the welcome.
    visitor
        .until(|frame| match frame {
            VisitorEvent::CallWelcome(welcome) => welcome
                .peers
                .iter()
                .any(|peer| peer.peer == you)
                .then_some(()),
            VisitorEvent::CallJoined(joined) => (joined.peer.peer == you).then_some(()),
            _ => None,
        })
        .await;
    let offer = signal(&link.call_id, &you, SignalKind::Offer, "v=0 across");
    visitor.send(&VisitorRequest::CallSignal(offer)).await;
    assert_eq!(page_signal(&mut page).await.data, "v=0 across");
    let answer = signal(&link.call_id, &visitor_id, SignalKind::Answer, "v=0 back");
    page.send(&AssistRequest::CallSignal(answer)).await;
    assert_eq!(visitor_signal(&mut visitor).await.data, "v=0 back");
    drop(page);
    let ended = visitor
        .until(|frame| match frame {
            VisitorEvent::CallEnded(ended) => Some(ended),
            _ => None,
        })
        .await;
    assert_eq!(ended.reason, CallEndReason::Left);
    cluster.stop().await;
}

#[tokio::test]
async fn a_disabled_agents_assist_page_is_closed_and_its_links_refused() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("carol", Role::Agent).await;
    let mut carol = relay.signed_in_agent(&token).await;
    let (mut visitor, _) = relay.new_visitor().await;
    let conversation = visitor.say("v1", "hi").await.conversation_id;
    let link = invite(&mut carol, &conversation).await;
    let spare = invite(&mut carol, &conversation).await;
    let (mut page, _) = joined_page(&relay, &link).await;

    let output = crate::support::run_cli(
        &["agent", "disable", "carol", "--database", &relay.database],
        &[],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let since = tokio::time::Instant::now();
    crate::revocation::revoked(&mut carol, since).await;
    assert_error(&refused(&mut page).await, ErrorCode::Unauthorized);
    let mut late = assist_page(&relay, &code_of(&spare)).await;
    assert_error(&refused(&mut late).await, ErrorCode::Forbidden);
}

#[tokio::test]
async fn call_signals_count_against_the_frame_rate() {
    // The documented defaults, which the test relay raises.
    let relay = TestRelay::with_config(|config| {
        config.limits.frames_per_second = 10;
        config.limits.frame_burst = 30;
    })
    .await;
    // The page stays open: closing it would end the call.
    let SharedScreen {
        mut visitor,
        page: _page,
        link,
        page_peer,
        ..
    } = shared_screen(&relay).await;
    // Far past the burst of 30: the rest are dropped with `rate_limited`.
    let flood = signal(&link.call_id, &page_peer, SignalKind::Ice, "{}");
    for _ in 0..100 {
        visitor
            .send(&VisitorRequest::CallSignal(flood.clone()))
            .await;
    }
    assert_error(&visitor.next_error().await, ErrorCode::RateLimited);
}

#[tokio::test]
async fn an_agent_hangs_up_from_the_terminal() {
    let relay = TestRelay::start().await;
    let SharedScreen {
        mut visitor,
        mut page,
        link,
        ..
    } = shared_screen(&relay).await;
    let token = relay.add_agent("bob", Role::Agent).await;
    let mut bob = relay.signed_in_agent(&token).await;
    bob.send(&AgentRequest::CallHangup {
        call_id: link.call_id.clone(),
    })
    .await;
    for ended in [
        visitor
            .until(|frame| match frame {
                VisitorEvent::CallEnded(ended) => Some(ended),
                _ => None,
            })
            .await,
        page.until(|frame| match frame {
            AssistEvent::CallEnded(ended) => Some(ended),
            _ => None,
        })
        .await,
    ] {
        assert_eq!(ended.reason, CallEndReason::HungUp);
    }
    // Once over, there is nothing to hang up.
    bob.send(&AgentRequest::CallHangup {
        call_id: link.call_id,
    })
    .await;
    assert_error(&bob.next_error().await, ErrorCode::NotFound);
}

/// The prompt was on the page: a visitor who reloads it (or opens another
/// tab) while a request is unanswered is asked again there.
#[tokio::test]
async fn a_visitor_who_reloads_before_answering_is_asked_again() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let mut alice = relay.signed_in_agent(&token).await;
    let (mut visitor, welcome) = relay.new_visitor().await;
    let conversation = visitor.say("v1", "hi").await.conversation_id;
    let link = invite(&mut alice, &conversation).await;
    visitor
        .until(|frame| matches!(frame, VisitorEvent::CallInvite(_)).then_some(()))
        .await;
    drop(visitor);

    let mut reloaded = relay.visitor().await;
    reloaded.hello(Some(&welcome.token), None).await;
    let invited = reloaded
        .until(|frame| match frame {
            VisitorEvent::CallInvite(invite) => Some(invite),
            _ => None,
        })
        .await;
    assert_eq!(
        (invited.call_id.as_str(), invited.by.name.as_str()),
        (link.call_id.as_str(), "alice")
    );
}
