//! Blocked address ranges in the store, on both backends: written,
//! replaced, listed while in force, and lifted.

use std::sync::Arc;
use std::time::Duration;

use kefu_relay::store::{self, Block, Store, StoreError};
use kefu_testkit::TestDatabase;
use time::OffsetDateTime;

fn block(range: &str, expires_in: Option<Duration>) -> Block {
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("a time");
    Block {
        range: range.to_owned(),
        reason: Some(format!("spam from {range}")),
        created_at: now,
        expires_at: expires_in.map(|lasting| now + lasting),
    }
}

backend_test!(
    sqlite_blocks_are_kept_until_lifted_or_expired,
    postgres_blocks_are_kept_until_lifted_or_expired,
    blocks_are_kept_until_lifted_or_expired
);
async fn blocks_are_kept_until_lifted_or_expired(store: Arc<dyn Store>) {
    let forever = block("203.0.113.0/24", None);
    let hour = block("198.51.100.7/32", Some(Duration::from_secs(3600)));
    store.block(&forever).await.expect("block");
    store.block(&hour).await.expect("block");
    let at = |seconds: u64| forever.created_at + Duration::from_secs(seconds);

    let in_force = store.blocks(at(1)).await.expect("list");
    assert_eq!(in_force, [hour.clone(), forever.clone()], "by range");
    let after_the_hour = store.blocks(at(3600)).await.expect("list");
    assert_eq!(
        after_the_hour,
        std::slice::from_ref(&forever),
        "the hour is up"
    );

    // Blocking a range again replaces its reason and expiry.
    let longer = Block {
        reason: None,
        expires_at: Some(at(7200)),
        ..hour.clone()
    };
    store.block(&longer).await.expect("block again");
    assert_eq!(
        store.blocks(at(3600)).await.expect("list"),
        [longer, forever.clone()]
    );

    store.unblock("198.51.100.7/32").await.expect("unblock");
    assert_eq!(store.blocks(at(1)).await.expect("list"), [forever]);
    assert!(matches!(
        store.unblock("198.51.100.7/32").await,
        Err(StoreError::NotFound(_))
    ));
}
