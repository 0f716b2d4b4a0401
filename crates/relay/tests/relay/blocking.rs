//! `kefu-relay block`, run as another process, takes effect on the running
//! relay within a second: a blocked address is refused at accept, a
//! blocked client behind a trusted proxy as soon as the proxy names it,
//! and `unblock` lets them back.

use std::future::Future;
use std::time::Duration;

use kefu_testkit::TestRelay;
use tokio::time::Instant;

use crate::admission::healthz_from;
use crate::proxies::{PROXY, upgrade_from};
use crate::support::{run_cli, stdout};

/// The relay re-reads the blocks every 0.5 s and promises a second; the
/// bound leaves room for a loaded CI machine.
const IN_FORCE_WITHIN: Duration = Duration::from_secs(2);

async fn cli(relay: &TestRelay, args: &[&str]) -> String {
    let mut args = args.to_vec();
    args.extend(["--database", &relay.database]);
    let output = run_cli(&args, &[]).await;
    assert!(output.status.success(), "{args:?}: {output:?}");
    stdout(&output)
}

/// Asks `check` again until it holds, and returns how long that took; the
/// relay gives no event to await when it re-reads the store.
async fn until<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) -> Duration {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < IN_FORCE_WITHIN, "not {what} in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn a_blocked_address_is_refused_by_the_running_relay_until_unblocked() {
    let relay = TestRelay::with_config(|config| {
        config.trusted_proxies = kefu_relay::proxy::TrustedProxies::new(vec![
            format!("{PROXY}/32").parse().expect("a range"),
        ]);
    })
    .await;
    let served = |source: &'static str| {
        let addr = relay.addr;
        async move { healthz_from(addr, source).await.is_some() }
    };
    assert!(served("127.0.0.2").await);

    cli(
        &relay,
        &["block", "127.0.0.2", "--for", "1h", "--reason", "spam"],
    )
    .await;
    let took = until("refused", || async { !served("127.0.0.2").await }).await;
    assert!(took < IN_FORCE_WITHIN, "in force after {took:?}");
    assert!(served("127.0.0.3").await, "other addresses are served");

    // Behind the proxy: refused once the proxy names the client.
    cli(&relay, &["block", "198.51.100.0/24"]).await;
    until("refused behind the proxy", || async {
        upgrade_from(relay.addr, PROXY, "X-Forwarded-For: 198.51.100.9")
            .await
            .0
            == 403
    })
    .await;
    let (status, _other) = upgrade_from(relay.addr, PROXY, "X-Forwarded-For: 192.0.2.1").await;
    assert_eq!(status, 101, "the proxy's other clients are served");

    let listed = cli(&relay, &["blocks"]).await;
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(
        lines[0].starts_with("127.0.0.2/32\t") && lines[0].ends_with("\tspam"),
        "{listed}"
    );
    assert!(lines[1].starts_with("198.51.100.0/24\t") && lines[1].contains("until unblocked"));

    cli(&relay, &["unblock", "127.0.0.2"]).await;
    until("served again", || served("127.0.0.2")).await;
}

#[tokio::test]
async fn a_range_that_is_not_one_is_refused_by_the_command() {
    let relay = TestRelay::start().await;
    let output = run_cli(
        &["block", "10.0.0.0/33", "--database", &relay.database],
        &[],
    )
    .await;
    assert!(!output.status.success());
    let output = run_cli(&["unblock", "10.9.9.9", "--database", &relay.database], &[]).await;
    assert!(!output.status.success(), "nothing to unblock");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not blocked"), "{stderr}");
}
