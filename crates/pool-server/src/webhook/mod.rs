//! Webhooks: when a job ends, its summary is POSTed to the job's webhook URL, signed
//! ([`sign`]), through a persisted outbox ([`ServiceStore`]'s deliveries): at least once,
//! the job id as idempotency key, retried with doubling waits, resumed after a restart. Only
//! hosts on the allow-list ([`AllowList`]) are ever contacted, checked at submission and
//! again at each try; redirects are not followed.

mod allow;
pub mod sign;

use std::sync::Arc;
use std::time::Duration;

use pool_core::{JobRecord, Timestamp};
use pool_store::{ServiceStore, StoreError, WebhookDelivery, WebhookState};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use allow::AllowList;

use crate::api_error::ApiError;
use crate::config::WebhookConfig;
use crate::views::{JobView, WEBHOOK_METADATA_KEY};

/// How many due deliveries one pass of the outbox takes.
const BATCH: u32 = 32;

/// The webhook sender: allow-list, signing secret, outbox worker.
pub(crate) struct Webhooks {
    config: WebhookConfig,
    allow: AllowList,
    store: Arc<dyn ServiceStore>,
    http: reqwest::Client,
    wake: Notify,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("allow", &self.allow)
            .finish_non_exhaustive()
    }
}

/// The webhook URL kept with a job, if it has one.
pub(crate) fn webhook_of(record: &JobRecord) -> Option<String> {
    JobView::of(record, false).webhook
}

impl Webhooks {
    pub(crate) fn new(config: &WebhookConfig, store: Arc<dyn ServiceStore>) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .build()
            .unwrap_or_default();
        Self {
            allow: AllowList::new(&config.allowed_hosts),
            config: config.clone(),
            store,
            http,
            wake: Notify::new(),
        }
    }

    /// Checks a submitted webhook URL against the allow-list.
    pub(crate) fn check(&self, url: &str) -> Result<(), ApiError> {
        if self.config.secret.is_none() {
            return Err(ApiError::WebhookNotAllowed(
                "(webhooks are not configured)".into(),
            ));
        }
        self.allow
            .check(url)
            .map(|_| ())
            .map_err(ApiError::WebhookNotAllowed)
    }

    /// Queues the delivery of a finished job's summary, if it has a webhook.
    pub(crate) async fn job_ended(&self, record: &JobRecord) -> Result<(), StoreError> {
        let Some(url) = webhook_of(record) else {
            return Ok(());
        };
        let payload = serde_json::json!({
            "type": format!("job.{}", record.state.as_str()),
            "job": JobView::of(record, false),
        });
        let delivery = WebhookDelivery::new(record.id.clone(), url, payload, Timestamp::now());
        self.store.enqueue_webhook(&delivery).await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Delivers due webhooks until `stop`: at once when one is queued, otherwise every
    /// `poll_interval` for retries that came due.
    pub(crate) async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            match self.store.due_webhooks(Timestamp::now(), BATCH).await {
                Ok(due) => {
                    let full = due.len() == BATCH as usize;
                    for delivery in due {
                        if stop.is_cancelled() {
                            return;
                        }
                        self.attempt(delivery).await;
                    }
                    if full {
                        continue;
                    }
                }
                Err(error) => tracing::warn!(%error, "webhook outbox unavailable"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    /// One try of one delivery; its outcome is written back to the store.
    async fn attempt(&self, mut delivery: WebhookDelivery) {
        delivery.attempts += 1;
        let result = self.post(&delivery).await;
        let now = Timestamp::now();
        match result {
            Ok(()) => {
                delivery.state = WebhookState::Delivered { at: now };
                delivery.last_error = None;
            }
            Err(error) => {
                tracing::info!(job = %delivery.job, attempt = delivery.attempts, %error, "webhook try failed");
                if delivery.attempts >= self.config.max_attempts {
                    delivery.state = WebhookState::Failed {
                        error: error.clone(),
                    };
                } else {
                    delivery.next_at = now.saturating_add(self.backoff(delivery.attempts));
                }
                delivery.last_error = Some(error);
            }
        }
        if let Err(error) = self.store.update_webhook(&delivery).await {
            tracing::warn!(job = %delivery.job, %error, "cannot record a webhook try");
        }
    }

    /// The wait after try number `tries`: `backoff`, doubling, at most `max_backoff`.
    fn backoff(&self, tries: u32) -> Duration {
        let factor = 2u32.saturating_pow(tries.saturating_sub(1).min(30));
        self.config
            .backoff
            .saturating_mul(factor)
            .min(self.config.max_backoff)
    }

    /// POSTs the delivery, signed. Errors never quote the URL (it may carry a token).
    async fn post(&self, delivery: &WebhookDelivery) -> Result<(), String> {
        let Some(secret) = &self.config.secret else {
            return Err("webhooks are not configured (no webhooks.secret)".into());
        };
        let url = self
            .allow
            .check(&delivery.url)
            .map_err(|host| format!("host {host} is not allowed"))?;
        let body = serde_json::to_vec(&delivery.payload).map_err(|e| e.to_string())?;
        let timestamp = Timestamp::now().as_millis() / 1000;
        let signature = sign::sign(secret.expose(), timestamp, &body);
        let job = delivery.job.to_string();
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(sign::ID_HEADER, &job)
            .header("idempotency-key", &job)
            .header(sign::TIMESTAMP_HEADER, timestamp.to_string())
            .header(sign::SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                let e = e.without_url();
                if e.is_timeout() {
                    "timed out".to_owned()
                } else if e.is_connect() {
                    "cannot connect".to_owned()
                } else {
                    e.to_string()
                }
            })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("answered {status}"))
        }
    }
}

/// Whether a job's metadata may be given by a caller: the service's own key is refused.
pub(crate) fn reserved_metadata(key: &str) -> bool {
    key == WEBHOOK_METADATA_KEY || key.starts_with("comfy_pool.")
}
