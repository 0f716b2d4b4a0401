//! Chat runs: the library's report, and the binary's JSON line and exit
//! status.

use std::process::Command;

use kefu_bench::config::{Mode, Shard};
use kefu_bench::report::{Percentiles, Report};

use crate::support::{TestRelay, chat_config};

fn assert_latency_counted(name: &str, latency: &Percentiles, delivered: u64) {
    assert_eq!(latency.count, delivered, "{name}: one sample per delivery");
    assert!(
        0.0 < latency.p50
            && latency.p50 <= latency.p90
            && latency.p90 <= latency.p99
            && latency.p99 <= latency.p999
            && latency.p999 <= latency.max,
        "{name}: percentiles in order: {latency:?}"
    );
}

/// Everything sent was acked and delivered exactly once, both ways.
fn assert_clean(report: &Report) {
    for (name, tally) in [
        ("to agent", &report.to_agent),
        ("to visitor", &report.to_visitor),
    ] {
        assert!(tally.sent > 0, "{name}: something was sent");
        assert_eq!(tally.acked, tally.sent, "{name}: all acked");
        assert_eq!(tally.delivered, tally.sent, "{name}: all delivered");
        assert_eq!((tally.lost, tally.duplicated), (0, 0), "{name}");
    }
    assert_eq!((report.lost, report.stray), (0, 0));
    assert!(report.passed);
    assert!(report.errors.is_empty(), "errors: {:?}", report.errors);
    assert!(report.dropped.is_empty(), "dropped: {:?}", report.dropped);
}

/// Every connection up, nothing lost, and every visitor message answered.
pub fn assert_all_answered(report: &Report, visitors: u32, agents: u32) {
    assert_eq!(
        (report.visitors.established, report.agents.established),
        (visitors, agents)
    );
    assert_clean(report);
    assert_eq!(
        report.to_visitor.delivered, report.to_agent.delivered,
        "every visitor message answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_run_reports_traffic_latency_and_no_loss() {
    let relay = TestRelay::start(2).await;
    let config = chat_config(&relay.target, relay.tokens.clone(), 6, 60.0);
    let report = kefu_bench::run(&config).await.expect("run");

    assert_eq!(
        (
            report.visitors.wanted,
            report.visitors.established,
            report.visitors.failed
        ),
        (6, 6, 0)
    );
    assert_eq!((report.agents.established, report.agents.failed), (2, 0));
    assert_clean(&report);
    // One second at 60/s; the schedule is exact, so only the very edge of
    // the window can move a message in or out.
    assert!(
        (55..=65).contains(&report.to_agent.sent),
        "{} sent",
        report.to_agent.sent
    );
    assert_eq!(
        report.to_visitor.sent, report.to_agent.delivered,
        "agents answer every message"
    );
    let latency = &report.latency_ms;
    assert_latency_counted(
        "visitor → agent",
        &latency.visitor_to_agent,
        report.to_agent.delivered,
    );
    assert_latency_counted(
        "agent → visitor",
        &latency.agent_to_visitor,
        report.to_visitor.delivered,
    );
    assert_latency_counted("visitor ack", &latency.visitor_ack, report.to_agent.acked);
    assert_latency_counted("agent ack", &latency.agent_ack, report.to_visitor.acked);
    let chat = report.chat.as_ref().expect("chat figures");
    assert!(chat.visitor_acked_per_second > 0.0);
    assert!(chat.acked_per_second > chat.visitor_acked_per_second);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_split_one_run_without_answering_each_others_visitors() {
    let relay = TestRelay::start(3).await;
    let shard = |index| {
        let mut config = chat_config(&relay.target, relay.tokens.clone(), 5, 50.0);
        config.shard = Shard { index, count: 2 };
        config
    };
    let (first, second) = (shard(0), shard(1));
    let (first, second) = tokio::join!(kefu_bench::run(&first), kefu_bench::run(&second));
    let (first, second) = (first.expect("shard 0"), second.expect("shard 1"));
    assert_eq!(
        (first.visitors.established, second.visitors.established),
        (3, 2)
    );
    assert_eq!(
        (first.agents.established, second.agents.established),
        (2, 1)
    );
    // Every agent sees every waiting conversation; answering another
    // shard's visitor would show as a duplicate or stray here.
    assert_clean(&first);
    assert_clean(&second);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_visitors_chat_alongside_websocket_ones() {
    let relay = TestRelay::start(1).await;
    let mut config = chat_config(&relay.target, relay.tokens.clone(), 4, 40.0);
    config.longpoll_share = 0.5;
    let report = kefu_bench::run(&config).await.expect("run");
    assert_eq!(
        (report.visitors.established, report.longpoll.established),
        (2, 2),
        "failures: {:?}",
        report.failures
    );
    assert_eq!((report.visitors.failed, report.longpoll.failed), (0, 0));
    // Long-poll visitors send and receive their share: with only two
    // WebSocket visitors, 40 messages a second could not all be theirs.
    assert_clean(&report);
    assert_eq!(report.to_agent.sent, 40);
    relay.stop().await;
}

/// Runs the kefu-bench binary with the config's agent tokens in
/// `KEFU_TOKENS`; returns its exit code and its stdout.
async fn bench_binary((args, tokens): (Vec<String>, Vec<String>)) -> (Option<i32>, String) {
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_kefu-bench"))
            .args(args)
            .env("KEFU_TOKENS", tokens.join(","))
            .output()
            .expect("run kefu-bench")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8(output.stdout).expect("utf-8 stdout");
    (output.status.code(), stdout)
}

/// The command line of `config`, plus `extra`; and its tokens.
fn args(config: &kefu_bench::Config, extra: &[&str]) -> (Vec<String>, Vec<String>) {
    let Mode::Chat(chat) = &config.mode else {
        panic!("a chat config");
    };
    let mut args: Vec<String> = vec![
        "--relay".into(),
        config.relays.for_agent(0).ws_url(""),
        "--agents".into(),
        chat.tokens.len().to_string(),
        "--visitors".into(),
        chat.visitors.to_string(),
        "--rate".into(),
        chat.rate.to_string(),
        "--duration".into(),
        "1s".into(),
        "--drain".into(),
        "2s".into(),
        "--json".into(),
        "--quiet".into(),
    ];
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    (args, chat.tokens.clone())
}

fn last_json_line(stdout: &str) -> serde_json::Value {
    let last = stdout.lines().last().expect("some output");
    serde_json::from_str(last).unwrap_or_else(|error| panic!("last line {last:?}: {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_a_complete_json_report_last() {
    let relay = TestRelay::start(1).await;
    let config = chat_config(&relay.target, relay.tokens.clone(), 4, 40.0);
    let (code, stdout) = bench_binary(args(&config, &[])).await;
    assert_eq!(code, Some(0), "a clean run succeeds:\n{stdout}");
    assert!(
        stdout.contains("loss check passed"),
        "human report first:\n{stdout}"
    );
    let json = last_json_line(&stdout);
    assert_eq!(json["lost"], 0);
    assert_eq!(json["passed"], true);
    assert_eq!(json["visitors"]["established"], 4);
    for direction in ["visitor_to_agent", "agent_to_visitor"] {
        let latency = &json["latency_ms"][direction];
        for field in ["p50", "p90", "p99", "p999", "max"] {
            assert!(
                latency[field].as_f64().is_some_and(|ms| ms > 0.0),
                "{direction}.{field}: {latency}"
            );
        }
    }
    assert!(
        json["chat"]["visitor_acked_per_second"]
            .as_f64()
            .is_some_and(|rate| rate > 0.0)
    );
    assert!(
        json["errors"]
            .as_object()
            .is_some_and(|errors| errors.is_empty())
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loss_check_fails_when_a_delivery_goes_missing() {
    let relay = TestRelay::start(1).await;
    let config = chat_config(&relay.target, relay.tokens.clone(), 3, 30.0);
    let (code, stdout) = bench_binary(args(&config, &["--drop-one-for-test"])).await;
    assert_eq!(
        code,
        Some(2),
        "a failed loss check is exit status 2:\n{stdout}"
    );
    assert!(stdout.contains("loss check FAILED"), "{stdout}");
    let json = last_json_line(&stdout);
    assert_eq!(json["lost"], 1, "exactly the dropped message: {json}");
    assert_eq!(json["passed"], false);
    assert_eq!(json["to_agent"]["lost"], 1);
    relay.stop().await;
}
