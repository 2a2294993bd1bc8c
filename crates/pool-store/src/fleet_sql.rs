//! The SQL of [`PgFleet`](crate::PgFleet): one call per heartbeat and per leave (the
//! functions of `migrations/postgres/0002_fleet.sql`), and `pg_notify` with a notice's
//! envelope.

use std::time::Duration;

use pool_core::{FleetNotice, Lease, ServerId, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row as _};

use crate::held::Connections;
use crate::sql::{on_live_connection, unavailable};

/// The channel every process of a fleet listens on (one per database).
pub(crate) const CHANNEL: &str = "comfy_pool_fleet";

/// PostgreSQL's limit: a payload must be shorter than 8,000 bytes (its default build).
pub(crate) const MAX_PAYLOAD: usize = 7_999;

/// What travels on the channel: notices in the order they were sent and who sent them (so
/// that the sender can skip its own). Senders write `notices`; one `notice` alone is read too.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope<F, N> {
    /// The sending process.
    pub(crate) from: F,
    /// The notices.
    #[serde(default = "Vec::new", skip_serializing_if = "Vec::is_empty")]
    pub(crate) notices: Vec<N>,
    /// One notice (the envelope of a single notice).
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub(crate) notice: Option<N>,
}

/// No notice (serde's default of [`Envelope::notice`]).
fn none<N>() -> Option<N> {
    None
}

impl<F, N> Envelope<F, N> {
    /// Its notices, in order.
    pub(crate) fn into_notices(self) -> impl Iterator<Item = N> {
        self.notice.into_iter().chain(self.notices)
    }
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
    let rows = on_live_connection(pool.options().get_max_connections(), || {
        sqlx::query("SELECT held_server, held_epoch FROM fleet_lease($1, $2, $3)")
            .bind(process)
            .bind(&names)
            .bind(ttl_ms)
            .fetch_all(pool)
    })
    .await?;
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
    on_live_connection(pool.options().get_max_connections(), || {
        sqlx::query("SELECT fleet_leave($1)")
            .bind(process)
            .execute(pool)
    })
    .await
    .map(drop)
}

/// How every payload `process` sends begins (its envelope up to its first notice): a
/// listener skips its own process's payloads by it, without reading their notices.
pub(crate) fn head(process: &str) -> Result<String, serde_json::Error> {
    Ok(format!(
        "{{\"from\":{},\"notices\":[",
        serde_json::to_string(process)?
    ))
}

/// The payload of `notice` alone from `process`, or [`StoreError::Rejected`] when it is too
/// long for the channel.
#[cfg(test)]
pub(crate) fn payload(process: &str, notice: &FleetNotice) -> Result<String, StoreError> {
    let (mut payloads, refused) = payloads(process, std::slice::from_ref(notice))?;
    match refused {
        Some(error) => Err(error),
        None => Ok(payloads.pop().unwrap_or_default()),
    }
}

/// `notices` from `process` packed in order into as few payloads as the channel's limit
/// allows; a notice too long to travel even alone is left out, and the last such refusal is
/// returned beside the payloads.
pub(crate) fn payloads(
    process: &str,
    notices: &[FleetNotice],
) -> Result<(Vec<String>, Option<StoreError>), StoreError> {
    let not_json = |e: serde_json::Error| {
        StoreError::Rejected(format!("a fleet notice that is not JSON: {e}"))
    };
    let head = head(process).map_err(not_json)?;
    const TAIL: &str = "]}";
    let mut payloads = Vec::new();
    let mut refused = None;
    let mut current = String::new();
    for notice in notices {
        let json = serde_json::to_string(notice).map_err(not_json)?;
        let alone = head.len() + json.len() + TAIL.len();
        if alone > MAX_PAYLOAD {
            refused = Some(StoreError::Rejected(format!(
                "a fleet notice of {alone} bytes is over the limit of {MAX_PAYLOAD}"
            )));
            continue;
        }
        if !current.is_empty() && current.len() + 1 + json.len() + TAIL.len() > MAX_PAYLOAD {
            current.push_str(TAIL);
            payloads.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            current.push_str(&head);
        } else {
            current.push(',');
        }
        current.push_str(&json);
    }
    if !current.is_empty() {
        current.push_str(TAIL);
        payloads.push(current);
    }
    Ok((payloads, refused))
}

/// Sends `payloads` on the channel in one statement (delivered in order when it commits: at
/// once).
pub(crate) async fn notify(conns: &Connections, payloads: &[String]) -> Result<(), StoreError> {
    if payloads.is_empty() {
        return Ok(());
    }
    on_live_connection(conns.size(), || async {
        let mut held = conns.acquire().await?;
        sqlx::query(
            "SELECT pg_notify($1, payload) FROM unnest($2::text[]) WITH ORDINALITY AS p(payload, n) \
             ORDER BY n",
        )
        .bind(CHANNEL)
        .bind(payloads)
        .execute(held.conn())
        .await?;
        held.keep();
        Ok(())
    })
    .await
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
    fn every_payload_of_a_process_begins_with_its_head_and_no_other_process_payload_does() {
        let notices: Vec<FleetNotice> = (0..400).map(|i| cancel(50 + i)).collect();
        let (mine, _) = payloads("p1", &notices).unwrap();
        assert!(mine.len() > 1);
        let own = head("p1").unwrap();
        assert!(mine.iter().all(|p| p.starts_with(&own)));
        for other in ["p10", "p", "\"p1\""] {
            let (theirs, _) = payloads(other, &notices).unwrap();
            assert!(theirs.iter().all(|p| !p.starts_with(&own)), "{other}");
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
        assert_eq!(back.from, "p0");
        assert_eq!(back.into_notices().collect::<Vec<_>>(), [cancel(3)]);
    }

    #[test]
    fn an_envelope_of_one_notice_alone_reads_back() {
        let text = r#"{"from":"p1","notice":{"notice":"cancel","job":"jjj"}}"#;
        let back: Envelope<String, FleetNotice> = serde_json::from_str(text).unwrap();
        assert_eq!(back.into_notices().collect::<Vec<_>>(), [cancel(3)]);
    }

    #[test]
    fn notices_are_packed_in_order_under_the_limit_and_one_too_long_is_left_out() {
        let mut notices: Vec<FleetNotice> = (0..300).map(|i| cancel(10 + i % 90)).collect();
        notices.insert(150, cancel(MAX_PAYLOAD));
        let (payloads, refused) = payloads("p0", &notices).unwrap();
        assert!(
            matches!(refused, Some(StoreError::Rejected(_))),
            "{refused:?}"
        );
        assert!(payloads.len() > 1, "300 notices need several payloads");
        let mut back = Vec::new();
        for payload in &payloads {
            assert!(payload.len() <= MAX_PAYLOAD, "{}", payload.len());
            let envelope: Envelope<String, FleetNotice> = serde_json::from_str(payload).unwrap();
            assert_eq!(envelope.from, "p0");
            back.extend(envelope.into_notices());
        }
        notices.remove(150);
        assert_eq!(back, notices);
    }
}
