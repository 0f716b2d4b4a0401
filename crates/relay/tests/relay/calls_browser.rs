//! Remote assistance in a real headless Chromium with fake media: the
//! visitor's page asks for consent and shares a (fake) screen, assist
//! pages opened from one-time links receive its video, a second agent
//! joins, and stopping ends the call for both; a declined request sends
//! nothing; a used link is refused.
//!
//! `--use-fake-ui-for-media-stream` answers the browser's own prompts
//! (here, getDisplayMedia's picker) as a user would; with
//! `--use-fake-device-for-media-stream` what is shared is Chromium's
//! synthetic moving picture; `--auto-select-desktop-capture-source` names
//! the source should a picker still be asked.

use std::time::Duration;

use kefu_protocol::agent::Role;
use kefu_testkit::{PATIENCE, TestRelay};

use crate::browser::Browser;
use crate::calls::invite;

const FAKE_MEDIA: &[&str] = &[
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--auto-select-desktop-capture-source=Entire screen",
    "--autoplay-policy=no-user-gesture-required",
];

/// Bytes of video the assist page in the current window has received.
async fn bytes_received(browser: &Browser) -> u64 {
    let script = "const done = arguments[arguments.length - 1];
                  window.kefuAssist.bytesReceived().then(done, () => done(-1));";
    let value = (browser.client.execute_async(script, vec![]).await).expect("getStats");
    value.as_u64().unwrap_or(0)
}

/// Decoded frames of the assist page's video so far.
async fn frames_decoded(browser: &Browser) -> u64 {
    let value = browser
        .eval("const v = document.getElementById('screen'); return v.getVideoPlaybackQuality().totalVideoFrames;")
        .await;
    value.as_u64().unwrap_or(0)
}

/// Waits until the current window's assist page receives video: bytes
/// (getStats) and decoded frames both grow.
async fn receives_video(browser: &Browser) {
    let deadline = tokio::time::Instant::now() + PATIENCE * 3;
    let (first_bytes, first_frames) = loop {
        let bytes = bytes_received(browser).await;
        let frames = frames_decoded(browser).await;
        if bytes > 0 && frames > 0 {
            break (bytes, frames);
        }
        assert!(tokio::time::Instant::now() < deadline, "no video arrived");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    loop {
        let (bytes, frames) = (bytes_received(browser).await, frames_decoded(browser).await);
        if bytes > first_bytes && frames > first_frames {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the video stopped");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_shares_the_screen_with_two_agents_and_stops() {
    let Some(browser) = Browser::start_with(FAKE_MEDIA).await else {
        return;
    };
    let relay = TestRelay::start().await;
    let alice_token = relay.add_agent("alice", Role::Agent).await;
    let bob_token = relay.add_agent("bob", Role::Agent).await;
    let mut alice = relay.signed_in_agent(&alice_token).await;
    let mut bob = relay.signed_in_agent(&bob_token).await;
    let client = &browser.client;

    browser.open_chat(&relay.http_url("/")).await;
    let visitor_window = client.window().await.expect("window");
    browser.type_and_send("my printer dialog is stuck").await;
    let conversation = alice.next_message().await.conversation_id;

    // Declined: an assist page waits; nothing is sent; the call ends.
    let declined = invite(&mut alice, &conversation).await;
    let prompt = browser.wait_for(".call-prompt").await;
    let asked = prompt.text().await.expect("prompt text");
    assert!(asked.contains("alice asks to see your screen"), "{asked}");
    let waiting = client.new_window(true).await.expect("window").handle;
    client
        .switch_to_window(waiting.clone())
        .await
        .expect("switch");
    client
        .goto(&relay.http_url(&declined.path))
        .await
        .expect("open");
    browser.wait_for("#screen").await;
    client
        .switch_to_window(visitor_window.clone())
        .await
        .expect("switch");
    browser
        .wait_for(".call-decline")
        .await
        .click()
        .await
        .expect("decline");
    client
        .switch_to_window(waiting.clone())
        .await
        .expect("switch");
    browser.wait_for("body[data-ended='declined']").await;
    assert_eq!(
        bytes_received(&browser).await,
        0,
        "a declined call sends no media"
    );
    client.close_window().await.expect("close");

    // Accepted, with alice's page.
    client
        .switch_to_window(visitor_window.clone())
        .await
        .expect("switch");
    let link = invite(&mut alice, &conversation).await;
    browser
        .wait_for(".call-accept")
        .await
        .click()
        .await
        .expect("accept");
    browser.wait_for(".call-bar").await;
    let alice_page = client.new_window(true).await.expect("window").handle;
    client
        .switch_to_window(alice_page.clone())
        .await
        .expect("switch");
    client
        .goto(&relay.http_url(&link.path))
        .await
        .expect("open");
    assert!(
        !client
            .current_url()
            .await
            .expect("url")
            .as_str()
            .contains("code="),
        "the one-time code leaves the address bar"
    );
    receives_video(&browser).await;

    // Bob joins from his own link and receives too.
    let bob_link = invite(&mut bob, &conversation).await;
    let bob_page = client.new_window(true).await.expect("window").handle;
    client
        .switch_to_window(bob_page.clone())
        .await
        .expect("switch");
    client
        .goto(&relay.http_url(&bob_link.path))
        .await
        .expect("open");
    receives_video(&browser).await;

    // Alice's link again: used.
    let replay = client.new_window(true).await.expect("window").handle;
    client.switch_to_window(replay).await.expect("switch");
    client
        .goto(&relay.http_url(&link.path))
        .await
        .expect("open");
    browser.wait_for("body[data-error='forbidden']").await;
    client.close_window().await.expect("close");

    // The visitor stops: both pages see the end.
    client
        .switch_to_window(visitor_window)
        .await
        .expect("switch");
    browser
        .wait_for(".call-stop")
        .await
        .click()
        .await
        .expect("stop");
    for page in [alice_page, bob_page] {
        client.switch_to_window(page).await.expect("switch");
        browser.wait_for("body[data-ended='hung_up']").await;
    }
    browser.close().await;
}
