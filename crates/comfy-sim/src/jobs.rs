//! ComfyUI 0.8's Jobs API: one view of queued, running and finished prompts
//! (`comfy_execution/jobs.py`). Jobs live in the queue and the history: a prompt deleted from
//! the history is no job any more, a rejected prompt never was one.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::life::QueueItem;

/// The job statuses 0.8 knows, in its order (an interrupted run is `failed`).
pub(crate) const STATUSES: [&str; 4] = ["pending", "in_progress", "completed", "failed"];

/// Media types the frontend previews.
const PREVIEWABLE: [&str; 3] = ["images", "video", "audio"];

/// 3D files, previewed by extension.
const THREE_D: [&str; 4] = [".obj", ".fbx", ".gltf", ".glb"];

/// A life's queue and history at one moment, in ComfyUI's order.
pub(crate) struct Snapshot {
    pub(crate) running: Vec<Arc<QueueItem>>,
    pub(crate) pending: Vec<Arc<QueueItem>>,
    /// `(prompt id, history entry)`, oldest first.
    pub(crate) history: Vec<(String, Arc<Value>)>,
}

/// The filters, order and page of `GET /api/jobs`.
#[derive(Debug)]
pub(crate) struct Listing {
    /// Statuses to include (`None`: all).
    pub(crate) statuses: Option<Vec<String>>,
    /// Only jobs of this `extra_data.extra_pnginfo.workflow.id`.
    pub(crate) workflow_id: Option<String>,
    /// Sort by execution duration instead of creation time.
    pub(crate) by_duration: bool,
    /// Ascending instead of descending.
    pub(crate) ascending: bool,
    pub(crate) limit: Option<usize>,
    pub(crate) offset: usize,
}

impl Snapshot {
    /// One page of jobs and the number of jobs that passed the filters.
    pub(crate) fn list(&self, listing: &Listing) -> (Vec<Value>, usize) {
        let wants = |status: &str| {
            listing
                .statuses
                .as_ref()
                .is_none_or(|s| s.iter().any(|w| w == status))
        };
        let mut jobs: Vec<Map<String, Value>> = Vec::new();
        if wants("in_progress") {
            jobs.extend(self.running.iter().map(|i| queue_job(i, "in_progress")));
        }
        if wants("pending") {
            jobs.extend(self.pending.iter().map(|i| queue_job(i, "pending")));
        }
        let (completed, failed) = (wants("completed"), wants("failed"));
        if completed || failed {
            for (id, entry) in &self.history {
                let is_failed = status_str(entry) == Some("error");
                if (is_failed && failed) || (!is_failed && completed) {
                    jobs.push(history_job(id, entry, false));
                }
            }
        }
        if let Some(wanted) = listing.workflow_id.as_deref().filter(|w| !w.is_empty()) {
            jobs.retain(|j| j.get("workflow_id").and_then(Value::as_str) == Some(wanted));
        }
        // Stable, like Python's sorted(): equal keys keep the order above, also descending.
        let key = |job: &Map<String, Value>| sort_key(job, listing.by_duration);
        if listing.ascending {
            jobs.sort_by(|a, b| key(a).total_cmp(&key(b)));
        } else {
            jobs.sort_by(|a, b| key(b).total_cmp(&key(a)));
        }
        let total = jobs.len();
        let page = jobs
            .into_iter()
            .skip(listing.offset)
            .take(listing.limit.unwrap_or(usize::MAX))
            .map(Value::Object)
            .collect();
        (page, total)
    }

    /// One job with its details, looked up in the history, then running, then pending.
    pub(crate) fn one(&self, id: &str) -> Option<Value> {
        if let Some((id, entry)) = self.history.iter().find(|(h, _)| h == id) {
            return Some(Value::Object(history_job(id, entry, true)));
        }
        let queued = |items: &[Arc<QueueItem>], status| {
            items
                .iter()
                .find(|i| i.prompt_id == id)
                .map(|i| Value::Object(queue_job(i, status)))
        };
        queued(&self.running, "in_progress").or_else(|| queued(&self.pending, "pending"))
    }
}

fn status_str(entry: &Value) -> Option<&str> {
    entry.get("status")?.get("status_str")?.as_str()
}

/// Inserts `value` unless it is absent or null (ComfyUI's `prune_dict`).
fn put(job: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value.filter(|v| !v.is_null()) {
        job.insert(key.to_owned(), value);
    }
}

/// `extra_data.create_time` and `extra_data.extra_pnginfo.workflow.id`.
fn metadata(extra_data: &Value) -> (Option<Value>, Option<Value>) {
    let create_time = extra_data.get("create_time").cloned();
    let workflow_id = extra_data
        .get("extra_pnginfo")
        .and_then(|p| p.get("workflow"))
        .and_then(|w| w.get("id"))
        .cloned();
    (create_time, workflow_id)
}

fn queue_job(item: &QueueItem, status: &str) -> Map<String, Value> {
    let (create_time, workflow_id) = metadata(&item.extra_data);
    let mut job = Map::new();
    put(&mut job, "id", Some(Value::from(item.prompt_id.as_str())));
    put(&mut job, "status", Some(Value::from(status)));
    put(&mut job, "priority", Some(item.number.clone()));
    put(&mut job, "create_time", create_time);
    put(&mut job, "outputs_count", Some(json!(0)));
    put(&mut job, "workflow_id", workflow_id);
    job
}

fn history_job(id: &str, entry: &Value, full: bool) -> Map<String, Value> {
    let prompt = entry.get("prompt");
    let field = |i: usize| prompt.and_then(|p| p.get(i)).cloned();
    let extra_data = field(3).unwrap_or(Value::Null);
    let (create_time, workflow_id) = metadata(&extra_data);
    let status_info = entry.get("status").cloned().unwrap_or_else(|| json!({}));
    let status = match status_str(entry) {
        Some("error") => "failed",
        _ => "completed",
    };
    let outputs = entry.get("outputs").cloned().unwrap_or_else(|| json!({}));
    let (count, preview) = outputs_summary(&outputs);
    let (mut start, mut end, mut error) = (None, None, None);
    for message in status_info
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(kind), Some(data)) = (
            message.get(0).and_then(Value::as_str),
            message.get(1).filter(|d| d.is_object()),
        ) else {
            continue;
        };
        match kind {
            "execution_start" => start = data.get("timestamp").cloned(),
            "execution_success" | "execution_error" | "execution_interrupted" => {
                end = data.get("timestamp").cloned();
                if kind == "execution_error" {
                    error = Some(data.clone());
                }
            }
            _ => {}
        }
    }
    let mut job = Map::new();
    put(&mut job, "id", Some(Value::from(id)));
    put(&mut job, "status", Some(Value::from(status)));
    put(&mut job, "priority", field(0));
    put(&mut job, "create_time", create_time);
    put(&mut job, "execution_start_time", start);
    put(&mut job, "execution_end_time", end);
    put(&mut job, "execution_error", error);
    put(&mut job, "outputs_count", Some(json!(count)));
    put(&mut job, "preview_output", preview);
    put(&mut job, "workflow_id", workflow_id);
    if full {
        job.insert("outputs".to_owned(), outputs);
        job.insert("execution_status".to_owned(), status_info);
        job.insert(
            "workflow".to_owned(),
            json!({"prompt": field(2), "extra_data": extra_data}),
        );
    }
    job
}

/// How many output items there are, and the one the frontend would preview (the first
/// previewable of type `output`, else the first previewable), with `nodeId` and `mediaType`.
fn outputs_summary(outputs: &Value) -> (u64, Option<Value>) {
    let mut count = 0;
    let (mut preview, mut fallback) = (None, None);
    let nodes = outputs.as_object().into_iter().flatten();
    for (node_id, node_outputs) in nodes {
        let Some(media) = node_outputs.as_object() else {
            continue;
        };
        for (media_type, items) in media {
            let Some(items) = items.as_array().filter(|_| media_type != "animated") else {
                continue;
            };
            for item in items.iter().filter_map(Value::as_object) {
                count += 1;
                if preview.is_some() || !previewable(media_type, item) {
                    continue;
                }
                let mut enriched = item.clone();
                enriched.insert("nodeId".to_owned(), Value::from(node_id.as_str()));
                enriched.insert("mediaType".to_owned(), Value::from(media_type.as_str()));
                if item.get("type").and_then(Value::as_str) == Some("output") {
                    preview = Some(Value::Object(enriched));
                } else if fallback.is_none() {
                    fallback = Some(Value::Object(enriched));
                }
            }
        }
    }
    (count, preview.or(fallback))
}

fn previewable(media_type: &str, item: &Map<String, Value>) -> bool {
    if PREVIEWABLE.contains(&media_type) {
        return true;
    }
    let format = item.get("format").and_then(Value::as_str).unwrap_or("");
    if format.starts_with("video/") || format.starts_with("audio/") {
        return true;
    }
    let filename = item
        .get("filename")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    THREE_D.iter().any(|ext| filename.ends_with(ext))
}

fn sort_key(job: &Map<String, Value>, by_duration: bool) -> f64 {
    let number = |key: &str| job.get(key).and_then(Value::as_f64).unwrap_or(0.0);
    if by_duration {
        let (start, end) = (number("execution_start_time"), number("execution_end_time"));
        if start != 0.0 && end != 0.0 {
            end - start
        } else {
            0.0
        }
    } else {
        number("create_time")
    }
}
