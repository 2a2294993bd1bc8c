//! [`JobBook`]: what the demo knows about each job it enqueued (label, hash, tenant).

use std::collections::HashMap;
use std::sync::Arc;

use comfy_pool::{JobHandle, JobId, JobOptions, Pool, WorkflowHash};
use parking_lot::Mutex;

use crate::{Result, Workflow};

/// What the demo knows about one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// The workflow's name.
    pub label: String,
    /// The workflow's structural hash.
    pub hash: WorkflowHash,
    /// The tenant, if any.
    pub tenant: Option<String>,
}

/// Every job a demo enqueued, by id, so events (which carry only the job id) can be told
/// apart by workflow. Cheap to clone (an `Arc` inside).
#[derive(Debug, Clone, Default)]
pub struct JobBook {
    jobs: Arc<Mutex<HashMap<JobId, JobInfo>>>,
}

impl JobBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Enqueues `workflow` on `pool` and records the job.
    ///
    /// # Errors
    ///
    /// The pool's refusal.
    pub async fn enqueue(
        &self,
        pool: &Pool,
        workflow: &Workflow,
        options: JobOptions,
    ) -> Result<JobHandle> {
        let tenant = options.get_tenant().map(str::to_owned);
        // The id is chosen here and recorded first, so even the `Queued` event has a label.
        let id = options.get_job_id().cloned().unwrap_or_else(JobId::random);
        let info = JobInfo {
            label: workflow.name.clone(),
            hash: workflow.hash,
            tenant,
        };
        self.jobs.lock().insert(id.clone(), info);
        match pool
            .enqueue(workflow.value.clone(), options.job_id(id.clone()))
            .await
        {
            Ok(job) => Ok(job),
            Err(error) => {
                self.jobs.lock().remove(&id);
                Err(error.into())
            }
        }
    }

    /// Every job enqueued through the book.
    pub fn ids(&self) -> Vec<JobId> {
        self.jobs.lock().keys().cloned().collect()
    }

    /// What is known about a job.
    pub fn get(&self, job: &JobId) -> Option<JobInfo> {
        self.jobs.lock().get(job).cloned()
    }

    /// The hash of a job's workflow.
    pub fn hash(&self, job: &JobId) -> Option<WorkflowHash> {
        self.jobs.lock().get(job).map(|info| info.hash)
    }

    /// The label of a job's workflow (`?` when unknown).
    pub fn label(&self, job: &JobId) -> String {
        self.jobs
            .lock()
            .get(job)
            .map_or_else(|| "?".to_owned(), |info| info.label.clone())
    }

    /// A short name for a job: the label and the first characters of its id.
    pub fn name(&self, job: &JobId) -> String {
        let id: String = job.as_str().chars().take(8).collect();
        format!("{} #{id}", self.label(job))
    }
}
