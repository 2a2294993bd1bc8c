//! Scriptable faults: what a simulated server does wrong, changeable while it runs.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::shared::Shared;

/// The fault knobs of one server. Start from `FaultSettings::default()` (no faults) and set
/// fields; pass it to [`SimConfig::faults`](crate::SimConfig::faults) or
/// [`Faults::set`].
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct FaultSettings {
    /// Prompts containing one of these classes fail at run time with `execution_error` on the
    /// first node of that class.
    pub fail_classes: BTreeSet<String>,
    /// Prompts whose nodes name one of these model files in an input fail at run time with
    /// `execution_error` on that node (the file is "installed" but broken).
    pub fail_models: BTreeSet<String>,
    /// Classes hidden from the catalog: prompts using them get 400 `invalid_prompt`, and
    /// `/object_info` does not list them.
    pub reject_classes: BTreeSet<String>,
    /// Model files treated as not installed: a loader naming one gets 400
    /// `value_not_in_list`, and `/models/{folder}` does not list it.
    pub missing_models: BTreeSet<String>,
    /// Accept prompts, start them (`execution_start`, first `executing`), then never progress
    /// until this is turned off again; an interrupt sent meanwhile takes effect only then.
    pub hang: bool,
    /// Answer 500 on every HTTP route whose path (without the `/api` prefix) starts with this
    /// prefix; `Some("")` or `Some("/")` means every route. WebSocket upgrades included.
    pub http_500: Option<String>,
    /// Fixed delay before every HTTP answer.
    pub http_delay: Duration,
    /// The next N accepted prompts fail at run time with `execution_error` on their last node.
    pub fail_next: u32,
    /// Chance (0.0..=1.0) that a prompt fails at run time, drawn from the seeded generator.
    pub error_probability: f64,
    /// Chance (0.0..=1.0) that all WebSocket connections are dropped when a prompt starts,
    /// drawn from the seeded generator.
    pub ws_drop_probability: f64,
}

/// A handle to change a running server's faults and timing.
///
/// Cheap to clone (an `Arc` inside); stays valid across
/// [`SimServer::crash_and_restart`](crate::SimServer::crash_and_restart). Changes apply to the
/// next request or node.
#[derive(Clone)]
pub struct Faults {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Faults").field(&self.get()).finish()
    }
}

impl Faults {
    /// A snapshot of the current settings.
    pub fn get(&self) -> FaultSettings {
        self.shared.knobs.lock().clone()
    }

    /// Replaces all settings at once.
    pub fn set(&self, settings: FaultSettings) {
        self.update(|s| *s = settings);
    }

    /// Changes settings in place: `faults.update(|f| f.hang = true)`.
    pub fn update(&self, change: impl FnOnce(&mut FaultSettings)) {
        change(&mut self.shared.knobs.lock());
        self.shared.knobs_changed.notify_waiters();
    }

    /// Clears every fault (timing is left alone).
    pub fn clear(&self) {
        self.set(FaultSettings::default());
    }

    /// Prompts with this class fail at run time (`execution_error`).
    pub fn fail_class(&self, class: &str) {
        self.update(|f| {
            f.fail_classes.insert(class.to_owned());
        });
    }

    /// Prompts naming this model file fail at run time (`execution_error`).
    pub fn fail_model(&self, file: &str) {
        self.update(|f| {
            f.fail_models.insert(file.to_owned());
        });
    }

    /// Prompts with this class are rejected with 400 `invalid_prompt` (class unknown here).
    pub fn reject_class(&self, class: &str) {
        self.update(|f| {
            f.reject_classes.insert(class.to_owned());
        });
    }

    /// This model file counts as not installed (400 `value_not_in_list` on the loader).
    pub fn remove_model(&self, file: &str) {
        self.update(|f| {
            f.missing_models.insert(file.to_owned());
        });
    }

    /// Installs a model file in `folder` while running.
    pub fn add_model(&self, folder: &str, file: &str) {
        let mut models = self.shared.models.lock();
        let files = models.entry(folder.to_owned()).or_default();
        if !files.iter().any(|f| f == file) {
            files.push(file.to_owned());
        }
        drop(models);
        self.update(|f| {
            f.missing_models.remove(file);
        });
    }

    /// Turns hanging on or off (see [`FaultSettings::hang`]).
    pub fn set_hang(&self, hang: bool) {
        self.update(|f| f.hang = hang);
    }

    /// Answers 500 on every route (`Some("")`), on a path prefix (`Some("/prompt")`), or
    /// stops doing so (`None`).
    pub fn set_http_500(&self, prefix: Option<&str>) {
        self.update(|f| f.http_500 = prefix.map(str::to_owned));
    }

    /// Delays every HTTP answer by `delay`.
    pub fn set_http_delay(&self, delay: Duration) {
        self.update(|f| f.http_delay = delay);
    }

    /// The next `n` accepted prompts fail at run time.
    pub fn fail_next(&self, n: u32) {
        self.update(|f| f.fail_next = n);
    }

    /// Chance that a prompt fails at run time (seeded, repeatable).
    pub fn set_error_probability(&self, p: f64) {
        self.update(|f| f.error_probability = p.clamp(0.0, 1.0));
    }

    /// Chance that all sockets drop when a prompt starts (seeded, repeatable).
    pub fn set_ws_drop_probability(&self, p: f64) {
        self.update(|f| f.ws_drop_probability = p.clamp(0.0, 1.0));
    }

    /// Closes every WebSocket connection now (the TCP connection is dropped without a close
    /// frame); prompts keep running and clients may reconnect.
    pub fn drop_websockets(&self) {
        self.shared.life().hub.drop_all();
    }

    /// Execution time of every node from now on.
    pub fn set_exec_time(&self, time: Duration) {
        self.shared.timing.lock().exec_time = time;
    }

    /// Execution time of one class from now on.
    pub fn set_node_exec_time(&self, class: &str, time: Duration) {
        self.shared
            .timing
            .lock()
            .node_exec_times
            .insert(class.to_owned(), time);
    }

    /// Progress steps of every node from now on.
    pub fn set_steps(&self, steps: u32) {
        self.shared.timing.lock().steps = steps;
    }

    /// Progress steps of one class from now on.
    pub fn set_node_steps(&self, class: &str, steps: u32) {
        self.shared
            .timing
            .lock()
            .node_steps
            .insert(class.to_owned(), steps);
    }
}
