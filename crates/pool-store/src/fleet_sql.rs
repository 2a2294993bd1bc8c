//! The SQL of [`PgFleet`](crate::PgFleet): one call per heartbeat and per leave (the
//! functions of `migrations/postgres/0002_fleet.sql`), and `pg_notify` with a notice's
//! envelope.

use std::time::Duration;

use pool_core::{FleetNotice, Lease, ServerId, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row as _};

use crate::sql::unavailable;

/// The channel every process of a fleet listens on (one per database).
pub(crate) const CHANNEL: &str = "comfy_pool_fleet";

/// PostgreSQL's limit: a payload must be shorter than 8,000 bytes (its default build).
pub(crate) const MAX_PAYLOAD: usize = 7_999;

/// What travels on the channel: the notice and who sent it (so that the sender can skip its
/// own).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope<F, N> {
    /// The sending process.
    pub(crate) from: F,
    /// The notice.
    pub(crate) notice: N,
}

/// One heartbeat of `process` over `servers` (see `fleet_lease` in the migration).
pub(crate) async fn lease(
    pool: &PgPool,
    process: &str,
    servers: &[ServerId],
    ttl: Duration,
) -> Result<Vec<Lease>, StoreError> {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    if ttl_ms < 1 {
        return Err(StoreError::Config(format!(
            "a lease must last at least 1 ms (asked for {ttl:?})"
        )));
    }
    let mut names: Vec<&str> = servers.iter().map(ServerId::as_str).collect();
    names.sort_unstable();
    names.dedup();
    let rows = sqlx::query("SELECT held_server, held_epoch FROM fleet_lease($1, $2, $3)")
        .bind(process)
        .bind(&names)
        .bind(ttl_ms)
        .fetch_all(pool)
        .await
        .map_err(unavailable)?;
    rows.iter()
        .map(|row| {
            let server: String = row.try_get(0).map_err(unavailable)?;
            let epoch: i64 = row.try_get(1).map_err(unavailable)?;
            let epoch = u64::try_from(epoch)
                .map_err(|_| StoreError::Corrupt(format!("lease of {server} at epoch {epoch}")))?;
            Ok(Lease::new(ServerId::from(server), epoch))
        })
        .collect()
}

/// `process` leaves: its leases are free, its presence gone.
pub(crate) async fn leave(pool: &PgPool, process: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT fleet_leave($1)")
        .bind(process)
        .execute(pool)
        .await
        .map(drop)
        .map_err(unavailable)
}

/// The payload of `notice` from `process`, or [`StoreError::Rejected`] when it is too long for
/// the channel.
pub(crate) fn payload(process: &str, notice: &FleetNotice) -> Result<String, StoreError> {
    let envelope = Envelope {
        from: process,
        notice,
    };
    let payload = serde_json::to_string(&envelope)
        .map_err(|e| StoreError::Rejected(format!("a fleet notice that is not JSON: {e}")))?;
    if payload.len() > MAX_PAYLOAD {
        return Err(StoreError::Rejected(format!(
            "a fleet notice of {} bytes is over the limit of {MAX_PAYLOAD}",
            payload.len()
        )));
    }
    Ok(payload)
}

/// Sends `payload` on the channel (delivered when no transaction is open: at once).
pub(crate) async fn notify(pool: &PgPool, payload: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(pool)
        .await
        .map(drop)
        .map_err(unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cancel(len: usize) -> FleetNotice {
        FleetNotice::Cancel {
            job: "j".repeat(len).into(),
        }
    }

    #[test]
    fn a_payload_of_8000_bytes_is_refused_and_one_of_7999_is_not() {
        let overhead = payload("p0", &cancel(0)).unwrap().len();
        let largest = payload("p0", &cancel(MAX_PAYLOAD - overhead)).unwrap();
        assert_eq!(largest.len(), 7_999);
        let err = payload("p0", &cancel(MAX_PAYLOAD - overhead + 1)).unwrap_err();
        assert!(
            matches!(err, StoreError::Rejected(ref m) if m.contains("8000 bytes")),
            "{err}"
        );
    }

    #[test]
    fn a_payload_names_its_sender_and_reads_back() {
        let text = payload("p0", &cancel(3)).unwrap();
        let back: Envelope<String, FleetNotice> = serde_json::from_str(&text).unwrap();
        assert_eq!((back.from.as_str(), back.notice), ("p0", cancel(3)));
    }
}
