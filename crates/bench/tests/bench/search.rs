//! `kefu-bench-search`'s runs: every query asked as often as said, each
//! answered with what the relay found.

use std::time::Duration;

use crate::support::TestRelay;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_query_is_timed_with_what_it_found() {
    let relay = TestRelay::start(1).await;
    relay.visitor_says("我的订单还没到").await;
    relay.visitor_says("where is my order").await;
    let queries = ["订单", "order", "火车"].map(String::from);
    let results = kefu_bench::search::run(
        &relay.target,
        None,
        &relay.tokens[0],
        &queries,
        5,
        Duration::ZERO,
    )
    .await
    .expect("run");
    let found: Vec<(&str, usize)> = (results.iter())
        .map(|r| (r.query.as_str(), r.hits))
        .collect();
    assert_eq!(found, [("订单", 1), ("order", 1), ("火车", 0)]);
    for result in &results {
        assert!(result.refused.is_empty(), "{result:?}");
        let latency = &result.latency;
        assert_eq!(latency.count, 5, "{result:?}");
        assert!(
            latency.p50 > 0.0 && latency.p50 <= latency.p99,
            "{result:?}"
        );
    }
    relay.stop().await;
}
