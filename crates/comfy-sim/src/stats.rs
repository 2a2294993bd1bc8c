//! Counters of what a simulated server received and did, for assertions in tests.

use std::collections::BTreeMap;

use serde_json::Value;

/// Per-workflow counters (see [`Stats::by_tag`] and [`Stats::by_classes`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkflowCounts {
    /// `POST /prompt` bodies carrying a prompt of this workflow.
    pub received: u64,
    /// Of those, accepted (200).
    pub accepted: u64,
    /// Of those, rejected (400).
    pub rejected: u64,
    /// Runs that ended with `execution_success`.
    pub executed: u64,
    /// Runs that ended with `execution_error`.
    pub failed: u64,
    /// Runs that ended with `execution_interrupted`.
    pub interrupted: u64,
}

/// One `POST /prompt` that carried a prompt, as received.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ReceivedPrompt {
    /// The prompt id the server used (the caller's, or one it generated).
    pub prompt_id: String,
    /// The `prompt` object as sent.
    pub prompt: Value,
    /// `extra_data` as stored (with `client_id` folded in, like ComfyUI does).
    pub extra_data: Value,
    /// Whether it was accepted (200) or rejected (400).
    pub accepted: bool,
}

/// A snapshot of a server's counters. Counters survive crashes and restarts.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// `POST /prompt` bodies that carried a `prompt` (accepted or rejected).
    pub prompts_received: u64,
    /// Prompts accepted into the queue.
    pub prompts_accepted: u64,
    /// Prompts rejected with 400.
    pub prompts_rejected: u64,
    /// Runs ended with `execution_success`.
    pub prompts_executed: u64,
    /// Runs ended with `execution_error`.
    pub prompts_failed: u64,
    /// Runs ended with `execution_interrupted`.
    pub prompts_interrupted: u64,
    /// WebSocket connections accepted so far.
    pub ws_connections: u64,
    /// The most prompts the server held at once (pending plus running), over all its lives.
    pub max_prompts_held: u64,
    /// The same per `client_id` of the prompts (prompts posted without one are not counted
    /// here); see [`Stats::max_held_by`].
    pub max_prompts_held_by_client: BTreeMap<String, u64>,
    /// HTTP requests per route, keyed `"METHOD /route"` with the `/api` prefix removed and
    /// path parameters as in the route (`"GET /history/{prompt_id}"`).
    pub http_requests: BTreeMap<String, u64>,
    /// Per-workflow counters keyed by the caller's tag, `extra_data.sim_tag` (a string).
    pub by_tag: BTreeMap<String, WorkflowCounts>,
    /// Per-workflow counters keyed by the sorted, de-duplicated `class_type`s of the prompt
    /// joined with `+` (see [`Stats::classes_key`]).
    pub by_classes: BTreeMap<String, WorkflowCounts>,
    /// Every prompt received, in arrival order.
    pub received: Vec<ReceivedPrompt>,
}

impl Stats {
    /// The [`Stats::by_classes`] key of a set of class names.
    pub fn classes_key<'a>(classes: impl IntoIterator<Item = &'a str>) -> String {
        let mut sorted: Vec<&str> = classes.into_iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        sorted.join("+")
    }

    /// Counters of the workflow tagged `tag` (zero when never seen).
    pub fn for_tag(&self, tag: &str) -> WorkflowCounts {
        self.by_tag.get(tag).copied().unwrap_or_default()
    }

    /// Counters of workflows made of exactly these classes (zero when never seen).
    pub fn for_classes<'a>(&self, classes: impl IntoIterator<Item = &'a str>) -> WorkflowCounts {
        self.by_classes
            .get(&Self::classes_key(classes))
            .copied()
            .unwrap_or_default()
    }

    /// The most prompts of `client_id` the server held at once (zero when never seen).
    pub fn max_held_by(&self, client_id: &str) -> u64 {
        self.max_prompts_held_by_client
            .get(client_id)
            .copied()
            .unwrap_or(0)
    }

    /// Requests counted for `"METHOD /route"` (zero when none).
    pub fn requests(&self, route: &str) -> u64 {
        self.http_requests.get(route).copied().unwrap_or(0)
    }
}

/// How a run ended, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Error,
    Interrupted,
}

/// The keys a prompt's counters are filed under.
#[derive(Clone, Debug, Default)]
pub(crate) struct StatKeys {
    pub(crate) tag: Option<String>,
    pub(crate) classes: String,
}

impl StatKeys {
    pub(crate) fn of(prompt: &Value, extra_data: &Value) -> Self {
        let classes = prompt
            .as_object()
            .map(|nodes| {
                Stats::classes_key(
                    nodes
                        .values()
                        .filter_map(|n| n.get("class_type").and_then(Value::as_str)),
                )
            })
            .unwrap_or_default();
        let tag = extra_data
            .get("sim_tag")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Self { tag, classes }
    }
}

impl Stats {
    fn each_workflow(&mut self, keys: &StatKeys, bump: impl Fn(&mut WorkflowCounts)) {
        if let Some(tag) = &keys.tag {
            bump(self.by_tag.entry(tag.clone()).or_default());
        }
        bump(self.by_classes.entry(keys.classes.clone()).or_default());
    }

    pub(crate) fn record_prompt(&mut self, keys: &StatKeys, received: ReceivedPrompt) {
        self.prompts_received += 1;
        let accepted = received.accepted;
        if accepted {
            self.prompts_accepted += 1;
        } else {
            self.prompts_rejected += 1;
        }
        self.each_workflow(keys, |c| {
            c.received += 1;
            if accepted {
                c.accepted += 1;
            } else {
                c.rejected += 1;
            }
        });
        self.received.push(received);
    }

    pub(crate) fn record_outcome(&mut self, keys: &StatKeys, outcome: Outcome) {
        match outcome {
            Outcome::Success => self.prompts_executed += 1,
            Outcome::Error => self.prompts_failed += 1,
            Outcome::Interrupted => self.prompts_interrupted += 1,
        }
        self.each_workflow(keys, |c| match outcome {
            Outcome::Success => c.executed += 1,
            Outcome::Error => c.failed += 1,
            Outcome::Interrupted => c.interrupted += 1,
        });
    }

    /// Raises the high-water marks to what a server holds after accepting a prompt.
    pub(crate) fn record_held(&mut self, client_id: Option<&str>, total: usize, client: usize) {
        let widen = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        self.max_prompts_held = self.max_prompts_held.max(widen(total));
        if let Some(id) = client_id {
            let most = self
                .max_prompts_held_by_client
                .entry(id.to_owned())
                .or_default();
            *most = (*most).max(widen(client));
        }
    }

    pub(crate) fn record_request(&mut self, route: String) {
        *self.http_requests.entry(route).or_default() += 1;
    }
}

impl ReceivedPrompt {
    pub(crate) fn new(prompt_id: String, prompt: Value, extra_data: Value, accepted: bool) -> Self {
        Self {
            prompt_id,
            prompt,
            extra_data,
            accepted,
        }
    }
}
