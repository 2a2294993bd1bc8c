//! Opening a [`SqliteStore`]: one file in WAL mode with `synchronous = FULL`, a write
//! connection for the group-commit writer and a pool of read connections beside it.
//!
//! Durability: WAL with `synchronous = FULL` fsyncs the log at every commit, so a job whose
//! `insert` returned survives a process kill *and* a power loss or kernel crash. (`NORMAL`
//! would survive a process kill but may lose the last commits on power loss; group commit
//! makes the fsync cheap enough not to need it.)

use std::marker::PhantomData;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use pool_core::StoreError;
use sqlx::ConnectOptions;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

use crate::sql::{ReadPool, WriteConn, unavailable};
use crate::store::{SqlStore, Sqlite};
use crate::writer::Writer;
use crate::{SqliteStore, migrations};

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
        let path = path.as_ref();
        let memory = matches!(path.to_str(), Some(":memory:" | "sqlite::memory:"));
        let options = if memory {
            // A named in-memory database shared by this store's connections only.
            SqliteConnectOptions::from_str("sqlite::memory:").map_err(unavailable)?
        } else {
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
        }
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
        let what = if memory {
            "sqlite::memory:".to_owned()
        } else {
            format!("sqlite:{}", path.display())
        };

        let mut conn = connect(&options, &what).await?;
        migrations::SQLITE
            .run(&mut conn)
            .await
            .map_err(migrations::error)?;
        let reads = SqlitePoolOptions::new()
            .max_connections(READERS)
            .min_connections(0)
            .test_before_acquire(false)
            .connect_lazy_with(options.clone().read_only(!memory));
        let reconnect = options.clone();
        let reconnect_what = what.clone();
        let (writer, task) = Writer::spawn(
            WriteConn::Sqlite(conn),
            Box::new(move || {
                let (options, what) = (reconnect.clone(), reconnect_what.clone());
                Box::pin(async move { connect(&options, &what).await.map(WriteConn::Sqlite) })
            }),
        );
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
