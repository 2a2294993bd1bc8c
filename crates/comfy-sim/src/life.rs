//! State of one server life: queue, running prompt, history, cache and sockets. A crash
//! throws the whole life away.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use crate::hub::{Hub, text};
use crate::jobs::Snapshot;
use crate::stats::StatKeys;

/// ComfyUI keeps at most this many history entries.
const MAX_HISTORY: usize = 10_000;

/// One accepted prompt.
#[derive(Debug)]
pub(crate) struct QueueItem {
    pub(crate) number: Value,
    pub(crate) order: f64,
    pub(crate) seq: u64,
    pub(crate) prompt_id: String,
    pub(crate) prompt: Arc<Value>,
    pub(crate) extra_data: Value,
    pub(crate) outputs: Vec<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) keys: StatKeys,
}

impl QueueItem {
    /// `[number, prompt_id, prompt, extra_data, outputs_to_execute]`.
    pub(crate) fn wire(&self) -> Value {
        json!([
            self.number,
            self.prompt_id,
            *self.prompt,
            self.extra_data,
            self.outputs
        ])
    }

    fn cmp_order(&self, other: &Self) -> CmpOrdering {
        self.order
            .total_cmp(&other.order)
            .then(self.seq.cmp(&other.seq))
    }
}

struct Running {
    item: Arc<QueueItem>,
    current_node: Option<String>,
}

#[derive(Default)]
struct Core {
    pending: Vec<Arc<QueueItem>>,
    /// Pending plus running prompts per client id (ids without prompts are removed).
    held_by_client: HashMap<String, usize>,
    running: Option<Running>,
    history: HashMap<String, Arc<Value>>,
    history_order: VecDeque<String>,
    number: u64,
    seq: u64,
    cache: HashMap<u64, Option<Value>>,
}

/// How many prompts a life held right after it took one more.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Held {
    /// Pending plus running prompts.
    pub(crate) total: usize,
    /// Of those, the ones of the new prompt's client id (zero without one).
    pub(crate) client: usize,
}

impl Core {
    /// Forgets `items` in the per-client counts (they left the queue).
    fn release<'a>(&mut self, items: impl IntoIterator<Item = &'a QueueItem>) {
        for item in items {
            let Some(client) = item.client_id.as_deref() else {
                continue;
            };
            if let Some(count) = self.held_by_client.get_mut(client) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.held_by_client.remove(client);
                }
            }
        }
    }
}

/// Everything a crash loses.
pub(crate) struct Life {
    /// Cancelled when the life ends; everything of this life (executor, connections,
    /// sockets) stops on it.
    pub(crate) token: CancellationToken,
    /// The executor task of this life, aborted when the life ends.
    executor: Mutex<Option<AbortHandle>>,
    pub(crate) hub: Hub,
    core: Mutex<Core>,
    pub(crate) wake: Notify,
    interrupted: AtomicBool,
    pub(crate) interrupt_notify: Notify,
    pub(crate) temp_prefix: String,
}

impl Life {
    pub(crate) fn new(temp_prefix: String) -> Self {
        Self {
            token: CancellationToken::new(),
            executor: Mutex::new(None),
            hub: Hub::default(),
            core: Mutex::new(Core::default()),
            wake: Notify::new(),
            interrupted: AtomicBool::new(false),
            interrupt_notify: Notify::new(),
            temp_prefix,
        }
    }

    /// True once a crash or shutdown ended this life.
    pub(crate) fn is_over(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Hands over the executor task of this life (aborted at once if the life is over).
    pub(crate) fn adopt_executor(&self, executor: AbortHandle) {
        let mut slot = self.executor.lock();
        if self.is_over() {
            executor.abort();
        } else {
            *slot = Some(executor);
        }
    }

    /// Ends this life: cancels the token (the caller makes that atomic with the counters),
    /// aborts the executor and drops every socket. Idempotent.
    pub(crate) fn end(&self) {
        let executor = {
            let mut slot = self.executor.lock();
            self.token.cancel();
            slot.take()
        };
        if let Some(executor) = executor {
            executor.abort();
        }
        self.hub.drop_all();
    }

    /// Running plus pending prompts.
    pub(crate) fn queue_remaining(&self) -> usize {
        let core = self.core.lock();
        core.pending.len() + usize::from(core.running.is_some())
    }

    /// `{"type":"status","data":{"status":{"exec_info":{"queue_remaining":N}}}}`.
    pub(crate) fn status_message(&self) -> axum::extract::ws::Message {
        text("status", self.status_data(None))
    }

    pub(crate) fn status_data(&self, sid: Option<&str>) -> Value {
        let mut data =
            json!({"status": {"exec_info": {"queue_remaining": self.queue_remaining()}}});
        if let (Some(sid), Some(map)) = (sid, data.as_object_mut()) {
            map.insert("sid".into(), Value::from(sid));
        }
        data
    }

    pub(crate) fn broadcast_status(&self) {
        self.hub.broadcast(&self.status_message());
    }

    /// Takes the next queue number (grows for every `POST /prompt`, even rejected ones).
    pub(crate) fn next_number(&self) -> u64 {
        let mut core = self.core.lock();
        let n = core.number;
        core.number += 1;
        n
    }

    pub(crate) fn next_seq(&self) -> u64 {
        let mut core = self.core.lock();
        core.seq += 1;
        core.seq
    }

    /// Queues an accepted prompt in number order and wakes the executor; returns how many
    /// prompts are held now.
    pub(crate) fn enqueue(&self, item: QueueItem) -> Held {
        let item = Arc::new(item);
        let held = {
            let mut core = self.core.lock();
            let client = match item.client_id.as_deref() {
                Some(id) => {
                    let count = core.held_by_client.entry(id.to_owned()).or_default();
                    *count += 1;
                    *count
                }
                None => 0,
            };
            let at = core
                .pending
                .partition_point(|p| p.cmp_order(&item) != CmpOrdering::Greater);
            core.pending.insert(at, item);
            Held {
                total: core.pending.len() + usize::from(core.running.is_some()),
                client,
            }
        };
        self.wake.notify_one();
        self.broadcast_status();
        held
    }

    /// Moves the first pending prompt to running.
    pub(crate) fn start_next(&self) -> Option<Arc<QueueItem>> {
        let mut core = self.core.lock();
        if core.running.is_some() || core.pending.is_empty() {
            return None;
        }
        let item = core.pending.remove(0);
        core.running = Some(Running {
            item: Arc::clone(&item),
            current_node: None,
        });
        self.interrupted.store(false, Ordering::SeqCst);
        Some(item)
    }

    pub(crate) fn set_current_node(&self, node: Option<&str>) {
        if let Some(running) = self.core.lock().running.as_mut() {
            running.current_node = node.map(str::to_owned);
        }
    }

    /// The running prompt's client id and current node, for a socket that reconnects.
    pub(crate) fn running_node_for(&self, client_id: &str) -> Option<String> {
        let core = self.core.lock();
        let running = core.running.as_ref()?;
        if running.item.client_id.as_deref() == Some(client_id) {
            running.current_node.clone()
        } else {
            None
        }
    }

    /// Stores the history entry and clears the running slot.
    pub(crate) fn finish(&self, prompt_id: &str, entry: Value) {
        let mut core = self.core.lock();
        if let Some(running) = core.running.take() {
            core.release([&*running.item]);
        }
        if core
            .history
            .insert(prompt_id.to_owned(), Arc::new(entry))
            .is_none()
        {
            core.history_order.push_back(prompt_id.to_owned());
        }
        while core.history_order.len() > MAX_HISTORY {
            if let Some(old) = core.history_order.pop_front() {
                core.history.remove(&old);
            }
        }
    }

    /// Asks the running prompt to stop at the next node boundary. With a prompt id, only
    /// that prompt is interrupted; idle or another id: no-op.
    pub(crate) fn interrupt(&self, prompt_id: Option<&str>) {
        let core = self.core.lock();
        let Some(running) = core.running.as_ref() else {
            return;
        };
        if prompt_id.is_some_and(|id| id != running.item.prompt_id) {
            return;
        }
        self.interrupted.store(true, Ordering::SeqCst);
        self.interrupt_notify.notify_waiters();
    }

    pub(crate) fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// `GET /queue`.
    pub(crate) fn queue_json(&self) -> Value {
        let core = self.core.lock();
        let running: Vec<Value> = core.running.iter().map(|r| r.item.wire()).collect();
        let pending: Vec<Value> = core.pending.iter().map(|p| p.wire()).collect();
        json!({"queue_running": running, "queue_pending": pending})
    }

    /// Removes pending prompts by id; returns how many went.
    pub(crate) fn delete_pending(&self, ids: &[String]) -> usize {
        let mut core = self.core.lock();
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut core.pending)
            .into_iter()
            .partition(|p| ids.contains(&p.prompt_id));
        core.pending = kept;
        core.release(gone.iter().map(|p| &**p));
        gone.len()
    }

    /// Removes every pending prompt (the running one continues).
    pub(crate) fn clear_pending(&self) {
        let mut core = self.core.lock();
        let gone = std::mem::take(&mut core.pending);
        core.release(gone.iter().map(|p| &**p));
    }

    /// `GET /history[?max_items=N]`: the most recent N entries, oldest first.
    pub(crate) fn history_json(&self, max_items: Option<usize>) -> Value {
        let core = self.core.lock();
        let skip = max_items.map_or(0, |n| core.history_order.len().saturating_sub(n));
        let mut map = Map::new();
        for id in core.history_order.iter().skip(skip) {
            if let Some(entry) = core.history.get(id) {
                map.insert(id.clone(), (**entry).clone());
            }
        }
        Value::Object(map)
    }

    /// The queue and the history as the Jobs API sees them.
    pub(crate) fn jobs(&self) -> Snapshot {
        let core = self.core.lock();
        Snapshot {
            running: core.running.iter().map(|r| Arc::clone(&r.item)).collect(),
            pending: core.pending.clone(),
            history: core
                .history_order
                .iter()
                .filter_map(|id| Some((id.clone(), Arc::clone(core.history.get(id)?))))
                .collect(),
        }
    }

    /// The ids of the stored history entries, oldest first.
    pub(crate) fn history_ids(&self) -> Vec<String> {
        self.core.lock().history_order.iter().cloned().collect()
    }

    /// `GET /history/{id}`: `{id: entry}` or `{}`.
    pub(crate) fn history_one(&self, id: &str) -> Value {
        let entry = self.core.lock().history.get(id).cloned();
        let mut map = Map::new();
        if let Some(entry) = entry {
            map.insert(id.to_owned(), (*entry).clone());
        }
        Value::Object(map)
    }

    pub(crate) fn delete_history(&self, ids: &[String]) {
        let mut core = self.core.lock();
        for id in ids {
            core.history.remove(id);
        }
        core.history_order.retain(|id| !ids.contains(id));
    }

    pub(crate) fn clear_history(&self) {
        let mut core = self.core.lock();
        core.history.clear();
        core.history_order.clear();
    }

    /// The cached output of a node signature, if the last run left one.
    pub(crate) fn cached(&self, signature: u64) -> Option<Option<Value>> {
        self.core.lock().cache.get(&signature).cloned()
    }

    /// Replaces the cache with the nodes of the run that just ended.
    pub(crate) fn set_cache(&self, cache: HashMap<u64, Option<Value>>) {
        self.core.lock().cache = cache;
    }

    /// Drops the node cache (`POST /free`).
    pub(crate) fn clear_cache(&self) {
        self.core.lock().cache.clear();
    }
}
