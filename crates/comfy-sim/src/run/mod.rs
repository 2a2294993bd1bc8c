//! The executor: runs one prompt at a time and emits ComfyUI's messages in the recorded order.

mod finish;
mod flood;
mod node;
mod progress;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde_json::{Map, Value, json};

use crate::hub::{text, text_json};
use crate::life::{Life, QueueItem};
use crate::plan::{order, signatures};
use crate::shared::Shared;
use progress::NodeStates;

/// Runs queued prompts until the life ends.
///
/// The end of the life wins over everything else: the `select!`s poll the token first, so a
/// run released (hang off, node time elapsed) in the same instant as the crash never goes on.
pub(crate) async fn executor(shared: Arc<Shared>, life: Arc<Life>) {
    while !life.is_over() {
        let Some(item) = life.start_next() else {
            tokio::select! {
                biased;
                () = life.token.cancelled() => return,
                () = life.wake.notified() => continue,
            }
        };
        life.broadcast_status();
        let run = Run::new(&shared, &life, item);
        tokio::select! {
            biased;
            () = life.token.cancelled() => return,
            () = run.execute() => {}
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Why a run stopped early.
enum Stop {
    Interrupted(String),
    Failed(String, String),
}

struct Run<'a> {
    shared: &'a Shared,
    life: &'a Life,
    item: Arc<QueueItem>,
    progress: NodeStates,
    messages: Vec<Value>,
    executed: Vec<String>,
    outputs: Map<String, Value>,
    meta: Map<String, Value>,
    cache: HashMap<u64, Option<Value>>,
}

impl<'a> Run<'a> {
    fn new(shared: &'a Shared, life: &'a Life, item: Arc<QueueItem>) -> Self {
        Self {
            shared,
            life,
            item,
            progress: NodeStates::default(),
            messages: Vec::new(),
            executed: Vec::new(),
            outputs: Map::new(),
            meta: Map::new(),
            cache: HashMap::new(),
        }
    }

    fn client(&self) -> Option<&str> {
        self.item.client_id.as_deref()
    }

    fn prompt_id(&self) -> &str {
        &self.item.prompt_id
    }

    /// Sends to the submitting client only (nothing without a client id).
    fn to_client(&self, kind: &str, data: Value) {
        if let Some(client) = self.client() {
            self.life.hub.send_to(client, text(kind, data));
        }
    }

    /// Sends to the submitting client, or to everybody without a client id.
    fn to_client_or_all(&self, kind: &str, data: Value) {
        self.life
            .hub
            .send_or_broadcast(self.client(), text(kind, data));
    }

    fn remember(&mut self, kind: &str, data: &Value) {
        self.messages.push(json!([kind, data]));
    }

    fn progress_state(&mut self, node: &str, value: &Value, max: &Value, state: &str) {
        self.progress
            .set(&self.item.prompt_id, node, value, max, state);
        if !self.life.hub.reaches(self.client()) {
            return;
        }
        let frame = text_json(self.progress.message(self.prompt_id()));
        self.life.hub.send_or_broadcast(self.client(), frame);
    }

    async fn execute(mut self) {
        let prompt = Arc::clone(&self.item.prompt);
        let empty = Map::new();
        let nodes = prompt.as_object().unwrap_or(&empty);
        let plan = order(nodes, &self.item.outputs);
        let planned: HashSet<&str> = plan.iter().map(String::as_str).collect();
        let sigs = signatures(nodes, &plan);
        let failure = self.planned_failure(nodes, &plan);

        let start = json!({"prompt_id": self.prompt_id(), "timestamp": now_ms()});
        self.to_client("execution_start", start.clone());
        self.remember("execution_start", &start);

        let mut cached: Vec<String> = Vec::new();
        if failure.is_none() {
            for id in nodes.keys() {
                let class = class_of(nodes, id);
                let sig = sigs.get(id).copied().unwrap_or_default();
                if planned.contains(id.as_str())
                    && class != "SaveImageWebsocket"
                    && let Some(output) = self.life.cached(sig)
                {
                    self.cache.insert(sig, output);
                    cached.push(id.clone());
                }
            }
        }
        let data = json!({"nodes": cached, "prompt_id": self.prompt_id(), "timestamp": now_ms()});
        self.to_client("execution_cached", data.clone());
        self.remember("execution_cached", &data);

        let draw_drop = self.shared.rng.lock().random::<f64>();
        if draw_drop < self.shared.knobs.lock().ws_drop_probability {
            self.life.hub.drop_all();
        }

        let mut cached_outputs = false;
        for id in &cached {
            let sig = sigs.get(id).copied().unwrap_or_default();
            if let Some(Some(output)) = self.cache.get(&sig).cloned() {
                self.emit_output(id, output);
                cached_outputs = true;
            }
        }
        if cached_outputs {
            for id in &cached {
                let sig = sigs.get(id).copied().unwrap_or_default();
                if matches!(self.cache.get(&sig), Some(Some(_))) {
                    self.progress_state(id, &json!(1), &json!(1), "finished");
                }
            }
        }

        let mut stop = None;
        let skipped: HashSet<&str> = cached.iter().map(String::as_str).collect();
        for id in plan.iter().filter(|id| !skipped.contains(id.as_str())) {
            if self.life.is_over() {
                // Another thread crashed the server mid-run: nothing more of it may happen.
                return;
            }
            let class = class_of(nodes, id).to_owned();
            if let Err(s) = self.node(nodes, id, &class, failure.as_ref()).await {
                stop = Some(s);
                break;
            }
            let sig = sigs.get(id).copied().unwrap_or_default();
            let output = self.outputs.get(id.as_str()).cloned();
            self.cache.insert(sig, output);
            self.executed.push(id.clone());
        }
        self.life.set_cache(std::mem::take(&mut self.cache));
        self.life.set_current_node(None);
        self.finish(nodes, stop);
    }

    /// Decides, before running, which node fails on purpose and why.
    fn planned_failure(
        &self,
        nodes: &Map<String, Value>,
        plan: &[String],
    ) -> Option<(String, String)> {
        let draw = self.shared.rng.lock().random::<f64>();
        let mut knobs = self.shared.knobs.lock();
        for id in plan {
            let class = class_of(nodes, id);
            if knobs.fail_classes.contains(class) {
                return Some((
                    id.clone(),
                    format!("simulated failure of node class {class}"),
                ));
            }
            let inputs = nodes
                .get(id)
                .and_then(|n| n.get("inputs"))
                .and_then(Value::as_object);
            if let Some(model) = inputs
                .into_iter()
                .flat_map(|i| i.values())
                .find_map(|v| v.as_str().filter(|s| knobs.fail_models.contains(*s)))
            {
                return Some((
                    id.clone(),
                    format!("simulated failure loading model {model}"),
                ));
            }
        }
        let last = plan.last()?.clone();
        if knobs.fail_next > 0 {
            knobs.fail_next -= 1;
            return Some((last, "simulated failure (fail_next)".to_owned()));
        }
        if draw < knobs.error_probability {
            return Some((last, "simulated random failure".to_owned()));
        }
        None
    }
}

fn class_of<'m>(nodes: &'m Map<String, Value>, id: &str) -> &'m str {
    nodes
        .get(id)
        .and_then(|n| n.get("class_type"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn input_link<'m>(nodes: &'m Map<String, Value>, id: &str, input: &str) -> Option<&'m str> {
    let value = nodes.get(id)?.get("inputs")?.get(input)?;
    crate::validate::as_link(value).map(|(linked, _)| linked)
}
