//! The conformance checks against `SqliteStore`: a file in a temporary directory and an
//! in-memory database; and what only a file shows (reopening, a newer schema, a killed
//! process).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

use pool_store::SqliteStore;
use support::Fixture;

/// A store in a new file.
async fn file_store() -> Fixture<SqliteStore> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("pool.db")).await.unwrap();
    Fixture {
        store: std::sync::Arc::new(store),
        dir: Some(dir),
    }
}

mod file {
    use super::*;

    job_store_conformance!(file_store().await);
    service_store_conformance!(file_store().await);
}

mod memory {
    use super::*;

    job_store_conformance!(Fixture::new(SqliteStore::open(":memory:").await.unwrap()));
    service_store_conformance!(Fixture::new(SqliteStore::open(":memory:").await.unwrap()));
}

mod file_only {
    use std::future::Future;
    use std::io::{BufRead, BufReader, Write};
    use std::pin::Pin;
    use std::process::{Command, Stdio};
    use std::sync::Arc;

    use pool_core::{JobStore, StoreError, Transition};
    use pool_store::SqliteStore;
    use sqlx::{ConnectOptions, Executor};

    use crate::support::records::{a_successful_run, at, job};

    #[tokio::test]
    async fn a_reopened_file_has_every_job() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pool.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let records: Vec<_> = (0..3)
            .map(|i| job(&format!("job-{i}"), None, at(i)))
            .collect();
        for record in &records {
            store.insert(record).await.unwrap();
        }
        store.close().await;
        // Opening again applies no migration twice and finds the jobs.
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(store.unfinished().await.unwrap(), records);
    }

    #[tokio::test]
    async fn a_file_written_by_a_newer_version_is_refused_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pool.db");
        SqliteStore::open(&path).await.unwrap().close().await;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .connect()
            .await
            .unwrap();
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99999, 'from the future', TRUE, x'00', 0)",
        )
        .await
        .unwrap();
        drop(conn);
        let err = SqliteStore::open(&path).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_created_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = SqliteStore::open(dir.path().join("missing/dir/pool.db"))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }

    /// 64 inserts sent while the writer waits for the file's write lock (held by another
    /// connection) share one transaction once it is free, and each caller gets its own
    /// answer: the writer holds at most the first of them in the transaction it was
    /// starting, so there are two commits at most.
    #[tokio::test(flavor = "current_thread")]
    async fn concurrent_inserts_share_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pool.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let mut records: Vec<_> = (0..64u64)
            .map(|i| job(&format!("job-{i}"), None, at(i)))
            .collect();
        records.push(records[7].clone());
        let inserts = records.iter().map(|r| store.insert(r)).collect();
        let results = queued_behind_a_lock(&path, inserts).await;
        for result in &results[..64] {
            assert_eq!(result.as_ref().unwrap(), &None);
        }
        // The same id again, in the same transaction: the first one is returned.
        assert_eq!(results[64].as_ref().unwrap(), &Some(records[7].clone()));
        let stats = store.write_stats();
        assert!(stats.commits <= 2 && stats.writes == 65, "{stats:?}");
        assert_eq!(
            stats.job_rows, 64,
            "the repeated id writes no row: {stats:?}"
        );
        assert_eq!(store.unfinished().await.unwrap(), records[..64]);
    }

    /// Three transitions of one job and one of another, queued while the file's write lock
    /// is held elsewhere: the first job's row is written once for its three (they share a
    /// transaction, but for the first write, which the writer may have started alone).
    #[tokio::test(flavor = "current_thread")]
    async fn a_jobs_transitions_in_one_transaction_write_its_row_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pool.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let (mut chain, mut single) = (job("chain", None, at(1)), job("single", None, at(1)));
        store.insert(&chain).await.unwrap();
        store.insert(&single).await.unwrap();
        let before = store.write_stats();
        let mut writes = Vec::new();
        for (i, t) in a_successful_run("chain", at(2))
            .into_iter()
            .take(3)
            .enumerate()
        {
            chain.apply(&t, at(2 + i as u64));
            writes.push((chain.clone(), t));
        }
        single.apply(&Transition::CancelRequested, at(2));
        writes.push((single.clone(), Transition::CancelRequested));
        let updates = writes.iter().map(|(r, t)| store.update(r, t)).collect();
        for result in queued_behind_a_lock(&path, updates).await {
            result.unwrap();
        }
        let stats = store.write_stats();
        let rows = stats.job_rows - before.job_rows;
        assert!((2..=3).contains(&rows), "4 writes, {rows} rows: {stats:?}");
        assert_eq!(store.get("chain").await.unwrap(), Some(chain));
        assert_eq!(store.get("single").await.unwrap(), Some(single));
    }

    /// Runs `calls` to a store on the file at `path` while another connection holds its
    /// write lock: each is started (and found waiting) before the lock is let go, so the
    /// store's writer finds them all queued. Their results, in order.
    async fn queued_behind_a_lock<T>(
        path: &std::path::Path,
        mut calls: Vec<Pin<Box<dyn Future<Output = T> + Send + '_>>>,
    ) -> Vec<T> {
        use sqlx::Connection;
        let mut holder = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .connect()
            .await
            .unwrap();
        holder.execute("BEGIN IMMEDIATE").await.unwrap();
        std::future::poll_fn(|cx| {
            for call in &mut calls {
                assert!(call.as_mut().poll(cx).is_pending());
            }
            std::task::Poll::Ready(())
        })
        .await;
        holder.execute("COMMIT").await.unwrap();
        let results = futures_util::future::join_all(calls).await;
        holder.close().await.unwrap();
        results
    }

    /// The store URL of the child of `no_acknowledged_job_is_lost_to_a_kill`.
    const CHILD_DB: &str = "POOL_STORE_TEST_CHILD_DB";

    /// Run by the next test as a process of its own: inserts jobs from 16 tasks and prints
    /// `acked ID` for each once `insert` returned, until it is killed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a child process of no_acknowledged_job_is_lost_to_a_kill"]
    async fn child_inserts_until_killed() {
        let url = std::env::var(CHILD_DB).expect("the parent names the database");
        let store = pool_store::open(&url).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..16u64 {
            let store = Arc::clone(&store);
            tasks.spawn(async move {
                // Bounded: the parent kills the process long before.
                for i in 0..100_000u64 {
                    let id = format!("job-{t}-{i}");
                    store.insert(&job(&id, None, at(i))).await.unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "acked {id}").unwrap();
                    out.flush().unwrap();
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    }

    #[tokio::test]
    async fn no_acknowledged_job_is_lost_to_a_kill() {
        killed_child_loses_nothing("").await;
    }

    /// `synchronous = NORMAL` promises the same when the process dies (only a machine that
    /// loses power may lose the last commits).
    #[tokio::test]
    async fn no_acknowledged_job_is_lost_to_a_kill_with_synchronous_normal() {
        killed_child_loses_nothing("?synchronous=normal").await;
    }

    /// A child inserting into an SQLite file opened with the URL's `query` is killed after
    /// 500 acknowledgements: every job it acknowledged is in the file.
    async fn killed_child_loses_nothing(query: &str) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pool.db");
        let url = format!("sqlite:{}{query}", path.display());
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "file_only::child_inserts_until_killed"])
            .args(["--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_DB, &url)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acked = Vec::new();
        for line in lines.by_ref() {
            if let Some(id) = line.unwrap().strip_prefix("acked ") {
                acked.push(id.to_owned());
                if acked.len() == 500 {
                    break;
                }
            }
        }
        assert_eq!(acked.len(), 500, "the child stopped early");
        // SIGKILL: no destructor, no close, no checkpoint.
        child.kill().unwrap();
        // Whatever it acknowledged before dying counts too.
        for line in lines {
            match line {
                Ok(line) => acked.extend(line.strip_prefix("acked ").map(str::to_owned)),
                Err(_) => break,
            }
        }
        let status = child.wait().unwrap();
        assert!(!status.success(), "the child was killed: {status:?}");

        let store = SqliteStore::open(&path).await.unwrap();
        let mut lost = Vec::new();
        for id in &acked {
            if store.get(id).await.unwrap().is_none() {
                lost.push(id.clone());
            }
        }
        assert!(
            lost.is_empty(),
            "{} of {} acknowledged jobs lost: {lost:?}",
            lost.len(),
            acked.len()
        );
        eprintln!("{} acknowledged jobs all found after the kill", acked.len());
    }
}
