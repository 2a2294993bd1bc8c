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
//!
//! On PostgreSQL the statement also returns the version stored before it for each job (the
//! update in a `WITH`, the jobs read beside it on the statement's snapshot), so a miss costs
//! no second statement, and a group that is one statement alone needs no transaction
//! ([`one_statement`]).

use std::collections::{HashMap, HashSet};

use crate::jobs::{self, JobChange};
use crate::sql::{Arg, Dialect, Query, WriteConn, bind_padding, padded_values};
use crate::writer::{Done, Outcome};

/// Rows of one statement at most (7 arguments each: far below both databases' limits).
const MAX_ROWS: usize = 256;

/// Whether `changes` go to the store as one statement that writes nothing else: chained,
/// for at most [`MAX_ROWS`] jobs, none recording blob references. On PostgreSQL such a group
/// is atomic alone, without `BEGIN` and `COMMIT`.
pub(crate) fn one_statement(changes: &[&JobChange]) -> bool {
    let jobs: HashSet<&str> = changes.iter().map(|c| c.id()).collect();
    jobs.len() <= MAX_ROWS && changes.iter().all(|c| !c.refers_to_blobs()) && chained(changes)
}

/// Runs `changes` in order, as [`jobs::update`] one after the other would; also says how
/// many rows were written (one per job when they go as one statement).
pub(crate) async fn update_all(
    conn: &mut WriteConn,
    changes: &[&JobChange],
) -> Result<(Vec<Outcome>, u64), sqlx::Error> {
    let postgres = conn.dialect() == Dialect::Postgres;
    if (changes.len() == 1 && !postgres) || !chained(changes) {
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
    // The versions stored of the jobs missed (`None`: no such job): on PostgreSQL from the
    // statement, on SQLite read once per job below.
    let mut stored: HashMap<String, Option<i64>> = HashMap::new();
    for chunk in order.chunks(MAX_ROWS) {
        let rows: Vec<(&JobChange, i64)> = chunk
            .iter()
            .filter_map(|id| jobs.get(id))
            .map(|(first, last)| (*last, first.expected_bound()))
            .collect();
        if postgres {
            for row in conn.fetch_all(&statement_with_versions(&rows)).await? {
                let id = row.text(0).map_err(|e| decode(&e))?;
                if row.boolean(1).map_err(|e| decode(&e))? {
                    written.insert(id);
                } else {
                    stored.insert(id, row.opt_int(2).map_err(|e| decode(&e))?);
                }
            }
        } else {
            for id in conn.fetch_all_text(&statement(&rows)).await? {
                written.insert(id);
            }
        }
    }
    let mut outcomes = Vec::with_capacity(changes.len());
    for change in changes {
        if written.contains(change.id()) {
            jobs::refer(conn, change.id(), change.blobs()).await?;
            outcomes.push(Ok(Done::Nothing));
            continue;
        }
        // Missed: what is stored says why.
        let version = match stored.get(change.id()) {
            Some(version) => *version,
            None => match jobs::stored_version(conn, change.id()).await? {
                Ok(version) => {
                    stored.insert(change.id().to_owned(), version);
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

/// A column of the statement's answer that cannot be read.
fn decode(e: &pool_core::StoreError) -> sqlx::Error {
    sqlx::Error::Decode(e.to_string().into())
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

/// The statement writing `rows` (each the record to store and the version expected stored),
/// returning the ids of the jobs written.
fn statement(rows: &[(&JobChange, i64)]) -> Query {
    let sql = format!(
        "UPDATE jobs SET {SET} FROM ({}) AS v WHERE {MATCH} RETURNING jobs.id",
        padded_values(rows.len(), &NULLS)
    );
    bind_rows(Query::new(sql), rows)
}

/// The statement writing `rows` on PostgreSQL, returning for every row its job's id, whether
/// it was written, and the version stored before (on the statement's snapshot, which the
/// update in its `WITH` does not change).
fn statement_with_versions(rows: &[(&JobChange, i64)]) -> Query {
    let sql = format!(
        "WITH v AS ({}), u AS (UPDATE jobs SET {SET} FROM v WHERE {MATCH} RETURNING jobs.id) \
         SELECT v.column1, u.id IS NOT NULL, j.version FROM v \
         LEFT JOIN u ON u.id = v.column1 LEFT JOIN jobs j ON j.id = v.column1 \
         WHERE v.column1 IS NOT NULL",
        padded_values(rows.len(), &NULLS)
    );
    bind_rows(Query::new(sql), rows)
}

/// What an update sets, from the row `v`.
const SET: &str = "state = v.column2, updated_at = v.column3, version = v.column4, \
                   last_seq = v.column5, record = v.column6";

/// Which job an update of row `v` writes: its id, at the version expected.
const MATCH: &str = "jobs.id = v.column1 AND jobs.version = v.column7";

/// The NULL of each column of a row (id, state, update time, version, last sequence number,
/// record, expected version): a padding row matches no job.
const NULLS: [Arg; 7] = [
    Arg::Text(None),
    Arg::Text(None),
    Arg::Int(None),
    Arg::Int(None),
    Arg::Int(None),
    Arg::Text(None),
    Arg::Int(None),
];

/// `query` with `rows` bound, then the padding.
fn bind_rows(mut query: Query, rows: &[(&JobChange, i64)]) -> Query {
    for (change, expected) in rows {
        query = change.bind_row(query).bind(*expected);
    }
    bind_padding(query, rows.len(), &NULLS)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pool_core::{JobOptions, JobRecord, JobSpec, Timestamp, Transition, WorkflowHash};
    use serde_json::json;

    use super::*;

    /// The changes of job `id` from version 2 to `2 + n - 1`, one transition each.
    fn changes(id: &str, n: usize) -> Vec<JobChange> {
        let workflow = json!({"1": {"class_type": "EmptyImage", "inputs": {}}});
        let hash = WorkflowHash::of(&workflow).unwrap_or_else(|e| panic!("{e}"));
        let spec = JobSpec::new(Arc::new(workflow), hash, JobOptions::new());
        let mut record = JobRecord::new(id.into(), Arc::new(spec), Timestamp::from_millis(1));
        (0..n)
            .map(|_| {
                record.apply(&Transition::CancelRequested, Timestamp::from_millis(2));
                JobChange::of(&record, 1).unwrap_or_else(|e| panic!("{e}"))
            })
            .collect()
    }

    #[test]
    fn one_statement_takes_chained_updates_of_up_to_max_rows_jobs() {
        let a = changes("a", 3);
        let chained: Vec<&JobChange> = a.iter().collect();
        assert!(one_statement(&chained));
        // A version skipped: one by one.
        let gap = vec![&a[0], &a[2]];
        assert!(!one_statement(&gap));
        let many: Vec<Vec<JobChange>> =
            (0..=MAX_ROWS).map(|i| changes(&i.to_string(), 1)).collect();
        let all: Vec<&JobChange> = many.iter().flatten().collect();
        assert!(one_statement(&all[..MAX_ROWS]));
        assert!(!one_statement(&all));
    }
}
