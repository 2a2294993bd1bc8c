//! Group commit: one task owns the store's write connection and runs every write. Callers send
//! a [`Work`] with a reply channel; the task takes everything queued (up to [`MAX_BATCH`]),
//! runs it in one transaction, commits (one fsync for all of them) and then answers each. Work
//! runs in the order it was sent, so one job's updates keep their order.
//!
//! A statement that fails (not a compare-and-set miss, which is an answer, but an SQL error)
//! spoils only its own work: the batch is rolled back and each work is run again in a
//! transaction of its own, so the others still commit.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use pool_core::{JobRecord, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::sql::{Dialect, WriteConn};
use crate::{blocks, insert_batch, jobs, service_sql, update_batch};

/// The most work one transaction takes (bounds the latency of the first caller in it).
pub(crate) const MAX_BATCH: usize = 512;

/// One write, prepared by the caller (serialized there, so the writer only runs SQL).
#[derive(Debug)]
pub(crate) enum Work {
    Insert(jobs::NewJob),
    Update(jobs::JobChange),
    PutBlob { key: String, bytes: Vec<u8> },
    PutBlock(blocks::BlockRow),
    RemoveBlock { server: String, hash: String },
    Purge { before: i64, keep: i64 },
    PutKey(service_sql::KeyRow),
    RevokeKey(String),
    EnqueueWebhook(service_sql::WebhookRow),
    UpdateWebhook(service_sql::WebhookRow),
}

/// What a write answers.
#[derive(Debug)]
pub(crate) enum Done {
    Nothing,
    /// An insert: the record stored already under the id, if there was one.
    Existing(Option<Box<JobRecord>>),
    Count(u64),
    Flag(bool),
}

/// The answer to a caller: done, or refused (conflict, not found, bad input).
pub(crate) type Outcome = Result<Done, StoreError>;

/// How many transactions and writes the writer committed (a measure of grouping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WriteStats {
    /// Transactions committed.
    pub commits: u64,
    /// Writes committed in them.
    pub writes: u64,
    /// Transactions rolled back (a statement failed; a group that failed is then run again
    /// one write per transaction).
    pub rollbacks: u64,
    /// Job rows written in committed transactions: each new job, and each update of a job's
    /// row (several updates of one job in a transaction write its row once).
    pub job_rows: u64,
}

#[derive(Debug, Default)]
struct Counters {
    commits: AtomicU64,
    writes: AtomicU64,
    rollbacks: AtomicU64,
    job_rows: AtomicU64,
}

struct Op {
    work: Work,
    reply: oneshot::Sender<Outcome>,
}

/// Opens a fresh write connection (after the old one broke).
pub(crate) type Connect =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<WriteConn, StoreError>> + Send>> + Send>;

/// The callers' side of the writer. Dropping every clone stops the task once it has run
/// what was sent.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    tx: mpsc::UnboundedSender<Op>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer task on `conn`; `connect` replaces the connection if it breaks.
    pub(crate) fn spawn(conn: WriteConn, connect: Connect) -> (Self, tokio::task::JoinHandle<()>) {
        let (writer, task, rx) = Self::new(conn, connect);
        (writer, tokio::spawn(task.run(rx)))
    }

    /// The callers' side, and the task with its end of the channel (not yet running).
    fn new(conn: WriteConn, connect: Connect) -> (Self, Task, mpsc::UnboundedReceiver<Op>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let task = Task {
            conn: Some(conn),
            connect,
            counters: Arc::clone(&counters),
        };
        (Self { tx, counters }, task, rx)
    }

    /// Starts the writer on a thread of its own, for a connection whose statements block
    /// (the SQLite store's: each group runs there in one go, without a hop per statement).
    /// The handle resolves once the thread has finished.
    pub(crate) fn spawn_on_thread(
        conn: WriteConn,
        connect: Connect,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), StoreError> {
        let not_started = |e: std::io::Error| {
            StoreError::Unavailable(format!("cannot start the store's writer: {e}"))
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(not_started)?;
        let (writer, task, rx) = Self::new(conn, connect);
        let (finished, done) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("comfy-pool-store-writer".to_owned())
            .spawn(move || {
                runtime.block_on(task.run(rx));
                let _ = finished.send(());
            })
            .map_err(not_started)?;
        let handle = tokio::spawn(async move {
            let _ = done.await;
        });
        Ok((writer, handle))
    }

    /// Runs `work` in the next transaction; returns once it is committed.
    pub(crate) async fn submit(&self, work: Work) -> Outcome {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Op { work, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// What it committed so far.
    pub(crate) fn stats(&self) -> WriteStats {
        WriteStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
            rollbacks: self.counters.rollbacks.load(Ordering::Relaxed),
            job_rows: self.counters.job_rows.load(Ordering::Relaxed),
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the store's writer has stopped".to_owned())
}

struct Task {
    conn: Option<WriteConn>,
    connect: Connect,
    counters: Arc<Counters>,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Op>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = rx.recv().await {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            self.commit(&mut batch).await;
        }
        if let Some(conn) = self.conn.take()
            && let Err(e) = conn.close().await
        {
            tracing::warn!("closing the store's write connection: {e}");
        }
    }

    /// Runs `batch` in one transaction and answers it (or each work alone, if it failed).
    async fn commit(&mut self, batch: &mut Vec<Op>) {
        let works: Vec<&Work> = batch.iter().map(|op| &op.work).collect();
        let outcomes = match self.transaction(&works).await {
            Ok(outcomes) => outcomes,
            Err(e) if batch.len() == 1 => vec![Err(e)],
            Err(e) => {
                tracing::warn!(
                    "a group of {} store writes failed ({e}); retrying each alone",
                    batch.len()
                );
                let mut outcomes = Vec::with_capacity(works.len());
                for work in &works {
                    let one = self.transaction(std::slice::from_ref(work)).await;
                    outcomes.push(one.and_then(|mut o| o.pop().unwrap_or(Ok(Done::Nothing))));
                }
                outcomes
            }
        };
        for (op, outcome) in batch.drain(..).zip(outcomes) {
            // A caller that stopped waiting does not undo its committed write.
            let _ = op.reply.send(outcome);
        }
    }

    /// One transaction of `works`; their outcomes once committed.
    async fn transaction(&mut self, works: &[&Work]) -> Result<Vec<Outcome>, StoreError> {
        if self.conn.is_none() {
            self.conn = Some((self.connect)().await?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(stopped());
        };
        let result = run(conn, works).await;
        match result {
            Ok((outcomes, rows)) => {
                self.counters.commits.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .writes
                    .fetch_add(works.len() as u64, Ordering::Relaxed);
                self.counters.job_rows.fetch_add(rows, Ordering::Relaxed);
                Ok(outcomes)
            }
            Err(e) => {
                self.counters.rollbacks.fetch_add(1, Ordering::Relaxed);
                if conn.raw("ROLLBACK").await.is_err() {
                    // The transaction may already be gone (a failed BEGIN); a connection that
                    // cannot answer is replaced before the next transaction.
                    if conn.raw("SELECT 1").await.is_err() {
                        self.conn = None;
                    }
                }
                Err(crate::sql::unavailable(e))
            }
        }
    }
}

/// BEGIN, every work, COMMIT; or, without the two round trips of a transaction, work that is
/// one statement and so atomic by itself: a lone update of a job's row (a dispatch's
/// write-ahead on an idle pool), or on PostgreSQL updates that go as one statement (see
/// [`update_batch::one_statement`]). The outcomes, and how many job rows were written.
async fn run(conn: &mut WriteConn, works: &[&Work]) -> Result<(Vec<Outcome>, u64), sqlx::Error> {
    if let [Work::Update(change)] = works
        && !change.refers_to_blobs()
        && conn.dialect() == Dialect::Sqlite
    {
        let outcome = jobs::update(conn, change).await?;
        let written = u64::from(outcome.is_ok());
        return Ok((vec![outcome], written));
    }
    if conn.dialect() == Dialect::Postgres
        && let Some(updates) = all_updates(works)
        && update_batch::one_statement(&updates)
    {
        return update_batch::update_all(conn, &updates).await;
    }
    conn.raw(match conn.dialect() {
        // Take the write lock now: waiting for it is then covered by the busy timeout.
        Dialect::Sqlite => "BEGIN IMMEDIATE",
        Dialect::Postgres => "BEGIN",
    })
    .await?;
    let mut outcomes = Vec::with_capacity(works.len());
    let mut rows = 0;
    // Consecutive updates go as one run (see `update_batch`), and so do consecutive inserts
    // (see `insert_batch`); any other work ends a run.
    let same =
        |a: &&Work, b: &&Work| (is_update(a) && is_update(b)) || (is_insert(a) && is_insert(b));
    for run in works.chunk_by(same) {
        if let Some(inserts) = all_inserts(run)
            && insert_batch::batched(conn, &inserts)
        {
            let done = insert_batch::insert_all(conn, &inserts).await?;
            rows += done
                .iter()
                .filter(|o| matches!(o, Ok(Done::Existing(None))))
                .count() as u64;
            outcomes.extend(done);
            continue;
        }
        if let Some(updates) = all_updates(run) {
            let (done, written) = update_batch::update_all(conn, &updates).await?;
            outcomes.extend(done);
            rows += written;
            continue;
        }
        for work in run {
            let outcome = apply(conn, work).await?;
            if matches!(work, Work::Insert(_)) && matches!(outcome, Ok(Done::Existing(None))) {
                rows += 1;
            }
            outcomes.push(outcome);
        }
    }
    conn.raw("COMMIT").await?;
    Ok((outcomes, rows))
}

fn is_update(work: &Work) -> bool {
    matches!(work, Work::Update(_))
}

fn is_insert(work: &Work) -> bool {
    matches!(work, Work::Insert(_))
}

/// The changes of `works` if every one is an update.
fn all_updates<'a>(works: &[&'a Work]) -> Option<Vec<&'a jobs::JobChange>> {
    all_of(works, |work| match work {
        Work::Update(change) => Some(change),
        _ => None,
    })
}

/// The new jobs of `works` if every one is an insert.
fn all_inserts<'a>(works: &[&'a Work]) -> Option<Vec<&'a jobs::NewJob>> {
    all_of(works, |work| match work {
        Work::Insert(job) => Some(job),
        _ => None,
    })
}

/// What `pick` finds in each of `works`, if it finds something in every one.
fn all_of<'a, T>(works: &[&'a Work], pick: fn(&'a Work) -> Option<&'a T>) -> Option<Vec<&'a T>> {
    works.iter().map(|work| pick(work)).collect()
}

async fn apply(conn: &mut WriteConn, work: &Work) -> Result<Outcome, sqlx::Error> {
    match work {
        Work::Insert(job) => jobs::insert(conn, job).await,
        Work::Update(change) => jobs::update(conn, change).await,
        Work::PutBlob { key, bytes } => jobs::put_blob(conn, key, bytes).await,
        Work::PutBlock(block) => blocks::put(conn, block).await,
        Work::RemoveBlock { server, hash } => blocks::remove(conn, server, hash).await,
        Work::Purge { before, keep } => jobs::purge(conn, *before, *keep).await,
        Work::PutKey(key) => service_sql::put_key(conn, key).await,
        Work::RevokeKey(id) => service_sql::revoke_key(conn, id).await,
        Work::EnqueueWebhook(row) => service_sql::enqueue_webhook(conn, row).await,
        Work::UpdateWebhook(row) => service_sql::update_webhook(conn, row).await,
    }
}
