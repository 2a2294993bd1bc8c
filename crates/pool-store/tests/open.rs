//! `pool_store::open`: one entry point for every kind of store URL, giving a store usable as
//! both `dyn ServiceStore` and `dyn JobStore`, and errors that never show a password.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use pool_core::{JobStore, StoreError};
use pool_store::{ApiKey, ServiceStore};
use support::records::{at, job};

/// The store behind `url` keeps a job and a key, seen through both traits.
async fn keeps_a_job_and_a_key(url: &str) {
    let service: Arc<dyn ServiceStore> = pool_store::open(url).await.unwrap();
    let jobs: Arc<dyn JobStore> = service.clone();
    let record = job("job-1", Some("acme"), at(1));
    jobs.insert(&record).await.unwrap();
    service
        .put_key(&ApiKey::new("k", "acme", "f".repeat(64), at(1)))
        .await
        .unwrap();
    assert_eq!(service.get("job-1").await.unwrap(), Some(record));
    assert_eq!(jobs.unfinished().await.unwrap().len(), 1);
    assert_eq!(service.keys().await.unwrap().len(), 1);
}

#[tokio::test]
async fn sqlite_urls_open_a_file_or_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pool.db");
    keeps_a_job_and_a_key(&format!("sqlite:{}", path.display())).await;
    assert!(path.exists());
    keeps_a_job_and_a_key("sqlite::memory:").await;
    keeps_a_job_and_a_key(":memory:").await;
}

#[tokio::test]
async fn postgres_urls_connect() {
    let url = test_infra::new_pg_database().await;
    keeps_a_job_and_a_key(&url).await;
}

#[tokio::test]
async fn errors_never_show_the_password() {
    for (url, config) in [
        // Nothing listens on port 1.
        ("postgres://app:s3cret@127.0.0.1:1/pool", false),
        ("postgres://app@127.0.0.1:1/pool?password=s3cret", false),
        ("postgres://app:s3cret@127.0.0.1:notaport/pool", true),
        ("mysql://app:s3cret@127.0.0.1/pool", true),
    ] {
        let err = pool_store::open(url).await.map(drop).unwrap_err();
        let text = format!("{err} {err:?}");
        eprintln!("{url} -> {err}");
        assert!(!text.contains("s3cret"), "{text}");
        if config {
            assert!(matches!(err, StoreError::Config(_)), "{text}");
        } else {
            assert!(matches!(err, StoreError::Unavailable(_)), "{text}");
            assert!(err.is_transient());
        }
    }
}
