//! The SQL of jobs and blobs: the writes the writer task runs (insert, compare-and-set update,
//! blobs, purge) and the reads that go through the read pool (get, unfinished, list, blob).

use pool_core::{JobId, JobPage, JobQuery, JobRecord, StoreError, Timestamp, referenced_blobs};

use crate::codec::{self, int, millis, record_from};
use crate::sql::{Arg, Dialect, Query, ReadPool, Row, WriteConn};
use crate::writer::{Done, Outcome};

/// The most jobs one page of a listing holds (as the in-memory store).
const MAX_PAGE: u32 = 1000;

/// A job to insert, serialized by the caller.
#[derive(Debug)]
pub(crate) struct NewJob {
    id: String,
    tenant: Option<String>,
    state: &'static str,
    priority: i64,
    hash: String,
    created_at: i64,
    updated_at: i64,
    version: i64,
    last_seq: i64,
    spec: String,
    rest: String,
    blobs: Vec<String>,
}

impl NewJob {
    /// The job's id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The blobs it refers to (its input files).
    pub(crate) fn blobs(&self) -> &[String] {
        &self.blobs
    }

    /// Its spec, as JSON.
    pub(crate) fn spec(&self) -> &str {
        &self.spec
    }

    /// `query` with the job's row bound: its id, tenant, state, priority, hash, creation and
    /// update times, version, last sequence number and record, in this order.
    pub(crate) fn bind_row(&self, query: Query) -> Query {
        query
            .bind(self.id.as_str())
            .bind(self.tenant.clone())
            .bind(self.state)
            .bind(self.priority)
            .bind(self.hash.as_str())
            .bind(self.created_at)
            .bind(self.updated_at)
            .bind(self.version)
            .bind(self.last_seq)
            .bind(self.rest.as_str())
    }

    /// The row of `record`.
    pub(crate) fn of(record: &JobRecord) -> Result<Self, StoreError> {
        Ok(Self {
            id: record.id.to_string(),
            tenant: record.tenant().map(str::to_owned),
            state: record.state.as_str(),
            priority: i64::from(record.priority()),
            hash: record.hash().to_string(),
            created_at: millis(record.created_at),
            updated_at: millis(record.updated_at),
            version: int(record.version),
            last_seq: int(record.last_seq),
            spec: codec::spec_json(record)?,
            rest: codec::rest_json(record)?,
            blobs: referenced_blobs(record),
        })
    }
}

/// A job's record after one or more consecutive transitions, serialized by the caller (its
/// spec is not written again).
#[derive(Debug)]
pub(crate) struct JobChange {
    id: String,
    state: &'static str,
    updated_at: i64,
    version: u64,
    /// How many transitions it records (the stored version it expects is `version - steps`).
    steps: u64,
    last_seq: i64,
    rest: String,
    /// The blobs its result refers to (its inputs were recorded at insert).
    blobs: Vec<String>,
}

impl JobChange {
    /// Whether the update also records blob references (a second statement).
    pub(crate) fn refers_to_blobs(&self) -> bool {
        !self.blobs.is_empty()
    }

    /// The job's id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The version it writes.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// The version it expects stored (the one before its transitions); `None` for a record
    /// that follows no stored version (fewer versions than transitions).
    pub(crate) fn expected(&self) -> Option<u64> {
        self.version.checked_sub(self.steps)
    }

    /// [`expected`](Self::expected) as bound in a statement: -1, which no row has, when
    /// there is none.
    pub(crate) fn expected_bound(&self) -> i64 {
        self.expected().map_or(-1, int)
    }

    /// The blobs its result refers to.
    pub(crate) fn blobs(&self) -> &[String] {
        &self.blobs
    }

    /// `query` with the row's id, state, update time, version, last sequence number and
    /// record bound, in this order.
    pub(crate) fn bind_row(&self, query: Query) -> Query {
        query
            .bind(self.id.as_str())
            .bind(self.state)
            .bind(self.updated_at)
            .bind(int(self.version))
            .bind(self.last_seq)
            .bind(self.rest.as_str())
    }

    /// The change that makes the stored record `record`, `steps` transitions after the one
    /// it follows.
    pub(crate) fn of(record: &JobRecord, steps: u64) -> Result<Self, StoreError> {
        let blobs = record
            .result
            .iter()
            .flat_map(|output| output.ws_images.iter())
            .map(|image| image.image.key())
            .collect();
        Ok(Self {
            id: record.id.to_string(),
            state: record.state.as_str(),
            updated_at: millis(record.updated_at),
            version: record.version,
            steps,
            last_seq: int(record.last_seq),
            rest: codec::rest_json(record)?,
            blobs,
        })
    }
}

pub(crate) async fn insert(conn: &mut WriteConn, job: &NewJob) -> Result<Outcome, sqlx::Error> {
    const INSERT_JOB: &str = "INSERT INTO jobs (id, tenant, state, priority, hash, created_at, \
                              updated_at, version, last_seq, record) \
                              VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                              ON CONFLICT (id) DO NOTHING RETURNING seq";
    // PostgreSQL writes the job's row and its spec's in one statement (one round trip); the
    // spec follows the row only if the row was new. SQLite has no writes in `WITH`.
    let together = conn.dialect() == Dialect::Postgres;
    let sql = if together {
        format!(
            "WITH j AS ({INSERT_JOB}) INSERT INTO job_specs (seq, spec) \
             SELECT seq, $11 FROM j RETURNING seq"
        )
    } else {
        INSERT_JOB.to_owned()
    };
    let mut query = job.bind_row(Query::new(sql));
    if together {
        query = query.bind(job.spec.as_str());
    }
    let inserted = conn.fetch_optional(&query).await?;
    let Some(inserted) = inserted else {
        return existing(conn, &job.id).await;
    };
    let seq = match inserted.int(0) {
        Ok(seq) => seq,
        Err(e) => return Ok(Err(e)),
    };
    if !together {
        conn.execute(
            &Query::new("INSERT INTO job_specs (seq, spec) VALUES ($1, $2)")
                .bind(seq)
                .bind(job.spec.as_str()),
        )
        .await?;
    }
    refer(conn, &job.id, &job.blobs).await?;
    Ok(Ok(Done::Existing(None)))
}

/// The answer to an insert of job `id` that inserted nothing: the record stored under the id.
pub(crate) async fn existing(conn: &mut WriteConn, id: &str) -> Result<Outcome, sqlx::Error> {
    let row = conn.fetch_optional(&by_id(id)).await?;
    Ok(match row {
        Some(row) => record_of(&row).map(|r| Done::Existing(Some(Box::new(r)))),
        None => Err(StoreError::Unavailable(format!(
            "job {id} was neither inserted nor found"
        ))),
    })
}

pub(crate) async fn update(
    conn: &mut WriteConn,
    change: &JobChange,
) -> Result<Outcome, sqlx::Error> {
    let updated = conn
        .execute(
            &Query::new(
                "UPDATE jobs SET state = $2, updated_at = $3, version = $4, last_seq = $5, \
                 record = $6 WHERE id = $1 AND version = $7",
            )
            .bind(change.id.as_str())
            .bind(change.state)
            .bind(change.updated_at)
            .bind(int(change.version))
            .bind(change.last_seq)
            .bind(change.rest.as_str())
            .bind(change.expected_bound()),
        )
        .await?;
    if updated == 0 {
        let stored = stored_version(conn, &change.id).await?;
        return Ok(stored.and_then(|stored| Err(missed(change, stored))));
    }
    refer(conn, &change.id, &change.blobs).await?;
    Ok(Ok(Done::Nothing))
}

/// The version stored for job `id` (`None`: no such job).
pub(crate) async fn stored_version(
    conn: &mut WriteConn,
    id: &str,
) -> Result<Result<Option<i64>, StoreError>, sqlx::Error> {
    let row = conn
        .fetch_optional(&Query::new("SELECT version FROM jobs WHERE id = $1").bind(id))
        .await?;
    Ok(row.map(|r| r.int(0)).transpose())
}

/// Why `change` changed nothing, given the version stored (`None`: no such job).
pub(crate) fn missed(change: &JobChange, stored: Option<i64>) -> StoreError {
    match stored {
        None => StoreError::NotFound(change.id.clone()),
        Some(stored) => StoreError::Conflict {
            id: change.id.clone(),
            stored: u64::try_from(stored).unwrap_or(0),
            expected: change.expected().unwrap_or(0),
        },
    }
}

/// Records that job `id` refers to `blobs`.
pub(crate) async fn refer(
    conn: &mut WriteConn,
    id: &str,
    blobs: &[String],
) -> Result<(), sqlx::Error> {
    for blob in blobs {
        conn.execute(
            &Query::new("INSERT INTO job_blobs (job, blob) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(blob.as_str()),
        )
        .await?;
    }
    Ok(())
}

pub(crate) async fn put_blob(
    conn: &mut WriteConn,
    key: &str,
    bytes: &[u8],
) -> Result<Outcome, sqlx::Error> {
    conn.execute(
        &Query::new("INSERT INTO blobs (key, bytes) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(bytes.to_vec()),
    )
    .await?;
    Ok(Ok(Done::Nothing))
}

/// Finished jobs that ended before `before` and those beyond the newest `keep`, then every
/// blob no remaining job refers to.
pub(crate) async fn purge(
    conn: &mut WriteConn,
    before: i64,
    keep: i64,
) -> Result<Outcome, sqlx::Error> {
    // The newest finished job beyond the kept ones: it and every older finished job go.
    let first_gone = conn
        .fetch_optional(
            &Query::new(
                "SELECT created_at, id FROM jobs \
                 WHERE state IN ('completed', 'failed', 'cancelled') \
                 ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET $1",
            )
            .bind(keep),
        )
        .await?;
    let delete = match first_gone {
        Some(row) => {
            let (created_at, id) = match (row.int(0), row.text(1)) {
                (Ok(created_at), Ok(id)) => (created_at, id),
                (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
            };
            Query::new(
                "DELETE FROM jobs WHERE state IN ('completed', 'failed', 'cancelled') \
                 AND (updated_at < $1 OR created_at < $2 OR (created_at = $2 AND id <= $3))",
            )
            .bind(before)
            .bind(created_at)
            .bind(id)
        }
        None => Query::new(
            "DELETE FROM jobs WHERE state IN ('completed', 'failed', 'cancelled') \
             AND updated_at < $1",
        )
        .bind(before),
    };
    let deleted = conn.execute(&delete).await?;
    // `job_specs` and `job_blobs` rows went with their jobs (ON DELETE CASCADE).
    conn.execute(&Query::new(
        "DELETE FROM blobs WHERE NOT EXISTS \
         (SELECT 1 FROM job_blobs WHERE job_blobs.blob = blobs.key)",
    ))
    .await?;
    Ok(Ok(Done::Count(deleted)))
}

/// The columns a record is read from, and where: `spec, record` of `jobs j`.
const RECORDS: &str = "SELECT s.spec, j.record FROM jobs j JOIN job_specs s ON s.seq = j.seq";

fn by_id(id: &str) -> Query {
    Query::new(format!("{RECORDS} WHERE j.id = $1")).bind(id)
}

/// The record of a `spec, record` row.
fn record_of(row: &Row) -> Result<JobRecord, StoreError> {
    record_from(&row.text(0)?, &row.text(1)?)
}

pub(crate) async fn get(pool: &ReadPool, id: &str) -> Result<Option<JobRecord>, StoreError> {
    pool.fetch_optional(&by_id(id))
        .await?
        .map(|row| record_of(&row))
        .transpose()
}

/// The records of `ids` that are stored, in one query per [`MANY`] ids.
pub(crate) async fn get_many(pool: &ReadPool, ids: &[JobId]) -> Result<Vec<JobRecord>, StoreError> {
    let mut records = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MANY) {
        let mut args: Vec<Arg> = Vec::with_capacity(chunk.len());
        let list: Vec<String> = chunk
            .iter()
            .map(|id| param(&mut args, id.as_str().into()))
            .collect();
        let sql = format!("{RECORDS} WHERE j.id IN ({})", list.join(", "));
        let query = args.into_iter().fold(Query::new(sql), Query::bind);
        for row in pool.fetch_all(&query).await? {
            records.push(record_of(&row)?);
        }
    }
    Ok(records)
}

/// Ids per query of [`get_many`] (well under SQLite's limit of bound parameters).
const MANY: usize = 500;

pub(crate) async fn unfinished(pool: &ReadPool) -> Result<Vec<JobRecord>, StoreError> {
    // The predicate is the one of the `jobs_unfinished` index.
    let rows = pool
        .fetch_all(&Query::new(format!(
            "{RECORDS} WHERE j.state NOT IN ('completed', 'failed', 'cancelled') ORDER BY j.seq"
        )))
        .await?;
    rows.iter().map(record_of).collect()
}

pub(crate) async fn list(pool: &ReadPool, query: &JobQuery) -> Result<JobPage, StoreError> {
    let after = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let limit = query.limit.clamp(1, MAX_PAGE);
    let mut sql = format!("{RECORDS} WHERE TRUE");
    let mut args: Vec<Arg> = Vec::new();
    if let Some(tenant) = &query.tenant {
        let p = param(&mut args, tenant.as_str().into());
        sql.push_str(&format!(" AND j.tenant = {p}"));
    }
    if !query.states.is_empty() {
        let list: Vec<String> = query
            .states
            .iter()
            .map(|state| param(&mut args, state.as_str().into()))
            .collect();
        sql.push_str(&format!(" AND j.state IN ({})", list.join(", ")));
    }
    if let Some((created_at, id)) = after {
        let c = param(&mut args, millis(created_at).into());
        let i = param(&mut args, id.into());
        sql.push_str(&format!(
            " AND (j.created_at < {c} OR (j.created_at = {c} AND j.id < {i}))"
        ));
    }
    let l = param(&mut args, i64::from(limit + 1).into());
    sql.push_str(&format!(" ORDER BY j.created_at DESC, j.id DESC LIMIT {l}"));
    let query = args.into_iter().fold(Query::new(sql), Query::bind);
    let rows = pool.fetch_all(&query).await?;
    let mut jobs = rows.iter().map(record_of).collect::<Result<Vec<_>, _>>()?;
    let more = jobs.len() > limit as usize;
    jobs.truncate(limit as usize);
    let next = if more {
        jobs.last().map(cursor_of)
    } else {
        None
    };
    Ok(JobPage::new(jobs, next))
}

/// Adds an argument; its placeholder.
fn param(args: &mut Vec<Arg>, arg: Arg) -> String {
    args.push(arg);
    format!("${}", args.len())
}

/// The cursor of a listing: `created_at_ms:id` of the last job of the page (the in-memory
/// store's format).
fn cursor_of(record: &JobRecord) -> String {
    format!("{}:{}", record.created_at.as_millis(), record.id)
}

/// The (created_at, id) a cursor stands for.
fn parse_cursor(cursor: &str) -> Result<(Timestamp, String), StoreError> {
    let bad = || StoreError::Config(format!("not a listing cursor: {cursor:?}"));
    let (millis, id) = cursor.split_once(':').ok_or_else(bad)?;
    let millis = millis.parse().map_err(|_| bad())?;
    Ok((Timestamp::from_millis(millis), id.to_owned()))
}

pub(crate) async fn get_blob(pool: &ReadPool, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    pool.fetch_optional(&Query::new("SELECT bytes FROM blobs WHERE key = $1").bind(key))
        .await?
        .map(|row| row.bytes(0))
        .transpose()
}

#[cfg(test)]
mod tests {
    use pool_core::JobState;

    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_config_errors() {
        assert_eq!(
            parse_cursor("17:a:b").unwrap(),
            (Timestamp::from_millis(17), "a:b".to_owned())
        );
        for bad in ["", "17", "x:a", "-1:a"] {
            assert!(
                matches!(parse_cursor(bad), Err(StoreError::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_sql_names_exactly_the_terminal_states() {
        let sql_terminal = ["completed", "failed", "cancelled"];
        for state in [
            JobState::Queued,
            JobState::Running,
            JobState::RetryWait,
            JobState::Completed,
            JobState::Failed,
            JobState::Cancelled,
        ] {
            assert_eq!(
                sql_terminal.contains(&state.as_str()),
                state.is_terminal(),
                "{state}"
            );
        }
    }
}
