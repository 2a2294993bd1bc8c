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
    /// prefix; `Some("")` or `Some("/")` means every route. WebSocket upgrades included. A
    /// method in front limits it to that method: `Some("POST /prompt")` fails submissions
    /// while `GET /prompt` and every other route stay healthy.
    pub http_500: Option<String>,
    /// Never answer HTTP routes matching this (same form as [`FaultSettings::http_500`]):
    /// requests hang until the client gives up, while `/ws` keeps working and the running
    /// prompt keeps running and sending messages. Requests frozen once stay frozen.
    pub http_freeze: Option<String>,
    /// What `GET /history` and `GET /history/{id}` answer instead of the history.
    pub history_garbage: Option<Garbage>,
    /// What `GET /queue` answers instead of the queue.
    pub queue_garbage: Option<Garbage>,
    /// Extra websocket messages every node of a run sends (off by default).
    pub ws_flood: WsFlood,
    /// How a prompt using an unknown node class is rejected.
    pub rejection_style: RejectionStyle,
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

/// A broken answer of a JSON route (see [`FaultSettings::history_garbage`] and
/// [`FaultSettings::queue_garbage`]). The websocket and the running prompt are unaffected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Garbage {
    /// 200 `application/json` with a body cut off mid-value (`{"queue_running": [[0, "`).
    MalformedJson,
    /// 200 with valid JSON of the wrong types: `{"<id>": 5}` for the history (every stored
    /// id, or the one asked for), `{"queue_running": "x", "queue_pending": 7}` for the queue.
    WrongTypes,
    /// 200 with a valid JSON object of exactly this many bytes (`{"sim_padding":"xx…"}`),
    /// streamed in 64 KiB chunks without a `Content-Length`; never held in memory whole.
    Huge(u64),
    /// No answer: the request hangs until the client gives up or the server crashes.
    Freeze,
}

/// Websocket floods: extra messages every executed node of a run sends, to push a client
/// that keeps everything it receives to gigabytes (2,000 previews of 1 MiB per node is
/// 2 GiB a node).
///
/// Each frame is sent as fast as the receiving socket takes it: the server awaits room in
/// the socket's queue before the next one, so it never buffers more than a few frames per
/// socket itself. A flood stops early when the prompt is interrupted. All zero (the
/// default) is no flood.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WsFlood {
    /// Binary text frames (event 3: the node's id and the text `sim flood`) broadcast per
    /// node, like the progress text of `GetImageSize`.
    pub texts: u32,
    /// Preview frames per node to the submitting client (or everybody without a client
    /// id): event 4 with metadata to a socket that negotiated `supports_preview_metadata`,
    /// else event 1 (PNG).
    pub previews: u32,
    /// Size of the image in each flood preview frame, in bytes (a PNG signature, then zeros).
    pub preview_bytes: usize,
    /// Extra copies of every `executed` message (nodes with an output only).
    pub executed: u32,
    /// Extra copies of every node's `executing` message.
    pub executing: u32,
}

impl WsFlood {
    /// `count` text frames per node.
    pub fn texts(count: u32) -> Self {
        Self {
            texts: count,
            ..Self::default()
        }
    }

    /// `count` preview frames of `bytes` bytes each per node.
    pub fn previews(count: u32, bytes: usize) -> Self {
        Self {
            previews: count,
            preview_bytes: bytes,
            ..Self::default()
        }
    }

    /// `count` extra copies of every `executed` message.
    pub fn executed(count: u32) -> Self {
        Self {
            executed: count,
            ..Self::default()
        }
    }

    /// `count` extra copies of every `executing` message.
    pub fn executing(count: u32) -> Self {
        Self {
            executing: count,
            ..Self::default()
        }
    }

    /// Whether this sends nothing extra.
    pub fn is_off(&self) -> bool {
        (self.texts, self.previews, self.executed, self.executing) == (0, 0, 0, 0)
    }
}

/// How a prompt naming a node class the server does not have is rejected (400, `node_errors`
/// empty, `details` `"Node ID '#7'"` in both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectionStyle {
    /// ComfyUI 0.3.x to 0.8: `error.type` `invalid_prompt`, message
    /// `"Cannot execute because node X does not exist."`, `extra_info` `{}`.
    #[default]
    Legacy,
    /// Later releases: `error.type` `missing_node_type`, message `"Node 'X' not found. The
    /// custom node may not be installed."` (X is the node's `_meta.title` when it has one,
    /// else its class), `extra_info` `{node_id, class_type, node_title}`. A node without
    /// `class_type` is a `missing_node_type` too: `"Node 'X' has no class_type. The workflow
    /// may be corrupted or a custom node is missing."` (X its title or `ID #7`).
    Current,
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

    /// Clears every fault (timing is left alone; the rejection style goes back to
    /// [`RejectionStyle::Legacy`]).
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

    /// Never answers routes matching `pattern` (see [`FaultSettings::http_freeze`]), or
    /// stops freezing new requests (`None`).
    pub fn set_http_freeze(&self, pattern: Option<&str>) {
        self.update(|f| f.http_freeze = pattern.map(str::to_owned));
    }

    /// Breaks `GET /history` and `GET /history/{id}` (`None` mends them).
    pub fn set_history_garbage(&self, garbage: Option<Garbage>) {
        self.update(|f| f.history_garbage = garbage);
    }

    /// Breaks `GET /queue` (`None` mends it).
    pub fn set_queue_garbage(&self, garbage: Option<Garbage>) {
        self.update(|f| f.queue_garbage = garbage);
    }

    /// Floods the websocket during runs from the next node on ([`WsFlood::default`] stops).
    pub fn set_ws_flood(&self, flood: WsFlood) {
        self.update(|f| f.ws_flood = flood);
    }

    /// Rejects unknown node classes in this style from now on.
    pub fn set_rejection_style(&self, style: RejectionStyle) {
        self.update(|f| f.rejection_style = style);
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
