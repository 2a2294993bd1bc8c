//! The task that follows one prompt: filters the websocket events by prompt id, keeps
//! timings and outputs within the memory limit, enforces deadlines, and polls `/queue` +
//! `/history` beside the socket.
//!
//! While the socket carries the prompt's events (it was submitted with this client's id,
//! or one of its events arrived) and is up, it is the source of the event stream: when a
//! poll finds the prompt finished, the driver keeps reading until the run's last message
//! (`executing` with no node, `execution_error` or `execution_interrupted`) for a grace
//! period (a second, or the poll interval if longer), so that a prompt that finished
//! before its events were read still streams them all. Otherwise the poll's verdict ends
//! the run at once.
//!
//! Limits (documented for users on [`RunOptions`]): a poll runs beside the socket, never
//! blocking it or the deadlines, and each of its HTTP calls is bounded by the request
//! timeout. Polls come every poll interval while the socket is down, does not carry the
//! prompt, or a poll failed; every five poll intervals otherwise; at once after a
//! reconnect or a cancel; and after a lagging subscription at most once per poll interval.
//! When polls fail without a success for `unreachable_timeout`, counted from the start of
//! the first failing one, the run ends with [`Error::Unreachable`], whatever the socket
//! says. The run unsubscribes from the socket before its last HTTP calls (history,
//! cancel on a deadline), so it holds no events while it waits for them.
//!
//! A successful run whose socket was up from before the submission to its last message,
//! with no event missed and every output kept, takes its outputs from the socket and does
//! not read `/history` (ComfyUI sends every `executed` before `execution_success`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, oneshot};
use tokio::time::{Instant, sleep, sleep_until};

use super::execution::CancelFlag;
use super::options::RunOptions;
use super::outlet::Outlet;
use super::output::{RunOutput, Timings};
use super::poll::{self, PollFuture, Polled};
use super::seen::Seen;
use super::ws_output::ws_output_nodes;
use crate::client::Client;
use crate::error::{Deadline, Error, Result};
use crate::event::Event;
use crate::types::HistoryEntry;

/// Polls while the socket carries the prompt, as a safety net, every this many poll
/// intervals.
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

/// How the driver came to follow the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// This client submitted it, subscribed first: the socket carries all its events.
    Submitted,
    /// [`Client::follow`]: it may be anywhere (queued, running, finished, unknown), and
    /// the socket carries its events only if it was submitted with this client's id.
    Following,
}

pub(crate) struct Driver<O> {
    pub(crate) client: Client,
    pub(crate) prompt_id: String,
    pub(crate) options: RunOptions,
    pub(crate) rx: broadcast::Receiver<Arc<Event>>,
    /// Where the prompt's events go.
    pub(crate) events: O,
    pub(crate) cancel: Arc<CancelFlag>,
    pub(crate) ws_up: bool,
    /// The socket has been up since before the prompt was submitted, without a drop or a
    /// missed event: it delivered every `executed` output of the prompt (see `finish`).
    pub(crate) unbroken: bool,
    pub(crate) origin: Origin,
    pub(crate) submitted_at: Instant,
    pub(crate) accepted_at: Instant,
    pub(crate) seen: Seen,
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

/// When to poll, and the poll in flight.
struct Polls {
    in_flight: Option<PollFuture>,
    /// When the next regular poll is due.
    next_at: Instant,
    /// A poll was asked for as soon as none is in flight.
    asap: bool,
    last_started: Instant,
    /// Since when polls fail (the start of the first failing one), and the last error.
    failing: Option<(Instant, Error)>,
}

impl Polls {
    fn due(&self, now: Instant) -> bool {
        self.in_flight.is_none() && (self.asap || now >= self.next_at)
    }

    /// When the loop must wake up to start the next poll.
    fn wake_at(&self) -> Option<Instant> {
        match self.in_flight {
            Some(_) => None,
            None if self.asap => Some(self.last_started),
            None => Some(self.next_at),
        }
    }
}

/// The verdict of a settled run and until when the socket may still deliver its end.
type Settled = Option<(Verdict, Instant)>;

impl<O: Outlet> Driver<O> {
    /// Follows the prompt to its end in a task of its own, for an
    /// [`Execution`](super::Execution) that may stop waiting for the result.
    pub(crate) async fn run(mut self, result: oneshot::Sender<Result<RunOutput>>) {
        let mut result = result;
        let outcome = tokio::select! {
            outcome = self.drive() => outcome,
            () = result.closed() => return,
        };
        let _ = result.send(outcome);
        // `self.events` drops here, after the result is in place.
    }

    /// Follows the prompt to its end in the caller's task (an
    /// [`InlineRun`](super::InlineRun)).
    pub(crate) async fn run_here(mut self) -> Result<RunOutput> {
        self.drive().await
    }

    /// Whether the socket is the source of the prompt's events: it was submitted with this
    /// client's id, or one of its events arrived.
    fn live(&self) -> bool {
        self.origin == Origin::Submitted || self.seen.live
    }

    async fn drive(&mut self) -> Result<RunOutput> {
        let poll_interval = self.client.inner.config.poll_interval;
        let quiet_poll = poll_interval * QUIET_POLL_FACTOR;
        let grace = poll_interval.max(LAST_MESSAGE_GRACE);
        let mut last_event = self.accepted_at;
        let mut polls = Polls {
            in_flight: None,
            next_at: match self.origin {
                Origin::Following => Instant::now(),
                Origin::Submitted if self.ws_up => self.accepted_at + quiet_poll,
                Origin::Submitted => self.accepted_at + poll_interval,
            },
            asap: false,
            last_started: self.accepted_at,
            failing: None,
        };
        let mut cancel_by: Option<Instant> = None;
        // A poll found the prompt finished while the socket was up: its verdict, and until
        // when the socket may still deliver the run's last message.
        let mut settled: Settled = None;
        loop {
            let now = Instant::now();
            if cancel_by.is_some_and(|at| now >= at) {
                // Interrupted nodes stop only at a node boundary; a hung one never does.
                return Err(Error::Cancelled {
                    prompt_id: self.prompt_id.clone(),
                });
            }
            if let Some(deadline) = self.expired_deadline(last_event, now) {
                return Err(self.on_deadline(deadline).await);
            }
            if let Some((since, _)) = &polls.failing
                && now >= *since + self.options.unreachable_timeout
                && let Some((_, last)) = polls.failing.take()
            {
                return Err(Error::Unreachable {
                    prompt_id: self.prompt_id.clone(),
                    limit: self.options.unreachable_timeout,
                    source: Box::new(last),
                });
            }
            if let Some((_, until)) = &settled
                && (now >= *until || !self.ws_up)
            {
                // The last message did not come (or cannot come now): trust the history.
                let verdict = take_verdict(&mut settled);
                return self.conclude(verdict);
            }
            if let Some(at) = self.seen.success_at
                && now >= at + grace
            {
                // `executing(null)` did not follow `execution_success`: finish anyway, with
                // whatever else the socket delivered meanwhile, and the history's outputs
                // (a socket that stopped delivering is not trusted with them).
                self.unbroken = false;
                self.drain();
                let entry = take_verdict(&mut settled);
                return Ok(self.finish(entry).await);
            }
            if settled.is_none() && polls.due(now) {
                polls.asap = false;
                polls.last_started = now;
                polls.in_flight = Some(poll::start(&self.client, &self.prompt_id));
            }
            let mut wake = now + quiet_poll;
            for at in [
                self.deadline_at(Deadline::Total, last_event),
                self.deadline_at(Deadline::Start, last_event),
                self.deadline_at(Deadline::Idle, last_event),
                polls
                    .failing
                    .as_ref()
                    .map(|(since, _)| *since + self.options.unreachable_timeout),
                self.seen.success_at.map(|at| at + grace),
                settled.as_ref().map(|(_, until)| *until),
                settled.is_none().then(|| polls.wake_at()).flatten(),
                cancel_by,
            ]
            .into_iter()
            .flatten()
            {
                wake = wake.min(at);
            }
            tokio::select! {
                // Events already received go before timers: deadlines are checked at the
                // top of the loop, on the clock. A finished poll goes first so that a
                // flood of events cannot keep it from being read.
                biased;
                () = self.cancel.wait(), if cancel_by.is_none() => {
                    cancel_by = Some(Instant::now() + CANCEL_GRACE_FACTOR * poll_interval);
                    polls.asap = true;
                }
                polled = poll::in_flight(&mut polls.in_flight) => {
                    polls.in_flight = None;
                    let now = Instant::now();
                    match polled {
                        Err(e) => {
                            tracing::debug!(error = %e, prompt_id = %self.prompt_id, "comfy-client: poll failed");
                            let since = polls
                                .failing
                                .take()
                                .map_or(polls.last_started, |(since, _)| since);
                            polls.failing = Some((since, e));
                            polls.next_at = now + poll_interval;
                        }
                        Ok(polled) => {
                            polls.failing = None;
                            let carried = self.ws_up && self.live();
                            polls.next_at = now + if carried { quiet_poll } else { poll_interval };
                            match polled {
                                // The socket is the source of the stream: read the rest of
                                // the run from it, but no longer than the grace.
                                Polled::Left(verdict) if carried => {
                                    settled = Some((*verdict, now + grace));
                                }
                                Polled::Left(verdict) => return self.conclude(*verdict),
                                Polled::Queued { running, ws_nodes } => {
                                    if running {
                                        self.seen.start(now);
                                    }
                                    self.seen.learn_ws_nodes(ws_nodes);
                                }
                            }
                        }
                    }
                }
                received = self.rx.recv() => match received {
                    Ok(event) => match self.on_event(event, &mut last_event) {
                        Step::Done(outcome) => return *outcome,
                        Step::Finish => {
                            let entry = take_verdict(&mut settled);
                            return Ok(self.finish(entry).await);
                        }
                        Step::Ended => match settled.take() {
                            Some((verdict, _)) => return self.conclude(verdict),
                            // The run ended but its verdict was missed: ask the server.
                            None => polls.asap = true,
                        },
                        Step::PollNow => polls.asap = true,
                        Step::Continue => {
                            let soon = Instant::now() + poll_interval;
                            if !self.ws_up && polls.next_at > soon {
                                polls.next_at = soon;
                            }
                        }
                    },
                    Err(RecvError::Lagged(skipped)) => {
                        // Events of the prompt may be among the missed ones: poll, but at
                        // most once per poll interval however often the subscription lags.
                        self.unbroken = false;
                        self.events.note_missed(skipped);
                        let at = (polls.last_started + poll_interval).max(Instant::now());
                        polls.next_at = polls.next_at.min(at);
                    }
                    Err(RecvError::Closed) => {
                        // The websocket gave up: follow the prompt by polling only.
                        self.ws_up = false;
                        self.unbroken = false;
                        self.unsubscribe();
                        polls.asap = true;
                    }
                },
                () = sleep_until(wake) => {}
            }
        }
    }

    /// Stops reading the websocket: the run keeps no events it will not read.
    fn unsubscribe(&mut self) {
        self.rx = broadcast::channel(1).1;
    }

    fn deadline_at(&self, which: Deadline, last_event: Instant) -> Option<Instant> {
        let o = &self.options;
        let started = self.seen.started_at.is_some();
        match which {
            Deadline::Total => o.total_timeout.map(|d| self.submitted_at + d),
            Deadline::Start if !started => o.start_timeout.map(|d| self.accepted_at + d),
            // Without the prompt's events there is nothing to be idle between.
            Deadline::Idle if started && self.live() => o.idle_timeout.map(|d| last_event + d),
            _ => None,
        }
    }

    fn expired_deadline(&self, last_event: Instant, now: Instant) -> Option<Deadline> {
        [Deadline::Total, Deadline::Start, Deadline::Idle]
            .into_iter()
            .find(|&d| self.deadline_at(d, last_event).is_some_and(|at| now >= at))
    }

    async fn on_deadline(&mut self, deadline: Deadline) -> Error {
        self.unsubscribe();
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

    /// Hands `event` to the run's own stream: a copy of the broadcast's (shared by every
    /// subscriber of the socket; only the events a run keeps are copied).
    fn forward(&mut self, event: Arc<Event>) {
        self.events.send(Arc::unwrap_or_clone(event));
    }

    fn on_event(&mut self, event: Arc<Event>, last_event: &mut Instant) -> Step {
        let now = Instant::now();
        match event.as_ref() {
            Event::Connected => {
                let was_up = std::mem::replace(&mut self.ws_up, true);
                self.unbroken &= was_up;
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
                self.unbroken = false;
                self.forward(event);
                return Step::Continue;
            }
            _ => {}
        }
        if event.prompt_id() != Some(self.prompt_id.as_str()) {
            return Step::Continue;
        }
        *last_event = now;
        let seen = &mut self.seen;
        seen.live = true;
        match event.as_ref() {
            Event::ExecutionStart(d) => {
                seen.start(now);
                seen.server_started_ms = d.timestamp;
            }
            Event::ExecutionCached(d) => {
                seen.start(now);
                seen.set_cached(&d.nodes);
            }
            Event::Executing(d) => match &d.node {
                Some(node) => {
                    seen.start(now);
                    seen.enter_node(node, now);
                }
                None => {
                    seen.close_node(now);
                    let finished = seen.success_at.is_some();
                    self.forward(event);
                    return if finished { Step::Finish } else { Step::Ended };
                }
            },
            Event::Executed(d) => {
                seen.start(now);
                seen.merge_executed(&d.node, &d.output);
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
            Event::Preview(p) => seen.preview(p, self.options.collect_previews),
            Event::Text(t) => seen.text(t, self.options.collect_texts),
            _ => {}
        }
        self.forward(event);
        Step::Continue
    }

    /// Processes the events already received, without waiting.
    fn drain(&mut self) {
        let mut last = Instant::now();
        while let Ok(event) = self.rx.try_recv() {
            let _ = self.on_event(event, &mut last);
        }
    }

    /// Ends the run with a poll's verdict, after taking in what the socket delivered
    /// meanwhile (outputs, previews, timings).
    fn conclude(&mut self, verdict: Verdict) -> Result<RunOutput> {
        self.drain();
        match verdict {
            Some(entry) => self.outcome_from_history(entry),
            None if self.cancel.is_requested() => Err(Error::Cancelled {
                prompt_id: self.prompt_id.clone(),
            }),
            None => Err(Error::Lost {
                prompt_id: self.prompt_id.clone(),
            }),
        }
    }

    fn outcome_from_history(&mut self, entry: HistoryEntry) -> Result<RunOutput> {
        let status = entry.status.clone().unwrap_or_default();
        if entry.is_success() || self.seen.success_at.is_some() {
            if self.seen.server_finished_ms.is_none() {
                self.seen.server_finished_ms = status.timestamp("execution_success");
            }
            return Ok(self.build(Some(entry)));
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

    /// Whether the socket delivered every output of the prompt, so that its history entry
    /// need not be read: ComfyUI sends `executed` for each output before
    /// `execution_success` (and writes the history only after it), the socket was up from
    /// before the submission to the end with no event missed, and every output was kept.
    fn socket_has_all_outputs(&self) -> bool {
        self.unbroken
            && self.ws_up
            && !self.options.fetch_history
            && self.seen.success_at.is_some()
            && self.seen.dropped.outputs == 0
    }

    /// Success was announced: read the authoritative outputs from the history, unless
    /// the socket delivered all of them.
    async fn finish(&mut self, entry: Option<HistoryEntry>) -> RunOutput {
        self.unsubscribe();
        if entry.is_none() && self.socket_has_all_outputs() {
            return self.build(None);
        }
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
        self.build(entry)
    }

    fn build(&mut self, entry: Option<HistoryEntry>) -> RunOutput {
        let finished_at = Instant::now();
        let seen = &mut self.seen;
        seen.close_node(finished_at);
        match entry.as_ref().and_then(|e| e.prompt.as_ref()) {
            Some(item) => seen.learn_ws_nodes(ws_output_nodes(&item.prompt)),
            None => seen.forget_undecided(),
        }
        let mut outputs = std::mem::take(&mut seen.executed);
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
        let mut dropped = seen.dropped;
        (dropped.events, dropped.missed) = self.events.losses();
        RunOutput {
            prompt_id: self.prompt_id.clone(),
            outputs,
            ws_outputs: std::mem::take(&mut seen.ws_outputs),
            previews: std::mem::take(&mut seen.previews),
            texts: std::mem::take(&mut seen.texts),
            cached_nodes: std::mem::take(&mut seen.cached),
            history: entry,
            timings: Timings {
                submitted_at: self.submitted_at,
                accepted_at: self.accepted_at,
                started_at: seen.started_at,
                finished_at,
                nodes: std::mem::take(&mut seen.nodes),
                server_started_ms: seen.server_started_ms,
                server_finished_ms: seen.server_finished_ms,
            },
            dropped,
        }
    }
}

/// Takes the verdict of a settled run (`None` if none was found or nothing settled).
fn take_verdict(settled: &mut Settled) -> Verdict {
    settled.take().and_then(|(verdict, _)| verdict)
}
