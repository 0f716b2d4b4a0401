//! Agent accounts: adding and disabling them.

use kefu_protocol::agent::{AgentInfo, Role};
use rusqlite::Connection;

use super::super::super::{StoreError, now_millis, to_millis};
use super::super::statements::{execute, query_id};
use super::op::{Applied, Written};
use crate::ids;

pub(super) fn add_agent(
    conn: &Connection,
    name: &str,
    role: Role,
    token_hash: &str,
) -> Result<Applied, StoreError> {
    let taken = query_id(conn, "SELECT id FROM agents WHERE name = ?", [name])?;
    if taken.is_some() {
        return Err(StoreError::Conflict(format!(
            "an agent named {name:?} already exists"
        )));
    }
    let info = AgentInfo {
        id: ids::new_id(),
        name: name.to_owned(),
        role,
    };
    execute(
        conn,
        "INSERT INTO agents (id, name, role, token_hash, created_at) VALUES (?, ?, ?, ?, ?)",
        (
            &info.id,
            &info.name,
            role.as_str(),
            token_hash,
            to_millis(now_millis()),
        ),
    )?;
    Ok((Written::Agent(info), Vec::new()))
}

pub(super) fn disable_agent(conn: &Connection, name: &str) -> Result<Applied, StoreError> {
    update_agent(
        conn,
        "UPDATE agents SET disabled = 1 WHERE name = ?",
        [name],
    )
}

pub(super) fn set_agent_token(
    conn: &Connection,
    name: &str,
    token_hash: &str,
) -> Result<Applied, StoreError> {
    update_agent(
        conn,
        "UPDATE agents SET token_hash = ? WHERE name = ?",
        [token_hash, name],
    )
}

/// Runs an update of one agent by name; `NotFound` if there is none.
fn update_agent(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Applied, StoreError> {
    if execute(conn, sql, params)? == 0 {
        return Err(StoreError::NotFound("agent"));
    }
    Ok((Written::Done, Vec::new()))
}
