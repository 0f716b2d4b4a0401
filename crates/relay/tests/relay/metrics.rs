//! `/metrics` in the Prometheus text format, on the main address or its own,
//! counting what the relay does. They run the real binary.

use std::collections::HashMap;

use kefu_protocol::ErrorCode;
use kefu_protocol::visitor::VisitorRequest;
use kefu_testkit::{RelayProcess, TestDatabase, TestRelay, assert_error, http};

use crate::support::{KEFU_RELAY, sqlite_url};

/// One sample line of the Prometheus text format.
#[derive(Debug)]
pub(crate) struct Sample {
    name: String,
    labels: HashMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text exposition format strictly enough that a
/// malformed line fails the test: `# HELP`/`# TYPE` comments, and samples
/// `name{label="value",…} number` whose family was typed before.
pub(crate) fn parse_prometheus(text: &str) -> Vec<Sample> {
    let valid_name = |name: &str| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut typed: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (kind, name, rest) = (parts.next(), parts.next(), parts.next());
            let name = name.unwrap_or_else(|| panic!("bad comment {line:?}"));
            assert!(valid_name(name), "bad name in {line:?}");
            match kind {
                Some("HELP") => assert!(rest.is_some_and(|help| !help.is_empty()), "{line:?}"),
                Some("TYPE") => {
                    let kind = rest.unwrap_or_default();
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "bad type in {line:?}"
                    );
                    typed.insert(name.to_owned(), kind.to_owned());
                }
                _ => panic!("unexpected comment {line:?}"),
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
                let labels = body
                    .split(',')
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (key, quoted) = pair
                            .split_once('=')
                            .unwrap_or_else(|| panic!("bad label in {line:?}"));
                        assert!(valid_name(key), "bad label name in {line:?}");
                        let value = quoted
                            .strip_prefix('"')
                            .and_then(|v| v.strip_suffix('"'))
                            .unwrap_or_else(|| panic!("unquoted label in {line:?}"));
                        (key.to_owned(), value.to_owned())
                    })
                    .collect();
                (name, labels)
            }
            None => (series, HashMap::new()),
        };
        assert!(valid_name(name), "bad metric name in {line:?}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|family| typed.contains_key(*family))
            .unwrap_or(name);
        assert!(typed.contains_key(family), "{name} has no TYPE before it");
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    samples
}

pub(crate) fn value_of(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|sample| {
            sample.name == name
                && labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(value))
        })
        .map(|sample| sample.value)
}

/// Where a relay started with `--metrics-listen` serves `/metrics`.
fn metrics_addr(relay: &RelayProcess) -> std::net::SocketAddr {
    relay
        .startup_log
        .iter()
        .find_map(|line| line.split_once("metrics on http://"))
        .and_then(|(_, rest)| rest.trim().strip_suffix("/metrics"))
        .expect("the metrics address is logged")
        .parse()
        .expect("metrics address")
}

/// PostgreSQL's message writes (a visitor's first alone, later ones in
/// batches) count as SQLite's do; a resend stores nothing and counts
/// nothing.
#[tokio::test]
async fn postgres_message_writes_are_counted() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let relay = RelayProcess::start(
        KEFU_RELAY,
        &database.url,
        &["--metrics-listen", "127.0.0.1:0"],
    )
    .await;
    let mut visitor = relay.visitor().await;
    visitor.hello(None, None).await;
    visitor.say("c1", "first, alone").await;
    visitor.say("c2", "then batched").await;
    visitor.say("c2", "then batched").await;

    let metrics = http::get(metrics_addr(&relay), "/metrics")
        .await
        .expect("metrics");
    let samples = parse_prometheus(&metrics.body);
    assert_eq!(
        value_of(&samples, "kefu_messages_stored_total", &[]),
        Some(2.0),
        "{}",
        metrics.body
    );
    assert_eq!(
        value_of(&samples, "kefu_store_commit_seconds_count", &[]),
        Some(3.0)
    );
    assert_eq!(
        value_of(&samples, "kefu_store_batch_size_count", &[]),
        Some(3.0)
    );
    relay.kill().await;
    database.drop_database().await;
}

#[tokio::test]
async fn metrics_on_their_own_address_count_a_sent_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let relay = RelayProcess::start(
        KEFU_RELAY,
        &sqlite_url(&dir.path().join("kefu.db")),
        &["--metrics-listen", "127.0.0.1:0"],
    )
    .await;
    let metrics_addr = metrics_addr(&relay);
    assert_eq!(
        http::get(relay.addr, "/metrics")
            .await
            .ok()
            .map(|response| response.status),
        Some(404),
        "not on the main address when they have their own"
    );

    let mut visitor = relay.visitor().await;
    visitor.hello(None, None).await;
    visitor.say("c1", "count me").await;

    let metrics = http::get(metrics_addr, "/metrics").await.expect("metrics");
    let (status, text) = (metrics.status, metrics.body);
    assert_eq!(status, 200);
    let samples = parse_prometheus(&text);
    assert_eq!(
        value_of(&samples, "kefu_messages_stored_total", &[]),
        Some(1.0),
        "{text}"
    );
    let visitors = [("role", "visitor"), ("transport", "websocket")];
    assert_eq!(value_of(&samples, "kefu_connections", &visitors), Some(1.0));
    assert_eq!(
        value_of(&samples, "kefu_conversations_waiting", &[]),
        Some(1.0)
    );
    // The hello and the send came in; welcome and ack went out.
    assert!(value_of(&samples, "kefu_frames_received_total", &[]).is_some_and(|n| n >= 2.0));
    assert!(value_of(&samples, "kefu_frames_sent_total", &[]).is_some_and(|n| n >= 2.0));
    assert!(value_of(&samples, "kefu_store_commit_seconds_count", &[]).is_some_and(|n| n >= 1.0));
    assert_eq!(
        value_of(&samples, "kefu_store_batch_size_bucket", &[("le", "+Inf")]),
        value_of(&samples, "kefu_store_batch_size_count", &[]),
    );
    relay.kill().await;
}

#[tokio::test]
async fn metrics_on_the_main_address_parse_as_prometheus_text() {
    let relay = TestRelay::start().await;
    let (mut visitor, _) = relay.new_visitor().await;
    visitor.say("c1", "hello").await;
    visitor
        .send(&VisitorRequest::Send {
            attachments: Vec::new(),
            client_id: String::new(),
            text: "no id".into(),
        })
        .await;
    assert_error(&visitor.next_error().await, ErrorCode::BadRequest);
    let metrics = http::get(relay.addr, "/metrics").await.expect("metrics");
    let (status, text) = (metrics.status, metrics.body);
    assert_eq!(status, 200);
    let samples = parse_prometheus(&text);
    // Other tests' relays share the process's recorder: at least ours.
    assert!(
        value_of(&samples, "kefu_errors_total", &[("code", "bad_request")])
            .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(value_of(&samples, "kefu_messages_stored_total", &[]).is_some_and(|n| n >= 1.0));
    relay.stop().await;
}
