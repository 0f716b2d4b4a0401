//! Prometheus metrics: every metric's name, help and buckets in one place,
//! and one small function per event so that the code it measures (the hub,
//! the store writer, the sessions) needs a single line.
//!
//! The recorder is process-wide (the `metrics` crate's global), installed by
//! the first [`install`]; relays started later in the same process (tests)
//! share it. Recording before or without it is a no-op.

use std::sync::OnceLock;
use std::time::Duration;

use kefu_protocol::ErrorCode;
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use time::OffsetDateTime;

pub const CONNECTIONS: &str = "kefu_connections";
pub const MESSAGES_STORED: &str = "kefu_messages_stored_total";
pub const FRAMES_RECEIVED: &str = "kefu_frames_received_total";
pub const FRAMES_SENT: &str = "kefu_frames_sent_total";
pub const ERRORS: &str = "kefu_errors_total";
pub const COMMIT_SECONDS: &str = "kefu_store_commit_seconds";
pub const BATCH_SIZE: &str = "kefu_store_batch_size";
pub const FANOUT_SECONDS: &str = "kefu_fanout_seconds";
pub const CONVERSATIONS_WAITING: &str = "kefu_conversations_waiting";
pub const AGENTS_ONLINE: &str = "kefu_agents_online";
pub const SLOW_CLIENTS: &str = "kefu_slow_clients_total";
pub const CONNECTIONS_REFUSED: &str = "kefu_connections_refused_total";
pub const CONVERSATIONS_DELETED: &str = "kefu_conversations_deleted_total";
pub const FILES_DELETED: &str = "kefu_files_deleted_total";
pub const VISITOR_WRITES_WAITING: &str = "kefu_visitor_writes_waiting";

/// From half a millisecond (a commit on a fast disk) to seconds (a stall).
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Requests per transaction, up to the writer's largest batch.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
/// How often histograms are folded in when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder unless done already. `None` when another recorder
/// was installed first (by a program embedding the relay): then `/metrics`
/// is not served.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(COMMIT_SECONDS.into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(FANOUT_SECONDS.into()), LATENCY_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(BATCH_SIZE.into()), BATCH_BUCKETS)
                })
                .and_then(PrometheusBuilder::install_recorder);
            match recorder {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics are off");
                    None
                }
            }
        })
        .as_ref()
}

/// The installed recorder, if any.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get().and_then(Option::as_ref)
}

/// Folds recorded histogram samples in regularly, so that memory stays
/// bounded between scrapes. Runs until the relay stops.
pub async fn upkeep(mut stopping: tokio::sync::watch::Receiver<bool>) {
    let Some(handle) = handle() else { return };
    let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => handle.run_upkeep(),
            _ = stopping.wait_for(|stopping| *stopping) => return,
        }
    }
}

fn describe() {
    describe_gauge!(
        CONNECTIONS,
        "Open client connections, by role and transport."
    );
    describe_counter!(
        MESSAGES_STORED,
        "Messages committed to the store (internal notes included)."
    );
    describe_counter!(
        FRAMES_RECEIVED,
        "Frames received from clients, by transport."
    );
    describe_counter!(FRAMES_SENT, "Frames sent to clients, by transport.");
    describe_counter!(ERRORS, "Error frames sent to clients, by code.");
    describe_histogram!(
        COMMIT_SECONDS,
        Unit::Seconds,
        "Time to commit (and fsync) one batch of writes."
    );
    describe_histogram!(
        BATCH_SIZE,
        Unit::Count,
        "Write requests committed in one transaction."
    );
    describe_histogram!(
        FANOUT_SECONDS,
        Unit::Seconds,
        "From a message's timestamp (taken just before its commit) to its frames queued for every receiver."
    );
    describe_gauge!(CONVERSATIONS_WAITING, "Conversations waiting for an agent.");
    describe_gauge!(AGENTS_ONLINE, "Agents with at least one open connection.");
    describe_counter!(
        SLOW_CLIENTS,
        "Connections told to resync for being too slow, by the bound they passed (wait or bytes)."
    );
    describe_counter!(
        CONNECTIONS_REFUSED,
        "TCP connections closed at accept, by the budget they passed (address or total)."
    );
    describe_counter!(
        CONVERSATIONS_DELETED,
        "Conversations deleted, with their visitors, by this process (the retention sweep)."
    );
    describe_counter!(
        FILES_DELETED,
        "Blobs (files and thumbnails) removed with the conversations deleted by this process."
    );
    describe_gauge!(
        VISITOR_WRITES_WAITING,
        "Visitors' writes waiting for a turn, all visitor_writes_in_flight being taken."
    );
}

/// How a client's frames travel.
#[derive(Debug, Clone, Copy)]
pub enum Transport {
    WebSocket,
    LongPoll,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::LongPoll => "longpoll",
        }
    }
}

/// Counts one open connection for as long as it lives.
#[derive(Debug)]
pub struct OpenConnection {
    role: &'static str,
    transport: Transport,
}

impl OpenConnection {
    /// `role` is `visitor` or `agent`.
    pub fn new(role: &'static str, transport: Transport) -> Self {
        gauge!(CONNECTIONS, "role" => role, "transport" => transport.label()).increment(1.0);
        OpenConnection { role, transport }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        gauge!(CONNECTIONS, "role" => self.role, "transport" => self.transport.label())
            .decrement(1.0);
    }
}

/// A visitor's write waits for a turn: counted until the guard is dropped,
/// when it has its turn or the visitor left.
pub fn visitor_write_waiting() -> VisitorWriteWaiting {
    gauge!(VISITOR_WRITES_WAITING).increment(1.0);
    VisitorWriteWaiting(())
}

/// See [`visitor_write_waiting`].
#[derive(Debug)]
pub struct VisitorWriteWaiting(());

impl Drop for VisitorWriteWaiting {
    fn drop(&mut self) {
        gauge!(VISITOR_WRITES_WAITING).decrement(1.0);
    }
}

pub fn frame_received(transport: Transport) {
    counter!(FRAMES_RECEIVED, "transport" => transport.label()).increment(1);
}

pub fn frames_sent(transport: Transport, count: usize) {
    counter!(FRAMES_SENT, "transport" => transport.label()).increment(count as u64);
}

pub fn error_sent(code: ErrorCode) {
    counter!(ERRORS, "code" => code.as_str()).increment(1);
}

/// One committed transaction of `requests` writes, which stored `messages`
/// new messages (a resent message stores nothing and is not counted).
pub fn committed(requests: usize, messages: usize, took: Duration) {
    histogram!(COMMIT_SECONDS).record(took.as_secs_f64());
    histogram!(BATCH_SIZE).record(requests as f64);
    counter!(MESSAGES_STORED).increment(messages as u64);
}

/// A message's frames are queued for all its receivers.
pub fn fanned_out(message_at: OffsetDateTime) {
    let age = OffsetDateTime::now_utc() - message_at;
    histogram!(FANOUT_SECONDS).record(age.as_seconds_f64().max(0.0));
}

/// A connection was too slow for the hub's frames: its oldest frame waited
/// past the bound (`reason` `wait`), or its frames held too many bytes
/// (`bytes`).
pub fn slow_client(reason: &'static str) {
    counter!(SLOW_CLIENTS, "reason" => reason).increment(1);
}

/// A TCP connection was closed as soon as it was accepted: its address had
/// its share of connections open (`reason` `address`), the relay had as
/// many as it may (`total`), the address is blocked (`blocked`), or a
/// trusted load balancer's PROXY header was missing or bad
/// (`proxy_header`).
pub fn connection_refused(reason: &'static str) {
    counter!(CONNECTIONS_REFUSED, "reason" => reason).increment(1);
}

/// Conversations were deleted with their files: `blobs` no other row named
/// were removed.
pub fn deleted(conversations: usize, blobs: usize) {
    counter!(CONVERSATIONS_DELETED).increment(conversations as u64);
    counter!(FILES_DELETED).increment(blobs as u64);
}

/// The hub's gauges, refreshed just before a scrape renders them.
pub fn hub_stats(waiting: usize, agents_online: usize) {
    gauge!(CONVERSATIONS_WAITING).set(waiting as f64);
    gauge!(AGENTS_ONLINE).set(agents_online as f64);
}
