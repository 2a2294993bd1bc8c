//! The SQL of failover blocks: the stored state of (server, workflow) pairs.

use pool_core::{StoreError, StoredBlock};
use serde_json::{Value, json};

use crate::codec::{count, int, millis, timestamp};
use crate::sql::{Query, ReadPool, Row, WriteConn};
use crate::writer::{Done, Outcome};

/// A block as a row.
#[derive(Debug)]
pub(crate) struct BlockRow {
    server: String,
    hash: String,
    failures: i64,
    blocked_count: i64,
    class: String,
    until: Option<i64>,
    updated_at: i64,
}

impl BlockRow {
    /// The row of `block`.
    pub(crate) fn of(block: &StoredBlock) -> Result<Self, StoreError> {
        let Ok(Value::String(class)) = serde_json::to_value(block.class) else {
            return Err(StoreError::Corrupt(format!(
                "failure class {:?} has no name",
                block.class
            )));
        };
        Ok(Self {
            server: block.server.to_string(),
            hash: block.hash.to_string(),
            failures: int(u64::from(block.failures)),
            blocked_count: int(u64::from(block.blocked_count)),
            class,
            until: block.until.map(millis),
            updated_at: millis(block.updated_at),
        })
    }
}

pub(crate) async fn put(conn: &mut WriteConn, block: &BlockRow) -> Result<Outcome, sqlx::Error> {
    conn.execute(
        &Query::new(
            "INSERT INTO blocks (server, hash, failures, blocked_count, class, blocked_until, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (server, hash) DO UPDATE SET failures = excluded.failures, \
             blocked_count = excluded.blocked_count, class = excluded.class, \
             blocked_until = excluded.blocked_until, updated_at = excluded.updated_at",
        )
        .bind(block.server.as_str())
        .bind(block.hash.as_str())
        .bind(block.failures)
        .bind(block.blocked_count)
        .bind(block.class.as_str())
        .bind(block.until)
        .bind(block.updated_at),
    )
    .await?;
    Ok(Ok(Done::Nothing))
}

pub(crate) async fn remove(
    conn: &mut WriteConn,
    server: &str,
    hash: &str,
) -> Result<Outcome, sqlx::Error> {
    conn.execute(
        &Query::new("DELETE FROM blocks WHERE server = $1 AND hash = $2")
            .bind(server)
            .bind(hash),
    )
    .await?;
    Ok(Ok(Done::Nothing))
}

pub(crate) async fn all(pool: &ReadPool) -> Result<Vec<StoredBlock>, StoreError> {
    pool.fetch_all(&Query::new(
        "SELECT server, hash, failures, blocked_count, class, blocked_until, updated_at \
         FROM blocks ORDER BY server, hash",
    ))
    .await?
    .iter()
    .map(block_of)
    .collect()
}

fn block_of(row: &Row) -> Result<StoredBlock, StoreError> {
    // `StoredBlock` is built by its serde form: the one constructor it offers outside
    // pool-core.
    let value = json!({
        "server": row.text(0)?,
        "hash": row.text(1)?,
        "failures": count(row.int(2)?)?,
        "blocked_count": count(row.int(3)?)?,
        "class": row.text(4)?,
        "until": row.opt_int(5)?.map(|t| timestamp(t).as_millis()),
        "updated_at": timestamp(row.int(6)?).as_millis(),
    });
    serde_json::from_value(value).map_err(|e| StoreError::Corrupt(format!("a stored block: {e}")))
}
