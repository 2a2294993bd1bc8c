//! Consecutive inserts of one transaction as one statement, on PostgreSQL: the jobs' rows and
//! their specs' written by one `INSERT … SELECT … FROM (VALUES …)` with `ON CONFLICT DO
//! NOTHING`, the specs following in the same statement (a data-modifying `WITH`) for the rows
//! that were new. Many callers enqueueing at once then cost one statement per group instead
//! of one per job. The jobs take their acceptance order (`seq`) in the order they were sent.
//!
//! The outcomes are those of the inserts one after the other: a new job is
//! `Existing(None)`; a job whose id is stored already answers the stored record (read after
//! the statement, as a single insert does).

use std::collections::HashSet;

use crate::jobs::{self, NewJob};
use crate::sql::{Arg, Dialect, Query, WriteConn, bind_padding, padded_values};
use crate::writer::{Done, Outcome};

/// Rows of one statement at most (12 arguments each: far below PostgreSQL's limit).
const MAX_ROWS: usize = 256;

/// Whether `jobs` can go as statements of many rows: on PostgreSQL, more than one, their ids
/// distinct (two rows of one id in one statement would make its spec twice).
pub(crate) fn batched(conn: &WriteConn, jobs: &[&NewJob]) -> bool {
    let mut ids = HashSet::with_capacity(jobs.len());
    conn.dialect() == Dialect::Postgres && jobs.len() > 1 && jobs.iter().all(|j| ids.insert(j.id()))
}

/// Inserts `jobs` (see [`batched`]) in order; their outcomes.
pub(crate) async fn insert_all(
    conn: &mut WriteConn,
    jobs: &[&NewJob],
) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut inserted: HashSet<String> = HashSet::with_capacity(jobs.len());
    for chunk in jobs.chunks(MAX_ROWS) {
        inserted.extend(conn.fetch_all_text(&statement(chunk)).await?);
    }
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        if inserted.contains(job.id()) {
            jobs::refer(conn, job.id(), job.blobs()).await?;
            outcomes.push(Ok(Done::Existing(None)));
        } else {
            outcomes.push(jobs::existing(conn, job.id()).await?);
        }
    }
    Ok(outcomes)
}

/// The NULL of each column of a row (its place, the job's row as [`NewJob::bind_row`] binds
/// it, its spec): a padding row inserts nothing.
const NULLS: [Arg; 12] = [
    Arg::Int(None),
    Arg::Text(None),
    Arg::Text(None),
    Arg::Text(None),
    Arg::Int(None),
    Arg::Text(None),
    Arg::Int(None),
    Arg::Int(None),
    Arg::Int(None),
    Arg::Int(None),
    Arg::Text(None),
    Arg::Text(None),
];

/// The statement inserting `jobs`, returning the ids of those that were new.
fn statement(jobs: &[&NewJob]) -> Query {
    // column1 is the row's place (the acceptance order), column2..column12 the job's.
    let sql = format!(
        "WITH v AS ({}), j AS (INSERT INTO jobs (id, tenant, state, priority, hash, created_at, \
         updated_at, version, last_seq, record) \
         SELECT column2, column3, column4, column5, column6, column7, column8, column9, \
         column10, column11 FROM v WHERE column2 IS NOT NULL ORDER BY column1 \
         ON CONFLICT (id) DO NOTHING RETURNING id, seq), \
         s AS (INSERT INTO job_specs (seq, spec) SELECT j.seq, v.column12 FROM j \
         JOIN v ON v.column2 = j.id) \
         SELECT id FROM j",
        padded_values(jobs.len(), &NULLS)
    );
    let mut query = Query::new(sql);
    for (i, job) in jobs.iter().enumerate() {
        query = job.bind_row(query.bind(i as i64)).bind(job.spec());
    }
    bind_padding(query, jobs.len(), &NULLS)
}
