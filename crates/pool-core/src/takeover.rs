//! The engine's side of server leases: only servers this process holds take work. A lease
//! gained is a takeover — the server's stored blocks are restored and the jobs running on it
//! are taken up exactly as a restart takes them up (re-attach to the prompt; lost → queued
//! again); only then does the server take new work, so its running prompts count against its
//! `max_concurrent`. A lease lost stops this process's attempts there without clean-up and
//! without an end (detached: the prompt and the record stay for the next holder); an attempt
//! whose prompt the server has not accepted yet is withdrawn instead (the job is queued
//! again), so the next holder does not wait for a prompt that never arrives.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use pool_failover::ServerId;

use crate::engine::{Engine, StopReason, Work};
use crate::fleet_link::{FleetInput, FleetLink, FleetTasks};
use crate::job::JobCell;
use crate::{JobId, Lease, StoredBlock};

/// What the engine keeps about its fleet.
#[derive(Debug)]
pub(crate) struct FleetState {
    pub(crate) link: Arc<FleetLink>,
    /// The servers leased at the last heartbeat (some maybe still being taken over).
    pub(crate) leased: HashSet<ServerId>,
    /// Jobs this process knows but another one runs (or may): their cells end as stored
    /// (several per job when a job came back here and left again).
    pub(crate) followed: HashMap<JobId, Vec<Arc<JobCell>>>,
    /// Followed jobs whose cancel was asked here: told again at each resync until they end
    /// (a notice may be lost).
    pub(crate) cancels: HashSet<JobId>,
    /// Jobs to read from the store at the end of the engine's turn.
    pub(crate) loads: Vec<JobId>,
    /// Jobs held here (dispatched, say, their claim not yet answered) that another process
    /// changed meanwhile: read again if this process lets them go, since the notices of
    /// those changes found no copy here to act on (see `Engine::let_go`).
    pub(crate) missed: HashSet<JobId>,
    pub(crate) tasks: Option<FleetTasks>,
}

impl FleetState {
    pub(crate) fn new(link: Arc<FleetLink>) -> Self {
        Self {
            link,
            leased: HashSet::new(),
            followed: HashMap::new(),
            cancels: HashSet::new(),
            loads: Vec::new(),
            missed: HashSet::new(),
            tasks: None,
        }
    }
}

impl Engine {
    /// Starts the fleet's background tasks (after recovery).
    pub(crate) fn start_fleet(&mut self) {
        let Some(store) = self.shared.store.clone() else {
            return;
        };
        let servers: Vec<ServerId> = self.servers.iter().map(|s| s.id.clone()).collect();
        let commands = self.commands.clone();
        if let Some(fleet) = &mut self.fleet {
            fleet.tasks = Some(FleetTasks::start(&fleet.link, &store, servers, &commands));
        }
    }

    /// Leaves the fleet at shutdown: no heartbeat any more, every lease given up, and the
    /// jobs followed elsewhere let go.
    pub(crate) async fn leave_fleet(&mut self) {
        let Some(fleet) = &mut self.fleet else {
            return;
        };
        if let Some(tasks) = fleet.tasks.take() {
            tasks.stop().await;
        }
        if let Err(error) = fleet.link.fleet.leave().await {
            tracing::warn!(%error, "comfy-pool: leaving the fleet failed; leases run out instead");
        }
        for cell in fleet.followed.drain().flat_map(|(_, cells)| cells) {
            cell.detach();
        }
    }

    /// What the fleet side reports.
    pub(crate) fn on_fleet(&mut self, input: FleetInput) {
        // Once shutting down, only the leases matter: a lease lost meanwhile still stops the
        // attempts there (fencing holds while a drain runs).
        let leases = matches!(input, FleetInput::Leases(_));
        if self.fleet.is_none() || (self.shutdown.is_some() && !leases) {
            return;
        }
        match input {
            FleetInput::Leases(leases) => self.on_leases(leases),
            FleetInput::Takeover {
                server,
                blocks,
                records,
            } => self.on_takeover(&server, blocks, records),
            FleetInput::Records(records) => self.on_records(records),
            FleetInput::Changed {
                job,
                version,
                state,
            } => self.on_changed(&job, version, state),
            FleetInput::Cancel(job) => self.on_remote_cancel(&job),
            FleetInput::Event(event) => self.on_relayed(&event),
            FleetInput::Workflow(event) => self.publish(crate::PoolEvent::Workflow(event)),
            FleetInput::Follow(cell) => self.follow_stored(cell),
            FleetInput::Stale(cell) => self.on_stale(&cell),
            FleetInput::Resync => self.reload_followed(),
        }
    }

    fn on_leases(&mut self, leases: Vec<Lease>) {
        let Some(fleet) = &mut self.fleet else { return };
        let now: HashSet<ServerId> = leases.into_iter().map(|l| l.server).collect();
        let lost: Vec<ServerId> = fleet.leased.difference(&now).cloned().collect();
        let gained: Vec<ServerId> = now.difference(&fleet.leased).cloned().collect();
        fleet.leased = now;
        for server in lost {
            self.lose_lease(&server);
        }
        if let Some(store) = self
            .shared
            .store
            .as_ref()
            .filter(|_| self.shutdown.is_none())
        {
            for server in gained {
                crate::fleet_link::spawn_takeover(store, server, self.commands.clone());
            }
        }
    }

    /// Stops dispatching to `id` and lets its jobs go (detached, followed).
    fn lose_lease(&mut self, id: &ServerId) {
        let Some(server) = self.server_mut(id) else {
            return;
        };
        if !server.leased {
            return;
        }
        server.leased = false;
        server.backend.hold(false);
        tracing::info!(server = %id, "comfy-pool: server lease lost");
        // A prompt the server accepted stays there for the next holder; an attempt not
        // submitted yet goes back to the queue (withdrawn) once its submission, if under
        // way, is answered, so that the next holder does not find a prompt that never
        // arrived, and no prompt arrives for a job queued again.
        for job in self.jobs.values_mut() {
            let (here, submitted) = job.cell.read(|r| {
                let here = r.current().is_some_and(|c| c.server == *id);
                let submitted = r.attempts.last().is_some_and(|a| a.submitted_at.is_some());
                (here, submitted)
            });
            if here && let Some(stop) = job.stop.take() {
                let reason = if submitted {
                    StopReason::Detach
                } else {
                    StopReason::LeaseLost
                };
                let _ = stop.send(reason);
            }
        }
        for key in self.resumes.remove(id).unwrap_or_default() {
            self.drop_local(key);
        }
    }

    /// A newly leased server: blocks restored, its running jobs taken up, then it takes work.
    fn on_takeover(
        &mut self,
        id: &ServerId,
        blocks: Vec<StoredBlock>,
        records: Vec<crate::JobRecord>,
    ) {
        let still_leased = self.fleet.as_ref().is_some_and(|f| f.leased.contains(id));
        if !still_leased || self.server(id).is_none_or(|s| s.leased) {
            return;
        }
        self.restore_blocks(blocks);
        if let Some(server) = self.server_mut(id) {
            server.leased = true;
            server.backend.hold(true);
            // Checked at once: its socket opens before its first prompt.
            server.nudge.notify_one();
        }
        tracing::info!(server = %id, jobs = records.len(), "comfy-pool: server lease gained");
        self.on_records(records);
        self.work.push_back(Work::Fill(id.clone()));
    }
}

impl Engine {
    /// What the persister needs to tell the fleet (with a fleet).
    pub(crate) fn fleet_tap(&self) -> Option<crate::persist::FleetTap> {
        self.fleet.as_ref().map(|f| crate::persist::FleetTap {
            link: Arc::clone(&f.link),
            engine: self.commands.clone(),
        })
    }

    /// At shutdown, with a fleet: the jobs waiting here are the fleet's queue, left to the
    /// other processes (not cancelled, not drained here).
    pub(crate) fn leave_queue(&mut self) {
        if self.fleet.is_none() {
            return;
        }
        let waiting: Vec<crate::JobKey> = self
            .jobs
            .iter()
            .filter(|(_, job)| {
                matches!(
                    job.state(),
                    crate::JobState::Queued | crate::JobState::RetryWait
                )
            })
            .map(|(key, _)| *key)
            .collect();
        for key in waiting {
            self.queue.remove(key);
            self.drop_local(key);
        }
    }

    /// Tells the other processes of a block and of its end.
    pub(crate) fn tell_fleet_block(
        &self,
        event: &pool_failover::FailoverEvent,
        change: &crate::WorkflowEvent,
    ) {
        use pool_failover::FailoverEvent;
        if let Some(fleet) = &self.fleet
            && matches!(
                event,
                FailoverEvent::Blocked { .. } | FailoverEvent::Unblocked { .. }
            )
        {
            fleet.link.tell(crate::FleetNotice::Workflow {
                event: change.clone(),
            });
        }
    }
}
