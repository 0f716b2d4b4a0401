//! Chat runs with uploaders and with attackers, against a real relay: the
//! legitimate chat stays whole, and what uploads and attacks got is
//! counted by kind.

use std::time::Duration;

use kefu_bench::config::{Abuse, Mode, Uploads};

use crate::chat::assert_all_answered;
use crate::support::{TestRelay, chat_config};

fn with_extras(config: &mut kefu_bench::Config, uploads: Option<Uploads>, abuse: Option<Abuse>) {
    let Mode::Chat(chat) = &mut config.mode else {
        panic!("a chat config");
    };
    chat.uploads = uploads;
    chat.abuse = abuse;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaders_store_files_that_their_agents_receive_without_touching_chat_latency() {
    let relay = TestRelay::with_limits(1, |limits| limits.uploads_per_minute = 1000).await;
    let mut config = chat_config(&relay.target, relay.tokens.clone(), 2, 20.0);
    let uploads = Uploads {
        uploaders: 2,
        bytes: 64 * 1024,
        pause: Duration::ZERO,
    };
    with_extras(&mut config, Some(uploads), None);
    let report = kefu_bench::run(&config).await.expect("run");

    // Both uploaders are visitors whose every message (each naming a
    // stored file) reached the agent and was answered.
    assert_all_answered(&report, 4, 1);
    let figures = report.uploads.as_ref().expect("upload figures");
    assert!(figures.stored >= 2, "{figures:?}");
    assert!(figures.refused.is_empty(), "{figures:?}");
    assert_eq!(figures.latency_ms.count, figures.stored);
    assert!(figures.mib >= figures.stored as f64 / 16.0, "64 KiB each");
    // The chat's latencies count the chatting visitors' messages only.
    let timed = report.latency_ms.visitor_to_agent.count;
    assert_eq!(timed + figures.stored, report.to_agent.delivered);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_past_the_relays_limit_are_counted_as_refused() {
    let relay = TestRelay::with_limits(1, |limits| limits.uploads_per_minute = 2).await;
    let mut config = chat_config(&relay.target, relay.tokens.clone(), 1, 5.0);
    let uploads = Uploads {
        uploaders: 1,
        bytes: 1024,
        pause: Duration::ZERO,
    };
    with_extras(&mut config, Some(uploads), None);
    let report = kefu_bench::run(&config).await.expect("run");
    let figures = report.uploads.as_ref().expect("upload figures");
    assert_eq!(figures.stored, 2, "{figures:?}");
    assert!(
        figures
            .refused
            .get("refused: rate_limited")
            .is_some_and(|n| *n > 0),
        "{figures:?}"
    );
    assert!(report.passed, "refused uploads send nothing");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploader_pauses_between_uploads_when_asked() {
    let relay = TestRelay::with_limits(1, |limits| limits.uploads_per_minute = 1000).await;
    let mut config = chat_config(&relay.target, relay.tokens.clone(), 1, 5.0);
    if let Mode::Chat(chat) = &mut config.mode {
        chat.duration = Duration::from_secs(2);
    }
    let uploads = Uploads {
        uploaders: 1,
        bytes: 1024,
        pause: Duration::from_millis(700),
    };
    with_extras(&mut config, Some(uploads), None);
    let report = kefu_bench::run(&config).await.expect("run");
    // Two seconds of sending: an upload at once and after each pause, so at
    // most three (at 0, 0.7 and 1.4 s, were uploads instant); back to back
    // they would be dozens. At least two unless the first upload takes
    // longer than 1.3 s (a debug build on a loaded CI machine took 0.8 s).
    let figures = report.uploads.as_ref().expect("upload figures");
    assert!((2..=3).contains(&figures.stored), "{figures:?}");
    assert!(report.passed);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attackers_are_held_to_their_budgets_while_the_chat_loses_nothing() {
    let timeout = Duration::from_millis(300);
    let relay = TestRelay::with_limits(1, |limits| {
        limits.http_header_timeout = timeout;
        limits.http_body_timeout = timeout;
    })
    .await;
    // 4 visitors from 2 addresses, attackers from 2 others; the relay's
    // per-address limits are its defaults.
    let mut config = chat_config(&relay.target, relay.tokens.clone(), 4, 20.0);
    config.source_addrs = 2;
    let abuse = Abuse {
        addrs: 2,
        half_open: 4,
        slow_bodies: 2,
        spammers: 2,
        trickle: Duration::from_millis(50),
    };
    with_extras(&mut config, None, Some(abuse));
    let report = kefu_bench::run(&config).await.expect("run");

    assert_all_answered(&report, 4, 1);
    let attack = report.attack.as_ref().expect("attack figures");
    assert_eq!(attack.addresses, "127.0.0.4–127.0.0.5");
    // Each half-open connection was closed after the header timeout and
    // tried again, not held for the whole run.
    let ended: u64 = attack.half_open.values().sum();
    assert!(ended >= 4, "{attack:?}");
    assert!(attack.stalled_held_ms.p50 >= 250.0, "{attack:?}");
    assert!(attack.stalled_held_ms.max < 1000.0, "{attack:?}");
    assert!(
        !attack.slow_bodies.is_empty() && !attack.slow_bodies.contains_key("answered 201"),
        "no slow upload got through: {attack:?}"
    );
    // The spam opened at most its two addresses' bursts of new
    // conversations (20 each) and was refused past them.
    assert!(attack.conversations_opened <= 40, "{attack:?}");
    assert!(
        attack
            .spam
            .get("refused: rate_limited")
            .is_some_and(|n| *n > 0),
        "{attack:?}"
    );
    relay.stop().await;
}
