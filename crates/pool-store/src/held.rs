//! PostgreSQL connections kept open and handed out to one caller at a time, without the round
//! trip sqlx's pool spends on each connection given back to it (it sends a `Sync` and waits
//! for the answer, to test the connection: one more wakeup of the server per statement).
//!
//! A connection goes back only once its caller had the whole answer ([`Held::keep`]); one
//! whose caller stopped waiting (a dropped future) or met an error is closed, so a connection
//! is never handed out in the middle of an exchange. A connection the server closed meanwhile
//! fails its next statement, which the caller runs again on another (see
//! `sql::on_live_connection`).

use std::sync::Mutex;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};
use tokio::sync::{Semaphore, SemaphorePermit};

/// How long a caller waits for a connection (a free one, or a new one connecting) before it
/// gets [`sqlx::Error::PoolTimedOut`].
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// At most `size` connections, opened as needed and kept open between uses.
#[derive(Debug)]
pub(crate) struct Connections {
    options: PgConnectOptions,
    idle: Mutex<Vec<PgConnection>>,
    permits: Semaphore,
    size: u32,
}

impl Connections {
    /// Up to `size` connections made with `options` (none is opened before it is needed).
    pub(crate) fn new(options: PgConnectOptions, size: u32) -> Self {
        Self {
            options,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(usize::try_from(size).unwrap_or(1).max(1)),
            size,
        }
    }

    /// How many connections it keeps at most.
    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    /// A connection for the caller alone: an idle one, or a new one. Waits while all of
    /// them are in use, at most [`ACQUIRE_TIMEOUT`] in all.
    pub(crate) async fn acquire(&self) -> Result<Held<'_>, sqlx::Error> {
        tokio::time::timeout(ACQUIRE_TIMEOUT, self.acquire_now())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
    }

    async fn acquire_now(&self) -> Result<Held<'_>, sqlx::Error> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => self.options.connect().await?,
        };
        Ok(Held {
            owner: self,
            conn,
            permit,
        })
    }

    /// Closes the idle connections and refuses new callers.
    pub(crate) async fn close(&self) {
        self.permits.close();
        let idle: Vec<PgConnection> = self
            .idle
            .lock()
            .map(|mut idle| std::mem::take(&mut *idle))
            .unwrap_or_default();
        for conn in idle {
            let _ = sqlx::Connection::close(conn).await;
        }
    }
}

/// A connection handed out: closed when dropped (the socket shut, no goodbye), unless
/// [`kept`](Held::keep).
#[derive(Debug)]
pub(crate) struct Held<'a> {
    owner: &'a Connections,
    conn: PgConnection,
    permit: SemaphorePermit<'a>,
}

impl Held<'_> {
    /// The connection.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Gives the connection back for the next caller: its statement was answered in full.
    pub(crate) fn keep(self) {
        let Held {
            owner,
            conn,
            permit,
        } = self;
        if !owner.permits.is_closed()
            && let Ok(mut idle) = owner.idle.lock()
        {
            idle.push(conn);
        }
        drop(permit);
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::postgres::PgConnectOptions;

    use super::Connections;

    async fn backend(conns: &Connections) -> (super::Held<'_>, i32) {
        let mut held = conns.acquire().await.unwrap_or_else(|e| panic!("{e}"));
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(held.conn())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (held, pid)
    }

    /// A kept connection serves the next caller; one dropped is closed and replaced; callers
    /// beyond the size wait for one to come back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kept_connections_are_reused_and_dropped_ones_replaced() {
        let url = test_infra::new_pg_database().await;
        let options = PgConnectOptions::from_str(&url).unwrap_or_else(|e| panic!("{e}"));
        let conns = Connections::new(options, 1);
        let (held, first) = backend(&conns).await;
        held.keep();
        let (held, again) = backend(&conns).await;
        assert_eq!(again, first, "a kept connection is handed out again");
        // All (one) in use: the next caller waits until it comes back.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), conns.acquire());
        assert!(waiting.await.is_err(), "a second caller waits");
        drop(held);
        let (held, other) = backend(&conns).await;
        assert_ne!(
            other, first,
            "a connection not kept is closed, not handed out"
        );
        held.keep();
        conns.close().await;
        assert!(conns.acquire().await.is_err(), "closed");
    }
}
