//! Agent accounts: adding and disabling them; and the blocked client
//! addresses, the other thing an operator's command writes.

use kefu_protocol::agent::{AgentInfo, Role};
use rusqlite::Connection;

use super::super::super::{Block, StoreError, now_millis, to_millis};
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

pub(super) fn block(conn: &Connection, block: &Block) -> Result<Applied, StoreError> {
    let (range, reason, created_at, expires_at) = block.columns();
    execute(
        conn,
        "INSERT INTO blocks (range, reason, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (range) DO UPDATE SET reason = ?2, created_at = ?3, expires_at = ?4",
        rusqlite::params![range, reason, created_at, expires_at],
    )?;
    Ok((Written::Done, Vec::new()))
}

pub(super) fn unblock(conn: &Connection, range: &str) -> Result<Applied, StoreError> {
    if execute(conn, "DELETE FROM blocks WHERE range = ?", [range])? == 0 {
        return Err(StoreError::NotFound("block"));
    }
    Ok((Written::Done, Vec::new()))
}
