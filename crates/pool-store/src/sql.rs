//! The two SQL dialects behind one small interface: a [`Query`] (SQL text with `$N`
//! placeholders, which both SQLite and PostgreSQL accept, and its arguments), run on the
//! writer's connection ([`WriteConn`]) or on the read pool ([`ReadPool`]), giving [`Row`]s read
//! by column position. Everything above this module is written once for both databases.

use std::borrow::Cow;
use std::sync::Arc;

use pool_core::StoreError;
use sqlx::{Connection, Database, Encode, Executor, Row as _, Type};
use sqlx::{PgConnection, SqlitePool};
use sqlx::{Postgres, Sqlite};

use crate::held::Connections;
use crate::lite::{FromLite, LiteConn, LiteRow};

/// One argument of a query.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    /// An integer (every number and time column is a 64-bit integer).
    Int(Option<i64>),
    /// Text.
    Text(Option<String>),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A boolean.
    Bool(bool),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Self::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Self::Int(v)
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Self::Text(Some(v))
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Self::Text(Some(v.to_owned()))
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Self::Text(v)
    }
}

impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Self {
        Self::Bytes(v)
    }
}

impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

/// A statement and its arguments, for either database.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    sql: Cow<'static, str>,
    args: Vec<Arg>,
}

impl Query {
    /// A statement (placeholders `$1`, `$2`, …).
    pub(crate) fn new(sql: impl Into<Cow<'static, str>>) -> Self {
        Self {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    /// With its next argument.
    pub(crate) fn bind(mut self, arg: impl Into<Arg>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// The statement's text.
    pub(crate) fn sql(&self) -> &str {
        &self.sql
    }

    /// Its arguments, in order.
    pub(crate) fn args(&self) -> &[Arg] {
        &self.args
    }

    /// The statement with its arguments bound, for database `DB`.
    fn bound<DB>(&self) -> sqlx::query::Query<'_, DB, <DB as Database>::Arguments<'_>>
    where
        DB: Database,
        for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
        for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
        for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
        for<'q> bool: Encode<'q, DB> + Type<DB>,
    {
        let mut query = sqlx::query::<DB>(&self.sql);
        for arg in &self.args {
            query = match arg {
                Arg::Int(v) => query.bind(*v),
                Arg::Text(v) => query.bind(v.as_deref()),
                Arg::Bytes(v) => query.bind(v.as_slice()),
                Arg::Bool(v) => query.bind(*v),
            };
        }
        query
    }
}

/// A `VALUES` list for `rows` rows of one parameter per entry of `nulls`, padded with rows of
/// nothing up to the next power of two: a few statement sizes only, so that the connection's
/// cache of prepared statements keeps them. Bind the rows, then [`bind_padding`].
pub(crate) fn padded_values(rows: usize, nulls: &[Arg]) -> String {
    let columns = nulls.len();
    let mut sql = String::from("VALUES ");
    for row in 0..rows.next_power_of_two() {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 1..=columns {
            if column > 1 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * columns + column));
        }
        sql.push(')');
    }
    sql
}

/// `query` with the padding rows of a [`padded_values`] list of `rows` rows bound: `nulls`
/// (each column's NULL, typed as the column) once per padding row.
pub(crate) fn bind_padding(query: Query, rows: usize, nulls: &[Arg]) -> Query {
    (rows..rows.next_power_of_two())
        .flat_map(|_| nulls.iter().cloned())
        .fold(query, Query::bind)
}

/// Which database a store is on (for the few statements that differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// One result row, read by column position.
pub(crate) enum Row {
    /// Read through sqlx's SQLite pool.
    Sqlite(sqlx::sqlite::SqliteRow),
    /// Read on the SQLite store's write connection.
    Lite(LiteRow),
    Postgres(sqlx::postgres::PgRow),
}

macro_rules! getter {
    ($(#[$doc:meta])* $name:ident -> $ty:ty) => {
        $(#[$doc])*
        pub(crate) fn $name(&self, i: usize) -> Result<$ty, StoreError> {
            let value = match self {
                Self::Sqlite(row) => row.try_get::<$ty, _>(i).map_err(|e| e.to_string()),
                Self::Lite(row) => row.value(i).and_then(<$ty as FromLite>::from_lite),
                Self::Postgres(row) => row.try_get::<$ty, _>(i).map_err(|e| e.to_string()),
            };
            value.map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
        }
    };
}

impl Row {
    getter!(
        /// An integer column.
        int -> i64
    );
    getter!(
        /// A nullable integer column.
        opt_int -> Option<i64>
    );
    getter!(
        /// A text column.
        text -> String
    );
    getter!(
        /// A nullable text column.
        opt_text -> Option<String>
    );
    getter!(
        /// A bytes column.
        bytes -> Vec<u8>
    );
    getter!(
        /// A boolean column.
        boolean -> bool
    );
}

/// The connection the writer task owns (every write goes through it).
pub(crate) enum WriteConn {
    Sqlite(LiteConn),
    Postgres(PgConnection),
}

impl WriteConn {
    /// Which database it is on.
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Self::Sqlite(_) => Dialect::Sqlite,
            Self::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs a statement; the number of rows it changed.
    pub(crate) async fn execute(&mut self, q: &Query) -> Result<u64, sqlx::Error> {
        Ok(match self {
            Self::Sqlite(c) => c.execute(q)?,
            Self::Postgres(c) => q
                .bound::<Postgres>()
                .execute(&mut *c)
                .await?
                .rows_affected(),
        })
    }

    /// Runs a query; its first row, if any.
    pub(crate) async fn fetch_optional(&mut self, q: &Query) -> Result<Option<Row>, sqlx::Error> {
        Ok(match self {
            Self::Sqlite(c) => c.fetch(q, 1)?.pop().map(Row::Lite),
            Self::Postgres(c) => q
                .bound::<Postgres>()
                .fetch_optional(&mut *c)
                .await?
                .map(Row::Postgres),
        })
    }

    /// Runs a query; every row.
    pub(crate) async fn fetch_all(&mut self, q: &Query) -> Result<Vec<Row>, sqlx::Error> {
        Ok(match self {
            Self::Sqlite(c) => c.fetch(q, usize::MAX)?.into_iter().map(Row::Lite).collect(),
            Self::Postgres(c) => q
                .bound::<Postgres>()
                .fetch_all(&mut *c)
                .await?
                .into_iter()
                .map(Row::Postgres)
                .collect(),
        })
    }

    /// Runs a query; the first column of every row, as text.
    pub(crate) async fn fetch_all_text(&mut self, q: &Query) -> Result<Vec<String>, sqlx::Error> {
        match self {
            Self::Sqlite(c) => c
                .fetch(q, usize::MAX)?
                .iter()
                .map(|row| {
                    row.value(0)
                        .and_then(String::from_lite)
                        .map_err(|e| sqlx::Error::Decode(e.into()))
                })
                .collect(),
            Self::Postgres(c) => q
                .bound::<Postgres>()
                .fetch_all(&mut *c)
                .await?
                .iter()
                .map(|row| row.try_get::<String, _>(0))
                .collect(),
        }
    }

    /// Runs SQL text without arguments (transaction control, pragmas).
    pub(crate) async fn raw(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(c) => c.raw(sql),
            Self::Postgres(c) => c.execute(sql).await.map(drop),
        }
    }

    /// Closes the connection cleanly (SQLite checkpoints its write-ahead log).
    pub(crate) async fn close(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(c) => c.close(),
            Self::Postgres(c) => c.close().await,
        }
    }
}

/// The connections reads go through (beside the writer: SQLite's WAL lets them run while it
/// writes).
#[derive(Debug, Clone)]
pub(crate) enum ReadPool {
    Sqlite(SqlitePool),
    Postgres(Arc<Connections>),
}

impl ReadPool {
    /// Runs a query; every row. Run again when its connection was lost (a read changes
    /// nothing), as many times as the pool has connections that may be lost too.
    pub(crate) async fn fetch_all(&self, q: &Query) -> Result<Vec<Row>, StoreError> {
        on_live_connection(self.size(), || self.fetch_all_once(q)).await
    }

    /// How many connections the pool keeps at most.
    fn size(&self) -> u32 {
        match self {
            Self::Sqlite(p) => p.options().get_max_connections(),
            Self::Postgres(p) => p.size(),
        }
    }

    async fn fetch_all_once(&self, q: &Query) -> Result<Vec<Row>, sqlx::Error> {
        match self {
            Self::Sqlite(p) => q
                .bound::<Sqlite>()
                .fetch_all(p)
                .await
                .map(|rows| rows.into_iter().map(Row::Sqlite).collect()),
            Self::Postgres(p) => {
                let mut held = p.acquire().await?;
                let rows = q.bound::<Postgres>().fetch_all(held.conn()).await?;
                held.keep();
                Ok(rows.into_iter().map(Row::Postgres).collect())
            }
        }
    }

    /// Runs a query; its first row, if any. Run again when its connection was lost, as
    /// [`fetch_all`](Self::fetch_all) is.
    pub(crate) async fn fetch_optional(&self, q: &Query) -> Result<Option<Row>, StoreError> {
        on_live_connection(self.size(), || self.fetch_optional_once(q)).await
    }

    async fn fetch_optional_once(&self, q: &Query) -> Result<Option<Row>, sqlx::Error> {
        match self {
            Self::Sqlite(p) => q
                .bound::<Sqlite>()
                .fetch_optional(p)
                .await
                .map(|row| row.map(Row::Sqlite)),
            Self::Postgres(p) => {
                let mut held = p.acquire().await?;
                let row = q.bound::<Postgres>().fetch_optional(held.conn()).await?;
                held.keep();
                Ok(row.map(Row::Postgres))
            }
        }
    }

    /// Closes every connection.
    pub(crate) async fn close(&self) {
        match self {
            Self::Sqlite(p) => p.close().await,
            Self::Postgres(p) => p.close().await,
        }
    }
}

/// Runs `call` (a statement that may run twice) again when its connection was lost, at most
/// `spares` more times: a pool whose connections are not tested before use may hand out
/// that many lost ones in a row.
pub(crate) async fn on_live_connection<T, F, Fut>(spares: u32, mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut tries = spares;
    loop {
        match call().await {
            Err(e) if tries > 0 && connection_lost(&e) => tries -= 1,
            other => return other.map_err(unavailable),
        }
    }
}

/// Whether `e` says the connection a statement went out on is gone (the server closed it,
/// restarted, or the socket broke): the same statement may succeed on another connection.
fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        // Class 08, connection exception; 57P01-57P03, the server shutting down or
        // terminating the backend.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

/// A database error as a store error. sqlx's messages quote statements and server messages,
/// never connection strings (connecting is mapped with the URL's password removed, in
/// `locator`). A write the database refuses for its content (a constraint, a value it cannot
/// hold, such as a NUL character in PostgreSQL text) will not succeed on a retry: it is
/// reported as [`StoreError::Rejected`], not as the transient [`StoreError::Unavailable`].
pub(crate) fn unavailable(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(e.to_string())
        }
        sqlx::Error::Database(db) if refuses_content(&*db) => StoreError::Rejected(db.to_string()),
        e => StoreError::Unavailable(e.to_string()),
    }
}

/// Whether the database refused a statement for the data in it (SQLSTATE class 22, data
/// exception, or 23, integrity constraint; SQLite's constraint errors), not for its own state.
fn refuses_content(e: &dyn sqlx::error::DatabaseError) -> bool {
    use sqlx::error::ErrorKind;
    match e.kind() {
        ErrorKind::UniqueViolation
        | ErrorKind::ForeignKeyViolation
        | ErrorKind::NotNullViolation
        | ErrorKind::CheckViolation => true,
        _ => e
            .code()
            .is_some_and(|code| code.starts_with("22") || code.starts_with("23")),
    }
}
