//! Queue-ahead and pull-back ([`PoolBuilder::queue_ahead`](crate::PoolBuilder::queue_ahead)):
//! a busy server is given its next prompt while its current one runs, so that it starts the
//! next one the moment the current one ends, with no round trip in between. Binding stays
//! late: when another server is free and the queue has nothing for it, a prompt still
//! waiting in a busy server's queue is taken back from there (only once the server confirms
//! it never started) and runs on the free server instead.
//!
//! This module holds the engine's view of the prompts that wait on their server (dispatched,
//! not executing yet) and the pulls in progress; the slots are in `servers`, the dispatch in
//! `dispatch`, the attempt's side of a pull in `attempt`.

use std::collections::HashMap;
use std::time::Duration;

use pool_failover::ServerId;
use rustc_hash::FxHashMap;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::JobKey;
use crate::engine::{Engine, ServerKey, Timer, Work};

/// A job whose prompt waits in its server's queue.
#[derive(Debug)]
struct Waiting {
    /// The server it waits on.
    server: ServerId,
    /// Its attempt.
    attempt: u32,
    /// When it was dispatched (the latest is pulled first: it would start last).
    since: Instant,
    /// Asks its attempt to take the prompt back; `None` once asked (or if it cannot be).
    pull: Option<oneshot::Sender<()>>,
    /// The free server a pull in progress is for.
    pulled_for: Option<ServerId>,
}

/// A prompt is taken back only from a server whose prompts take at least this long on
/// average: behind a shorter one it starts sooner than a pull (three requests and a new
/// dispatch) would move it.
const PULL_WORTH: Duration = Duration::from_millis(25);

/// The prompts waiting on their servers, by job; when the executing ones started; how long
/// each server's prompts take.
#[derive(Debug, Default)]
pub(crate) struct Ahead {
    waiting: FxHashMap<JobKey, Waiting>,
    /// Attempts executing: their attempt, server, and since when.
    started: FxHashMap<JobKey, (u32, ServerId, Instant)>,
    /// Per server, a moving average of its prompts' execution times.
    exec: HashMap<ServerId, Duration>,
    /// Free servers with a pull check due (see `Timer::PullCheck`).
    checks: HashMap<ServerId, Instant>,
}

impl Ahead {
    /// `key`'s attempt `attempt` was dispatched to `server`; `pull` takes it back.
    pub(crate) fn dispatched(
        &mut self,
        key: JobKey,
        attempt: u32,
        server: ServerId,
        pull: oneshot::Sender<()>,
    ) {
        self.waiting.insert(
            key,
            Waiting {
                server,
                attempt,
                since: Instant::now(),
                pull: Some(pull),
                pulled_for: None,
            },
        );
    }

    /// `key`'s attempt `attempt` started executing on `server`.
    pub(crate) fn executing(&mut self, key: JobKey, attempt: u32, server: ServerId) {
        self.started.insert(key, (attempt, server, Instant::now()));
    }

    /// `key`'s attempt `attempt` on `server` ended; a run that succeeded counts in the
    /// server's execution time.
    pub(crate) fn ended(&mut self, key: JobKey, attempt: u32, server: &ServerId, ok: bool) {
        let Some((started_attempt, _, at)) = self.started.remove(&key) else {
            return;
        };
        if !ok || started_attempt != attempt {
            return;
        }
        let took = at.elapsed();
        let average = self.exec.entry(server.clone()).or_insert(took);
        *average = (*average * 4 + took) / 5;
    }

    /// When a prompt waiting on `server` is worth taking back: now if its prompts take
    /// long on average (or it is not known yet), or once the prompt running there has run
    /// for [`PULL_WORTH`] (a quick server may still be running a long prompt).
    fn worth_pulling_from(&self, server: &ServerId, now: Instant) -> Instant {
        if self.exec.get(server).is_none_or(|d| *d >= PULL_WORTH) {
            return now;
        }
        self.started
            .values()
            .filter(|(_, on, _)| on == server)
            .map(|(_, _, since)| *since + PULL_WORTH)
            .min()
            // Behind a prompt not started yet (as far as the pool knows): give it the time
            // a quick prompt takes.
            .unwrap_or(now + PULL_WORTH)
            .max(now)
    }

    /// `server` left the pool: its figures go.
    pub(crate) fn forget_server(&mut self, server: &ServerId) {
        self.exec.remove(server);
        self.checks.remove(server);
    }

    /// `key`'s prompt started executing, or its attempt ended: it waits no more. Returns the
    /// free server a pull was in progress for, if any.
    pub(crate) fn settled(&mut self, key: JobKey, attempt: u32) -> Option<ServerId> {
        match self.waiting.get(&key) {
            Some(w) if w.attempt == attempt => self.waiting.remove(&key).and_then(|w| w.pulled_for),
            _ => None,
        }
    }

    /// Whether a pull for the free server `server` is in progress.
    pub(crate) fn pulling_for(&self, server: &ServerId) -> bool {
        self.waiting
            .values()
            .any(|w| w.pulled_for.as_ref() == Some(server))
    }

    /// The jobs that could be pulled (not asked yet), latest first, with their servers.
    pub(crate) fn candidates(&self) -> Vec<(JobKey, ServerId)> {
        let mut found: Vec<(&JobKey, &Waiting)> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.pull.is_some())
            .collect();
        found.sort_by_key(|(_, w)| std::cmp::Reverse(w.since));
        found
            .into_iter()
            .map(|(k, w)| (*k, w.server.clone()))
            .collect()
    }

    /// Asks `key`'s attempt to take its prompt back for `free`; false if it cannot be asked.
    pub(crate) fn pull(&mut self, key: JobKey, free: &ServerId) -> bool {
        let Some(w) = self.waiting.get_mut(&key) else {
            return false;
        };
        let Some(pull) = w.pull.take() else {
            return false;
        };
        if pull.send(()).is_err() {
            return false;
        }
        w.pulled_for = Some(free.clone());
        true
    }

    /// The server refused to give `key`'s prompt back (it started): the pull is over.
    /// Returns the free server it was for.
    pub(crate) fn refused(&mut self, key: JobKey, attempt: u32) -> Option<ServerId> {
        match self.waiting.get_mut(&key) {
            Some(w) if w.attempt == attempt => w.pulled_for.take(),
            _ => None,
        }
    }
}

impl Engine {
    /// `server` has a free slot and the queue had nothing for it: takes back a prompt that
    /// waits on a busy server and that `server` can run, if there is one (at most one pull
    /// per free server at a time). The pulled job is placed again when its attempt reports.
    pub(crate) fn pull_for(&mut self, server: &ServerId) {
        if self.settings.queue_ahead == 0 || self.ahead.pulling_for(server) {
            return;
        }
        let now = Instant::now();
        let mut later: Option<Instant> = None;
        for (key, on) in self.ahead.candidates() {
            if on == *server {
                continue;
            }
            let worth = self.ahead.worth_pulling_from(&on, now);
            if worth > now {
                later = Some(later.map_or(worth, |l| l.min(worth)));
                continue;
            }
            // Only a prompt behind another one on its server: alone there, it starts now.
            if self.server(&on).is_none_or(|s| s.in_flight < 2) {
                continue;
            }
            let admitted = self.jobs.get(&key).is_some_and(|job| {
                self.server(server)
                    .is_some_and(|s| job.constraint.admits(&s.view()))
            });
            if !admitted || self.runnable_variant(key, server, now).is_none() {
                continue;
            }
            if self.ahead.pull(key, server) {
                tracing::debug!(job = key.0, from = %on, to = %server, "comfy-pool: taking a queued-ahead prompt back");
                return;
            }
        }
        // Nothing worth a pull yet: look again when a prompt waits behind one that has run
        // long enough (never a job stranded behind a long prompt while this server idles).
        if let Some(at) = later
            && self.ahead.checks.get(server).is_none_or(|due| *due > at)
            && let Some(key) = self.server(server).map(|s| s.key)
        {
            self.ahead.checks.insert(server.clone(), at);
            self.add_timer(at, Timer::PullCheck(key));
        }
    }

    /// A pull check is due for the free server `key`.
    pub(crate) fn on_pull_check(&mut self, key: ServerKey) {
        let Some(id) = self
            .servers
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.id.clone())
        else {
            return;
        };
        if self
            .ahead
            .checks
            .get(&id)
            .is_some_and(|due| *due <= Instant::now())
        {
            self.ahead.checks.remove(&id);
        }
        self.work.push_back(Work::Fill(id));
    }

    /// The attempt `attempt` of `key` could not take its prompt back (it started there).
    pub(crate) fn on_pull_refused(&mut self, key: JobKey, attempt: u32) {
        if let Some(free) = self.ahead.refused(key, attempt) {
            self.work.push_back(Work::Fill(free));
        }
    }

    /// `key`'s attempt stopped waiting (its prompt started, or the attempt ended): a free
    /// server a pull was for looks for work again.
    pub(crate) fn ahead_settled(&mut self, key: JobKey, attempt: u32) {
        if let Some(free) = self.ahead.settled(key, attempt) {
            self.work.push_back(Work::Fill(free));
        }
    }

    /// `key`'s attempt `attempt` started executing: it waits no more, and its execution time
    /// is measured from now.
    pub(crate) fn ahead_executing(&mut self, key: JobKey, attempt: u32) {
        if self.settings.queue_ahead > 0 {
            let server = self
                .jobs
                .get(&key)
                .and_then(|job| job.cell.read(|r| r.current().map(|c| c.server)));
            if let Some(server) = server {
                self.ahead.executing(key, attempt, server);
            }
        }
        self.ahead_settled(key, attempt);
    }
}
