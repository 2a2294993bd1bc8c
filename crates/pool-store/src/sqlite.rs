//! Opening a [`SqliteStore`]: one file in WAL mode with `synchronous = FULL` (or `NORMAL`,
//! asked for), a write connection for the group-commit writer and a pool of read connections
//! beside it.
//!
//! Durability: WAL with `synchronous = FULL` fsyncs the log at every commit, so a job whose
//! `insert` returned survives a process kill *and* a power loss or kernel crash; group commit
//! shares one fsync among the writes that queued together. [`Synchronous::Normal`] fsyncs
//! only at checkpoints: a commit survives a process kill (it is in the operating system's
//! hands) but the last ones may be lost on power loss or a kernel crash, in exchange for
//! commits without a wait on the disk.

use std::marker::PhantomData;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pool_core::StoreError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};

use crate::sql::{ReadPool, WriteConn, unavailable};
use crate::store::{SqlStore, Sqlite};
use crate::writer::Writer;
use crate::{SqliteStore, lite, migrations};

/// When an SQLite store waits for the disk (SQLite's `synchronous` in WAL mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Synchronous {
    /// Every commit is on disk before it is answered (an fsync per group commit): nothing
    /// acknowledged is lost, whatever happens to the machine. The default.
    #[default]
    Full,
    /// Commits are answered once written to the log, which is fsynced at checkpoints:
    /// nothing acknowledged is lost when the process dies, the last commits may be when the
    /// machine loses power or its kernel crashes. (`sqlite:PATH?synchronous=normal`)
    Normal,
}

impl Synchronous {
    /// The setting named `name` (`full` or `normal`, any case).
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] for another name.
    pub fn parse(name: &str) -> Result<Self, StoreError> {
        match name.to_ascii_lowercase().as_str() {
            "full" => Ok(Self::Full),
            "normal" => Ok(Self::Normal),
            other => Err(StoreError::Config(format!(
                "synchronous={other} is not an SQLite store setting: expected full or normal"
            ))),
        }
    }
}

/// Read connections beside the writer.
const READERS: u32 = 4;

/// How long a statement waits for another process's lock on the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl SqlStore<Sqlite> {
    /// Opens (creating it if needed) the store in the SQLite file `path`, or a private
    /// in-memory database for `:memory:` (or `sqlite::memory:`), and brings its schema up to
    /// date. Must be called within a Tokio runtime (the writer is a task).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the file cannot be opened or prepared;
    /// [`StoreError::Corrupt`] if it was written by a newer version.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, Synchronous::Full).await
    }

    /// As [`open`](Self::open), waiting for the disk as `synchronous` says (see
    /// [`Synchronous`]; an in-memory database never waits).
    ///
    /// # Errors
    ///
    /// Those of [`open`](Self::open).
    pub async fn open_with(
        path: impl AsRef<Path>,
        synchronous: Synchronous,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        let memory = matches!(path.to_str(), Some(":memory:" | "sqlite::memory:"));
        let (sync, level) = match synchronous {
            Synchronous::Full => (SqliteSynchronous::Full, "FULL"),
            Synchronous::Normal => (SqliteSynchronous::Normal, "NORMAL"),
        };
        let (options, target) = if memory {
            // A named in-memory database shared by this store's connections only.
            static MEMORY_SEQ: AtomicU64 = AtomicU64::new(0);
            let name = format!(
                "comfy-pool-memory-{}-{}",
                std::process::id(),
                MEMORY_SEQ.fetch_add(1, Ordering::Relaxed)
            );
            let target = lite::Target::memory(&name, BUSY_TIMEOUT);
            let options = SqliteConnectOptions::from_str(&format!("sqlite:{}", target.name()))
                .map_err(unavailable)?;
            (options, target)
        } else {
            let options = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal);
            (options, lite::Target::file(path, level, BUSY_TIMEOUT))
        };
        let options = options
            .synchronous(sync)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let what = if memory {
            "sqlite::memory:".to_owned()
        } else {
            format!("sqlite:{}", path.display())
        };

        // Migrations through sqlx (its migrator), on a connection closed once they ran; an
        // in-memory database lives on in the writer's connection, opened before it closes.
        let mut migrating = connect(&options, &what).await?;
        migrations::SQLITE
            .run(&mut migrating)
            .await
            .map_err(migrations::error)?;
        let conn = target.open()?;
        if let Err(e) = migrating.close().await {
            tracing::warn!("closing the migration connection of {what}: {e}");
        }
        let reads = SqlitePoolOptions::new()
            .max_connections(READERS)
            .min_connections(0)
            .test_before_acquire(false)
            .connect_lazy_with(options.read_only(!memory));
        let (writer, task) = Writer::spawn_on_thread(
            WriteConn::Sqlite(conn),
            Box::new(move || {
                let target = target.clone();
                Box::pin(async move { target.open().map(WriteConn::Sqlite) })
            }),
        )?;
        Ok(SqlStore {
            writer,
            reads: ReadPool::Sqlite(reads),
            task,
            what,
            _db: PhantomData,
        })
    }
}

async fn connect(
    options: &SqliteConnectOptions,
    what: &str,
) -> Result<SqliteConnection, StoreError> {
    options
        .connect()
        .await
        .map_err(|e| StoreError::Unavailable(format!("cannot open {what}: {e}")))
}
