//! An agent disabled or given a new token by the admin commands, which run
//! as another process, loses its open connections at once: on one relay
//! and on every relay of a cluster.

use std::time::Duration;

use kefu_protocol::ErrorCode;
use kefu_protocol::agent::{AgentEvent, AgentRequest, Role};
use kefu_testkit::{Client, TestRelay, assert_error};
use tokio::time::Instant;

use crate::support::{run_cli, stdout};

/// The relay re-reads credentials every 0.5 s and promises revocation
/// within a second on one relay and a few across a cluster; the bound
/// leaves room for a loaded CI machine.
pub const REVOKED_WITHIN: Duration = Duration::from_secs(2);

/// Waits for the relay to revoke `agent`: an `unauthorized` error, then the
/// close. Returns how long that took from `since`.
pub async fn revoked(agent: &mut Client<AgentEvent>, since: Instant) -> Duration {
    let error = agent
        .until(|event| match event {
            AgentEvent::Error(error) => Some(error),
            _ => None,
        })
        .await;
    let took = since.elapsed();
    assert_error(&error, ErrorCode::Unauthorized);
    assert!(agent.drain().await.is_empty(), "nothing after the error");
    took
}

/// `agent` still gets what happens: a new visitor's first message.
async fn still_served(relay: &TestRelay, agent: &mut Client<AgentEvent>) {
    let (mut visitor, _) = relay.new_visitor().await;
    visitor.say("v1", "anyone there?").await;
    assert_eq!(agent.next_message().await.text, "anyone there?");
}

#[tokio::test]
async fn a_disabled_agent_loses_its_open_connection_at_once() {
    let relay = TestRelay::start().await;
    let carol = relay.add_agent("carol", Role::Agent).await;
    let alice = relay.add_agent("alice", Role::Agent).await;
    let mut revoked_agent = relay.signed_in_agent(&carol).await;
    let mut colleague = relay.signed_in_agent(&alice).await;

    let output = run_cli(
        &["agent", "disable", "carol", "--database", &relay.database],
        &[],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let took = revoked(&mut revoked_agent, Instant::now()).await;
    assert!(took < REVOKED_WITHIN, "revoked after {took:?}");

    // Her colleague is untouched.
    still_served(&relay, &mut colleague).await;
}

#[tokio::test]
async fn a_new_token_revokes_the_old_one_on_open_connections() {
    let relay = TestRelay::start().await;
    let old = relay.add_agent("carol", Role::Agent).await;
    let mut agent = relay.signed_in_agent(&old).await;

    let output = run_cli(
        &[
            "agent",
            "rotate-token",
            "carol",
            "--database",
            &relay.database,
        ],
        &[],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let new = stdout(&output).trim().to_owned();
    assert!(new.starts_with("kefu_") && new != old, "{new:?}");
    let took = revoked(&mut agent, Instant::now()).await;
    assert!(took < REVOKED_WITHIN, "revoked after {took:?}");

    // The new token signs in and keeps its connection; the old one is refused.
    let (mut renewed, welcome) = relay.welcomed_agent(&new).await;
    assert_eq!(welcome.agent.name, "carol");
    let mut stale = relay.agent_socket().await;
    stale.send(&AgentRequest::Hello { token: old }).await;
    assert_error(&stale.next_error().await, ErrorCode::Unauthorized);
    still_served(&relay, &mut renewed).await;
}
