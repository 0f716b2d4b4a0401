//! Idle runs: connections held, memory weighed, source addresses spread.

use crate::support::{TestRelay, idle_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_run_holds_every_connection_and_weighs_the_relay() {
    let relay = TestRelay::start(0).await;
    // The relay runs in this process, so its memory is ours.
    let config = idle_config(&relay.target, 20, std::process::id());
    let report = kefu_bench::run(&config).await.expect("run");
    assert_eq!(
        (report.visitors.established, report.visitors.failed),
        (20, 0)
    );
    assert!(report.dropped.is_empty(), "dropped: {:?}", report.dropped);
    let idle = report.idle.as_ref().expect("idle figures");
    for (name, kib) in [
        ("before", idle.relay_rss_before_kib),
        ("connected", idle.relay_rss_connected_kib),
        ("end", idle.relay_rss_end_kib),
    ] {
        assert!(kib.is_some_and(|kib| kib > 0), "relay rss {name}: {kib:?}");
    }
    assert!(idle.relay_kib_per_connection.is_some());
    assert!(report.chat.is_none());
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spreading_source_addresses_gets_past_a_per_address_limit() {
    let relay = TestRelay::with_limits(0, |limits| limits.connections_per_ip = 3).await;
    let pid = std::process::id();

    let mut spread = idle_config(&relay.target, 8, pid);
    spread.source_addrs = 4;
    let report = kefu_bench::run(&spread).await.expect("spread run");
    assert_eq!(
        (report.visitors.established, report.visitors.failed),
        (8, 0),
        "two per address: {:?}",
        report.failures
    );

    let mut one_address = idle_config(&relay.target, 8, pid);
    one_address.source_addrs = 0;
    let report = kefu_bench::run(&one_address).await.expect("unspread run");
    assert_eq!(
        (report.visitors.established, report.visitors.failed),
        (3, 5)
    );
    assert_eq!(
        report.failures.get("http 429"),
        Some(&5),
        "refused by the relay's per-IP limit: {:?}",
        report.failures
    );
    relay.stop().await;
}
