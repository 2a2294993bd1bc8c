//! The schema, per database, embedded in the binary and applied when a store opens
//! (`migrations/sqlite`, `migrations/postgres`: the same tables, each in its dialect).

use pool_core::StoreError;
use sqlx::migrate::{MigrateError, Migrator};

/// SQLite's migrations.
pub(crate) static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");

/// PostgreSQL's migrations.
pub(crate) static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// A failed migration as a store error.
pub(crate) fn error(e: MigrateError) -> StoreError {
    match e {
        MigrateError::VersionMissing(_) => StoreError::Corrupt(format!(
            "the database was written by a newer comfy-pool ({e})"
        )),
        MigrateError::VersionMismatch(_) => StoreError::Corrupt(e.to_string()),
        e => StoreError::Unavailable(format!("could not prepare the database: {e}")),
    }
}
