//! Capability-aware routing: what each server can run (read from `/object_info` through its
//! backend), what each workflow needs (computed once per hash), and a cached verdict per
//! (server, hash) consulted at dispatch beside the failover strategy. A server that lacks a
//! node class or a model file never receives the job: "lacks" means "not until its
//! capabilities change", where a block means "not now".
//!
//! Capabilities are read when a server comes online (it takes work only once they are
//! known, or known to be unknowable), after a sign of a restart (its socket dropped and
//! reopened), periodically, and right after it failed a job for lack of a resource.

use std::sync::Arc;

use comfy_caps::{Capabilities, Requirements, Verdict, VerdictCache};
use pool_failover::{FailureClass, ServerId};
use rustc_hash::FxHashMap;
use workflow_hash::WorkflowHash;

use crate::command::Command;
use crate::engine::{Engine, ServerKey, Timer, Work};
use crate::{AttemptFailure, Error, Ineligible, JobKey, JobState};

/// What a workflow needs of a server (nothing, for a workflow the rules cannot read: it is
/// then judged by the servers' answers only).
pub(crate) fn requirements_of(workflow: &serde_json::Value) -> Requirements {
    Requirements::of(workflow).unwrap_or_default()
}

/// What each variant of a job needs of a server, in order.
pub(crate) fn requirements_of_spec(spec: &crate::JobSpec) -> Vec<Arc<Requirements>> {
    spec.variants()
        .iter()
        .map(|v| Arc::new(requirements_of(&v.workflow)))
        .collect()
}

/// What the engine knows of a server's capabilities.
#[derive(Debug, Default)]
pub(crate) struct ServerCaps {
    /// The last capabilities read (`None`: not read, or the backend cannot tell).
    pub(crate) caps: Option<Arc<Capabilities>>,
    /// The first read ended (the server takes work from then on).
    pub(crate) known: bool,
    /// A read is under way.
    fetching: bool,
    /// Another read was asked for while one was under way.
    stale: bool,
}

/// The requirements of the workflows of live jobs, by hash, with how many jobs share each.
#[derive(Debug, Default)]
pub(crate) struct Needs {
    by_hash: FxHashMap<WorkflowHash, (Arc<Requirements>, usize)>,
}

impl Needs {
    /// Counts one more live job for each variant of `spec` (`reqs`: theirs, in order).
    pub(crate) fn add_spec(&mut self, spec: &crate::JobSpec, reqs: &[Arc<Requirements>]) {
        for (hash, reqs) in spec.hashes().zip(reqs) {
            self.add(hash, reqs);
        }
    }

    /// Counts one live job less for each variant of `spec`.
    pub(crate) fn remove_spec(&mut self, spec: &crate::JobSpec) {
        for hash in spec.hashes() {
            self.remove(&hash);
        }
    }

    /// Counts one more live job of `hash`.
    pub(crate) fn add(&mut self, hash: WorkflowHash, reqs: &Arc<Requirements>) {
        self.by_hash
            .entry(hash)
            .or_insert_with(|| (Arc::clone(reqs), 0))
            .1 += 1;
    }

    /// Counts one live job of `hash` less.
    pub(crate) fn remove(&mut self, hash: &WorkflowHash) {
        if let Some((_, n)) = self.by_hash.get_mut(hash) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_hash.remove(hash);
            }
        }
    }

    fn get(&self, hash: &WorkflowHash) -> Option<&Requirements> {
        self.by_hash.get(hash).map(|(reqs, _)| reqs.as_ref())
    }
}

/// The verdicts of (server, hash) pairs, and what they are judged from.
#[derive(Debug)]
pub(crate) struct Verdicts {
    cache: VerdictCache<ServerKey>,
    pub(crate) needs: Needs,
}

impl Default for Verdicts {
    fn default() -> Self {
        Self {
            cache: VerdictCache::new(1 << 14),
            needs: Needs::default(),
        }
    }
}

impl Verdicts {
    /// What `server` lacks to run `hash`, if it is known to lack something.
    pub(crate) fn lacks(
        &mut self,
        server: ServerKey,
        caps: &ServerCaps,
        hash: &WorkflowHash,
    ) -> Option<&Verdict> {
        let caps = caps.caps.as_deref()?;
        let reqs = self.needs.get(hash)?;
        let verdict = self.cache.get_or_check(&server, caps, hash, reqs);
        (!verdict.is_capable()).then_some(verdict)
    }

    /// Whether `server` may be able to run `hash` (it is not known to lack anything).
    pub(crate) fn admits(
        &mut self,
        server: ServerKey,
        caps: &ServerCaps,
        hash: &WorkflowHash,
    ) -> bool {
        self.lacks(server, caps, hash).is_none()
    }
}

impl Engine {
    /// Reads a server's capabilities in the background (once at a time; a request during a
    /// read reads again after it).
    pub(crate) fn fetch_capabilities(&mut self, id: &ServerId) {
        let routing = self.settings.capability_routing;
        let Some(server) = self.server_mut(id) else {
            return;
        };
        if !routing {
            server.caps.known = true;
            return;
        }
        if server.caps.fetching {
            server.caps.stale = true;
            return;
        }
        server.caps.fetching = true;
        let backend = Arc::clone(&server.backend);
        let Some(tx) = self.commands.upgrade() else {
            return;
        };
        let id = id.clone();
        tokio::spawn(async move {
            let result = backend.capabilities().await.map(|caps| caps.map(Arc::new));
            let _ = tx.send(Command::Capabilities { server: id, result });
        });
    }

    /// A capabilities read ended: the server takes work from now on (what it lacks stays
    /// off it), queued jobs no server can run any more fail, and the next periodic read is
    /// scheduled.
    pub(crate) fn on_capabilities(
        &mut self,
        id: &ServerId,
        result: Result<Option<Arc<Capabilities>>, AttemptFailure>,
    ) {
        let refresh = self.settings.capabilities_refresh;
        let Some(server) = self.server_mut(id) else {
            return;
        };
        server.caps.fetching = false;
        server.caps.known = true;
        match result {
            Ok(caps) => server.caps.caps = caps,
            // Keep what was known; a server that cannot tell is judged by its answers.
            Err(failure) => {
                let reason = failure.reason;
                tracing::warn!(server = %id, %reason, "comfy-pool: reading a server's capabilities failed");
            }
        }
        let key = server.key;
        if std::mem::take(&mut server.caps.stale) {
            self.fetch_capabilities(id);
        }
        if let Some(every) = refresh {
            self.add_timer(tokio::time::Instant::now() + every, Timer::CapsRefresh(key));
        }
        if let Some(pending) = &mut self.ready_pending {
            pending.remove(id);
        }
        self.check_ready();
        self.fail_jobs_nobody_can_run();
        self.rejudge_parked(id);
        self.work.push_back(Work::Fill(id.clone()));
    }

    /// A rejection naming a class, input or value that the last read of the server's
    /// capabilities did not show missing: judged again once they are read anew (they may
    /// have changed since), instead of failing the job as an invalid workflow at once.
    /// Returns whether the failure was parked.
    pub(crate) fn park(
        &mut self,
        key: JobKey,
        server: &ServerId,
        failure: &AttemptFailure,
    ) -> bool {
        let named = failure
            .rejections
            .iter()
            .any(|r| r.class.is_some() || r.value.is_some());
        let readable = self.server(server).is_some_and(|s| s.caps.caps.is_some());
        if failure.class != FailureClass::WorkflowInvalid || !named || !readable {
            return false;
        }
        self.parked.push((server.clone(), key, failure.clone()));
        self.fetch_capabilities(server);
        true
    }

    /// The parked failures of `server`, judged with its new capabilities.
    fn rejudge_parked(&mut self, server: &ServerId) {
        let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|(s, _, _)| s == server);
        self.parked = others;
        for (server, key, failure) in mine {
            let Some(hash) = self.jobs.get(&key).map(|j| j.ran_hash()) else {
                continue;
            };
            let mut failure = self.reclassify(&server, &hash, failure);
            // Judged: never parked again.
            failure.rejections.clear();
            self.on_failure(key, &server, failure);
        }
    }

    /// Takes a job out of the parked failures (it was cancelled or ran out of time).
    pub(crate) fn unpark(&mut self, key: JobKey) -> bool {
        let before = self.parked.len();
        self.parked.retain(|(_, k, _)| *k != key);
        self.parked.len() != before
    }

    /// The periodic read of a server's capabilities is due.
    pub(crate) fn on_caps_refresh(&mut self, key: ServerKey) {
        let id = self
            .servers
            .iter()
            .find(|s| s.key == key && s.is_member())
            .map(|s| s.id.clone());
        if let Some(id) = id {
            self.fetch_capabilities(&id);
        }
    }

    /// Queued jobs that every remaining server is known to lack something for end at once
    /// (unless they wait for a capable server).
    pub(crate) fn fail_jobs_nobody_can_run(&mut self) {
        let queued: Vec<JobKey> = self
            .jobs
            .iter()
            .filter(|(_, job)| {
                !job.spec.options.wait_for_capable && job.state() == JobState::Queued
            })
            .map(|(key, _)| *key)
            .collect();
        for key in queued {
            if self.nobody_can_run(key) && self.queue.remove(key).is_some() {
                self.place(key);
            }
        }
    }

    /// Whether every member server the job's filters admit is known to lack something for
    /// every variant of the job.
    fn nobody_can_run(&mut self, key: JobKey) -> bool {
        let Some(job) = self.jobs.get(&key) else {
            return false;
        };
        let constraint = Arc::clone(&job.constraint);
        let spec = Arc::clone(&job.spec);
        let Self {
            servers, verdicts, ..
        } = self;
        let mut admitted = servers
            .iter()
            .filter(|s| s.is_member() && constraint.admits(&s.view()))
            .peekable();
        admitted.peek().is_some()
            && admitted.all(|s| {
                spec.hashes()
                    .all(|hash| verdicts.lacks(s.key, &s.caps, &hash).is_some())
            })
    }

    /// A workflow-invalid failure that names a class or file the server is known to lack is
    /// the server's lack, whatever the wording of its ComfyUI version; a lack of resource
    /// also has the server's capabilities read again.
    pub(crate) fn reclassify(
        &mut self,
        server: &ServerId,
        hash: &WorkflowHash,
        failure: AttemptFailure,
    ) -> AttemptFailure {
        let mut failure = failure;
        if failure.class == FailureClass::WorkflowInvalid
            && !failure.rejections.is_empty()
            && let Some(s) = self.servers.iter().find(|s| s.id == *server)
            && let Some(caps) = s.caps.caps.as_deref()
            && let Some(reqs) = self.verdicts.needs.get(hash)
            && let Some(missing) = failure
                .rejections
                .iter()
                .find_map(|r| comfy_caps::explain_rejection(caps, reqs, &r.borrowed()))
        {
            failure = AttemptFailure::new(
                FailureClass::ServerLacksResource,
                format!("the server lacks {missing}: {}", failure.reason),
            );
        }
        if failure.class == FailureClass::ServerLacksResource {
            self.fetch_capabilities(server);
        }
        failure
    }
}

/// Whether one server can run a workflow, by what it is known to have.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "fit", content = "missing", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Fit {
    /// It has every node class and model file the workflow names.
    Capable,
    /// It lacks these ("node class X", "model file F (input of Class)"): it never receives
    /// the workflow until its capabilities change.
    Lacks(Vec<String>),
    /// Its capabilities are not known (not read yet, or its backend cannot tell): it is
    /// judged by its answers.
    Unknown,
}

impl Engine {
    /// Which member servers can run a workflow of `hash`.
    pub(crate) fn fit(
        &mut self,
        hash: WorkflowHash,
        reqs: &Arc<Requirements>,
    ) -> Vec<(ServerId, Fit)> {
        self.verdicts.needs.add(hash, reqs);
        let Self {
            servers, verdicts, ..
        } = self;
        let fits = servers
            .iter()
            .filter(|s| s.is_member())
            .map(|s| {
                let fit = match (&s.caps.caps, verdicts.lacks(s.key, &s.caps, &hash)) {
                    (None, _) => Fit::Unknown,
                    (Some(_), None) => Fit::Capable,
                    (Some(_), Some(verdict)) => {
                        Fit::Lacks(verdict.missing().iter().map(ToString::to_string).collect())
                    }
                };
                (s.id.clone(), fit)
            })
            .collect();
        self.verdicts.needs.remove(&hash);
        fits
    }

    /// The error of a job no server can run: per server, why (what it lacks for each
    /// variant, or its block).
    pub(crate) fn lacking_error(&mut self, key: JobKey) -> Error {
        let spec = self.jobs.get(&key).map(|j| Arc::clone(&j.spec));
        let mut per_server = self.ineligible(key, None);
        if let Some(spec) = spec {
            for (server, why) in &mut per_server {
                if matches!(why, Ineligible::Blocked(_))
                    && let Some(lack) = self.lack_reason(server, &spec)
                {
                    *why = lack;
                }
            }
        }
        Error::NoEligibleServer { per_server }
    }
}
