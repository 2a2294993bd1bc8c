//! [`RunStore`]: where `comfy-pool run` keeps its jobs (`--store`), and the check that a
//! command line still means the jobs stored under its ids.

use std::sync::Arc;

use comfy_pool::JobRecord;
use pool_store::JobStore;

use crate::error::{Error, Result};
use crate::run::plan::Plan;

/// The default `--store`: an SQLite file in the current directory.
pub const DEFAULT_STORE: &str = "sqlite:comfy-pool.db";

/// The `--store` value that keeps jobs in memory only (nothing survives the process).
pub const MEMORY_STORE: &str = "memory";

/// The job store of a run: durable (SQLite, PostgreSQL) or none (the pool's memory).
#[derive(Debug, Clone)]
pub struct RunStore {
    store: Option<Arc<dyn JobStore>>,
}

impl RunStore {
    /// Opens the store a `--store` URL names: `memory` (or `memory:`), `sqlite:PATH` (created
    /// if missing), `sqlite::memory:` or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the URL is not one of these or the store cannot be opened (the
    /// message never quotes a password).
    pub async fn open(url: &str) -> Result<Self> {
        let url = url.trim();
        if url == MEMORY_STORE || url == "memory:" {
            return Ok(Self { store: None });
        }
        let store: Arc<dyn JobStore> = pool_store::open(url).await.map_err(Error::Store)?;
        Ok(Self { store: Some(store) })
    }

    /// The durable store, if there is one.
    pub fn durable(&self) -> Option<&Arc<dyn JobStore>> {
        self.store.as_ref()
    }

    /// Checks that every job id of `plan` is either new to the store or stored with the very
    /// workflow the plan gives it (seeds included), so that a re-run re-attaches to its own
    /// jobs and never reports another workflow's result under a reused id.
    ///
    /// # Errors
    ///
    /// [`Error::JobIdConflict`] naming the first id stored with another workflow;
    /// [`Error::Store`] when the store cannot be read.
    pub async fn check_ids(&self, plan: &Plan) -> Result<()> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        for spec in &plan.jobs {
            let stored = store.get(&spec.id).await.map_err(Error::Store)?;
            if let Some(record) = stored
                && !same_workflow(&record, &spec.workflow)
            {
                return Err(Error::JobIdConflict {
                    id: spec.id.clone(),
                    file: spec.file.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Whether a stored job runs `workflow` (and only it: a job of several variants is another
/// job).
fn same_workflow(record: &JobRecord, workflow: &serde_json::Value) -> bool {
    record.spec.variants().len() == 1 && **record.spec.workflow() == *workflow
}
