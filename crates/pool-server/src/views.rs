//! The JSON shapes of the API (requests and answers), with their OpenAPI schemas.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use pool_core::{AttemptOutcome, Deadlines, Error, JobOutput, JobRecord, JobState};

/// The metadata key under which a job's webhook URL is kept with its record (so that a
/// restarted service still knows it). Not shown in the job's `metadata`.
pub const WEBHOOK_METADATA_KEY: &str = "comfy_pool.webhook";

/// `POST /v1/jobs`: a workflow (or several variants of one) and how to run it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The API-format workflow (an object of nodes). Give this or `variants`, not both.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub workflow: Option<Value>,
    /// Workflow variants in order of preference (per GPU class, per model quantisation…):
    /// the job runs the first one that a capable, unblocked server can run when it is
    /// dispatched; its view says which ran. Give this or `workflow`, not both.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub variants: Option<Vec<Value>>,
    /// The job's id (global: choose unique ones). Submitting an id again returns the job
    /// it names. Alternatively send an `Idempotency-Key` header (scoped to the tenant).
    #[serde(default)]
    pub id: Option<String>,
    /// Higher runs first (default 0).
    #[serde(default)]
    pub priority: i32,
    /// Free-form metadata, returned with the job.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// Deadlines in milliseconds: `start_ms`, `between_events_ms`, `total_ms`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub deadlines: Option<Deadlines>,
    /// Attempts at most (default 3).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Servers to try first.
    #[serde(default)]
    pub preferred_servers: Vec<String>,
    /// The only servers the job may run on.
    #[serde(default)]
    pub required_servers: Vec<String>,
    /// Servers the job must not run on.
    #[serde(default)]
    pub excluded_servers: Vec<String>,
    /// Tags a server must carry.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Where to POST the job's summary when it ends (an allow-listed host).
    #[serde(default)]
    pub webhook: Option<String>,
}

/// `?wait=SECONDS` of `POST /v1/jobs`.
#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
pub struct SubmitParams {
    /// Hold the request until the job ends, at most this many seconds (then answer with
    /// where it stands).
    pub wait: Option<f64>,
}

/// The answer to a submission.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Submitted {
    /// The job's id.
    pub id: String,
    /// Where it stands (`queued`, `running`, `retry_wait`, `completed`, `failed`,
    /// `cancelled`).
    pub state: String,
    /// The workflow's structural hash (the first variant's, for a job of several).
    pub hash: String,
    /// Whether this request made the job (false: the id or key named an existing job).
    pub created: bool,
    /// The job's full view, when `?wait=` saw it end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<JobView>,
}

/// One attempt of a job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    /// From 1.
    pub attempt: u32,
    /// The server.
    pub server: String,
    /// The prompt id there.
    pub prompt_id: String,
    /// `running`, `succeeded`, `failed`, `cancelled`, `timed_out` or `withdrawn`.
    pub outcome: String,
    /// The failure class, when it failed.
    pub class: Option<String>,
    /// Why it failed.
    pub reason: Option<String>,
    /// Which workflow variant it ran (its index in `variants`; 0 for a single workflow).
    pub variant: usize,
    /// When it was dispatched (RFC 3339).
    pub started_at: String,
    /// When it ended.
    pub ended_at: Option<String>,
    /// Dispatch to end, milliseconds.
    pub duration_ms: u64,
}

/// One output file of a job, with its download URL.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OutputView {
    /// The node that produced it.
    pub node: String,
    /// The list it is in (`images`, `gifs`, `audio`, … or `websocket`).
    pub kind: String,
    /// The file name on the server.
    pub filename: String,
    /// Its subfolder there.
    pub subfolder: String,
    /// `output` or `temp`.
    #[serde(rename = "type")]
    pub folder: String,
    /// Where to download it from this service.
    pub url: String,
}

/// A job's error.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobErrorView {
    /// The stable code (`attempts_exhausted`, `workflow_rejected`, `cancelled`, …).
    pub code: String,
    /// In words.
    pub message: String,
    /// The structured detail.
    #[schema(value_type = Object)]
    pub detail: Value,
}

/// Timings of a job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TimingsView {
    /// Enqueue to first dispatch, milliseconds (once dispatched).
    pub queue_wait_ms: Option<u64>,
    /// Enqueue to end, milliseconds (once ended).
    pub total_ms: Option<u64>,
}

/// `GET /v1/jobs/{id}`: a job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    /// Its id.
    pub id: String,
    /// `queued`, `running`, `retry_wait`, `completed`, `failed` or `cancelled`.
    pub state: String,
    /// The workflow's structural hash (the first variant's, for a job of several).
    pub hash: String,
    /// How many workflow variants the job has (1 for a single workflow).
    pub variants: usize,
    /// The workflow variant the last attempt ran (its index; once dispatched).
    pub variant: Option<usize>,
    /// That variant's structural hash.
    pub variant_hash: Option<String>,
    /// The tenant.
    pub tenant: Option<String>,
    /// The priority.
    pub priority: i32,
    /// The server it runs or ran on (the last attempt's).
    pub server: Option<String>,
    /// Every attempt.
    pub attempts: Vec<AttemptView>,
    /// Output files, with download URLs (once completed).
    pub outputs: Vec<OutputView>,
    /// The latest preview of a running job, when it sent one.
    pub preview_url: Option<String>,
    /// Why it failed or was cancelled.
    pub error: Option<JobErrorView>,
    /// Its metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// Its webhook URL.
    pub webhook: Option<String>,
    /// Timings.
    pub timings: TimingsView,
    /// When it was accepted (RFC 3339).
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
}

/// `GET /v1/jobs`: one page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobList {
    /// The jobs, newest first.
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// The query of `GET /v1/jobs`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
pub struct ListParams {
    /// Only these states, comma-separated (`queued,running`).
    pub state: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Admin only: one tenant's jobs.
    pub tenant: Option<String>,
}

/// The state name of a job state.
pub(crate) fn state_name(state: JobState) -> String {
    state.as_str().to_owned()
}

/// Parses a comma-separated list of states.
pub(crate) fn parse_states(text: &str) -> Result<Vec<JobState>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            serde_json::from_value(Value::String(s.to_owned()))
                .map_err(|_| format!("unknown state {s:?}"))
        })
        .collect()
}

fn outcome_parts(outcome: &AttemptOutcome) -> (String, Option<String>) {
    let value = serde_json::to_value(outcome).unwrap_or(Value::Null);
    let status = value
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    let class = value
        .get("class")
        .and_then(Value::as_str)
        .map(str::to_owned);
    (status, class)
}

/// Path segments are percent-encoded so any node id or job id makes a valid URL.
pub(crate) fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The files of a job's output, in order: per node, per list of file objects.
pub(crate) fn output_files(job: &str, output: &JobOutput) -> Vec<OutputView> {
    let mut files = Vec::new();
    for (node, data) in &output.outputs {
        let Some(lists) = data.as_object() else {
            continue;
        };
        let mut index = 0usize;
        for (kind, list) in lists {
            for item in list.as_array().into_iter().flatten() {
                let Some(filename) = item.get("filename").and_then(Value::as_str) else {
                    continue;
                };
                let text =
                    |k: &str, d: &str| item.get(k).and_then(Value::as_str).unwrap_or(d).to_owned();
                files.push(OutputView {
                    node: node.clone(),
                    kind: kind.clone(),
                    filename: filename.to_owned(),
                    subfolder: text("subfolder", ""),
                    folder: text("type", "output"),
                    url: format!(
                        "/v1/jobs/{}/outputs/node/{}/{index}",
                        segment(job),
                        segment(node)
                    ),
                });
                index += 1;
            }
        }
    }
    for (i, image) in output.ws_images.iter().enumerate() {
        files.push(OutputView {
            node: image.node.clone(),
            kind: "websocket".into(),
            filename: format!("{}-{i}.{}", image.node, extension(image.format)),
            subfolder: String::new(),
            folder: "websocket".into(),
            url: format!("/v1/jobs/{}/outputs/ws/{i}", segment(job)),
        });
    }
    files
}

pub(crate) fn extension(format: pool_core::PreviewFormat) -> &'static str {
    match format {
        pool_core::PreviewFormat::Jpeg => "jpg",
        pool_core::PreviewFormat::Png => "png",
        _ => "bin",
    }
}

/// The view of an error.
pub(crate) fn error_view(error: &Error) -> JobErrorView {
    let detail = serde_json::to_value(error)
        .ok()
        .and_then(|v| v.get("detail").cloned())
        .unwrap_or(Value::Null);
    JobErrorView {
        code: error.code().to_owned(),
        message: error.to_string(),
        detail,
    }
}

impl JobView {
    /// The view of a record; `preview` is whether a preview of it is kept.
    pub(crate) fn of(record: &JobRecord, preview: bool) -> Self {
        let id = record.id.to_string();
        let attempts: Vec<AttemptView> = record
            .attempts
            .iter()
            .map(|a| {
                let (outcome, class) = outcome_parts(&a.outcome);
                AttemptView {
                    attempt: a.attempt,
                    server: a.server.to_string(),
                    prompt_id: a.prompt_id.clone(),
                    outcome,
                    class,
                    reason: a.reason.clone(),
                    variant: a.variant,
                    started_at: a.started_at.to_string(),
                    ended_at: a.ended_at.map(|t| t.to_string()),
                    duration_ms: u64::try_from(a.duration.as_millis()).unwrap_or(u64::MAX),
                }
            })
            .collect();
        let mut metadata = record.options().metadata_map();
        let webhook = metadata
            .as_mut()
            .and_then(|m| m.remove(WEBHOOK_METADATA_KEY))
            .and_then(|v| v.as_str().map(str::to_owned));
        let metadata = metadata.filter(|m| !m.is_empty());
        let first_start = record.attempts.first().map(|a| a.started_at);
        let ended = record.state.is_terminal().then_some(record.updated_at);
        let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            state: state_name(record.state),
            hash: record.hash().to_string(),
            variants: record.spec.variants().len(),
            variant: record.variant_ran().map(|(index, _)| index),
            variant_hash: record.variant_ran().map(|(_, hash)| hash.to_string()),
            tenant: record.tenant().map(str::to_owned),
            priority: record.priority(),
            server: record.attempts.last().map(|a| a.server.to_string()),
            outputs: record
                .result
                .as_ref()
                .map(|output| output_files(&id, output))
                .unwrap_or_default(),
            preview_url: (preview && record.state == JobState::Running)
                .then(|| format!("/v1/jobs/{}/preview", segment(&id))),
            error: record.error.as_ref().map(error_view),
            metadata,
            webhook,
            timings: TimingsView {
                queue_wait_ms: first_start
                    .map(|t| millis(t.saturating_duration_since(record.created_at))),
                total_ms: ended.map(|t| millis(t.saturating_duration_since(record.created_at))),
            },
            created_at: record.created_at.to_string(),
            updated_at: record.updated_at.to_string(),
            attempts,
            id,
        }
    }
}

/// What `Options::metadata` holds, as a map.
trait MetadataMap {
    fn metadata_map(&self) -> Option<Map<String, Value>>;
}

impl MetadataMap for pool_core::JobOptions {
    fn metadata_map(&self) -> Option<Map<String, Value>> {
        let value = serde_json::to_value(self).ok()?;
        value.get("metadata")?.as_object().cloned()
    }
}
