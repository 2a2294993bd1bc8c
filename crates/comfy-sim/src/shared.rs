//! State shared by every life of one server: configuration, knobs, disk, counters.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Notify;

use crate::catalog::{ModelInput, NodeCatalog};
use crate::config::SimConfig;
use crate::faults::FaultSettings;
use crate::files::{FileStore, StoredFile};
use crate::life::{Held, Life};
use crate::png::tiny_png;
use crate::stats::{Outcome, StatKeys, Stats};
use crate::version::ComfyVersion;

/// Node timing, changeable while running.
#[derive(Clone, Debug)]
pub(crate) struct Timing {
    pub(crate) exec_time: Duration,
    pub(crate) node_exec_times: HashMap<String, Duration>,
    pub(crate) steps: u32,
    pub(crate) node_steps: HashMap<String, u32>,
}

impl Timing {
    pub(crate) fn exec_time(&self, class: &str) -> Duration {
        self.node_exec_times
            .get(class)
            .copied()
            .unwrap_or(self.exec_time)
    }

    pub(crate) fn steps(&self, class: &str) -> u32 {
        self.node_steps.get(class).copied().unwrap_or(self.steps)
    }
}

/// Everything that outlives a crash.
pub(crate) struct Shared {
    pub(crate) version: ComfyVersion,
    pub(crate) catalog: NodeCatalog,
    pub(crate) model_inputs: Vec<ModelInput>,
    pub(crate) body_limit: usize,
    pub(crate) knobs: Mutex<FaultSettings>,
    pub(crate) knobs_changed: Notify,
    pub(crate) timing: Mutex<Timing>,
    pub(crate) models: Mutex<BTreeMap<String, Vec<String>>>,
    pub(crate) files: Mutex<FileStore>,
    pub(crate) rng: Mutex<SmallRng>,
    pub(crate) stats: Mutex<Stats>,
    life: RwLock<Arc<Life>>,
    pub(crate) png: Bytes,
}

impl Shared {
    pub(crate) fn new(config: SimConfig) -> Self {
        let png = tiny_png([0x2a, 0x8c, 0xd4]);
        let mut files = FileStore::default();
        for name in &config.input_files {
            let (sub, file) = crate::files::split_path(name);
            files.put("input", sub, file, StoredFile::new(png.clone()));
        }
        let mut rng = SmallRng::seed_from_u64(config.seed);
        let life = Life::new(temp_prefix(&mut rng));
        Self {
            version: config.version,
            catalog: config.catalog.for_version(config.version),
            model_inputs: config.model_inputs,
            body_limit: config.body_limit,
            knobs: Mutex::new(config.faults),
            knobs_changed: Notify::new(),
            timing: Mutex::new(Timing {
                exec_time: config.exec_time,
                node_exec_times: config.node_exec_times,
                steps: config.steps,
                node_steps: config.node_steps,
            }),
            models: Mutex::new(config.models),
            files: Mutex::new(files),
            rng: Mutex::new(rng),
            stats: Mutex::new(Stats::default()),
            life: RwLock::new(Arc::new(life)),
            png,
        }
    }

    /// The current life.
    pub(crate) fn life(&self) -> Arc<Life> {
        Arc::clone(&self.life.read())
    }

    /// Ends the current life (sockets, queue, history, executor) and starts a fresh one.
    pub(crate) fn new_life(&self) -> Arc<Life> {
        let prefix = temp_prefix(&mut self.rng.lock());
        let fresh = Arc::new(Life::new(prefix));
        let old = std::mem::replace(&mut *self.life.write(), Arc::clone(&fresh));
        self.end_life(&old);
        fresh
    }

    /// Ends `life`. The counters are locked meanwhile, so a run's outcome is either counted
    /// before the end or never (see [`Shared::record_outcome`]).
    pub(crate) fn end_life(&self, life: &Life) {
        let stats = self.stats.lock();
        life.end();
        drop(stats);
    }

    /// Counts how a run of `life` ended, unless that life is already over.
    pub(crate) fn record_outcome(&self, life: &Life, keys: &StatKeys, outcome: Outcome) {
        let mut stats = self.stats.lock();
        if !life.is_over() {
            stats.record_outcome(keys, outcome);
        }
    }

    /// Raises the high-water marks of prompts held, unless `life` is already over.
    pub(crate) fn record_held(&self, life: &Life, client_id: Option<&str>, held: Held) {
        let mut stats = self.stats.lock();
        if !life.is_over() {
            stats.record_held(client_id, held.total, held.client);
        }
    }

    /// Whether `class` is usable here (in the catalog and not hidden by a fault).
    pub(crate) fn has_class(&self, class: &str) -> bool {
        self.catalog.contains(class) && !self.knobs.lock().reject_classes.contains(class)
    }

    /// Installed files of a model folder, minus the ones a fault removed.
    pub(crate) fn model_files(&self, folder: &str) -> Option<Vec<String>> {
        let files = self.models.lock().get(folder).cloned()?;
        let knobs = self.knobs.lock();
        Some(
            files
                .into_iter()
                .filter(|f| !knobs.missing_models.contains(f))
                .collect(),
        )
    }

    /// The model folder `class.input` reads, if it is a model input.
    pub(crate) fn model_folder(&self, class: &str, input: &str) -> Option<&str> {
        self.model_inputs
            .iter()
            .find(|m| m.class == class && m.input == input)
            .map(|m| m.folder.as_str())
    }
}

/// ComfyUI's random five lowercase letters of temp file names.
fn temp_prefix(rng: &mut SmallRng) -> String {
    (0..5)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}
