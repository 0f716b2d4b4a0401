//! Writes whose caller goes away mid-flight (a client disconnecting drops
//! its request's future at any await): each is stored whole or not at all,
//! and a resend finds it.

use std::sync::Arc;
use std::time::Duration;

use kefu_relay::store::{self, Store};
use kefu_testkit::TestDatabase;

use crate::store::visitor_send;

/// Writes abandoned at spread-out moments, from before `BEGIN` to after
/// `COMMIT`.
const ABANDONED: u64 = 200;

/// Starts one write per visitor and drops each after a different delay.
async fn abandon_writes(store: &Arc<dyn Store>) {
    for n in 0..ABANDONED {
        let after = Duration::from_micros(n * 37 % 4_000);
        let send = store.visitor_send(visitor_send(&format!("v{n}"), "first", "hello"));
        let _ = tokio::time::timeout(after, send).await;
    }
}

backend_test!(
    sqlite_abandoned_writes_are_whole_or_absent,
    postgres_abandoned_writes_are_whole_or_absent,
    abandoned_writes_are_whole_or_absent
);
async fn abandoned_writes_are_whole_or_absent(store: Arc<dyn Store>) {
    abandon_writes(&store).await;
    for n in 0..ABANDONED {
        let visitor = format!("v{n}");
        let resent = store
            .visitor_send(visitor_send(&visitor, "first", "hello"))
            .await
            .expect("the resend is stored or finds the original");
        assert_eq!(resent.seq, 1, "{visitor}: one first message");
        let next = store
            .visitor_send(visitor_send(&visitor, "second", "again"))
            .await
            .expect("send");
        assert_eq!(next.seq, 2, "{visitor}: nothing half-written before it");
    }
}
