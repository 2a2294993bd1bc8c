//! A pool process's link to its [`Fleet`]: the notices it sends (one task, in order), and the
//! background tasks that feed the engine — the heartbeat (server leases, with fencing), the
//! notices of the other processes, and the periodic resync of the queue mirror. What they
//! learn reaches the engine as [`FleetInput`]s; the engine's side is in `takeover` (leases
//! gained and lost) and `mirror` (the shared queue, jobs followed elsewhere).

use std::sync::Arc;
use std::time::Duration;

use pool_failover::ServerId;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::command::Command;
use crate::job::JobCell;
use crate::{
    Fleet, FleetNotice, JobEvent, JobId, JobQuery, JobRecord, JobState, JobStore, Lease,
    StoredBlock, WorkflowEvent,
};

/// How often the queued jobs of the store are listed again (lost notices repaired).
pub(crate) const RESYNC_EVERY: Duration = Duration::from_secs(5);

/// Records per page of a resync.
const RESYNC_PAGE: u32 = 500;

/// What the fleet side tells the engine.
#[derive(Debug)]
pub(crate) enum FleetInput {
    /// The leases this process holds now (empty: none, also when renewing failed for the
    /// whole ttl).
    Leases(Vec<Lease>),
    /// What a newly leased server brings along: its stored blocks and the unfinished jobs
    /// (those running on it are taken over).
    Takeover {
        server: ServerId,
        blocks: Vec<StoredBlock>,
        records: Vec<JobRecord>,
    },
    /// Records read from the store (a notice's job, a resync, a followed job).
    Records(Vec<JobRecord>),
    /// Another process changed a job.
    Changed {
        job: JobId,
        version: u64,
        state: JobState,
    },
    /// Another process asks the one running `job` to cancel it.
    Cancel(JobId),
    /// An event of a job another process runs.
    Event(Box<JobEvent>),
    /// A block changed in another process.
    Workflow(WorkflowEvent),
    /// The store refused this process's end of a job (another process changed it): the job
    /// ends as stored.
    Follow(Arc<JobCell>),
    /// The store refused a write of this copy of a job (another process changed the job):
    /// the copy writes nothing more and is dropped, or let go if it runs here.
    Stale(Arc<JobCell>),
    /// Time to read the followed jobs again.
    Resync,
}

/// The fleet of a pool, with the sender of its notices. Shared by the engine, the persister
/// and `Pool::enqueue`.
#[derive(Debug)]
pub(crate) struct FleetLink {
    pub(crate) fleet: Arc<dyn Fleet>,
    /// How long a lease lasts unless renewed.
    pub(crate) ttl: Duration,
    notices: mpsc::UnboundedSender<FleetNotice>,
}

impl FleetLink {
    /// The link, and its notifier task (sending in order until the link is dropped).
    pub(crate) fn spawn(fleet: Arc<dyn Fleet>, ttl: Duration) -> Self {
        let (notices, rx) = mpsc::unbounded_channel();
        tokio::spawn(notify(Arc::clone(&fleet), rx));
        Self {
            fleet,
            ttl,
            notices,
        }
    }

    /// Tells the other processes (best effort, in order, without waiting).
    pub(crate) fn tell(&self, notice: FleetNotice) {
        let _ = self.notices.send(notice);
    }
}

/// Notices sent together at most (what queued while the previous ones were sent).
const NOTIFY_BATCH: usize = 512;

/// The pause after a send of notices while they keep coming: what is told within it goes out
/// together at its end. A notice told after a quiet spell (the last send ended longer ago)
/// goes at once, so an idle fleet adds no delay; a busy one sends a batch per process at most
/// once per send and pause (each send costs a statement, and every process a wake-up).
pub(crate) const NOTIFY_EVERY: Duration = Duration::from_millis(1);

async fn notify(fleet: Arc<dyn Fleet>, mut rx: mpsc::UnboundedReceiver<FleetNotice>) {
    let mut batch = Vec::with_capacity(NOTIFY_BATCH);
    let mut last: Option<Instant> = None;
    while rx.recv_many(&mut batch, NOTIFY_BATCH).await > 0 {
        if let Some(last) = last
            && last.elapsed() < NOTIFY_EVERY
        {
            tokio::time::sleep_until(last + NOTIFY_EVERY).await;
            while batch.len() < NOTIFY_BATCH {
                match rx.try_recv() {
                    Ok(notice) => batch.push(notice),
                    Err(_) => break,
                }
            }
        }
        if let Err(error) = fleet.notify_all(&batch).await {
            tracing::warn!(%error, "comfy-pool: a fleet notice was not sent");
        }
        last = Some(Instant::now());
        batch.clear();
    }
}

/// The running background tasks of the fleet side.
#[derive(Debug)]
pub(crate) struct FleetTasks {
    stop: watch::Sender<bool>,
    heartbeat: JoinHandle<()>,
}

impl FleetTasks {
    /// Starts the heartbeat, the listener and the resync.
    pub(crate) fn start(
        link: &FleetLink,
        store: &Arc<dyn JobStore>,
        servers: Vec<ServerId>,
        engine: &mpsc::WeakUnboundedSender<Command>,
    ) -> Self {
        let (stop, _) = watch::channel(false);
        let heartbeat = tokio::spawn(heartbeat(
            Arc::clone(&link.fleet),
            servers,
            link.ttl,
            engine.clone(),
            stop.subscribe(),
        ));
        tokio::spawn(listen(
            Arc::clone(&link.fleet),
            Arc::clone(store),
            engine.clone(),
            stop.subscribe(),
        ));
        tokio::spawn(resync(Arc::clone(store), engine.clone(), stop.subscribe()));
        Self { stop, heartbeat }
    }

    /// Stops the tasks; returns once no heartbeat can run any more (so that leaving the fleet
    /// afterwards is not undone by one still under way).
    pub(crate) async fn stop(self) {
        self.stop.send_replace(true);
        self.heartbeat.abort();
        let _ = self.heartbeat.await;
    }
}

/// Hands an input to the engine; `false` once it is gone.
fn send(engine: &mpsc::WeakUnboundedSender<Command>, input: FleetInput) -> bool {
    engine
        .upgrade()
        .is_some_and(|tx| tx.send(Command::Fleet(Box::new(input))).is_ok())
}

/// Renews the leases every ttl / 3. Fencing: the leases of a heartbeat count from just before
/// it for one ttl; when no later heartbeat renewed them by then (the store failed or did not
/// answer), the engine is told it holds nothing, before another process can take them.
async fn heartbeat(
    fleet: Arc<dyn Fleet>,
    servers: Vec<ServerId>,
    ttl: Duration,
    engine: mpsc::WeakUnboundedSender<Command>,
    mut stop: watch::Receiver<bool>,
) {
    let every = ttl / 3;
    let mut valid_until: Option<Instant> = None;
    loop {
        let began = Instant::now();
        let deadline = valid_until.unwrap_or(began + ttl);
        let call = tokio::time::timeout_at(deadline, fleet.lease(&servers, ttl));
        let result = tokio::select! {
            result = call => result,
            _ = stop.changed() => return,
        };
        let held = match result {
            Ok(Ok(leases)) => {
                valid_until = Some(began + ttl);
                Some(leases)
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "comfy-pool: renewing the server leases failed");
                valid_until
                    .is_some_and(|until| Instant::now() >= until)
                    .then(|| {
                        valid_until = None;
                        Vec::new()
                    })
            }
            Err(_) => {
                tracing::warn!("comfy-pool: the server leases ran out before the store answered");
                valid_until = None;
                Some(Vec::new())
            }
        };
        if let Some(leases) = held
            && !send(&engine, FleetInput::Leases(leases))
        {
            return;
        }
        let mut next = began + every;
        if let Some(until) = valid_until {
            next = next.min(until);
        }
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The other processes' notices, turned into engine inputs (an accepted job is read from
/// the store first).
async fn listen(
    fleet: Arc<dyn Fleet>,
    store: Arc<dyn JobStore>,
    engine: mpsc::WeakUnboundedSender<Command>,
    mut stop: watch::Receiver<bool>,
) {
    let mut rx = loop {
        match fleet.notices().await {
            Ok(rx) => break rx,
            Err(error) => {
                tracing::warn!(%error, "comfy-pool: cannot listen to the fleet; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    };
    let mut next = None;
    loop {
        let notice = match next.take() {
            Some(notice) => Some(notice),
            None => tokio::select! {
                notice = rx.recv() => notice,
                _ = stop.changed() => None,
            },
        };
        let Some(notice) = notice else { return };
        let input = match notice {
            FleetNotice::Accepted { job } => {
                // The jobs accepted elsewhere that arrived together are read together.
                let mut jobs = vec![job];
                while let Ok(notice) = rx.try_recv() {
                    match notice {
                        FleetNotice::Accepted { job } if jobs.len() < LOAD_CHUNK => jobs.push(job),
                        other => {
                            next = Some(other);
                            break;
                        }
                    }
                }
                FleetInput::Records(load(store.as_ref(), &jobs).await)
            }
            FleetNotice::Changed {
                job,
                version,
                state,
            } => FleetInput::Changed {
                job,
                version,
                state,
            },
            FleetNotice::Cancel { job } => FleetInput::Cancel(job),
            FleetNotice::Workflow { event } => FleetInput::Workflow(event),
            FleetNotice::Event { event } => FleetInput::Event(event),
        };
        if !send(&engine, input) {
            return;
        }
    }
}

/// Every [`RESYNC_EVERY`]: the store's unfinished jobs again (queued ones a notice did not
/// bring, running ones on servers this process holds), and the followed jobs.
async fn resync(
    store: Arc<dyn JobStore>,
    engine: mpsc::WeakUnboundedSender<Command>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(RESYNC_EVERY) => {}
            _ = stop.changed() => return,
        }
        let states = [JobState::Queued, JobState::RetryWait, JobState::Running];
        let mut query = JobQuery::new(RESYNC_PAGE).states(states);
        loop {
            let page = match store.list(&query).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, "comfy-pool: the fleet resync could not list jobs");
                    break;
                }
            };
            let mut records = Vec::with_capacity(page.jobs.len());
            for record in page.jobs {
                records.push(with_inputs(store.as_ref(), record).await);
            }
            if !send(&engine, FleetInput::Records(records)) {
                return;
            }
            match page.next {
                Some(cursor) => query = query.after(cursor),
                None => break,
            }
        }
        if !send(&engine, FleetInput::Resync) {
            return;
        }
    }
}

/// The stored records of `jobs` (those the store has), input files attached.
pub(crate) async fn load(store: &dyn JobStore, jobs: &[JobId]) -> Vec<JobRecord> {
    let mut records = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(LOAD_CHUNK) {
        match store.get_many(chunk).await {
            Ok(found) => {
                for record in found {
                    records.push(with_inputs(store, record).await);
                }
            }
            Err(error) => {
                let n = chunk.len();
                tracing::warn!(%error, "comfy-pool: cannot read {n} fleet jobs");
            }
        }
    }
    records
}

/// Jobs read from the store in one query at most.
const LOAD_CHUNK: usize = 256;

/// A record with the bytes of its input files (an unfinished one only; one whose files are
/// gone stays as it is, and fails where it is taken up).
async fn with_inputs(store: &dyn JobStore, record: JobRecord) -> JobRecord {
    if record.state.is_terminal() {
        return record;
    }
    match crate::recovery::attach_inputs(store, record).await {
        Ok(record) => record,
        Err((record, error)) => {
            tracing::warn!(job = %record.id, %error, "comfy-pool: a fleet job's input files are missing");
            record
        }
    }
}

/// Reads a server's blocks and the unfinished jobs, and hands them to the engine as the
/// server's takeover (retrying while the store fails and the engine lives).
pub(crate) fn spawn_takeover(
    store: &Arc<dyn JobStore>,
    server: ServerId,
    engine: mpsc::WeakUnboundedSender<Command>,
) {
    let store = Arc::clone(store);
    tokio::spawn(async move {
        let mut pause = Duration::from_millis(100);
        loop {
            let read = async {
                let blocks = store.blocks().await?;
                let records = store.unfinished().await?;
                Ok::<_, crate::StoreError>((blocks, records))
            };
            match read.await {
                Ok((blocks, records)) => {
                    let blocks = blocks.into_iter().filter(|b| b.server == server).collect();
                    let mut mine = Vec::new();
                    for record in records {
                        if record.current().is_some_and(|c| c.server == server)
                            && record.state == JobState::Running
                        {
                            mine.push(with_inputs(store.as_ref(), record).await);
                        }
                    }
                    let _ = send(
                        &engine,
                        FleetInput::Takeover {
                            server,
                            blocks,
                            records: mine,
                        },
                    );
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, %server, "comfy-pool: cannot take a leased server over yet");
                    if engine.upgrade().is_none() {
                        return;
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    });
}

/// Reads `jobs` from the store and hands them to the engine.
pub(crate) fn spawn_load(
    store: &Arc<dyn JobStore>,
    jobs: Vec<JobId>,
    engine: mpsc::WeakUnboundedSender<Command>,
) {
    if jobs.is_empty() {
        return;
    }
    let store = Arc::clone(store);
    tokio::spawn(async move {
        let records = load(store.as_ref(), &jobs).await;
        send(&engine, FleetInput::Records(records));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::recording::Recording;

    fn cancel(i: usize) -> FleetNotice {
        FleetNotice::Cancel {
            job: JobId::from(format!("job-{i}")),
        }
    }

    /// Notices told right after a send wait out the pause ([`NOTIFY_EVERY`]) and go
    /// together; one told after a quiet spell goes at once.
    #[tokio::test(start_paused = true)]
    async fn a_busy_link_sends_at_most_once_per_interval_and_an_idle_one_at_once() {
        let fleet = Arc::new(Recording::default());
        let link = FleetLink::spawn(Arc::clone(&fleet) as Arc<dyn Fleet>, Duration::from_secs(3));
        let start = Instant::now();
        link.tell(cancel(0));
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
        for i in 1..4 {
            link.tell(cancel(i));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let quiet = Instant::now() - start;
        link.tell(cancel(9));
        tokio::time::sleep(Duration::from_millis(5)).await;
        let sends: Vec<(usize, Duration)> = fleet
            .sends()
            .into_iter()
            .map(|(n, at)| (n, at - start))
            .collect();
        assert_eq!(
            sends,
            [(1, Duration::ZERO), (3, NOTIFY_EVERY), (1, quiet)],
            "the first at once, the next ones together one interval on, one after a quiet \
             spell at once"
        );
    }
}
