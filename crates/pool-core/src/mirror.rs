//! The queue mirror of a pool process in a fleet: the store's jobs table is the shared queue,
//! and each process keeps its queued jobs in its own queue (taken up at start, brought by
//! `Accepted` notices, repaired by the periodic resync). Dispatching one claims it: the
//! write-ahead of its dispatch is a compare-and-set of its record, and when another process
//! claimed it first the attempt stops before anything is sent, the slot goes back and the
//! job's copy here is dropped. A job that left the queue elsewhere (a `Changed` notice) is
//! dropped too. A dropped job's cell is *followed*: its handles end with the stored outcome.

use std::sync::Arc;

use crate::engine::{Engine, Work};
use crate::fleet_link::spawn_load;
use crate::job::{Job, JobCell};
use crate::{FleetNotice, JobEvent, JobId, JobKey, JobRecord, JobState};

impl Engine {
    /// Whether `id` is a job this process runs or has queued (or ended, or is accepting
    /// right now): not one to take up from the store.
    fn knows(&self, id: &JobId) -> bool {
        let registry = self.shared.registry.lock();
        let Some(cell) = registry.get(id.as_str()) else {
            return false;
        };
        let followed = self
            .fleet
            .as_ref()
            .and_then(|f| f.followed.get(id))
            .is_some_and(|cells| cells.iter().any(|f| Arc::ptr_eq(f, cell)));
        !followed
    }

    /// At start, with a fleet: a job running on a configured server waits for that server's
    /// lease (its holder, maybe another process, follows it).
    pub(crate) fn defers_to_lease(&self, record: &JobRecord) -> bool {
        self.fleet.is_some()
            && record.state == JobState::Running
            && record
                .current()
                .is_some_and(|c| self.server(&c.server).is_some())
    }

    /// Records read from the store: queued ones this process does not know are queued here,
    /// running ones on a server it holds are taken up, ended ones end their followed cells.
    pub(crate) fn on_records(&mut self, records: Vec<JobRecord>) {
        for record in records {
            self.drop_stale_copy(&record.id, record.version);
            if record.state.is_terminal() {
                self.end_followed(&record);
                continue;
            }
            if self.knows(&record.id) {
                continue;
            }
            let server = match record.state {
                JobState::Queued => None,
                // Its backoff is the business of the process that scheduled it, until that
                // process should have queued it again (it may have died).
                JobState::RetryWait if !retry_due(&record) => continue,
                JobState::RetryWait => None,
                JobState::Running => match record.current() {
                    Some(c) if self.server(&c.server).is_some_and(|s| s.leased) => Some(c.server),
                    _ => continue,
                },
                _ => continue,
            };
            let id = record.id.clone();
            self.adopt(record, None);
            self.cancel_if_asked(&id);
            if let Some(server) = server {
                // Re-attach now, not when a slot of the server frees.
                self.work.push_back(Work::Fill(server));
            }
        }
    }

    /// Drops the copy of `id` waiting here if the store has a newer version of it (another
    /// process claimed, ended or requeued it): this copy could only lose its claim.
    fn drop_stale_copy(&mut self, id: &JobId, version: u64) {
        self.drop_waiting_copy(id, |local| version > local);
    }

    /// Drops the copy of `id` waiting here (queued or in backoff) if `stale` says so of its
    /// version.
    fn drop_waiting_copy(&mut self, id: &JobId, stale: impl FnOnce(u64) -> bool) {
        let Some(job) = self.held(id) else { return };
        let key = job.cell.key;
        let (state, local) = job.cell.read(|r| (r.state, r.version));
        if matches!(state, JobState::Queued | JobState::RetryWait) && stale(local) {
            self.queue.remove(key);
            self.drop_local(key);
        }
    }

    /// The copy of `id` this process holds (queued, running or ending here; not followed),
    /// if it holds one.
    fn held(&self, id: &JobId) -> Option<&Job> {
        let key = self
            .shared
            .registry
            .lock()
            .get(id.as_str())
            .map(|c| c.key)?;
        self.jobs.get(&key).map(|job| &**job)
    }

    /// An event of a job another process runs: the job's copies followed here add it to their
    /// streams. A copy still waiting here is dropped first (followed from then on): the job
    /// is the other process's.
    pub(crate) fn on_relayed(&mut self, event: &JobEvent) {
        self.drop_waiting_copy(&event.job, |_| true);
        let Some(fleet) = &self.fleet else { return };
        for cell in fleet.followed.get(&event.job).into_iter().flatten() {
            cell.relayed(event.clone(), &self.shared.events);
        }
    }

    fn end_followed(&mut self, record: &JobRecord) {
        let Some(fleet) = &mut self.fleet else { return };
        let Some(cells) = fleet.followed.remove(&record.id) else {
            return;
        };
        let id = record.id.clone();
        let mut evicted = Vec::new();
        let mut registry = self.shared.registry.lock();
        for cell in cells {
            cell.end_as(record.clone(), &self.shared.events);
            if registry
                .get(id.as_str())
                .is_some_and(|c| Arc::ptr_eq(c, &cell))
            {
                evicted.push(registry.finished(&id));
            }
        }
        // The jobs no longer retained are freed once the lock is let go.
        drop(registry);
        drop(evicted);
    }

    /// Another process changed a job: a copy queued here that is older leaves the queue
    /// (read again if the job is queued still); a followed job that ended is read to end it,
    /// or forgotten when nothing here could see its end (see [`forget_unseen`]).
    ///
    /// [`forget_unseen`]: Self::forget_unseen
    pub(crate) fn on_changed(&mut self, id: &JobId, version: u64, state: JobState) {
        self.drop_stale_copy(id, version);
        let followed = self
            .fleet
            .as_ref()
            .is_some_and(|f| f.followed.contains_key(id));
        let waiting = matches!(state, JobState::Queued | JobState::RetryWait);
        if !followed
            && (waiting || state.is_terminal())
            && self
                .held(id)
                .is_some_and(|job| job.cell.read(|r| r.version) < version)
        {
            // Held here (its dispatch, a claim, may be losing to the other process's): the
            // copy here goes on until its write is answered; if it is let go then, it is
            // read again (its end, or its return to the queue, was told meanwhile).
            if let Some(fleet) = &mut self.fleet {
                fleet.missed.insert(id.clone());
            }
            return;
        }
        if followed && state.is_terminal() && self.forget_unseen(id) {
            return;
        }
        if (followed && state.is_terminal()) || (waiting && !self.knows(id)) {
            self.load(vec![id.clone()]);
        }
    }

    /// A followed job that ended elsewhere, when nothing here observes it (no handle or
    /// stream of it, nobody subscribed to the pool's events): its copies are forgotten instead
    /// of reading its record to end them — a copy that only mirrored another process's job.
    /// Whoever asks for it afterwards finds it in the store. Whether it was forgotten.
    fn forget_unseen(&mut self, id: &JobId) -> bool {
        if self.shared.events.receiver_count() > 0 {
            return false;
        }
        let Some(fleet) = &mut self.fleet else {
            return false;
        };
        let Some(cells) = fleet.followed.get(id) else {
            return false;
        };
        // Under the registry's lock, so no handle is made meanwhile.
        let mut registry = self.shared.registry.lock();
        let registered = registry.get(id.as_str());
        let unseen = cells.iter().all(|cell| {
            // The followed list holds one reference, the registry maybe another.
            let ours = 1 + usize::from(registered.is_some_and(|r| Arc::ptr_eq(r, cell)));
            Arc::strong_count(cell) == ours && !cell.watched()
        });
        if !unseen {
            return false;
        }
        if registered.is_some_and(|r| cells.iter().any(|c| Arc::ptr_eq(r, c))) {
            registry.remove(id);
        }
        drop(registry);
        fleet.followed.remove(id);
        true
    }

    /// Removes a live job from this process without ending it; its cell is followed.
    pub(crate) fn drop_local(&mut self, key: JobKey) {
        let Some(job) = self.jobs.remove(&key) else {
            return;
        };
        for timer in &job.timers {
            self.timers.remove(timer);
        }
        self.verdicts.needs.remove_spec(&job.spec);
        self.let_go(Arc::clone(&job.cell));
    }

    /// A job this process stops holding without an end: detached (a shutdown, no fleet), or
    /// followed until the store says how it ended.
    pub(crate) fn let_go(&mut self, cell: Arc<JobCell>) {
        match &mut self.fleet {
            Some(fleet) if self.shutdown.is_none() => {
                // Another process changed it while it was held here (see `missed`): those
                // notices found no copy to act on, so it is read again.
                if fleet.missed.remove(&cell.id) {
                    fleet.loads.push(cell.id.clone());
                }
                let cells = fleet.followed.entry(cell.id.clone()).or_default();
                if !cells.iter().any(|c| Arc::ptr_eq(c, &cell)) {
                    cells.push(cell);
                }
            }
            _ => cell.detach(),
        }
    }

    /// The store refused this process's end of a job: it ends as stored.
    pub(crate) fn follow_stored(&mut self, cell: Arc<JobCell>) {
        let id = cell.id.clone();
        self.let_go(cell);
        self.load(vec![id]);
    }

    /// The store refused a write of this copy of a job: a waiting copy is dropped and the
    /// job read again; a running one is detached (the store's holder of the job goes on).
    pub(crate) fn on_stale(&mut self, cell: &Arc<JobCell>) {
        let key = cell.key;
        let Some(job) = self.jobs.get_mut(&key) else {
            return;
        };
        if !Arc::ptr_eq(&job.cell, cell) {
            return;
        }
        if matches!(job.state(), JobState::Queued | JobState::RetryWait) {
            self.queue.remove(key);
            self.drop_local(key);
            self.load(vec![cell.id.clone()]);
        } else if let Some(stop) = job.stop.take() {
            let _ = stop.send(crate::engine::StopReason::Detach);
        }
    }

    /// Reads the followed jobs again (the resync: notices may be lost).
    pub(crate) fn reload_followed(&mut self) {
        // Jobs that ended here after all (their claim won): nothing to read again.
        let mut missed = self
            .fleet
            .as_mut()
            .map(|f| std::mem::take(&mut f.missed))
            .unwrap_or_default();
        missed.retain(|id| self.held(id).is_some());
        if let Some(fleet) = &mut self.fleet {
            fleet.missed = missed;
            let followed = &fleet.followed;
            fleet.cancels.retain(|id| followed.contains_key(id));
            for job in &fleet.cancels {
                fleet.link.tell(FleetNotice::Cancel { job: job.clone() });
            }
        }
        let ids = self
            .fleet
            .as_ref()
            .map(|f| f.followed.keys().cloned().collect())
            .unwrap_or_default();
        self.load(ids);
    }

    /// Reads `ids` from the store (with the other reads asked in the same turn of the engine:
    /// see [`flush_loads`](Self::flush_loads)); the records come back as a fleet input.
    fn load(&mut self, ids: Vec<JobId>) {
        if let Some(fleet) = &mut self.fleet {
            fleet.loads.extend(ids);
        }
    }

    /// Starts the reads asked since the last call, as one.
    pub(crate) fn flush_loads(&mut self) {
        let Some(fleet) = &mut self.fleet else { return };
        if fleet.loads.is_empty() {
            return;
        }
        let ids = std::mem::take(&mut fleet.loads);
        if let Some(store) = &self.shared.store {
            spawn_load(store, ids, self.commands.clone());
        }
    }

    /// A cancel asked here: with a fleet, a job not running here may run elsewhere, so its
    /// holder is told too; the job's copy here (if any) is cancelled as without a fleet.
    pub(crate) fn cancel_anywhere(&mut self, key: JobKey) {
        if let Some(fleet) = &mut self.fleet {
            let here = self.jobs.get(&key);
            let running_here = here.is_some_and(|j| j.state() == JobState::Running);
            let id = here.map(|j| j.cell.id.clone()).or_else(|| {
                fleet
                    .followed
                    .values()
                    .flatten()
                    .find(|c| c.key == key)
                    .map(|c| c.id.clone())
            });
            if let Some(job) = id
                && !running_here
            {
                fleet.link.tell(FleetNotice::Cancel { job: job.clone() });
                fleet.cancels.insert(job);
            }
        }
        self.on_cancel(key);
    }

    /// A job taken up here whose cancel was asked here before (while another copy had it)
    /// is cancelled.
    fn cancel_if_asked(&mut self, id: &JobId) {
        let asked = self.fleet.as_ref().is_some_and(|f| f.cancels.contains(id));
        let key = self.shared.registry.lock().get(id.as_str()).map(|c| c.key);
        if asked && let Some(key) = key {
            self.on_cancel(key);
        }
    }

    /// Another process asks to cancel a job: cancelled here if it is here.
    pub(crate) fn on_remote_cancel(&mut self, id: &JobId) {
        let key = self.shared.registry.lock().get(id.as_str()).map(|c| c.key);
        if let Some(key) = key
            && self.jobs.contains_key(&key)
        {
            self.on_cancel(key);
        }
    }
}

/// Whether a job waiting out its backoff is past it (by the record's time of the change).
fn retry_due(record: &JobRecord) -> bool {
    let wait = record.spec.options.backoff.delay(record.counted_attempts());
    crate::Timestamp::now().saturating_duration_since(record.updated_at) >= wait
}
