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
use crate::sql::{Dialect, Query, WriteConn};
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

/// The statement inserting `jobs`, returning the ids of those that were new.
fn statement(jobs: &[&NewJob]) -> Query {
    const COLUMNS: usize = 12;
    let mut sql = String::from("WITH v AS (VALUES ");
    for i in 0..jobs.len().next_power_of_two() {
        if i > 0 {
            sql.push_str(", ");
        }
        let params: Vec<String> = (1..=COLUMNS)
            .map(|c| format!("${}", i * COLUMNS + c))
            .collect();
        sql.push('(');
        sql.push_str(&params.join(", "));
        sql.push(')');
    }
    // column1 is the row's place (the acceptance order), column2..column12 the job's.
    sql.push_str(
        "), j AS (INSERT INTO jobs (id, tenant, state, priority, hash, created_at, updated_at, \
         version, last_seq, record) \
         SELECT column2, column3, column4, column5, column6, column7, column8, column9, \
         column10, column11 FROM v WHERE column2 IS NOT NULL ORDER BY column1 \
         ON CONFLICT (id) DO NOTHING RETURNING id, seq), \
         s AS (INSERT INTO job_specs (seq, spec) SELECT j.seq, v.column12 FROM j \
         JOIN v ON v.column2 = j.id) \
         SELECT id FROM j",
    );
    let mut query = Query::new(sql);
    for (i, job) in jobs.iter().enumerate() {
        query = job.bind_row(query.bind(i as i64));
    }
    // Rows of nothing up to the statement's size (a few sizes only, for the cache of
    // prepared statements): they insert nothing.
    for _ in jobs.len()..jobs.len().next_power_of_two() {
        query = query.bind(None::<i64>);
        query = query
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<i64>)
            .bind(None::<String>)
            .bind(None::<i64>)
            .bind(None::<i64>)
            .bind(None::<i64>)
            .bind(None::<i64>)
            .bind(None::<String>)
            .bind(None::<String>);
    }
    query
}
