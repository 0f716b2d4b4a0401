//! More visitors waiting than the relay's bounded `welcome` lists: the
//! agent pages the rest in from the end of the queue, and the typed filter
//! finds one of them, against a real relay.

use crossterm::event::KeyCode;
use futures_util::StreamExt as _;
use kefu_protocol::agent::{Role, WELCOME_MAX_CONVERSATIONS};
use kefu_testkit::TestRelay;

use crate::support::pump_until;
use crate::{client, press};

/// Enough for one full page beyond the welcome and a short last one.
const BEYOND: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_pages_in_the_visitors_beyond_the_welcome_and_filters_them() {
    let waiting = WELCOME_MAX_CONVERSATIONS + BEYOND;
    // One test address starts them all: lift its budget of new
    // conversations, which is what this flood would otherwise meet.
    let relay = TestRelay::with_config(|config| {
        config.limits.new_conversations_per_minute = 100_000;
    })
    .await;
    let token = relay.add_agent("alice", Role::Agent).await;
    futures_util::stream::iter(0..waiting)
        .for_each_concurrent(16, |n| {
            let relay = &relay;
            async move {
                let (mut visitor, _) = relay.new_visitor().await;
                visitor.say("c1", &format!("order {n:04}")).await;
            }
        })
        .await;

    let mut core = client(relay.addr, token);
    pump_until(&mut core, "the welcome", |app| app.online()).await;
    let listed = core.app.rows();
    assert_eq!(listed.len(), WELCOME_MAX_CONVERSATIONS);
    assert_eq!(core.app.more_waiting.count, BEYOND as u64);

    // End reaches the last row: a page comes; End again, the rest.
    press(&mut core, KeyCode::End);
    pump_until(&mut core, "the first page", |app| {
        !app.more_waiting.loading() && app.more_waiting.count < BEYOND as u64
    })
    .await;
    press(&mut core, KeyCode::End);
    pump_until(&mut core, "the last page", |app| {
        app.more_waiting.count == 0
    })
    .await;
    assert_eq!(
        core.app.rows().len(),
        waiting,
        "every waiting visitor, once"
    );

    // One the welcome left out is a few keys away.
    let rows = core.app.rows();
    let paged = (rows.iter())
        .find(|id| !listed.contains(id))
        .expect("one paged in");
    let text = core.app.conversations[paged].summary.preview.clone();
    press(&mut core, KeyCode::Char('/'));
    text.chars()
        .for_each(|ch| press(&mut core, KeyCode::Char(ch)));
    assert_eq!(core.app.rows(), std::slice::from_ref(paged));
}
