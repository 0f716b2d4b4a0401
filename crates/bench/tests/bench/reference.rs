//! The reference relay carries a whole chat run, so that its figures are
//! comparable with kefu's: same bench, same loss check.

use kefu_bench::config::Target;

use crate::chat::assert_all_answered;
use crate::support::chat_config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_run_against_the_reference_relay_loses_nothing() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target = Target::from_addr(listener.local_addr().expect("addr"));
    let relay = tokio::spawn(kefu_bench::reference::serve(listener));
    // Any token signs in; each agent still needs its own, as with kefu.
    let tokens = vec!["one".to_owned(), "two".to_owned()];
    let report = kefu_bench::run(&chat_config(&target, tokens, 6, 60.0))
        .await
        .expect("run");
    assert_all_answered(&report, 6, 2);
    relay.abort();
}
