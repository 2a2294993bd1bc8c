//! The SQL of the service's state: API keys and the webhook outbox.

use pool_core::{StoreError, Timestamp};

use crate::codec::{count, int, millis, timestamp};
use crate::sql::{Query, ReadPool, Row, WriteConn};
use crate::writer::{Done, Outcome};
use crate::{ApiKey, WebhookDelivery, WebhookState};

/// An API key as a row.
#[derive(Debug)]
pub(crate) struct KeyRow(ApiKey);

impl KeyRow {
    pub(crate) fn of(key: &ApiKey) -> Self {
        Self(key.clone())
    }
}

pub(crate) async fn put_key(conn: &mut WriteConn, key: &KeyRow) -> Result<Outcome, sqlx::Error> {
    let key = &key.0;
    let inserted = conn
        .execute(
            &Query::new(
                "INSERT INTO api_keys (id, tenant, hash, created_at, revoked) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(key.id.as_str())
            .bind(key.tenant.as_str())
            .bind(key.hash.as_str())
            .bind(millis(key.created_at))
            .bind(key.revoked),
        )
        .await?;
    Ok(if inserted == 0 {
        // The caller's mistake, not the store's state: ids and hashes are unique.
        Err(StoreError::Config(format!(
            "an API key with id {:?} or the same secret is stored already",
            key.id
        )))
    } else {
        Ok(Done::Nothing)
    })
}

pub(crate) async fn revoke_key(conn: &mut WriteConn, id: &str) -> Result<Outcome, sqlx::Error> {
    let changed = conn
        .execute(
            &Query::new("UPDATE api_keys SET revoked = $2 WHERE id = $1")
                .bind(id)
                .bind(true),
        )
        .await?;
    Ok(Ok(Done::Flag(changed > 0)))
}

const KEY_COLUMNS: &str = "SELECT id, tenant, hash, created_at, revoked FROM api_keys";

fn key_of(row: &Row) -> Result<ApiKey, StoreError> {
    let mut key = ApiKey::new(
        row.text(0)?,
        row.text(1)?,
        row.text(2)?,
        timestamp(row.int(3)?),
    );
    key.revoked = row.boolean(4)?;
    Ok(key)
}

pub(crate) async fn key_by_hash(pool: &ReadPool, hash: &str) -> Result<Option<ApiKey>, StoreError> {
    pool.fetch_optional(&Query::new(format!("{KEY_COLUMNS} WHERE hash = $1")).bind(hash))
        .await?
        .map(|row| key_of(&row))
        .transpose()
}

pub(crate) async fn keys(pool: &ReadPool) -> Result<Vec<ApiKey>, StoreError> {
    pool.fetch_all(&Query::new(format!(
        "{KEY_COLUMNS} ORDER BY created_at, id"
    )))
    .await?
    .iter()
    .map(key_of)
    .collect()
}

/// A webhook delivery as a row.
#[derive(Debug)]
pub(crate) struct WebhookRow {
    job: String,
    url: String,
    payload: String,
    attempts: i64,
    next_at: i64,
    state: &'static str,
    delivered_at: Option<i64>,
    failure: Option<String>,
    last_error: Option<String>,
    created_at: i64,
}

impl WebhookRow {
    pub(crate) fn of(delivery: &WebhookDelivery) -> Result<Self, StoreError> {
        let (state, delivered_at, failure) = match &delivery.state {
            WebhookState::Pending => ("pending", None, None),
            WebhookState::Delivered { at } => ("delivered", Some(millis(*at)), None),
            WebhookState::Failed { error } => ("failed", None, Some(error.clone())),
        };
        let payload = serde_json::to_string(&delivery.payload).map_err(|e| {
            StoreError::Corrupt(format!("webhook payload of job {}: {e}", delivery.job))
        })?;
        Ok(Self {
            job: delivery.job.to_string(),
            url: delivery.url.clone(),
            payload,
            attempts: int(u64::from(delivery.attempts)),
            next_at: millis(delivery.next_at),
            state,
            delivered_at,
            failure,
            last_error: delivery.last_error.clone(),
            created_at: millis(delivery.created_at),
        })
    }
}

pub(crate) async fn enqueue_webhook(
    conn: &mut WriteConn,
    row: &WebhookRow,
) -> Result<Outcome, sqlx::Error> {
    conn.execute(
        &Query::new(
            "INSERT INTO webhook_deliveries (job, url, payload, attempts, next_at, state, \
             delivered_at, failure, last_error, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (job) DO NOTHING",
        )
        .bind(row.job.as_str())
        .bind(row.url.as_str())
        .bind(row.payload.as_str())
        .bind(row.attempts)
        .bind(row.next_at)
        .bind(row.state)
        .bind(row.delivered_at)
        .bind(row.failure.clone())
        .bind(row.last_error.clone())
        .bind(row.created_at),
    )
    .await?;
    Ok(Ok(Done::Nothing))
}

pub(crate) async fn update_webhook(
    conn: &mut WriteConn,
    row: &WebhookRow,
) -> Result<Outcome, sqlx::Error> {
    let changed = conn
        .execute(
            &Query::new(
                "UPDATE webhook_deliveries SET attempts = $2, next_at = $3, state = $4, \
                 delivered_at = $5, failure = $6, last_error = $7 WHERE job = $1",
            )
            .bind(row.job.as_str())
            .bind(row.attempts)
            .bind(row.next_at)
            .bind(row.state)
            .bind(row.delivered_at)
            .bind(row.failure.clone())
            .bind(row.last_error.clone()),
        )
        .await?;
    Ok(if changed == 0 {
        Err(StoreError::NotFound(row.job.clone()))
    } else {
        Ok(Done::Nothing)
    })
}

const WEBHOOK_COLUMNS: &str = "SELECT job, url, payload, attempts, next_at, state, delivered_at, \
                               failure, last_error, created_at FROM webhook_deliveries";

fn webhook_of(row: &Row) -> Result<WebhookDelivery, StoreError> {
    let job = row.text(0)?;
    let payload = serde_json::from_str(&row.text(2)?)
        .map_err(|e| StoreError::Corrupt(format!("webhook payload of job {job}: {e}")))?;
    let state = match row.text(5)?.as_str() {
        "pending" => WebhookState::Pending,
        "delivered" => WebhookState::Delivered {
            at: timestamp(row.opt_int(6)?.unwrap_or(0)),
        },
        "failed" => WebhookState::Failed {
            error: row.opt_text(7)?.unwrap_or_default(),
        },
        other => {
            return Err(StoreError::Corrupt(format!(
                "webhook of job {job}: unknown state {other:?}"
            )));
        }
    };
    let mut delivery =
        WebhookDelivery::new(job.into(), row.text(1)?, payload, timestamp(row.int(9)?));
    delivery.attempts = count(row.int(3)?)?;
    delivery.next_at = timestamp(row.int(4)?);
    delivery.state = state;
    delivery.last_error = row.opt_text(8)?;
    Ok(delivery)
}

pub(crate) async fn due_webhooks(
    pool: &ReadPool,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<WebhookDelivery>, StoreError> {
    // The predicate and order are the ones of the `webhook_deliveries_due` index.
    pool.fetch_all(
        &Query::new(format!(
            "{WEBHOOK_COLUMNS} WHERE state = 'pending' AND next_at <= $1 \
             ORDER BY next_at, created_at, job LIMIT $2"
        ))
        .bind(millis(now))
        .bind(i64::from(limit)),
    )
    .await?
    .iter()
    .map(webhook_of)
    .collect()
}

pub(crate) async fn webhook(
    pool: &ReadPool,
    job: &str,
) -> Result<Option<WebhookDelivery>, StoreError> {
    pool.fetch_optional(&Query::new(format!("{WEBHOOK_COLUMNS} WHERE job = $1")).bind(job))
        .await?
        .map(|row| webhook_of(&row))
        .transpose()
}
