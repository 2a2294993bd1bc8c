//! The servers as the engine tracks them: state, slots, counters; adding, draining, removing,
//! and what health checks report.

use std::sync::Arc;

use pool_failover::ServerId;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::ejection::{Outlier, Verdict};
use crate::engine::Work;
use crate::engine::{Engine, ServerKey, StopReason, Timer};
use crate::{
    AttemptFailure, Error, JobState, PoolStats, Result, ServerBackend, ServerConfig, ServerState,
    ServerStats, ServerView, health,
};

/// One server of the pool.
pub(crate) struct Server {
    pub(crate) id: ServerId,
    /// A number no other server of this pool ever had (for timers).
    pub(crate) key: ServerKey,
    pub(crate) tags: Vec<String>,
    pub(crate) weight: u32,
    pub(crate) max_concurrent: usize,
    pub(crate) backend: Arc<dyn ServerBackend>,
    pub(crate) state: ServerState,
    pub(crate) in_flight: usize,
    /// Prompts of ended attempts whose server-side clean-up has not settled yet: they may
    /// still run there, so they hold their slot.
    pub(crate) cleaning: usize,
    /// Whether the last health check passed.
    pub(crate) healthy: bool,
    pub(crate) outlier: Outlier,
    pub(crate) caps: crate::capability::ServerCaps,
    pub(crate) completed: u64,
    pub(crate) failed: u64,
    pub(crate) last_error: Option<String>,
    pub(crate) nudge: Arc<Notify>,
    pub(crate) health_task: JoinHandle<()>,
    /// Whether this process may dispatch to it: always without a fleet; with one, while it
    /// holds the server's lease (and took the server over).
    pub(crate) leased: bool,
}

impl Server {
    pub(crate) fn is_online(&self) -> bool {
        self.state == ServerState::Online
    }

    pub(crate) fn has_free_slot(&self) -> bool {
        self.takes_below(self.max_concurrent)
    }

    /// Whether the server may take a prompt to wait in its own queue: fewer than
    /// `max_concurrent + ahead` held (queue-ahead).
    pub(crate) fn has_ahead_slot(&self, ahead: usize) -> bool {
        ahead > 0 && self.takes_below(self.max_concurrent + ahead)
    }

    /// Whether the server takes work and holds fewer than `limit` prompts.
    fn takes_below(&self, limit: usize) -> bool {
        self.leased && self.is_online() && self.caps.known && self.in_flight + self.cleaning < limit
    }

    /// Whether the server counts as a place a job could ever run (not leaving the pool).
    pub(crate) fn is_member(&self) -> bool {
        !matches!(self.state, ServerState::Draining | ServerState::Removed)
    }

    pub(crate) fn view(&self) -> ServerView<'_> {
        ServerView {
            id: &self.id,
            tags: &self.tags,
        }
    }
}

impl Engine {
    pub(crate) fn server(&self, id: &ServerId) -> Option<&Server> {
        self.servers.iter().find(|s| s.id == *id)
    }

    pub(crate) fn server_mut(&mut self, id: &ServerId) -> Option<&mut Server> {
        self.servers.iter_mut().find(|s| s.id == *id)
    }

    pub(crate) fn add_server(&mut self, config: ServerConfig) -> Result<()> {
        if self.shutdown.is_some() {
            return Err(Error::ShuttingDown);
        }
        if self.server(&config.id).is_some() {
            return Err(Error::DuplicateServer(config.id));
        }
        let backend = crate::comfy_backend::backend_for(&config)?;
        // In a fleet, a server is held once its lease is (see `on_takeover`).
        backend.hold(self.fleet.is_none());
        let nudge = Arc::new(Notify::new());
        let health_task = health::spawn(
            config.id.clone(),
            Arc::clone(&backend),
            &self.settings,
            self.commands.clone(),
            Arc::clone(&nudge),
        );
        if let Some(pending) = &mut self.ready_pending {
            pending.insert(config.id.clone());
        }
        self.server_seq += 1;
        self.servers.push(Server {
            id: config.id.clone(),
            key: self.server_seq,
            tags: config.tags,
            weight: config.weight,
            max_concurrent: config.max_concurrent,
            backend,
            state: ServerState::Connecting,
            in_flight: 0,
            cleaning: 0,
            healthy: false,
            outlier: Outlier::default(),
            caps: crate::capability::ServerCaps::default(),
            completed: 0,
            failed: 0,
            last_error: None,
            nudge,
            health_task,
            leased: self.fleet.is_none(),
        });
        self.servers_changed();
        self.set_state(&config.id, ServerState::Connecting, None);
        Ok(())
    }

    fn servers_changed(&mut self) {
        let views: Vec<ServerView<'_>> = self
            .servers
            .iter()
            .filter(|s| s.is_member())
            .map(Server::view)
            .collect();
        self.queue.set_servers(&views);
    }

    pub(crate) fn set_state(&mut self, id: &ServerId, state: ServerState, error: Option<String>) {
        let Some(server) = self.server_mut(id) else {
            return;
        };
        let changed = server.state != state;
        server.state = state;
        if error.is_some() {
            server.last_error.clone_from(&error);
        }
        if changed || state == ServerState::Connecting {
            self.publish_server(id, state, error);
        }
    }

    pub(crate) fn remove_server(&mut self, id: &ServerId, drain: bool) -> Result<()> {
        let Some(server) = self.server(id) else {
            return Err(Error::UnknownServer(id.clone()));
        };
        if !server.is_member() {
            return Ok(());
        }
        self.set_state(id, ServerState::Draining, None);
        self.servers_changed();
        if !drain {
            self.stop_attempts_on(id, StopReason::Withdraw);
        }
        self.retire_if_idle(id);
        self.fail_unplaceable_queued();
        Ok(())
    }

    /// Drops a draining server once nothing runs on it.
    pub(crate) fn retire_if_idle(&mut self, id: &ServerId) {
        let Some(at) = self.servers.iter().position(|s| s.id == *id) else {
            return;
        };
        let Some(server) = self.servers.get(at) else {
            return;
        };
        if server.state != ServerState::Draining || server.in_flight + server.cleaning > 0 {
            return;
        }
        let server = self.servers.remove(at);
        server.health_task.abort();
        self.ahead.forget_server(id);
        if let Some(pending) = &mut self.ready_pending {
            pending.remove(id);
        }
        let events = self.shared.strategy.reset_server(id);
        self.publish_server(id, ServerState::Removed, None);
        self.publish_failover(&events);
        self.check_ready();
    }

    pub(crate) fn on_health(
        &mut self,
        id: &ServerId,
        result: std::result::Result<(), AttemptFailure>,
        hinted: bool,
    ) {
        let Some(server) = self.server_mut(id) else {
            return;
        };
        server.healthy = result.is_ok();
        let state = server.state;
        match result {
            Ok(()) => {
                if matches!(state, ServerState::Connecting | ServerState::Offline) {
                    self.set_state(id, ServerState::Online, None);
                    self.work.push_back(Work::Fill(id.clone()));
                    // Back online, maybe restarted with other nodes or models: read again.
                    self.fetch_capabilities(id);
                } else if hinted {
                    self.fetch_capabilities(id);
                }
            }
            Err(failure) => {
                if matches!(state, ServerState::Connecting | ServerState::Online) {
                    self.set_state(id, ServerState::Offline, Some(failure.reason));
                    self.stop_attempts_on(id, StopReason::ServerOffline);
                }
            }
        }
        // A server that answers is ready once its capabilities are known too.
        let answered = self.server(id).is_some_and(|s| !s.healthy || s.caps.known);
        if answered && let Some(pending) = &mut self.ready_pending {
            pending.remove(id);
        }
        self.check_ready();
    }

    /// Takes a server offline after a server-down failure and asks its health check to look;
    /// the attempts still running there fail over too.
    pub(crate) fn server_down(&mut self, id: &ServerId, reason: &str) {
        let Some(server) = self.server(id) else {
            return;
        };
        if matches!(server.state, ServerState::Online | ServerState::Connecting) {
            server.nudge.notify_one();
            self.set_state(id, ServerState::Offline, Some(reason.to_owned()));
            self.stop_attempts_on(id, StopReason::ServerOffline);
        }
    }

    /// Stops every attempt running on `id` (those not stopped already).
    pub(crate) fn stop_attempts_on(&mut self, id: &ServerId, reason: StopReason) {
        for job in self.jobs.values_mut() {
            if job.stop.is_some()
                && job
                    .cell
                    .read(|r| r.current().is_some_and(|c| c.server == *id))
                && let Some(stop) = job.stop.take()
            {
                let _ = stop.send(reason);
            }
        }
    }

    /// Counts an attempt's failure against its server; ejects the server when it failed
    /// prompt after prompt (see [`OutlierEjection`](crate::OutlierEjection)).
    pub(crate) fn note_server_failure(
        &mut self,
        id: &ServerId,
        class: pool_failover::FailureClass,
        reason: &str,
    ) {
        let members = self.servers.iter().filter(|s| s.is_member()).count();
        let ejected = self
            .servers
            .iter()
            .filter(|s| s.is_member() && s.outlier.is_ejected())
            .count();
        let percent = usize::from(self.settings.ejection.max_ejected_percent);
        let may_eject = (ejected + 1) * 100 <= percent * members;
        let now = tokio::time::Instant::now();
        let config = self.settings.ejection.clone();
        let Some(server) = self.server_mut(id) else {
            return;
        };
        if !server.is_member() {
            return;
        }
        let Verdict::Eject { until, failures } =
            server.outlier.failure(class, &config, may_eject, now)
        else {
            return;
        };
        let key = server.key;
        let length = until.saturating_duration_since(now);
        self.set_state(
            id,
            ServerState::Ejected,
            Some(format!(
                "ejected for {length:?} after {failures} failed attempts in a row; last: {reason}"
            )),
        );
        self.add_timer(until, Timer::EjectionEnds(key));
    }

    /// Counts an attempt's success for its server.
    pub(crate) fn note_server_success(&mut self, id: &ServerId) {
        if let Some(server) = self.server_mut(id) {
            server.outlier.success();
        }
    }

    /// An ejection's time is up: the server returns (online if its last health check passed,
    /// otherwise offline until one does).
    pub(crate) fn on_ejection_ends(&mut self, key: ServerKey) {
        let now = tokio::time::Instant::now();
        let config = self.settings.ejection.clone();
        let Some(server) = self.servers.iter_mut().find(|s| s.key == key) else {
            return;
        };
        if server.outlier.until.is_none_or(|until| until > now) {
            return;
        }
        server.outlier.end(&config);
        if server.state != ServerState::Ejected {
            return;
        }
        let (id, healthy) = (server.id.clone(), server.healthy);
        if healthy {
            self.set_state(&id, ServerState::Online, None);
            self.work.push_back(Work::Fill(id));
        } else {
            if let Some(server) = self.server(&id) {
                server.nudge.notify_one();
            }
            self.set_state(&id, ServerState::Offline, None);
        }
    }

    /// The first try of a clean-up on `id` ended: its slot is free again.
    pub(crate) fn on_cleanup_settled(&mut self, id: &ServerId) {
        if let Some(server) = self.server_mut(id) {
            server.cleaning = server.cleaning.saturating_sub(1);
        }
        self.retire_if_idle(id);
        self.work.push_back(Work::Fill(id.clone()));
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let mut stats = PoolStats {
            queued: self.queue.len(),
            queued_by_priority: self.queue.depth_by_priority(),
            completed: self.totals.completed,
            failed: self.totals.failed,
            cancelled: self.totals.cancelled,
            blocks: self.shared.strategy.snapshot(tokio::time::Instant::now()),
            ..PoolStats::default()
        };
        for job in self.jobs.values() {
            match job.state() {
                JobState::RetryWait => stats.retry_wait += 1,
                JobState::Running => stats.running += 1,
                _ => {}
            }
        }
        stats.servers = self
            .servers
            .iter()
            .map(|s| ServerStats {
                id: s.id.clone(),
                state: s.state,
                in_flight: s.in_flight,
                max_concurrent: s.max_concurrent,
                completed: s.completed,
                failed: s.failed,
                last_error: s.last_error.clone(),
            })
            .collect();
        stats
    }
}
