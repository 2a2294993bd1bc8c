//! Connecting a [`PostgresStore`]: a write connection for the group-commit writer and a pool
//! of read connections, on a database several pool processes may share.
//!
//! Durability is the server's: a commit returns once PostgreSQL has flushed its WAL
//! (`synchronous_commit = on`, its default). The compare-and-set on `version` is what a
//! multi-process layer (claims, leases) builds on.

use std::marker::PhantomData;
use std::str::FromStr;
use std::sync::Arc;

use pool_core::StoreError;
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::held::Connections;
use crate::locator::{redacted, scrub};
use crate::sql::{ReadPool, WriteConn};
use crate::store::{Postgres, SqlStore};
use crate::writer::Writer;
use crate::{PostgresStore, migrations};

/// Read connections beside the writer.
const READERS: u32 = 8;

impl SqlStore<Postgres> {
    /// Connects to the database of `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`) and
    /// brings its schema up to date (under PostgreSQL's migration lock, so processes starting
    /// together do it once). Must be called within a Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] for a URL that is not one, [`StoreError::Unavailable`] if the
    /// server cannot be reached or the schema not prepared. No error quotes the password.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Config(format!(
                "not a PostgreSQL URL ({}): {}",
                redacted(url),
                scrub(&e.to_string(), url)
            ))
        })?;
        let what = format!(
            "postgres://{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        );
        let mut conn = connect(&options, url).await?;
        migrations::POSTGRES
            .run(&mut conn)
            .await
            .map_err(|e| scrubbed(migrations::error(e), url))?;
        // No round trip to test a connection before or after each read (one doubled the
        // cost of a read); a read that finds its connection lost is run again on another.
        let reads = Arc::new(Connections::new(options.clone(), READERS));
        let url = url.to_owned();
        let (writer, task) = Writer::spawn(
            WriteConn::Postgres(conn),
            Box::new(move || {
                let (options, url) = (options.clone(), url.clone());
                Box::pin(async move { connect(&options, &url).await.map(WriteConn::Postgres) })
            }),
        );
        Ok(SqlStore {
            writer,
            reads: ReadPool::Postgres(reads),
            task,
            what,
            _db: PhantomData,
        })
    }
}

async fn connect(options: &PgConnectOptions, url: &str) -> Result<PgConnection, StoreError> {
    options.connect().await.map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot connect to {}: {}",
            redacted(url),
            scrub(&e.to_string(), url)
        ))
    })
}

/// `error` without the secrets of `url`.
fn scrubbed(error: StoreError, url: &str) -> StoreError {
    match error {
        StoreError::Unavailable(m) => StoreError::Unavailable(scrub(&m, url)),
        StoreError::Corrupt(m) => StoreError::Corrupt(scrub(&m, url)),
        StoreError::Config(m) => StoreError::Config(scrub(&m, url)),
        StoreError::Rejected(m) => StoreError::Rejected(scrub(&m, url)),
        other => other,
    }
}
