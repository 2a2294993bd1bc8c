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

    /// Marks a job finished and drops the oldest finished jobs beyond the limit.
    pub(crate) fn finished(&mut self, id: &JobId) {
        self.finished.push_back(id.clone());
        while self.finished.len() > self.retain {
            if let Some(old) = self.finished.pop_front() {
                self.jobs.remove(&old);
            }
        }
    }
}
