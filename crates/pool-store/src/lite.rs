//! The SQLite store's write connection: rusqlite on the writer's own thread.
//!
//! sqlx's SQLite driver runs each statement on a worker thread of its own and hands the
//! result back through a channel, so a group commit of a few hundred writes made as many
//! round trips between threads. The writer owns this connection on a thread of its own
//! instead (see [`Writer::spawn_on_thread`](crate::writer::Writer::spawn_on_thread)): its
//! statements run where it runs, from prepared statements kept in a cache, and a whole group
//! costs one hop. Reads still go through sqlx's pool beside it (WAL lets them run while the
//! writer writes); both use the one bundled SQLite library.
//!
//! Errors are given the shape of sqlx's, so that everything above [`crate::sql`] reads them
//! one way: a refused constraint is a database error of the matching kind, anything else
//! one carrying SQLite's extended result code.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use pool_core::StoreError;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, ffi};
use sqlx::error::{DatabaseError, ErrorKind};

use crate::sql::{Arg, Query};

/// Prepared statements kept per connection (the writer's statements are few; a grouped
/// update's text varies with its number of rows).
const STATEMENT_CACHE: usize = 64;

/// Where a connection opens, and how it commits.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// A file path, or a shared-cache in-memory database's URI.
    name: String,
    memory: bool,
    synchronous: &'static str,
    busy_timeout: Duration,
}

impl Target {
    /// The database in the file at `path`, in WAL mode.
    pub(crate) fn file(path: &Path, synchronous: &'static str, busy_timeout: Duration) -> Self {
        Self {
            name: path.to_string_lossy().into_owned(),
            memory: false,
            synchronous,
            busy_timeout,
        }
    }

    /// The shared-cache in-memory database named `name` (every connection of this process
    /// opening the same name shares it while one is open).
    pub(crate) fn memory(name: &str, busy_timeout: Duration) -> Self {
        Self {
            name: format!("file:{name}?mode=memory&cache=shared"),
            memory: true,
            synchronous: "OFF",
            busy_timeout,
        }
    }

    /// What the connection opens: a file path, or an in-memory database's URI (the same
    /// name for sqlx's connections to share the database).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Opens a connection and sets it up (WAL, synchronous, foreign keys, busy timeout).
    pub(crate) fn open(&self) -> Result<LiteConn, StoreError> {
        let opened = |e: rusqlite::Error| {
            let what = if self.memory {
                "an in-memory database"
            } else {
                &self.name
            };
            StoreError::Unavailable(format!("cannot open sqlite:{what}: {e}"))
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.name, flags).map_err(opened)?;
        conn.busy_timeout(self.busy_timeout).map_err(opened)?;
        if !self.memory {
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| {
                row.get::<_, String>(0)
            })
            .map_err(opened)?;
        }
        conn.pragma_update(None, "synchronous", self.synchronous)
            .map_err(opened)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(opened)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(LiteConn { conn })
    }
}

/// One row read on the write connection: its values, by column position.
#[derive(Debug)]
pub(crate) struct LiteRow(Vec<Value>);

impl LiteRow {
    /// Column `i`, or why it is missing.
    pub(crate) fn value(&self, i: usize) -> Result<&Value, String> {
        self.0
            .get(i)
            .ok_or_else(|| format!("no column {i} among {}", self.0.len()))
    }
}

/// The write connection.
pub(crate) struct LiteConn {
    conn: Connection,
}

impl fmt::Debug for LiteConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiteConn").finish_non_exhaustive()
    }
}

impl LiteConn {
    /// Runs a statement; the number of rows it changed.
    pub(crate) fn execute(&mut self, q: &Query) -> Result<u64, sqlx::Error> {
        let mut stmt = self.conn.prepare_cached(q.sql()).map_err(error)?;
        bind(&mut stmt, q.args())?;
        let changed = stmt.raw_execute().map_err(error)?;
        Ok(changed as u64)
    }

    /// Runs a query; its rows, `limit` at most.
    pub(crate) fn fetch(&mut self, q: &Query, limit: usize) -> Result<Vec<LiteRow>, sqlx::Error> {
        let mut stmt = self.conn.prepare_cached(q.sql()).map_err(error)?;
        bind(&mut stmt, q.args())?;
        let columns = stmt.column_count();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(row) = rows.next().map_err(error)? else {
                break;
            };
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(Value::from(row.get_ref(i).map_err(error)?));
            }
            out.push(LiteRow(values));
        }
        // A statement stopped before its last row (RETURNING) still runs to completion.
        while rows.next().map_err(error)?.is_some() {}
        Ok(out)
    }

    /// Closes the connection (the last one to a file checkpoints its write-ahead log).
    pub(crate) fn close(self) -> Result<(), sqlx::Error> {
        self.conn.close().map_err(|(_, e)| error(e))
    }

    /// Runs one statement without arguments (transaction control, pragmas).
    pub(crate) fn raw(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(error)?;
        let mut rows = stmt.raw_query();
        while rows.next().map_err(error)?.is_some() {}
        Ok(())
    }
}

/// Binds `args` to `stmt`'s `$N` placeholders (N counts from 1, in any order, each any
/// number of times), as sqlx binds them.
fn bind(stmt: &mut rusqlite::Statement<'_>, args: &[Arg]) -> Result<(), sqlx::Error> {
    for index in 1..=stmt.parameter_count() {
        let name = stmt.parameter_name(index).unwrap_or_default();
        let arg = name
            .strip_prefix('$')
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| n.checked_sub(1))
            .and_then(|n| args.get(n))
            .ok_or_else(|| {
                sqlx::Error::Protocol(format!(
                    "placeholder {name:?} has no argument among {}",
                    args.len()
                ))
            })?;
        let bound = match arg {
            Arg::Int(v) => stmt.raw_bind_parameter(index, v),
            Arg::Text(v) => stmt.raw_bind_parameter(index, v.as_deref()),
            Arg::Bytes(v) => stmt.raw_bind_parameter(index, v.as_slice()),
            Arg::Bool(v) => stmt.raw_bind_parameter(index, v),
        };
        bound.map_err(error)?;
    }
    Ok(())
}

/// A column's value as `T`.
pub(crate) trait FromLite: Sized {
    /// `value` as `T`, or what it is instead.
    fn from_lite(value: &Value) -> Result<Self, String>;
}

fn mismatch<T>(want: &str, value: &Value) -> Result<T, String> {
    Err(format!("expected {want}, found {:?}", value.data_type()))
}

impl FromLite for i64 {
    fn from_lite(value: &Value) -> Result<Self, String> {
        match value {
            Value::Integer(v) => Ok(*v),
            other => mismatch("an integer", other),
        }
    }
}

impl FromLite for bool {
    fn from_lite(value: &Value) -> Result<Self, String> {
        i64::from_lite(value).map(|v| v != 0)
    }
}

impl FromLite for String {
    fn from_lite(value: &Value) -> Result<Self, String> {
        match value {
            Value::Text(v) => Ok(v.clone()),
            other => mismatch("text", other),
        }
    }
}

impl FromLite for Vec<u8> {
    fn from_lite(value: &Value) -> Result<Self, String> {
        match value {
            Value::Blob(v) => Ok(v.clone()),
            Value::Text(v) => Ok(v.clone().into_bytes()),
            other => mismatch("bytes", other),
        }
    }
}

impl<T: FromLite> FromLite for Option<T> {
    fn from_lite(value: &Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_lite(other).map(Some),
        }
    }
}

/// A rusqlite error in sqlx's shape.
fn error(e: rusqlite::Error) -> sqlx::Error {
    match e {
        rusqlite::Error::SqliteFailure(failure, message) => {
            sqlx::Error::Database(Box::new(LiteError {
                code: failure.extended_code,
                message: message.unwrap_or_else(|| failure.to_string()),
            }))
        }
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// An error SQLite reported, with its extended result code.
#[derive(Debug)]
pub(crate) struct LiteError {
    code: i32,
    message: String,
}

impl fmt::Display for LiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for LiteError {}

impl DatabaseError for LiteError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::unavailable;

    fn conn(name: &str) -> LiteConn {
        let target = Target::memory(
            &format!("lite-test-{name}-{}", std::process::id()),
            Duration::from_secs(1),
        );
        let mut conn = target.open().unwrap();
        conn.raw("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, flag BOOLEAN, b BLOB)")
            .unwrap();
        conn
    }

    #[test]
    fn placeholders_bind_by_number_in_any_order_and_more_than_once() {
        let mut conn = conn("bind");
        let insert = Query::new("INSERT INTO t (n, id, flag, b) VALUES ($2, $1, $3, $4)")
            .bind("a")
            .bind(7_i64)
            .bind(true)
            .bind(vec![1_u8, 2]);
        assert_eq!(conn.execute(&insert).unwrap(), 1);
        let read =
            Query::new("SELECT id, n, flag, b FROM t WHERE n = $1 AND n < $1 + 1").bind(7_i64);
        let rows = conn.fetch(&read, usize::MAX).unwrap();
        assert_eq!(rows.len(), 1);
        let row = crate::sql::Row::Lite(rows.into_iter().next().unwrap());
        assert_eq!(row.text(0).unwrap(), "a");
        assert_eq!(row.int(1).unwrap(), 7);
        assert!(row.boolean(2).unwrap());
        assert_eq!(row.bytes(3).unwrap(), vec![1, 2]);
        // A column of another type is a corrupt store, not a panic.
        assert!(matches!(row.int(0), Err(StoreError::Corrupt(_))));
        assert!(matches!(row.int(9), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn a_placeholder_without_its_argument_is_an_error() {
        let mut conn = conn("missing");
        let insert = Query::new("INSERT INTO t (id, n) VALUES ($1, $2)").bind("a");
        assert!(matches!(
            conn.execute(&insert),
            Err(sqlx::Error::Protocol(_))
        ));
    }

    #[test]
    fn a_refused_constraint_is_rejected_and_other_errors_are_unavailable() {
        let mut conn = conn("errors");
        let insert = Query::new("INSERT INTO t (id) VALUES ($1)").bind("a");
        conn.execute(&insert).unwrap();
        let again = conn.execute(&insert).unwrap_err();
        assert!(
            matches!(&again, sqlx::Error::Database(db) if db.kind() == ErrorKind::UniqueViolation),
            "{again:?}"
        );
        assert!(matches!(unavailable(again), StoreError::Rejected(_)));
        let missing = conn.raw("SELECT * FROM nowhere").unwrap_err();
        assert!(matches!(unavailable(missing), StoreError::Unavailable(_)));
    }
}
