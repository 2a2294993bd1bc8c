//! The pool's writer to its [`JobStore`]: every transition of every job, in the order the
//! engine made them, plus the failover blocks. Writes queued together are handed to the store
//! together (it commits them as one group); what must wait for durability waits for its write
//! only: a dispatch's prompt id before the prompt is submitted (write-ahead), a job's terminal
//! state before its terminal event. Writes that only record progress (prompt submitted,
//! execution started, attempt ended) wait up to 20 ms for their own job's next write, so that
//! the two share a commit; another job's write does not take them along (it would cost a row
//! write of their own). A job's writes handed over together go as one chain
//! ([`JobStore::update_chain`]): one row write, all or none, and one record serialized.
//!
//! A store that fails transiently is retried with backoff, holding back the writes behind
//! it (and so every dispatch: the pool stalls rather than act on what is not durable).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use pool_failover::ServerId;
use tokio::sync::{broadcast, mpsc, oneshot};
use workflow_hash::WorkflowHash;

use crate::job::JobCell;
use crate::{JobId, JobRecord, JobStore, PoolEvent, StoreError, StoredBlock, Transition};

/// The longest a write that nothing waits for is held back, waiting for one that presses
/// (see [`Write::presses`]) to go to the store with.
const HOLD: Duration = Duration::from_millis(20);

/// The most writes handed to the store at once.
const MAX_GROUP: usize = 1024;

/// One write.
pub(crate) enum Write {
    /// A transition of a job; `durable` is told once it is in the store.
    Update {
        /// The job's copy that made it (with a fleet, a copy the store refused once writes
        /// nothing more: its versions no longer follow the stored ones).
        cell: Arc<JobCell>,
        record: Box<JobRecord>,
        transition: Transition,
        durable: Option<oneshot::Sender<()>>,
    },
    /// A terminal transition: its events are published once it is in the store.
    Terminal {
        record: Box<JobRecord>,
        transition: Transition,
        cell: Arc<JobCell>,
    },
    /// A pair's failover state.
    Block(Box<StoredBlock>),
    /// A pair is clear again.
    Unblock(ServerId, WorkflowHash),
    /// Answered once every earlier write was handled.
    Flush(oneshot::Sender<()>),
}

/// What the writer tells a fleet: the jobs whose state changed (after the change is
/// durable), and the engine when the store refused its end of a job (another process changed
/// the job: its end is the stored one).
pub(crate) struct FleetTap {
    pub(crate) link: Arc<crate::fleet_link::FleetLink>,
    pub(crate) engine: mpsc::WeakUnboundedSender<crate::command::Command>,
}

impl FleetTap {
    /// The store refused a write of `cell`'s job: the engine drops that copy (and reads the
    /// job again) or, if it runs it, lets it go.
    fn stale(&self, cell: &Arc<JobCell>) {
        self.send(crate::fleet_link::FleetInput::Stale(Arc::clone(cell)));
    }

    fn send(&self, input: crate::fleet_link::FleetInput) -> bool {
        self.engine.upgrade().is_some_and(|tx| {
            tx.send(crate::command::Command::Fleet(Box::new(input)))
                .is_ok()
        })
    }

    fn settled(&self, write: &Write, result: &Result<(), StoreError>) -> bool {
        let (record, transition, cell) = match write {
            Write::Update {
                record, transition, ..
            } => (record, transition, None),
            Write::Terminal {
                record,
                transition,
                cell,
            } => (record, transition, Some(cell)),
            _ => return false,
        };
        match result {
            Ok(()) => {
                let tells = matches!(
                    transition,
                    Transition::Dispatched { .. }
                        | Transition::RetryScheduled { .. }
                        | Transition::Requeued
                        | Transition::Finished { .. }
                );
                if tells {
                    self.link.tell(crate::FleetNotice::Changed {
                        job: record.id.clone(),
                        version: record.version,
                        state: record.state,
                    });
                }
                if cell.is_some() {
                    // Earlier copies of the job followed here end with it.
                    let records = vec![record.as_ref().clone()];
                    self.send(crate::fleet_link::FleetInput::Records(records));
                }
                false
            }
            Err(StoreError::Conflict { .. }) => {
                let Some(cell) = cell else { return false };
                self.send(crate::fleet_link::FleetInput::Follow(Arc::clone(cell)))
            }
            Err(_) => false,
        }
    }
}

/// The handle of the writer task. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Persister {
    tx: mpsc::UnboundedSender<Write>,
}

impl std::fmt::Debug for Persister {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persister").finish_non_exhaustive()
    }
}

impl Persister {
    /// Starts the writer task.
    pub(crate) fn spawn(
        store: Arc<dyn JobStore>,
        pool: broadcast::Sender<PoolEvent>,
        fleet: Option<FleetTap>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, rx, pool, fleet));
        Self { tx }
    }

    /// Queues a write; `false` once the writer has stopped.
    pub(crate) fn write(&self, write: Write) -> bool {
        self.tx.send(write).is_ok()
    }

    /// Waits until every write queued so far was handled.
    pub(crate) async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.write(Write::Flush(tx)) {
            let _ = rx.await;
        }
    }
}

async fn run(
    store: Arc<dyn JobStore>,
    mut rx: mpsc::UnboundedReceiver<Write>,
    pool: broadcast::Sender<PoolEvent>,
    fleet: Option<FleetTap>,
) {
    let mut batch = Vec::new();
    let mut poisoned = Poisoned::new();
    // Since when `batch` holds writes that wait for their job's next write (see
    // `Write::presses`).
    let mut held_since: Option<tokio::time::Instant> = None;
    loop {
        // Wait for a write, or for the hold to run out; `closed` once every sender is gone
        // (what is held is written, then the task ends).
        // What is held presses for nothing: only the writes taken now can.
        let held = batch.len();
        let next = match held_since {
            None => Some(rx.recv().await),
            Some(since) => tokio::select! {
                biased;
                next = rx.recv() => Some(next),
                () = tokio::time::sleep_until(since + HOLD) => None,
            },
        };
        let closed = match next {
            Some(Some(write)) => {
                batch.push(write);
                false
            }
            Some(None) => true,
            None => false,
        };
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let now = tokio::time::Instant::now();
        let due = held_since.is_some_and(|since| now >= since + HOLD);
        if !closed && !due && batch.len() < MAX_GROUP && !batch[held..].iter().any(Write::presses) {
            held_since.get_or_insert(now);
            continue;
        }
        // A pressing write takes along only the held writes of its own job (they then share
        // its row's update); the others stay held until their own job writes again or the
        // hold runs out. A flush, the end and a full batch take everything.
        let kept = if closed || due || batch.len() >= MAX_GROUP {
            Vec::new()
        } else {
            split_pressed(&mut batch)
        };
        held_since = if kept.is_empty() {
            None
        } else {
            Some(held_since.unwrap_or(now))
        };
        // A job's writes go to the store as one (a chain: one row write, all or none). With
        // a fleet, a job's writes after one the store refused must not reach it (its copy
        // here is stale): a copy refused once is refused from then on without asking the
        // store, and should a copy have two chains in the batch, they go in groups one after
        // the other.
        if fleet.is_some() {
            poisoned.retain(|_, cell| Arc::strong_count(cell) > 1);
        }
        let mut rest = chains(std::mem::take(&mut batch));
        while !rest.is_empty() {
            let mut seen = HashSet::new();
            let split = rest
                .iter()
                .position(|u| u[0].cell().is_some_and(|c| !seen.insert(address(c))))
                .unwrap_or(rest.len());
            let tail = rest.split_off(split);
            let mut group = rest;
            rest = tail;
            let tap = fleet.as_ref().map(|tap| (tap, &mut poisoned));
            write_group(store.as_ref(), &mut group, &pool, tap).await;
        }
        batch = kept;
        if closed {
            break;
        }
    }
}

/// Writes that go to the store as one: a job copy's consecutive writes of a batch, or any
/// other write alone. Never empty.
type Unit = Vec<Write>;

/// `batch` as units, in the order of their last writes (so that whatever preceded a write
/// still precedes it): each job copy's writes whose versions follow each other make one
/// chain (a copy's write that does not follow its chain starts another).
fn chains(batch: Vec<Write>) -> Vec<Unit> {
    // Each unit, with the position of its last write.
    let mut units: Vec<(Unit, usize)> = Vec::with_capacity(batch.len());
    // The unit each copy's writes go to now, by the copy's address.
    let mut open: HashMap<usize, usize> = HashMap::new();
    for (at, write) in batch.into_iter().enumerate() {
        let Some(cell) = write.cell() else {
            units.push((vec![write], at));
            continue;
        };
        let copy = address(cell);
        let follows = |unit: &Unit| {
            let last = unit.last().and_then(Write::version);
            last.is_some_and(|v| write.version() == Some(v + 1))
        };
        match open.get(&copy) {
            Some(&i) if follows(&units[i].0) => {
                units[i].0.push(write);
                units[i].1 = at;
            }
            _ => {
                open.insert(copy, units.len());
                units.push((vec![write], at));
            }
        }
    }
    units.sort_by_key(|(_, last)| *last);
    units.into_iter().map(|(unit, _)| unit).collect()
}

/// Leaves in `batch` what goes to the store now, in order: every write that presses, every
/// write that is not a job's, and every write of a job that has one that presses; returns
/// the rest (progress of other jobs), in order. A flush takes everything.
fn split_pressed(batch: &mut Vec<Write>) -> Vec<Write> {
    if batch.iter().any(|w| matches!(w, Write::Flush(_))) {
        return Vec::new();
    }
    let pressed: HashSet<JobId> = batch
        .iter()
        .filter(|w| w.presses())
        .filter_map(|w| w.cell().map(|c| c.id.clone()))
        .collect();
    let (going, kept) = std::mem::take(batch)
        .into_iter()
        .partition(|w| w.job_id().is_none_or(|id| pressed.contains(id)));
    *batch = going;
    kept
}

/// Copies refused by the store (with a fleet), by address.
type Poisoned = HashMap<usize, Arc<JobCell>>;

/// Hands `group` to the store (in order, so the store groups them into one commit and keeps
/// their order) and settles each write.
async fn write_group(
    store: &dyn JobStore,
    group: &mut Vec<Unit>,
    pool: &broadcast::Sender<PoolEvent>,
    mut fleet: Option<(&FleetTap, &mut Poisoned)>,
) {
    let refused = |u: &Unit, poisoned: &Poisoned| {
        u[0].cell()
            .is_some_and(|c| poisoned.contains_key(&address(c)))
    };
    let results = futures_util::future::join_all(group.iter().map(|u| {
        let stale = fleet.as_ref().is_some_and(|(_, p)| refused(u, p));
        async move {
            if stale {
                return Err(StoreError::Conflict {
                    id: u[0].job().unwrap_or_default(),
                    stored: 0,
                    expected: 0,
                });
            }
            apply(store, u).await
        }
    }))
    .await;
    for (unit, result) in group.drain(..).zip(results) {
        let result = match result {
            Err(error) if error.is_transient() => retry(store, &unit).await,
            other => other,
        };
        match &result {
            // Another process claimed or changed the job: not this process's to write.
            Err(error @ StoreError::Conflict { .. }) if fleet.is_some() => {
                tracing::debug!(%error, "comfy-pool: a job changed in another process");
            }
            Err(error) => tracing::error!(%error, "comfy-pool: a job store write failed"),
            Ok(()) => {}
        }
        for write in unit {
            let mut followed = false;
            if let Some((tap, poisoned)) = &mut fleet {
                if matches!(result, Err(StoreError::Conflict { .. }))
                    && let Some(cell) = write.cell()
                    && poisoned.insert(address(cell), Arc::clone(cell)).is_none()
                {
                    tap.stale(cell);
                }
                followed = tap.settled(&write, &result);
            }
            if !followed {
                settle(write, result.is_ok(), pool);
            }
        }
    }
}

/// A copy's identity while it lives (the map keeps it alive, so no other copy gets it).
fn address(cell: &Arc<JobCell>) -> usize {
    Arc::as_ptr(cell) as usize
}

impl Write {
    /// Whether something waits for this write, so it goes to the store at once with its
    /// job's writes held before it: a write-ahead, a job's end (its terminal event waits), a
    /// flush, a failover block, and the transitions other processes of a fleet act on
    /// (dispatched, retry scheduled, requeued, cancel requested, deadline expired). The
    /// others (prompt submitted, execution started, attempt ended) only record progress
    /// that the job's next write records as well: they are held for up to [`HOLD`] so that
    /// they go with it, instead of costing a commit of their own each.
    fn presses(&self) -> bool {
        match self {
            Self::Update {
                durable: None,
                transition,
                ..
            } => !matches!(
                transition,
                Transition::PromptSubmitted { .. }
                    | Transition::ExecutionStarted { .. }
                    | Transition::AttemptEnded { .. }
            ),
            Self::Update { .. }
            | Self::Terminal { .. }
            | Self::Block(_)
            | Self::Unblock(..)
            | Self::Flush(_) => true,
        }
    }

    /// The job's copy that made the write, if it is a job's.
    fn cell(&self) -> Option<&Arc<JobCell>> {
        match self {
            Self::Update { cell, .. } | Self::Terminal { cell, .. } => Some(cell),
            _ => None,
        }
    }

    /// The job's record after the write, if it is a job's.
    fn record(&self) -> Option<&JobRecord> {
        match self {
            Self::Update { record, .. } | Self::Terminal { record, .. } => Some(record),
            _ => None,
        }
    }

    /// The job's transition, if it is a job's write.
    fn transition(&self) -> Option<&Transition> {
        match self {
            Self::Update { transition, .. } | Self::Terminal { transition, .. } => Some(transition),
            _ => None,
        }
    }

    /// The version of the job's record after the write, if it is a job's.
    fn version(&self) -> Option<u64> {
        self.record().map(|r| r.version)
    }

    /// The job's id, if it is a job's write.
    fn job(&self) -> Option<String> {
        self.job_id().map(str::to_owned)
    }

    /// The job's id, borrowed, if it is a job's write.
    fn job_id(&self) -> Option<&str> {
        self.cell().map(|c| c.id.as_str())
    }
}

/// Writes `unit`: a chain of several writes as one update of its job (to its last record).
async fn apply(store: &dyn JobStore, unit: &[Write]) -> Result<(), StoreError> {
    let Some(write) = unit.last() else {
        return Ok(());
    };
    if unit.len() > 1
        && let Some(record) = write.record()
    {
        let transitions: Vec<Transition> = unit
            .iter()
            .filter_map(|w| w.transition().cloned())
            .collect();
        return store.update_chain(record, &transitions).await;
    }
    match write {
        Write::Update {
            record, transition, ..
        }
        | Write::Terminal {
            record, transition, ..
        } => store.update(record, transition).await,
        Write::Block(block) => store.put_block(block).await,
        Write::Unblock(server, hash) => store.remove_block(server, hash).await,
        Write::Flush(_) => Ok(()),
    }
}

/// Tries a failed unit again until the store takes it (or fails it for good).
async fn retry(store: &dyn JobStore, write: &[Write]) -> Result<(), StoreError> {
    let mut pause = Duration::from_millis(50);
    loop {
        tokio::time::sleep(pause).await;
        match apply(store, write).await {
            Err(error) if error.is_transient() => {
                tracing::warn!(%error, "comfy-pool: the job store is unavailable; retrying");
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

/// What follows a write: a write-ahead is let through only if it is durable (dropping its
/// sender stops the attempt before it submits anything); a job's end is published either way
/// (it happened; a store that refused it is logged).
fn settle(write: Write, durable: bool, pool: &broadcast::Sender<PoolEvent>) {
    match write {
        Write::Update {
            durable: Some(ack), ..
        } if durable => {
            let _ = ack.send(());
        }
        Write::Terminal { cell, .. } => cell.publish_terminal(pool),
        Write::Flush(done) => {
            let _ = done.send(());
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{JobKey, JobOptions, JobSpec, Timestamp};

    fn cell(id: &str) -> Arc<JobCell> {
        let workflow = json!({"1": {"class_type": "SaveImage", "inputs": {}}});
        let hash = WorkflowHash::of(&workflow).unwrap_or_else(|e| panic!("{e}"));
        let spec = JobSpec::new(Arc::new(workflow), hash, JobOptions::new());
        let record = JobRecord::new(JobId::from(id), Arc::new(spec), Timestamp::now());
        Arc::new(JobCell::new(JobKey(0), record))
    }

    /// The write of `cell`'s next version (and the record it makes).
    fn next(cell: &Arc<JobCell>, record: &mut JobRecord) -> Write {
        record.apply(&Transition::CancelRequested, Timestamp::now());
        Write::Update {
            cell: Arc::clone(cell),
            record: Box::new(record.clone()),
            transition: Transition::CancelRequested,
            durable: None,
        }
    }

    fn shape(units: &[Unit]) -> Vec<Vec<String>> {
        units
            .iter()
            .map(|u| {
                u.iter()
                    .map(|w| match (w.job_id(), w.version()) {
                        (Some(id), Some(v)) => format!("{id}@{v}"),
                        _ => "other".to_owned(),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_copys_consecutive_writes_make_one_chain_placed_at_its_last_write() {
        let (a, b) = (cell("a"), cell("b"));
        let (mut ra, mut rb) = (a.record(), b.record());
        let (flush, _) = oneshot::channel();
        let batch = vec![
            next(&a, &mut ra),
            next(&b, &mut rb),
            Write::Flush(flush),
            next(&a, &mut ra),
            next(&a, &mut ra),
        ];
        assert_eq!(
            shape(&chains(batch)),
            [vec!["b@2"], vec!["other"], vec!["a@2", "a@3", "a@4"]]
        );
    }

    #[test]
    fn a_write_that_does_not_follow_its_copys_chain_starts_another() {
        let (a, again) = (cell("a"), cell("a"));
        let mut ra = a.record();
        let first = next(&a, &mut ra);
        let mut skipped = ra.clone();
        skipped.version += 1;
        let gap = next(&a, &mut skipped);
        // Another copy of the same job: a chain of its own.
        let mut other = again.record();
        let theirs = next(&again, &mut other);
        assert_eq!(
            shape(&chains(vec![first, theirs, gap])),
            [vec!["a@2"], vec!["a@2"], vec!["a@4"]]
        );
    }
}
