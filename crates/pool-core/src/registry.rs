//! The registry of known jobs: live ones, and finished ones up to a retention limit.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::job::JobCell;
use crate::{JobId, JobKey};

/// Jobs by id. Live jobs stay until they end; finished ones are kept (for idempotent ids and
/// lookups) up to `retain`, oldest dropped first, so memory stays bounded.
#[derive(Debug)]
pub(crate) struct Registry {
    jobs: HashMap<JobId, Arc<JobCell>>,
    finished: VecDeque<JobId>,
    retain: usize,
    next_key: u64,
    pub(crate) closed: bool,
}

impl Registry {
    pub(crate) fn new(retain: usize) -> Self {
        Self {
            jobs: HashMap::new(),
            finished: VecDeque::new(),
            retain,
            next_key: 1,
            closed: false,
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Arc<JobCell>> {
        self.jobs.get(id)
    }

    pub(crate) fn next_key(&mut self) -> JobKey {
        let key = JobKey(self.next_key);
        self.next_key += 1;
        key
    }

    pub(crate) fn insert(&mut self, cell: Arc<JobCell>) {
        self.jobs.insert(cell.id.clone(), cell);
    }

    /// Forgets a job that was never accepted.
    pub(crate) fn remove(&mut self, id: &JobId) {
        self.jobs.remove(id);
    }

    /// Marks a job finished and takes out the oldest finished jobs beyond the limit: the
    /// caller drops them once it let go of the registry's lock (freeing a job's record,
    /// results and events is not work to do while enqueues wait for the lock).
    #[must_use = "the evicted jobs are to be dropped outside the registry's lock"]
    pub(crate) fn finished(&mut self, id: &JobId) -> Vec<Arc<JobCell>> {
        self.finished.push_back(id.clone());
        let mut evicted = Vec::new();
        while self.finished.len() > self.retain {
            if let Some(old) = self.finished.pop_front()
                && let Some(cell) = self.jobs.remove(&old)
            {
                evicted.push(cell);
            }
        }
        evicted
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use workflow_hash::WorkflowHash;

    use super::*;
    use crate::{JobOptions, JobRecord, JobSpec, Timestamp};

    fn cell(registry: &mut Registry, id: &str) -> Arc<JobCell> {
        let workflow = json!({"1": {"class_type": "SaveImage", "inputs": {}}});
        let hash = WorkflowHash::of(&workflow).unwrap_or_else(|e| panic!("{e}"));
        let spec = JobSpec::new(Arc::new(workflow), hash, JobOptions::new());
        let record = JobRecord::new(JobId::from(id), Arc::new(spec), Timestamp::now());
        let cell = Arc::new(JobCell::new(registry.next_key(), record));
        registry.insert(Arc::clone(&cell));
        cell
    }

    fn ids(evicted: &[Arc<JobCell>]) -> Vec<&str> {
        evicted.iter().map(|c| c.id.as_str()).collect()
    }

    #[test]
    fn the_oldest_finished_jobs_beyond_the_limit_are_handed_back_and_forgotten() {
        let mut registry = Registry::new(2);
        let cells: Vec<_> = ["a", "b", "c", "live"]
            .iter()
            .map(|id| cell(&mut registry, id))
            .collect();
        assert!(ids(&registry.finished(&cells[0].id)).is_empty());
        assert!(ids(&registry.finished(&cells[1].id)).is_empty());
        // The third finished job pushes the first out: handed back (the caller drops it
        // outside the lock), no longer found.
        let evicted = registry.finished(&cells[2].id);
        assert_eq!(ids(&evicted), ["a"]);
        assert!(Arc::ptr_eq(&evicted[0], &cells[0]));
        assert!(registry.get("a").is_none());
        for kept in ["b", "c", "live"] {
            assert!(registry.get(kept).is_some(), "{kept} is kept");
        }
    }

    #[test]
    fn a_finished_job_forgotten_before_its_eviction_hands_back_nothing() {
        let mut registry = Registry::new(0);
        let gone = cell(&mut registry, "gone");
        registry.remove(&gone.id);
        assert!(ids(&registry.finished(&gone.id)).is_empty());
        let next = cell(&mut registry, "next");
        assert_eq!(ids(&registry.finished(&next.id)), ["next"]);
    }
}
