//! The visitor page of a conversation deleted while it was open: the old
//! messages go, and the visitor's next conversation (whose seqs start over
//! at 1) is shown whole, whether the page stayed connected or reconnected.

use fantoccini::Locator;
use kefu_testkit::{PATIENCE, TestRelay};

use crate::browser::{Browser, agent_receives};
use crate::deletion::{resolve, signed_in_agent};
use crate::support::run_cli;

const DELETED: &str = "Earlier messages of this chat were deleted.";

/// How many of the page's chat lines hold `text`.
async fn lines_with(browser: &Browser, text: &str) -> u64 {
    let script = format!(
        "return [...document.querySelectorAll('#log li')].filter(li => li.textContent.includes({})).length",
        serde_json::Value::from(text)
    );
    browser.eval(&script).await.as_u64().expect("a count")
}

async fn delete(database: &str, conversation_id: &str) {
    let output = run_cli(
        &[
            "delete-conversation",
            "--database",
            database,
            conversation_id,
        ],
        &[],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_forgets_a_deleted_conversation_and_shows_the_next_one() {
    forgets_and_follows("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_polling_too() {
    forgets_and_follows("?transport=longpoll").await;
}

async fn forgets_and_follows(query: &str) {
    let relay = TestRelay::start().await;
    let mut agent = signed_in_agent(&relay, "alice").await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    let addr = relay.addr;
    browser.open_chat(&format!("http://{addr}/{query}")).await;

    browser.type_and_send("my old order").await;
    let old = agent_receives(&mut agent, "my old order").await;
    agent.reply(&old, "a1", "the old answer").await;
    browser.wait_for_bubble("theirs", "the old answer").await;
    resolve(&mut agent, &old).await;
    delete(&relay.database, &old).await;

    // Still connected: the next message starts a new conversation, whose
    // seqs 1 and 2 the old messages had. Taken for them, the reply would
    // never be shown.
    browser.type_and_send("a new question").await;
    let new = agent_receives(&mut agent, "a new question").await;
    assert_ne!(new, old);
    agent.reply(&new, "a2", "the new answer").await;
    browser.wait_for_bubble("theirs", "the new answer").await;
    browser.wait_for_bubble("system", DELETED).await;
    assert_eq!(lines_with(&browser, "the old answer").await, 0);
    assert_eq!(lines_with(&browser, "my old order").await, 0);
    assert_eq!(lines_with(&browser, "a new question").await, 1);

    // Deleted while the page was away: it reconnects asking for what came
    // after seq 2 of a conversation that is gone.
    resolve(&mut agent, &new).await;
    drop(agent);
    let stopped = relay.stop().await;
    browser.wait_for("#banner:not([hidden])").await;
    delete(&stopped.database, &new).await;
    let relay = TestRelay::reopen_at(stopped, addr).await;
    browser.wait_for("#banner[hidden]").await;
    browser
        .client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::XPath(&format!(
            "(//li[contains(concat(' ', @class, ' '), ' system ')][contains(., '{DELETED}')])[2]"
        )))
        .await
        .expect("the page says the conversation it showed was deleted");
    assert_eq!(lines_with(&browser, "the new answer").await, 0);
    assert_eq!(lines_with(&browser, "a new question").await, 0);

    // And the conversation after that is shown from its first message.
    let mut agent = signed_in_agent(&relay, "bob").await;
    browser.type_and_send("third time").await;
    let third = agent_receives(&mut agent, "third time").await;
    agent.reply(&third, "a3", "the third answer").await;
    browser.wait_for_bubble("theirs", "the third answer").await;
    browser.close().await;
}
