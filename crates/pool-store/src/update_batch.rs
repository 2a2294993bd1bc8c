//! Consecutive job updates of one transaction as one statement: an `UPDATE … FROM (VALUES …)`
//! with `RETURNING`, each job's compare-and-set kept. A pool writes a job several times in
//! its short life (dispatched, submitted, executing, ended, finished); grouped by the writer,
//! those writes cost one statement per group instead of one per write, and a job written
//! more than once in a group is written once, with its last record, if its first write's
//! expected version holds.
//!
//! The outcomes are those of running the updates one after the other: a job whose first
//! write misses its version (or is gone) fails every write of it in the group, each with its
//! own expected version, exactly as the sequence would.

use std::collections::{HashMap, HashSet};

use crate::jobs::{self, JobChange};
use crate::sql::{Query, WriteConn};
use crate::writer::{Done, Outcome};

/// Rows of one statement at most (7 arguments each: far below both databases' limits).
const MAX_ROWS: usize = 256;

/// Runs `changes` in order, as [`jobs::update`] one after the other would; also says how
/// many rows were written (one per job when they go as one statement).
pub(crate) async fn update_all(
    conn: &mut WriteConn,
    changes: &[&JobChange],
) -> Result<(Vec<Outcome>, u64), sqlx::Error> {
    if changes.len() == 1 || !chained(changes) {
        let mut outcomes = Vec::with_capacity(changes.len());
        for change in changes {
            outcomes.push(jobs::update(conn, change).await?);
        }
        let written = outcomes.iter().filter(|o| o.is_ok()).count() as u64;
        return Ok((outcomes, written));
    }
    // Per job: its first write (for the expected version) and its last (what is stored).
    let mut order: Vec<&str> = Vec::new();
    let mut jobs: HashMap<&str, (&JobChange, &JobChange)> = HashMap::new();
    for change in changes {
        jobs.entry(change.id())
            .and_modify(|(_, last)| *last = change)
            .or_insert_with(|| {
                order.push(change.id());
                (change, change)
            });
    }
    let mut written: HashSet<String> = HashSet::with_capacity(order.len());
    for chunk in order.chunks(MAX_ROWS) {
        let rows: Vec<(&JobChange, i64)> = chunk
            .iter()
            .filter_map(|id| jobs.get(id))
            .map(|(first, last)| (*last, first.expected_bound()))
            .collect();
        for id in conn.fetch_all_text(&statement(&rows)).await? {
            written.insert(id);
        }
    }
    let mut outcomes = Vec::with_capacity(changes.len());
    let mut stored: HashMap<&str, Option<i64>> = HashMap::new();
    for change in changes {
        if written.contains(change.id()) {
            jobs::refer(conn, change.id(), change.blobs()).await?;
            outcomes.push(Ok(Done::Nothing));
            continue;
        }
        // Missed: what is stored says why (read once per job).
        let version = match stored.get(change.id()) {
            Some(version) => *version,
            None => match jobs::stored_version(conn, change.id()).await? {
                Ok(version) => {
                    stored.insert(change.id(), version);
                    version
                }
                Err(e) => {
                    outcomes.push(Err(e));
                    continue;
                }
            },
        };
        outcomes.push(Err(jobs::missed(change, version)));
    }
    Ok((outcomes, written.len() as u64))
}

/// Whether every job's writes follow each other version by version (a write that follows no
/// stored record is left to the one-by-one path).
fn chained(changes: &[&JobChange]) -> bool {
    let mut last: HashMap<&str, u64> = HashMap::new();
    changes.iter().all(|change| {
        let ok = change.expected().is_some_and(|expected| {
            last.get(change.id())
                .is_none_or(|previous| expected == *previous)
        });
        last.insert(change.id(), change.version());
        ok
    })
}

/// The number of rows of a statement for `n` rows: the next power of two.
fn padded(n: usize) -> usize {
    n.next_power_of_two()
}

/// The statement writing `rows` (each the record to store and the version expected stored).
fn statement(rows: &[(&JobChange, i64)]) -> Query {
    let mut sql = String::from(
        "UPDATE jobs SET state = v.column2, updated_at = v.column3, version = v.column4, \
         last_seq = v.column5, record = v.column6 FROM (VALUES ",
    );
    // A few sizes only, so that the connection's cache of prepared statements keeps them.
    for i in 0..padded(rows.len()) {
        let p = i * 7;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5,
            p + 6,
            p + 7
        ));
    }
    sql.push_str(") AS v WHERE jobs.id = v.column1 AND jobs.version = v.column7 RETURNING jobs.id");
    let mut query = Query::new(sql);
    for (change, expected) in rows {
        query = change.bind_row(query).bind(*expected);
    }
    // Rows of nothing up to the statement's size: they match no job.
    for _ in rows.len()..padded(rows.len()) {
        query = query
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<i64>)
            .bind(None::<i64>)
            .bind(None::<i64>)
            .bind(None::<String>)
            .bind(None::<i64>);
    }
    query
}
