//! A run over two relays sharing one PostgreSQL database: visitors sit on
//! the other relay than their agents, so every message crosses nodes, and
//! one loss check covers both.

use kefu_bench::config::Relays;
use kefu_testkit::TestDatabase;

use crate::chat::assert_all_answered;
use crate::support::{TestRelay, chat_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_two_relays_of_a_cluster_crosses_nodes_without_loss() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let first = TestRelay::on_database(&database.url, 2).await;
    let second = TestRelay::on_database(&database.url, 0).await;
    let mut config = chat_config(&first.target, first.tokens.clone(), 6, 30.0);
    config.relays =
        Relays::new(vec![first.target.clone(), second.target.clone()]).expect("two relays");
    let report = kefu_bench::run(&config).await.expect("run");
    assert_all_answered(&report, 6, 2);
    first.stop().await;
    second.stop().await;
    database.drop_database().await;
}
