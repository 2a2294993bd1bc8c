//! The conformance checks against `PostgresStore`, each on a fresh database of the run's
//! PostgreSQL (`test_infra::pg_url`); and two stores on one database, as two pool processes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

use pool_core::{JobStore, StoreError, Transition};
use pool_store::PostgresStore;
use support::Fixture;
use support::records::{advance, at, dispatched, job};

/// A store on a new database.
async fn pg_store() -> Fixture<PostgresStore> {
    let url = test_infra::new_pg_database().await;
    Fixture::new(PostgresStore::connect(&url).await.unwrap())
}

job_store_conformance!(pg_store().await);
service_store_conformance!(pg_store().await);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_database_meet_at_the_version() {
    let url = test_infra::new_pg_database().await;
    // Both run the migrations: the second finds them applied.
    let (a, b) = tokio::join!(PostgresStore::connect(&url), PostgresStore::connect(&url));
    let (a, b) = (a.unwrap(), b.unwrap());

    let mut record = job("job-1", Some("acme"), at(1));
    assert_eq!(a.insert(&record).await.unwrap(), None);
    assert_eq!(b.insert(&record).await.unwrap(), Some(record.clone()));

    // Both make version 2 from version 1: one wins, the other conflicts.
    let mut theirs = record.clone();
    advance(&a, &mut record, &dispatched("gpu-1", at(2)), at(2)).await;
    theirs.apply(&Transition::CancelRequested, at(3));
    assert_eq!(
        b.update(&theirs, &Transition::CancelRequested).await,
        Err(StoreError::Conflict {
            id: "job-1".into(),
            stored: 2,
            expected: 1
        })
    );
    assert_eq!(b.get("job-1").await.unwrap(), Some(record));
    a.close().await;
    b.close().await;
}

/// A write the database refuses, sent in one group with 31 good ones: the group is rolled
/// back and each write is run again alone, so only the bad one fails.
#[tokio::test(flavor = "current_thread")]
async fn a_write_the_database_refuses_fails_alone() {
    let store = pg_store().await.store;
    let records: Vec<_> = (0..32u64)
        .map(|i| {
            // PostgreSQL text cannot hold NUL.
            let id = if i == 13 {
                "bad\0id".to_owned()
            } else {
                format!("job-{i}")
            };
            job(&id, None, at(i))
        })
        .collect();
    let mut inserts: Vec<_> = records.iter().map(|r| store.insert(r)).collect();
    // Send all 32 before the writer task runs (one thread: it runs when this task waits), so
    // they form one group.
    std::future::poll_fn(|cx| {
        for insert in &mut inserts {
            assert!(insert.as_mut().poll(cx).is_pending());
        }
        std::task::Poll::Ready(())
    })
    .await;
    let results = futures_util::future::join_all(inserts).await;
    for (record, result) in records.iter().zip(results) {
        if record.id.as_str().contains('\0') {
            let err = result.unwrap_err();
            assert!(matches!(err, StoreError::Rejected(_)), "{err:?}");
            assert!(!err.is_transient());
        } else {
            assert_eq!(result.unwrap(), None, "{}", record.id);
        }
    }
    assert_eq!(store.unfinished().await.unwrap().len(), 31);
    // The group failed, then each of its writes ran alone (the bad one failing again).
    let stats = store.write_stats();
    assert_eq!((stats.rollbacks, stats.commits), (2, 31), "{stats:?}");
}

/// Read connections stay open between reads and go back only once a read had its whole
/// answer: reads given up at any point of their exchange (a caller's timeout) leave no
/// connection half-way through one, and sequential reads reuse one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_given_up_midway_leave_every_connection_usable() {
    let url = test_infra::new_pg_database().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    let records: Vec<_> = (0..20)
        .map(|i| job(&format!("job-{i}"), None, at(i)))
        .collect();
    for record in &records {
        store.insert(record).await.unwrap();
    }
    let ids: Vec<_> = records.iter().map(|r| r.id.clone()).collect();
    let backends = || async {
        let admin = sqlx::PgPool::connect(&url).await.unwrap();
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&admin)
        .await
        .unwrap();
        admin.close().await;
        n
    };
    let before = backends().await;
    for _ in 0..50 {
        assert_eq!(
            store.get("job-3").await.unwrap().as_ref(),
            Some(&records[3])
        );
    }
    assert!(
        backends().await <= before + 1,
        "sequential reads open one connection at most"
    );
    for i in 0..300u64 {
        // Given up after 0 to 300 µs: before, during or after the exchange.
        let give_up = std::time::Duration::from_micros(i);
        let _ = tokio::time::timeout(give_up, store.get_many(&ids)).await;
        let _ = tokio::time::timeout(give_up, store.get("job-7")).await;
        if i % 10 == 0 {
            assert_eq!(
                store.get("job-7").await.unwrap().as_ref(),
                Some(&records[7])
            );
            assert_eq!(store.get_many(&ids).await.unwrap(), records);
        }
    }
    store.close().await;
}

/// Reads take their connection without testing it first; one whose backend was terminated
/// (a restart, an administrator) is found out by the read, which runs again on a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_whose_connection_was_lost_is_run_again() {
    let url = test_infra::new_pg_database().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    let record = job("job-1", None, at(1));
    store.insert(&record).await.unwrap();
    for _ in 0..3 {
        // Every connection of the read pool open and idle first.
        let reads = (0..8).map(|_| store.get("job-1"));
        for read in futures_util::future::join_all(reads).await {
            read.unwrap();
        }
        // Every other backend on the database goes: the read pool's idle connections with
        // them (and the writer's, which reconnects by itself).
        let admin = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .execute(&admin)
        .await
        .unwrap();
        admin.close().await;
        assert_eq!(store.get("job-1").await.unwrap(), Some(record.clone()));
        let many = store
            .get_many(std::slice::from_ref(&record.id))
            .await
            .unwrap();
        assert_eq!(many.as_slice(), std::slice::from_ref(&record));
    }
    store.close().await;
}
