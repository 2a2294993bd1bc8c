//! The notices of the other processes: a task per [`PgFleet::notices`](crate::PgFleet) call,
//! on a connection of its own that `LISTEN`s on the fleet's channel, feeding a bounded
//! channel. It listens again after a lost connection and says so in the log; notices sent in
//! between are lost (the trait promises no more).

use std::sync::Arc;
use std::time::Duration;

use pool_core::{FleetNotice, StoreError};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::fleet_sql::{CHANNEL, Envelope};
use crate::sql::unavailable;

/// Notices a receiver may fall behind by before further ones are dropped.
pub(crate) const NOTICE_BUFFER: usize = 4096;

/// The first wait before listening again after a failure; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// The longest wait between attempts to listen again.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The `application_name` of the listening connection of `process` (how an operator, or a
/// test, finds it in `pg_stat_activity`).
pub(crate) fn application_name(process: &str) -> String {
    format!("comfy-pool fleet {process}")
}

/// Listens on the channel (before returning, so every notice sent after it is delivered) and
/// spawns the task that feeds the receiver.
pub(crate) async fn start(
    options: &PgConnectOptions,
    process: Arc<str>,
) -> Result<mpsc::Receiver<FleetNotice>, StoreError> {
    let options = options
        .clone()
        .application_name(&application_name(&process));
    // One connection, kept as long as the task runs.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with(options);
    let listener = listen(&pool).await.map_err(unavailable)?;
    let (tx, rx) = mpsc::channel(NOTICE_BUFFER);
    tokio::spawn(feed(pool, listener, process, tx));
    Ok(rx)
}

/// A listener on the fleet's channel.
async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Forwards the notices of other processes to `tx` until it is closed, then closes the
/// connection.
async fn feed(
    pool: PgPool,
    listener: PgListener,
    process: Arc<str>,
    tx: mpsc::Sender<FleetNotice>,
) {
    forward(&pool, listener, &process, &tx).await;
    pool.close().await;
}

/// The loop of [`feed`]; returns when `tx` is closed.
async fn forward(
    pool: &PgPool,
    mut listener: PgListener,
    process: &str,
    tx: &mpsc::Sender<FleetNotice>,
) {
    let mut overflowing = false;
    // How this process's own payloads begin (they are skipped unread).
    let own = crate::fleet_sql::head(process).ok();
    loop {
        let next = tokio::select! {
            () = tx.closed() => return,
            next = listener.try_recv() => next,
        };
        match next {
            Ok(Some(notification)) => {
                let payload = notification.payload();
                if !own.as_deref().is_some_and(|own| payload.starts_with(own)) {
                    deliver(process, payload, tx, &mut overflowing);
                }
            }
            // sqlx has connected and listened again already.
            Ok(None) => warn!(
                process,
                "fleet notices: the listening connection was lost; listening again on a new \
                 one (notices sent meanwhile are lost)"
            ),
            Err(e) => {
                warn!(
                    process,
                    "fleet notices: listening failed ({e}); listening again on a new connection \
                     (notices sent meanwhile are lost)"
                );
                match relisten(pool, process, tx).await {
                    Some(fresh) => listener = fresh,
                    None => return,
                }
            }
        }
    }
}

/// A new listener, trying with growing pauses; `None` once `tx` is closed.
async fn relisten(
    pool: &PgPool,
    process: &str,
    tx: &mpsc::Sender<FleetNotice>,
) -> Option<PgListener> {
    let mut backoff = MIN_BACKOFF;
    loop {
        tokio::select! {
            () = tx.closed() => return None,
            () = tokio::time::sleep(backoff) => {}
        }
        let attempt = tokio::select! {
            () = tx.closed() => return None,
            attempt = listen(pool) => attempt,
        };
        match attempt {
            Ok(listener) => {
                info!(process, "fleet notices: listening again");
                return Some(listener);
            }
            Err(e) => {
                backoff = (backoff * 2).min(MAX_BACKOFF);
                warn!(
                    process,
                    "fleet notices: cannot listen ({e}); trying again in {backoff:?}"
                );
            }
        }
    }
}

/// Hands the notices of one payload to the receiver, unless it is this process's own (in a
/// form its head did not give away) or unreadable. A full receiver loses it (logged once
/// per run of losses).
fn deliver(process: &str, payload: &str, tx: &mpsc::Sender<FleetNotice>, overflowing: &mut bool) {
    let envelope: Envelope<String, FleetNotice> = match serde_json::from_str(payload) {
        Ok(envelope) => envelope,
        Err(e) => {
            warn!(
                process,
                "fleet notices: skipped a payload of {} bytes that is not a notice ({e})",
                payload.len()
            );
            return;
        }
    };
    if envelope.from == process {
        return;
    }
    for notice in envelope.into_notices() {
        match tx.try_send(notice) {
            Ok(()) => *overflowing = false,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !*overflowing {
                    warn!(
                        process,
                        "fleet notices: the receiver is {NOTICE_BUFFER} notices behind; \
                         dropping notices until it catches up"
                    );
                    *overflowing = true;
                }
            }
            // The feed ends at its next turn.
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}
