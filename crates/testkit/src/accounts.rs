//! Agent accounts made straight in a database, as `kefu-relay agent add`
//! makes them: by opening the store, which also migrates a new database.

use kefu_protocol::agent::Role;
use kefu_relay::{auth, store};

/// Adds an agent named `name` to `database`; its bearer token.
pub async fn add_agent(database: &str, name: &str, role: Role) -> String {
    let store = store::open(database, None).await.expect("open store");
    let token = auth::new_agent_token();
    store
        .add_agent(name, role, &auth::hash_agent_token(&token))
        .await
        .expect("add agent");
    store.close().await;
    token
}

/// The id of the agent named `name` in `database`.
pub async fn agent_id(database: &str, name: &str) -> String {
    let store = store::open(database, None).await.expect("open store");
    let agents = store.agents().await.expect("list agents");
    store.close().await;
    agents
        .into_iter()
        .find(|account| account.info.name == name)
        .map(|account| account.info.id)
        .expect("agent exists")
}
