//! What a run reports: [`JobReport`] per finished job, [`RunSummary`] at the end, as JSON
//! lines or as text.

use std::fmt;

use comfy_pool::{FailureClass, WorkflowHash};
use serde_json::{Value, json};

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It ran to the end on a server.
    Completed,
    /// It failed for good (every attempt failed, ComfyUI rejected it, or no server could take
    /// it).
    Failed,
    /// It was cancelled (the run was interrupted, with the `memory` store).
    Cancelled,
    /// The run was interrupted and left it unfinished in a durable store, for the same
    /// command to take up again.
    Interrupted,
}

impl Outcome {
    /// `completed`, `failed` or `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One finished job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobReport {
    /// The job id.
    pub job_id: String,
    /// The workflow file, as given.
    pub workflow: String,
    /// Its structural hash.
    pub hash: WorkflowHash,
    /// How it ended.
    pub status: Outcome,
    /// The server it completed on, or for a failed job the server of its last attempt
    /// (`None` if it never ran).
    pub server: Option<String>,
    /// How many attempts it made (not counting those withdrawn from a server before they
    /// started: a prompt taken back for a free server, a server that left).
    pub attempts: u32,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
}

impl JobReport {
    /// The JSON line of `--json`: `job_id`, `workflow`, `hash`, `status`, `server`,
    /// `attempts`, `error`.
    pub fn to_json(&self) -> Value {
        json!({
            "job_id": self.job_id,
            "workflow": self.workflow,
            "hash": self.hash.to_string(),
            "status": self.status.as_str(),
            "server": self.server,
            "attempts": self.attempts,
            "error": self.error,
        })
    }

    /// The text line: status, job id, and where it ran or the first line of its error.
    pub fn line(&self) -> String {
        let place = match (&self.status, &self.server, &self.error) {
            (Outcome::Completed, Some(server), _) => format!("on {server}"),
            (_, _, Some(error)) => first_line(error),
            _ => String::new(),
        };
        format!("{:>9}  {}  {place}", self.status, self.job_id)
    }
}

/// A block the failover strategy set during the run: `hash` was kept off `server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The server.
    pub server: String,
    /// The workflow's structural hash.
    pub hash: WorkflowHash,
    /// The class of the failure that caused it.
    pub class: FailureClass,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunSummary {
    /// Jobs enqueued.
    pub submitted: usize,
    /// Jobs completed.
    pub completed: usize,
    /// Jobs failed.
    pub failed: usize,
    /// Jobs cancelled.
    pub cancelled: usize,
    /// Jobs left unfinished in a durable store by an interrupt.
    pub interrupted: usize,
    /// Every block set during the run, in order.
    pub blocks: Vec<Block>,
    /// Every job, in the order they finished.
    pub jobs: Vec<JobReport>,
}

impl RunSummary {
    /// Counts a finished job.
    pub(crate) fn record(&mut self, job: JobReport) {
        match job.status {
            Outcome::Completed => self.completed += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Cancelled => self.cancelled += 1,
            Outcome::Interrupted => self.interrupted += 1,
        }
        self.jobs.push(job);
    }

    /// Whether every job ran to a verdict: completed or failed, none cancelled, interrupted or
    /// left over.
    pub fn all_done(&self) -> bool {
        self.completed + self.failed == self.submitted
    }

    /// The last line of `--json`: `{"summary": {"submitted", "completed", "failed",
    /// "cancelled", "interrupted", "blocks": [{"server", "hash", "class"}]}}`.
    pub fn to_json(&self) -> Value {
        let blocks: Vec<Value> = self
            .blocks
            .iter()
            .map(|b| json!({"server": b.server, "hash": b.hash.to_string(), "class": b.class.as_str()}))
            .collect();
        json!({"summary": {
            "submitted": self.submitted,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "interrupted": self.interrupted,
            "blocks": blocks,
        }})
    }

    /// The text summary: the counts, then one line per block, naming the workflow files
    /// `files` gives for a hash.
    pub fn lines<'a>(&self, files: impl Fn(&WorkflowHash) -> Vec<&'a str>) -> Vec<String> {
        let interrupted = if self.interrupted > 0 {
            format!(", {} interrupted (kept in the store)", self.interrupted)
        } else {
            String::new()
        };
        let mut lines = vec![format!(
            "{} submitted, {} completed, {} failed, {} cancelled{interrupted}, {} blocks",
            self.submitted,
            self.completed,
            self.failed,
            self.cancelled,
            self.blocks.len()
        )];
        for block in &self.blocks {
            lines.push(format!(
                "  blocked {} ({}) on {}: {}",
                files(&block.hash).join(", "),
                block.hash.short(),
                block.server,
                block.class
            ));
        }
        lines
    }
}

/// The first line of `text`, cut to 160 characters.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() > 160 {
        let cut: String = line.chars().take(157).collect();
        format!("{cut}...")
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use comfy_pool::WorkflowHash;

    use super::{JobReport, Outcome, RunSummary};

    fn job(status: Outcome) -> JobReport {
        JobReport {
            job_id: "x-1".into(),
            workflow: "x.json".into(),
            hash: WorkflowHash::from_bytes([7; 32]),
            status,
            server: Some("sim-1".into()),
            attempts: 2,
            error: (status != Outcome::Completed).then(|| format!("boom\n{}", "x".repeat(300))),
        }
    }

    #[test]
    fn json_lines_carry_every_field() {
        let line = job(Outcome::Failed).to_json();
        let keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "job_id", "workflow", "hash", "status", "server", "attempts", "error"
            ]
        );
        assert_eq!(line["status"], "failed");
        assert_eq!(line["hash"].as_str().unwrap().len(), 64);
    }

    #[test]
    fn text_lines_show_the_server_or_the_first_error_line() {
        assert!(job(Outcome::Completed).line().ends_with("x-1  on sim-1"));
        assert!(job(Outcome::Failed).line().ends_with("x-1  boom"));
    }

    #[test]
    fn only_completed_and_failed_jobs_count_as_done() {
        let mut summary = RunSummary {
            submitted: 2,
            ..RunSummary::default()
        };
        summary.record(job(Outcome::Completed));
        summary.record(job(Outcome::Cancelled));
        assert!(!summary.all_done());
        assert_eq!(summary.to_json()["summary"]["cancelled"], 1);
        let mut interrupted = RunSummary {
            submitted: 1,
            ..RunSummary::default()
        };
        interrupted.record(job(Outcome::Interrupted));
        assert!(!interrupted.all_done());
        assert_eq!(interrupted.to_json()["summary"]["interrupted"], 1);
        assert!(interrupted.lines(|_| Vec::new())[0].contains("1 interrupted"));
    }
}
