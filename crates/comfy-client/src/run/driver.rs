//! The task that follows one prompt: filters the websocket events by prompt id, tracks
//! timings and outputs, enforces deadlines, and falls back to `/queue` + `/history`
//! polling whenever the socket cannot be trusted.
//!
//! While the socket is up it is the source of the event stream: when a poll finds the
//! prompt finished, the driver keeps reading until the run's last message (`executing`
//! with no node, `execution_error` or `execution_interrupted`) for a grace period (a
//! second, or the poll interval if longer), so that a prompt that finished before its
//! events were read still streams them all. While the socket is down, the poll's verdict
//! ends the run at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, oneshot};
use tokio::time::{Instant, sleep, sleep_until};

use super::buffer;
use super::execution::CancelFlag;
use super::options::RunOptions;
use super::output::{NodeTiming, RunOutput, Timings};
use crate::client::Client;
use crate::error::{Deadline, Error, Result};
use crate::event::{Event, NodeText, Preview};
use crate::types::{HistoryEntry, NodeOutput};

/// Polls while connected and quiet, as a safety net, every this many poll intervals.
const QUIET_POLL_FACTOR: u32 = 5;
/// After a cancel, waits this many poll intervals for the server to confirm it.
const CANCEL_GRACE_FACTOR: u32 = 3;
/// Tries to read the history entry after `execution_success` this many times.
const HISTORY_TRIES: u32 = 3;
/// Once the run is known to be over (`execution_success` read, or a poll found it
/// finished), how long the socket may still take to deliver the run's last messages, at
/// least (the poll interval if longer). A server sends them right away; the wait only
/// runs out on a socket that stopped delivering, and must outlast a busy machine's
/// scheduling delays, or events would be cut off a run that streamed them all.
const LAST_MESSAGE_GRACE: Duration = Duration::from_secs(1);

pub(crate) struct Driver {
    pub(crate) client: Client,
    pub(crate) prompt_id: String,
    pub(crate) options: RunOptions,
    pub(crate) rx: broadcast::Receiver<Event>,
    pub(crate) events: buffer::Sender,
    pub(crate) cancel: Arc<CancelFlag>,
    pub(crate) ws_up: bool,
    pub(crate) submitted_at: Instant,
    pub(crate) accepted_at: Instant,
}

/// What the run has seen so far.
#[derive(Default)]
struct Seen {
    started_at: Option<Instant>,
    server_started_ms: Option<u64>,
    server_finished_ms: Option<u64>,
    current: Option<(String, Instant)>,
    nodes: Vec<NodeTiming>,
    cached: Vec<String>,
    ws_outputs: BTreeMap<String, NodeOutput>,
    previews: Vec<Preview>,
    texts: Vec<NodeText>,
    success_at: Option<Instant>,
}

impl Seen {
    fn start(&mut self, now: Instant) {
        if self.started_at.is_none() {
            self.started_at = Some(now);
        }
    }

    fn close_node(&mut self, now: Instant) {
        if let Some((node, since)) = self.current.take() {
            self.nodes.push(NodeTiming {
                node,
                duration: now.saturating_duration_since(since),
            });
        }
    }
}

/// What a poll found: the prompt left the queue with this history entry (`None`: none).
type Verdict = Option<HistoryEntry>;

enum Step {
    /// Keep following.
    Continue,
    /// Ask the server now (reconnected after missing events).
    PollNow,
    /// `executing(null)` without `execution_success`: the verdict is the server's.
    Ended,
    /// `executing(null)` after `execution_success`: read the outputs.
    Finish,
    /// The run ended.
    Done(Box<Result<RunOutput>>),
}

impl Driver {
    pub(crate) async fn run(mut self, result: oneshot::Sender<Result<RunOutput>>) {
        let mut result = result;
        let outcome = tokio::select! {
            outcome = self.follow() => outcome,
            () = result.closed() => return,
        };
        let _ = result.send(outcome);
        // `self.events` drops here, after the result is in place.
    }

    async fn follow(&mut self) -> Result<RunOutput> {
        let poll_interval = self.client.inner.config.poll_interval;
        let quiet_poll = poll_interval * QUIET_POLL_FACTOR;
        let grace = poll_interval.max(LAST_MESSAGE_GRACE);
        let mut seen = Seen::default();
        let mut last_event = self.accepted_at;
        let mut next_poll = Instant::now()
            + if self.ws_up {
                quiet_poll
            } else {
                poll_interval
            };
        let mut unreachable_since: Option<Instant> = None;
        let mut cancel_by: Option<Instant> = None;
        // A poll found the prompt finished while the socket was up: its verdict, and until
        // when the socket may still deliver the run's last message.
        let mut settled: Option<(Verdict, Instant)> = None;
        loop {
            let now = Instant::now();
            if cancel_by.is_some_and(|at| now >= at) {
                // Interrupted nodes stop only at a node boundary; a hung one never does.
                return Err(Error::Cancelled {
                    prompt_id: self.prompt_id.clone(),
                });
            }
            if let Some(deadline) = self.expired_deadline(&seen, last_event, now) {
                return Err(self.on_deadline(deadline).await);
            }
            if let Some((_, until)) = &settled
                && (now >= *until || !self.ws_up)
            {
                // The last message did not come (or cannot come now): trust the history.
                let verdict = take_verdict(&mut settled);
                return self.conclude(verdict, &mut seen);
            }
            if let Some(at) = seen.success_at
                && now >= at + grace
            {
                // `executing(null)` did not follow `execution_success`: finish anyway, with
                // whatever else the socket delivered meanwhile.
                self.drain(&mut seen);
                let entry = take_verdict(&mut settled);
                return Ok(self.finish(std::mem::take(&mut seen), entry).await);
            }
            let mut wake = next_poll;
            for at in [
                self.deadline_at(Deadline::Total, &seen, last_event),
                self.deadline_at(Deadline::Start, &seen, last_event),
                self.deadline_at(Deadline::Idle, &seen, last_event),
                seen.success_at.map(|at| at + grace),
                settled.as_ref().map(|(_, until)| *until),
                cancel_by,
            ]
            .into_iter()
            .flatten()
            {
                wake = wake.min(at);
            }
            let mut poll_now = false;
            tokio::select! {
                // Events already received go before timers: deadlines are checked at the
                // top of the loop, on the clock.
                biased;
                () = self.cancel.wait(), if cancel_by.is_none() => {
                    cancel_by = Some(Instant::now() + CANCEL_GRACE_FACTOR * poll_interval);
                    poll_now = true;
                }
                received = self.rx.recv() => match received {
                    Ok(event) => match self.on_event(event, &mut seen, &mut last_event) {
                        Step::Done(outcome) => return *outcome,
                        Step::Finish => {
                            let entry = take_verdict(&mut settled);
                            return Ok(self.finish(std::mem::take(&mut seen), entry).await);
                        }
                        Step::Ended => match settled.take() {
                            Some((verdict, _)) => return self.conclude(verdict, &mut seen),
                            // The run ended but its verdict was missed: ask the server.
                            None => poll_now = true,
                        },
                        Step::PollNow => poll_now = settled.is_none(),
                        Step::Continue => {
                            let soon = Instant::now() + poll_interval;
                            if !self.ws_up && next_poll > soon {
                                next_poll = soon;
                            }
                        }
                    },
                    Err(RecvError::Lagged(skipped)) => {
                        // Events of the prompt may be among the missed ones.
                        self.forward(Event::Lagged { skipped });
                        poll_now = settled.is_none();
                    }
                    Err(RecvError::Closed) => {
                        // The websocket gave up: follow the prompt by polling only.
                        self.ws_up = false;
                        self.rx = broadcast::channel(1).1;
                        poll_now = true;
                    }
                },
                () = sleep_until(wake) => {
                    poll_now = settled.is_none() && Instant::now() >= next_poll;
                }
            }
            if poll_now {
                let interval = if self.ws_up {
                    quiet_poll
                } else {
                    poll_interval
                };
                next_poll = Instant::now() + interval;
                match self.poll(&mut seen).await {
                    Ok(Some(verdict)) if self.ws_up => {
                        // The socket is the source of the stream: read the rest of the run
                        // from it, but no longer than the grace.
                        settled = Some((verdict, Instant::now() + grace));
                    }
                    Ok(Some(verdict)) => return self.conclude(verdict, &mut seen),
                    Ok(None) => unreachable_since = None,
                    Err(e) => {
                        let since = *unreachable_since.get_or_insert_with(Instant::now);
                        if !self.ws_up
                            && Instant::now().saturating_duration_since(since)
                                >= self.options.unreachable_timeout
                        {
                            return Err(e);
                        }
                        tracing::debug!(error = %e, prompt_id = %self.prompt_id, "comfy-client: poll failed");
                    }
                }
            }
        }
    }

    fn deadline_at(&self, which: Deadline, seen: &Seen, last_event: Instant) -> Option<Instant> {
        let o = &self.options;
        match which {
            Deadline::Total => o.total_timeout.map(|d| self.submitted_at + d),
            Deadline::Start if seen.started_at.is_none() => {
                o.start_timeout.map(|d| self.accepted_at + d)
            }
            Deadline::Idle if seen.started_at.is_some() => o.idle_timeout.map(|d| last_event + d),
            _ => None,
        }
    }

    fn expired_deadline(&self, seen: &Seen, last_event: Instant, now: Instant) -> Option<Deadline> {
        [Deadline::Total, Deadline::Start, Deadline::Idle]
            .into_iter()
            .find(|&d| {
                self.deadline_at(d, seen, last_event)
                    .is_some_and(|at| now >= at)
            })
    }

    async fn on_deadline(&self, deadline: Deadline) -> Error {
        let o = &self.options;
        let limit = match deadline {
            Deadline::Start => o.start_timeout,
            Deadline::Idle => o.idle_timeout,
            _ => o.total_timeout,
        }
        .unwrap_or(Duration::ZERO);
        if o.cancel_on_timeout {
            let id = self.prompt_id.as_str();
            let _ = self.client.delete_from_queue(&[id]).await;
            let _ = self.client.interrupt(Some(id)).await;
        }
        Error::Timeout { deadline, limit }
    }

    fn forward(&self, event: Event) {
        self.events.send(event);
    }

    fn on_event(&mut self, event: Event, seen: &mut Seen, last_event: &mut Instant) -> Step {
        let now = Instant::now();
        match &event {
            Event::Connected => {
                let was_up = std::mem::replace(&mut self.ws_up, true);
                *last_event = now;
                self.forward(event);
                // Events may have been missed while disconnected: resynchronise.
                return if was_up {
                    Step::Continue
                } else {
                    Step::PollNow
                };
            }
            Event::Disconnected { .. } | Event::Reconnecting { .. } => {
                self.ws_up = false;
                self.forward(event);
                return Step::Continue;
            }
            _ => {}
        }
        if event.prompt_id() != Some(self.prompt_id.as_str()) {
            return Step::Continue;
        }
        *last_event = now;
        match &event {
            Event::ExecutionStart(d) => {
                seen.start(now);
                seen.server_started_ms = d.timestamp;
            }
            Event::ExecutionCached(d) => {
                seen.start(now);
                seen.cached.clone_from(&d.nodes);
            }
            Event::Executing(d) => match &d.node {
                Some(node) => {
                    seen.start(now);
                    seen.close_node(now);
                    seen.current = Some((node.clone(), now));
                }
                None => {
                    seen.close_node(now);
                    self.forward(event);
                    return if seen.success_at.is_some() {
                        Step::Finish
                    } else {
                        Step::Ended
                    };
                }
            },
            Event::Executed(d) => {
                seen.start(now);
                merge_output(
                    seen.ws_outputs.entry(d.node.clone()).or_default(),
                    &d.output,
                );
            }
            Event::ExecutionSuccess(d) => {
                seen.close_node(now);
                seen.server_finished_ms = d.timestamp;
                seen.success_at = Some(now);
            }
            Event::ExecutionError(d) => {
                let failure = d.to_failure();
                self.forward(event);
                return Step::Done(Box::new(Err(Error::Execution(Box::new(failure)))));
            }
            Event::ExecutionInterrupted(d) => {
                let err = if self.cancel.is_requested() {
                    Error::Cancelled {
                        prompt_id: self.prompt_id.clone(),
                    }
                } else {
                    Error::Interrupted {
                        prompt_id: self.prompt_id.clone(),
                        node_id: d.node_id.clone(),
                        node_type: d.node_type.clone(),
                    }
                };
                self.forward(event);
                return Step::Done(Box::new(Err(err)));
            }
            Event::Preview(p) if self.options.collect_previews => seen.previews.push(p.clone()),
            Event::Text(t) => seen.texts.push(t.clone()),
            _ => {}
        }
        self.forward(event);
        Step::Continue
    }

    /// Processes the events already received, without waiting.
    fn drain(&mut self, seen: &mut Seen) {
        let mut last = Instant::now();
        while let Ok(event) = self.rx.try_recv() {
            let _ = self.on_event(event, seen, &mut last);
        }
    }

    /// Asks the server what became of the prompt: queue first, then history (a prompt
    /// leaves the queue only after its history entry is written). `None` while it is
    /// still queued or running.
    async fn poll(&mut self, seen: &mut Seen) -> Result<Option<Verdict>> {
        let queue = self.client.queue().await?;
        if queue.contains(&self.prompt_id) {
            if queue.is_running(&self.prompt_id) {
                seen.start(Instant::now());
            }
            return Ok(None);
        }
        Ok(Some(self.client.history(&self.prompt_id).await?))
    }

    /// Ends the run with a poll's verdict, after taking in what the socket delivered
    /// meanwhile (outputs, previews, timings).
    fn conclude(&mut self, verdict: Verdict, seen: &mut Seen) -> Result<RunOutput> {
        self.drain(seen);
        match verdict {
            Some(entry) => self.outcome_from_history(entry, seen),
            None if self.cancel.is_requested() => Err(Error::Cancelled {
                prompt_id: self.prompt_id.clone(),
            }),
            None => Err(Error::Lost {
                prompt_id: self.prompt_id.clone(),
            }),
        }
    }

    fn outcome_from_history(&self, entry: HistoryEntry, seen: &mut Seen) -> Result<RunOutput> {
        let status = entry.status.clone().unwrap_or_default();
        if entry.is_success() || seen.success_at.is_some() {
            if seen.server_finished_ms.is_none() {
                seen.server_finished_ms = status.timestamp("execution_success");
            }
            return Ok(self.build(std::mem::take(seen), Some(entry)));
        }
        if let Some(err) = status.execution_error() {
            return Err(Error::Execution(Box::new(err.to_failure())));
        }
        if self.cancel.is_requested() {
            return Err(Error::Cancelled {
                prompt_id: self.prompt_id.clone(),
            });
        }
        let interrupted = status.interrupted();
        Err(Error::Interrupted {
            prompt_id: self.prompt_id.clone(),
            node_id: interrupted.as_ref().and_then(|i| i.node_id.clone()),
            node_type: interrupted.and_then(|i| i.node_type),
        })
    }

    /// Success was announced: read the authoritative outputs from the history.
    async fn finish(&self, seen: Seen, entry: Option<HistoryEntry>) -> RunOutput {
        let mut entry = entry;
        let pause = self.client.inner.config.poll_interval / 4;
        for attempt in 0..HISTORY_TRIES {
            if entry.is_some() {
                break;
            }
            if attempt > 0 {
                sleep(pause).await;
            }
            entry = self.client.history(&self.prompt_id).await.ok().flatten();
        }
        self.build(seen, entry)
    }

    fn build(&self, mut seen: Seen, entry: Option<HistoryEntry>) -> RunOutput {
        let finished_at = Instant::now();
        seen.close_node(finished_at);
        let mut outputs = std::mem::take(&mut seen.ws_outputs);
        if let Some(entry) = &entry {
            for (node, out) in &entry.outputs {
                if !out.is_empty() || !outputs.contains_key(node) {
                    outputs.insert(node.clone(), out.clone());
                }
            }
            if seen.server_started_ms.is_none() {
                seen.server_started_ms = entry
                    .status
                    .as_ref()
                    .and_then(|s| s.timestamp("execution_start"));
            }
            if seen.cached.is_empty()
                && let Some(nodes) = entry
                    .status
                    .as_ref()
                    .and_then(|s| s.message("execution_cached"))
                    .and_then(|v| v.get("nodes"))
                    .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
            {
                seen.cached = nodes;
            }
        }
        RunOutput {
            prompt_id: self.prompt_id.clone(),
            outputs,
            previews: seen.previews,
            texts: seen.texts,
            cached_nodes: seen.cached,
            history: entry,
            timings: Timings {
                submitted_at: self.submitted_at,
                accepted_at: self.accepted_at,
                started_at: seen.started_at,
                finished_at,
                nodes: seen.nodes,
                server_started_ms: seen.server_started_ms,
                server_finished_ms: seen.server_finished_ms,
            },
        }
    }
}

/// Takes the verdict of a settled run (`None` if none was found or nothing settled).
fn take_verdict(settled: &mut Option<(Verdict, Instant)>) -> Verdict {
    settled.take().and_then(|(verdict, _)| verdict)
}

/// Adds `new` to `into`, concatenating arrays under the same key (batched outputs).
fn merge_output(into: &mut NodeOutput, new: &NodeOutput) {
    for (key, value) in &new.0 {
        match (into.0.get_mut(key), value) {
            (Some(serde_json::Value::Array(have)), serde_json::Value::Array(more)) => {
                have.extend(more.iter().cloned());
            }
            _ => {
                into.0.insert(key.clone(), value.clone());
            }
        }
    }
}
