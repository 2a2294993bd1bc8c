//! The Jobs API of ComfyUI 0.6 and later: `GET /api/jobs` and `GET /api/jobs/{id}`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{HistoryStatus, ImageRef, NodeOutput};
use crate::event::ExecutionError;

/// Where a job stands.
///
/// ComfyUI 0.8 reports four statuses; an interrupted run is [`JobStatus::Failed`] there
/// (without an [`execution_error`](Job::execution_error)). Later releases may report
/// `interrupted` or `cancelled`; anything else is kept as [`JobStatus::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobStatus {
    /// Waiting in the queue.
    Pending,
    /// Running now.
    InProgress,
    /// Finished successfully (also a run served entirely from the cache).
    Completed,
    /// Finished with a node error, or (0.8) interrupted.
    Failed,
    /// Interrupted (not reported by 0.8).
    Interrupted,
    /// Cancelled (not reported by 0.8).
    Cancelled,
    /// A status this crate does not know, as sent.
    Other(String),
}

impl JobStatus {
    /// The wire name (`pending`, `in_progress`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
            Self::Cancelled => "cancelled",
            Self::Other(other) => other,
        }
    }

    /// The status of a wire name.
    pub fn parse(name: &str) -> Self {
        match name {
            "pending" => Self::Pending,
            "in_progress" => Self::InProgress,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "interrupted" => Self::Interrupted,
            "cancelled" => Self::Cancelled,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether the job ended (it is no longer pending or running).
    pub fn is_finished(&self) -> bool {
        !matches!(self, Self::Pending | Self::InProgress)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for JobStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JobStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(Self::parse(&name))
    }
}

/// One job: a prompt queued, running or finished, as `GET /api/jobs` lists it. `GET
/// /api/jobs/{id}` also fills [`outputs`](Self::outputs),
/// [`execution_status`](Self::execution_status) and [`workflow`](Self::workflow) for a
/// finished job. Absent values are `None` (the server leaves them out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The prompt id.
    pub id: String,
    /// Where it stands.
    pub status: JobStatus,
    /// Its queue number (what `POST /prompt` answered as `number`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<f64>,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<u64>,
    /// When it started running (finished jobs only), in ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_start_time: Option<u64>,
    /// When it ended (finished jobs only), in ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_end_time: Option<u64>,
    /// The node error, for a run that failed at run time (not for an interrupted one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_error: Option<ExecutionError>,
    /// How many output files it produced (0 while queued or running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs_count: Option<u64>,
    /// The output the ComfyUI frontend would show, when one is previewable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_output: Option<PreviewOutput>,
    /// The `extra_data.extra_pnginfo.workflow.id` it was submitted with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// UI outputs per node id (one job only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<BTreeMap<String, NodeOutput>>,
    /// The history's status of the run: `status_str`, `completed`, messages (one job only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_status: Option<HistoryStatus>,
    /// The workflow and extra data it ran with (one job only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<JobWorkflow>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Job {
    /// How long it ran, when the server reported both ends.
    pub fn execution_duration(&self) -> Option<Duration> {
        let start = self.execution_start_time?;
        let end = self.execution_end_time?;
        Some(Duration::from_millis(end.saturating_sub(start)))
    }

    /// Whether it was interrupted: reported as such, or (0.8) failed without a node error
    /// and with an `execution_interrupted` message, when the status is known.
    pub fn is_interrupted(&self) -> bool {
        match self.status {
            JobStatus::Interrupted => true,
            JobStatus::Failed => {
                self.execution_error.is_none()
                    && self
                        .execution_status
                        .as_ref()
                        .is_none_or(|s| s.message("execution_error").is_none())
            }
            _ => false,
        }
    }

    /// The image files of its outputs, per node (empty unless fetched one by one).
    pub fn images(&self) -> Vec<(String, ImageRef)> {
        self.outputs
            .iter()
            .flatten()
            .flat_map(|(node, output)| output.images().into_iter().map(|i| (node.clone(), i)))
            .collect()
    }
}

/// The output a job's preview shows: a file reference plus the node and media type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviewOutput {
    /// The file name.
    pub filename: String,
    /// The subfolder (empty for none).
    #[serde(default)]
    pub subfolder: String,
    /// `output`, `temp` or `input`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The node that produced it.
    #[serde(rename = "nodeId", default)]
    pub node_id: String,
    /// `images`, `video`, `audio`, ...
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl PreviewOutput {
    /// A reference for [`Client::download`](crate::Client::download).
    pub fn to_ref(&self) -> ImageRef {
        ImageRef {
            filename: self.filename.clone(),
            subfolder: self.subfolder.clone(),
            kind: self.kind.clone(),
        }
    }
}

/// The workflow a finished job ran: the prompt and its extra data.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct JobWorkflow {
    /// The API-format workflow.
    #[serde(default)]
    pub prompt: Value,
    /// Its `extra_data` (`client_id`, `create_time`, `extra_pnginfo`, ...).
    #[serde(default)]
    pub extra_data: Value,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The answer of `GET /api/jobs`: one page of jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobList {
    /// The jobs of this page, in the requested order.
    pub jobs: Vec<Job>,
    /// Where the page is in the whole list.
    pub pagination: Pagination,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The paging of a [`JobList`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Pagination {
    /// Jobs skipped before this page.
    #[serde(default)]
    pub offset: u64,
    /// The page size asked for (`None`: no limit).
    #[serde(default)]
    pub limit: Option<u64>,
    /// Jobs that passed the filters, over all pages.
    #[serde(default)]
    pub total: u64,
    /// Whether jobs follow this page.
    #[serde(default)]
    pub has_more: bool,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What a job list is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum JobSort {
    /// When the server accepted the job (the server's default).
    #[default]
    CreatedAt,
    /// How long the job ran (0 for jobs not finished).
    ExecutionDuration,
}

/// The direction of a job list's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SortOrder {
    /// Largest first (the server's default: newest first).
    #[default]
    Desc,
    /// Smallest first.
    Asc,
}

/// The filters, order and page of [`Client::jobs`](crate::Client::jobs); the default asks
/// for every job, newest first.
///
/// ```
/// use comfy_client::{JobSort, JobStatus, JobsQuery, SortOrder};
/// let query = JobsQuery::new()
///     .status(JobStatus::Pending)
///     .status(JobStatus::InProgress)
///     .sort(JobSort::ExecutionDuration, SortOrder::Asc)
///     .limit(20)
///     .offset(40);
/// # let _ = query;
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobsQuery {
    /// Only jobs in one of these statuses (empty: all).
    pub statuses: Vec<JobStatus>,
    /// Only jobs submitted with this `extra_pnginfo.workflow.id`.
    pub workflow_id: Option<String>,
    /// The sort key.
    pub sort_by: JobSort,
    /// The sort direction.
    pub order: SortOrder,
    /// At most this many jobs (must be positive; `None`: all).
    pub limit: Option<u32>,
    /// Skip this many jobs first.
    pub offset: u32,
}

impl JobsQuery {
    /// Every job, newest first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a status to the filter.
    #[must_use]
    pub fn status(mut self, status: JobStatus) -> Self {
        self.statuses.push(status);
        self
    }

    /// Only jobs of this workflow id.
    #[must_use]
    pub fn workflow_id(mut self, id: impl Into<String>) -> Self {
        self.workflow_id = Some(id.into());
        self
    }

    /// Sets the order.
    #[must_use]
    pub fn sort(mut self, by: JobSort, order: SortOrder) -> Self {
        self.sort_by = by;
        self.order = order;
        self
    }

    /// At most `limit` jobs (positive).
    #[must_use]
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Skips `offset` jobs.
    #[must_use]
    pub fn offset(mut self, offset: u32) -> Self {
        self.offset = offset;
        self
    }

    /// The query string pairs; only what differs from the server's defaults.
    pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if !self.statuses.is_empty() {
            let names: Vec<&str> = self.statuses.iter().map(JobStatus::as_str).collect();
            pairs.push(("status", names.join(",")));
        }
        if let Some(id) = &self.workflow_id {
            pairs.push(("workflow_id", id.clone()));
        }
        if self.sort_by == JobSort::ExecutionDuration {
            pairs.push(("sort_by", "execution_duration".to_owned()));
        }
        if self.order == SortOrder::Asc {
            pairs.push(("sort_order", "asc".to_owned()));
        }
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        if self.offset > 0 {
            pairs.push(("offset", self.offset.to_string()));
        }
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::{JobSort, JobStatus, JobsQuery, SortOrder};

    #[test]
    fn statuses_keep_unknown_names() {
        for name in [
            "pending",
            "in_progress",
            "completed",
            "failed",
            "cancelled",
            "queued",
        ] {
            let status: JobStatus =
                serde_json::from_value(name.into()).unwrap_or(JobStatus::Pending);
            assert_eq!(status.as_str(), name);
            assert_eq!(serde_json::to_value(&status).ok(), Some(name.into()));
        }
        assert_eq!(
            JobStatus::parse("queued"),
            JobStatus::Other("queued".into())
        );
        assert!(JobStatus::Cancelled.is_finished() && !JobStatus::InProgress.is_finished());
    }

    #[test]
    fn a_query_sends_only_what_differs_from_the_defaults() {
        assert!(JobsQuery::new().pairs().is_empty());
        let query = JobsQuery::new()
            .status(JobStatus::Pending)
            .status(JobStatus::InProgress)
            .workflow_id("w")
            .sort(JobSort::ExecutionDuration, SortOrder::Asc)
            .limit(3)
            .offset(2);
        let pairs = query.pairs();
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("status", "pending,in_progress"),
                ("workflow_id", "w"),
                ("sort_by", "execution_duration"),
                ("sort_order", "asc"),
                ("limit", "3"),
                ("offset", "2"),
            ]
        );
    }
}
