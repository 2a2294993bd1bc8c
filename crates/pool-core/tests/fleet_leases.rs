//! A pool in a fleet, against a scripted `Fleet` and fake servers with paused time: only
//! leased servers take work; leases that cannot be renewed for a ttl stop dispatch (fencing);
//! a lost lease detaches running prompts without an end and a regained one re-attaches;
//! notices go out for accepted and changed jobs; jobs accepted elsewhere are mirrored and
//! claimed, and a lost claim never runs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt as _;
use parking_lot::Mutex;
use pool_core::{
    Backoff, Error, Fleet, FleetNotice, JobEvent, JobEventKind, JobOptions, JobRecord, JobSpec,
    JobState, JobStore, Lease, MemoryStore, Pool, RunEvent, ServerConfig, ServerId, ShutdownMode,
    StoreError, Timestamp, Transition, WorkflowHash,
};
use support::gated::Gated;
use support::{Fake, Step, chain, workflow};
use tokio::sync::mpsc;

const TTL: Duration = Duration::from_secs(3);

/// A fleet whose leases the test decides.
#[derive(Debug, Default)]
struct ScriptedFleet {
    granted: Mutex<Vec<ServerId>>,
    failing: AtomicBool,
    sent: Mutex<Vec<FleetNotice>>,
    inbox: Mutex<Option<mpsc::Sender<FleetNotice>>>,
    left: AtomicBool,
}

impl ScriptedFleet {
    fn grant(&self, servers: &[&str]) {
        *self.granted.lock() = servers.iter().map(|s| ServerId::new(*s)).collect();
    }

    /// Delivers a notice as if another process sent it.
    async fn deliver(&self, notice: FleetNotice) {
        let tx = self.inbox.lock().clone().expect("the pool listens");
        tx.send(notice).await.unwrap();
    }
}

#[async_trait]
impl Fleet for ScriptedFleet {
    fn process(&self) -> &str {
        "test"
    }

    async fn lease(&self, servers: &[ServerId], _ttl: Duration) -> Result<Vec<Lease>, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("scripted".into()));
        }
        let granted = self.granted.lock();
        Ok(servers
            .iter()
            .filter(|s| granted.contains(s))
            .map(|s| Lease::new(s.clone(), 1))
            .collect())
    }

    async fn leave(&self) -> Result<(), StoreError> {
        self.left.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn notify(&self, notice: &FleetNotice) -> Result<(), StoreError> {
        self.sent.lock().push(notice.clone());
        Ok(())
    }

    async fn notices(&self) -> Result<mpsc::Receiver<FleetNotice>, StoreError> {
        let (tx, rx) = mpsc::channel(64);
        *self.inbox.lock() = Some(tx);
        Ok(rx)
    }
}

fn fleet_pool<S: JobStore>(
    fleet: &Arc<ScriptedFleet>,
    store: &Arc<S>,
    fakes: &[&Arc<Fake>],
) -> Pool {
    Pool::builder()
        .servers(fakes.iter().map(|f| f.config()))
        .store(Arc::clone(store) as Arc<dyn JobStore>)
        .fleet(Arc::clone(fleet) as Arc<dyn Fleet>)
        .lease_ttl(TTL)
        .build()
        .unwrap()
}

/// [`fleet_pool`], ready and given the time to listen to the fleet.
async fn listening_pool<S: JobStore>(
    fleet: &Arc<ScriptedFleet>,
    store: &Arc<S>,
    fakes: &[&Arc<Fake>],
) -> Pool {
    let pool = fleet_pool(fleet, store, fakes);
    pool.ready().await;
    pass(Duration::from_millis(10)).await;
    pool
}

fn options(id: &str) -> JobOptions {
    JobOptions::new().job_id(id).backoff(Backoff::none())
}

/// Lets simulated time pass (everything due meanwhile runs).
async fn pass(d: Duration) {
    tokio::time::sleep(d).await;
}

#[tokio::test(start_paused = true)]
async fn only_leased_servers_take_work_and_unrenewed_leases_stop_dispatch() {
    let (a, b) = (Fake::new("a"), Fake::new("b"));
    let fleet = Arc::new(ScriptedFleet::default());
    fleet.grant(&["a"]);
    let store = Arc::new(MemoryStore::default());
    let pool = fleet_pool(&fleet, &store, &[&a, &b]);
    pool.ready().await;
    for i in 0..4 {
        let job = pool
            .enqueue(workflow("w"), options(&format!("j{i}")))
            .await
            .unwrap();
        assert_eq!(job.result().await.unwrap().server.as_str(), "a");
    }
    assert_eq!(b.run_count(), 0, "b is leased to another process");

    // The store stops answering: once the last leases ran out, nothing is dispatched.
    fleet.failing.store(true, Ordering::SeqCst);
    pass(TTL + Duration::from_secs(1)).await;
    let late = pool.enqueue(workflow("w"), options("late")).await.unwrap();
    pass(Duration::from_secs(30)).await;
    assert_eq!(pool.record("late").unwrap().state, JobState::Queued);
    assert_eq!(a.run_count(), 4);

    // Renewed again: the server is taken over and works.
    fleet.failing.store(false, Ordering::SeqCst);
    assert_eq!(late.result().await.unwrap().server.as_str(), "a");
    pool.shutdown(pool_core::ShutdownMode::Detach).await;
    assert!(fleet.left.load(Ordering::SeqCst), "the fleet was left");
}

#[tokio::test(start_paused = true)]
async fn a_lost_lease_detaches_and_a_regained_one_follows_the_prompt() {
    let a = Fake::scripted("a", |_| Step::Sleep(Duration::from_secs(20)));
    let fleet = Arc::new(ScriptedFleet::default());
    fleet.grant(&["a"]);
    let store = Arc::new(MemoryStore::default());
    let pool = fleet_pool(&fleet, &store, &[&a]);
    pool.ready().await;
    let job = pool.enqueue(workflow("w"), options("j")).await.unwrap();
    pass(Duration::from_secs(1)).await;
    assert_eq!(pool.record("j").unwrap().state, JobState::Running);
    let prompt = store
        .get("j")
        .await
        .unwrap()
        .unwrap()
        .current()
        .unwrap()
        .prompt_id;

    // Lost: the attempt stops here without an end and without a clean-up on the server.
    fleet.grant(&[]);
    pass(TTL).await;
    let stored = store.get("j").await.unwrap().unwrap();
    assert_eq!(
        stored.state,
        JobState::Running,
        "the record stays for the next holder"
    );
    assert!(a.cancels.lock().is_empty(), "the prompt was left running");

    // Regained: taken over as a restart would (re-attached to the same prompt), and the
    // caller's handle ends with the stored outcome.
    fleet.grant(&["a"]);
    let output = job.result().await.unwrap();
    assert_eq!(output.prompt_id, prompt);
    assert_eq!(*a.follows.lock(), [prompt]);
    assert_eq!(a.run_count(), 1, "submitted once");
    assert_eq!(
        store.get("j").await.unwrap().unwrap().state,
        JobState::Completed
    );
}

/// A pool holding the lease of `a` only, whose server answers each `POST /prompt` after
/// `answer` (then runs the prompt for `run`), and a job "j" whose submission is under way.
struct Submitting {
    a: Arc<Fake>,
    fleet: Arc<ScriptedFleet>,
    store: Arc<MemoryStore>,
    job: pool_core::JobHandle,
    _pool: pool_core::Pool,
}

async fn submitting(answer: Duration, run: Duration) -> Submitting {
    let a = Fake::scripted("a", move |_| Step::Submitting { answer, run });
    let fleet = Arc::new(ScriptedFleet::default());
    fleet.grant(&["a"]);
    let store = Arc::new(MemoryStore::default());
    let pool = fleet_pool(&fleet, &store, &[&a]);
    pool.ready().await;
    let job = pool.enqueue(workflow("w"), options("j")).await.unwrap();
    pass(Duration::from_millis(100)).await;
    assert_eq!(a.run_count(), 1, "the submission is under way");
    Submitting {
        a,
        fleet,
        store,
        job,
        _pool: pool,
    }
}

#[tokio::test(start_paused = true)]
async fn a_lease_lost_during_a_submission_waits_for_the_answer() {
    // The server takes 2 s to answer the POST (within the 3 s a lost lease waits for an
    // answer); the lease is lost meanwhile.
    let Submitting {
        a,
        fleet,
        store,
        job,
        _pool,
    } = submitting(Duration::from_secs(2), Duration::from_secs(5)).await;
    fleet.grant(&[]);
    // The loss is noticed at the next heartbeat (within TTL / 3), before the answer.
    pass(Duration::from_millis(1500)).await;
    let stored = store.get("j").await.unwrap().unwrap();
    assert_eq!(
        stored.state,
        JobState::Running,
        "not withdrawn while unanswered"
    );
    assert_eq!(stored.attempts[0].submitted_at, None);

    // Accepted after all: the prompt is the next holder's, not withdrawn (the job queued
    // again would run a second time).
    pass(TTL).await;
    let stored = store.get("j").await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Running, "{stored:?}");
    assert_eq!(stored.attempts.len(), 1);
    assert!(stored.attempts[0].submitted_at.is_some());
    let prompt = stored.attempts[0].prompt_id.clone();
    fleet.grant(&["a"]);
    assert_eq!(job.result().await.unwrap().prompt_id, prompt);
    assert_eq!(*a.follows.lock(), [prompt]);
    assert_eq!(a.run_count(), 1, "submitted once");
}

#[tokio::test(start_paused = true)]
async fn a_submission_unanswered_for_long_is_left_to_the_next_holder() {
    // The server answers the POST only after 10 s: longer than a lost lease waits.
    let Submitting {
        a,
        fleet,
        store,
        job,
        _pool,
    } = submitting(Duration::from_secs(10), Duration::from_secs(1)).await;
    fleet.grant(&[]);
    // Past the wait, before the answer: left as it is, neither withdrawn nor cancelled.
    pass(Duration::from_secs(6)).await;
    let stored = store.get("j").await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Running, "{stored:?}");
    assert_eq!(stored.attempts.len(), 1);
    // The holder (here the same process again) finds the prompt on the server and follows
    // it: run once.
    pass(Duration::from_secs(5)).await;
    fleet.grant(&["a"]);
    let prompt = stored.attempts[0].prompt_id.clone();
    assert_eq!(job.result().await.unwrap().prompt_id, prompt);
    assert_eq!(a.run_count(), 1, "submitted once");
}

#[tokio::test(start_paused = true)]
async fn a_lease_lost_during_a_refused_submission_queues_the_job_again() {
    // The server fails the POST after 2 s (unreachable); the lease is lost meanwhile.
    let a = Fake::scripted("a", |_| Step::Submitting {
        answer: Duration::from_secs(2),
        run: Duration::from_secs(5),
    });
    let b = Fake::new("b");
    let fleet = Arc::new(ScriptedFleet::default());
    fleet.grant(&["a"]);
    let store = Arc::new(MemoryStore::default());
    let pool = fleet_pool(&fleet, &store, &[&a, &b]);
    pool.ready().await;
    let job = pool.enqueue(workflow("w"), options("j")).await.unwrap();
    pass(Duration::from_millis(100)).await;
    assert_eq!(a.run_count(), 1, "the submission is under way");
    a.set_healthy(false);
    fleet.grant(&["b"]);
    // Nothing reached a: the job goes back to the queue and runs on b.
    let output = job.result().await.unwrap();
    assert_eq!(output.server.as_str(), "b");
    let stored = store.get("j").await.unwrap().unwrap();
    assert_eq!(stored.attempts.len(), 2, "{stored:?}");
    assert_eq!(
        stored.attempts[0].outcome,
        pool_core::AttemptOutcome::Withdrawn
    );
}

/// A job accepted by another process (stored, its notice delivered here), given the time to
/// be mirrored; its record.
async fn mirrored_here(fleet: &ScriptedFleet, store: &MemoryStore, id: &str) -> JobRecord {
    let record = accepted_elsewhere(store, id).await;
    fleet
        .deliver(FleetNotice::Accepted { job: id.into() })
        .await;
    pass(Duration::from_millis(10)).await;
    record
}

/// The first attempt's dispatch to `server` under `prompt`, now.
fn dispatched_to(server: &str, prompt: &str) -> Transition {
    let attempt = serde_json::from_value(serde_json::json!({
        "attempt": 1,
        "server": server,
        "prompt_id": prompt,
        "started_at": Timestamp::now(),
        "duration_ms": 0,
        "outcome": {"status": "running"},
    }))
    .unwrap();
    Transition::Dispatched { attempt }
}

/// A job another process dispatched to `server` under `prompt` (its record running there),
/// the server's acceptance recorded or not.
async fn dispatched_elsewhere(
    store: &MemoryStore,
    id: &str,
    server: &str,
    prompt: &str,
    accepted: bool,
) -> JobRecord {
    let mut record = accepted_elsewhere(store, id).await;
    change(store, &mut record, dispatched_to(server, prompt)).await;
    if accepted {
        change(
            store,
            &mut record,
            Transition::PromptSubmitted { attempt: 1 },
        )
        .await;
    }
    record
}

#[tokio::test(start_paused = true)]
async fn a_taken_over_prompt_never_accepted_and_absent_queues_its_job_again() {
    // A process died while submitting `p-lost` to a (the server never got it), and while
    // `p-kept`, which a accepted, was running there.
    let a = Fake::new("a");
    a.set_follow(|prompt| {
        if prompt == "p-kept" {
            Step::Sleep(Duration::from_secs(5))
        } else {
            Step::Fail(pool_core::FailureClass::ServerDown)
        }
    });
    let store = Arc::new(MemoryStore::default());
    dispatched_elsewhere(&store, "lost", "a", "p-lost", false).await;
    dispatched_elsewhere(&store, "kept", "a", "p-kept", true).await;
    let fleet = Arc::new(ScriptedFleet::default());
    fleet.grant(&["a"]);
    let pool = fleet_pool(&fleet, &store, &[&a]);
    pool.ready().await;
    pass(Duration::from_secs(10)).await;

    // The absent prompt is withdrawn (not a failure of the server): its job runs again.
    let lost = store.get("lost").await.unwrap().unwrap();
    assert_eq!(lost.state, JobState::Completed, "{lost:?}");
    assert_eq!(lost.attempts.len(), 2, "{lost:?}");
    assert_eq!(
        lost.attempts[0].outcome,
        pool_core::AttemptOutcome::Withdrawn
    );
    assert_eq!(a.run_count(), 1, "run again once");
    // The accepted one was followed to its end, not stopped as if the server were down.
    let kept = store.get("kept").await.unwrap().unwrap();
    assert_eq!(kept.state, JobState::Completed, "{kept:?}");
    assert_eq!(kept.attempts.len(), 1, "{kept:?}");
}

#[tokio::test(start_paused = true)]
async fn accepted_and_changed_jobs_are_told_to_the_others() {
    let a = Fake::new("a");
    let fleet = Arc::new(ScriptedFleet::default());
    fleet.grant(&["a"]);
    let store = Arc::new(MemoryStore::default());
    let pool = fleet_pool(&fleet, &store, &[&a]);
    pool.ready().await;
    let job = pool.enqueue(workflow("w"), options("j")).await.unwrap();
    job.result().await.unwrap();
    pass(Duration::from_millis(10)).await;
    let sent: Vec<_> = fleet
        .sent
        .lock()
        .iter()
        .filter_map(|n| match n {
            FleetNotice::Accepted { job } => Some(format!("accepted {job}")),
            FleetNotice::Changed { job, state, .. } => Some(format!("{job} {}", state.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(sent, ["accepted j", "j running", "j completed"]);
}

/// A job's progress (submitted, executing, attempt ended) waits for its end and goes to the
/// store with it as one chain, so a job run here costs two updates of its record: the claim
/// and the end.
#[tokio::test(start_paused = true)]
async fn a_jobs_progress_goes_to_the_store_with_its_end_as_one_update() {
    let a = Fake::new("a");
    let fleet = Arc::new(ScriptedFleet::default());
    fleet.grant(&["a"]);
    let store = Arc::new(MemoryStore::default());
    let pool = fleet_pool(&fleet, &store, &[&a]);
    pool.ready().await;
    let job = pool.enqueue(workflow("w"), options("j")).await.unwrap();
    job.result().await.unwrap();
    let stored = store.get("j").await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Completed);
    assert!(stored.attempts[0].submitted_at.is_some());
    assert_eq!(store.updates(), 2);
}

/// A queued job as another process accepts it (stored, not in this pool).
async fn accepted_elsewhere(store: &MemoryStore, id: &str) -> JobRecord {
    let wf = Arc::new(workflow("w"));
    let hash = WorkflowHash::of(&wf).unwrap();
    let spec = Arc::new(JobSpec::new(wf, hash, options(id)));
    let record = JobRecord::new(id.into(), spec, Timestamp::now());
    assert!(store.insert(&record).await.unwrap().is_none());
    record
}

/// The next version of `record` after `transition`, written to the store.
async fn change(store: &MemoryStore, record: &mut JobRecord, transition: Transition) {
    assert!(record.apply(&transition, Timestamp::now()));
    store.update(record, &transition).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_job_accepted_elsewhere_is_mirrored_and_run_here() {
    let a = Fake::new("a");
    let fleet = Arc::new(ScriptedFleet::default());
    fleet.grant(&["a"]);
    let store = Arc::new(MemoryStore::default());
    let pool = listening_pool(&fleet, &store, &[&a]).await;
    mirrored_here(&fleet, &store, "remote").await;
    let job = pool.job("remote").expect("mirrored");
    job.result().await.unwrap();
    assert_eq!(
        store.get("remote").await.unwrap().unwrap().state,
        JobState::Completed
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_claim_never_runs_and_the_handle_ends_as_stored() {
    let a = Fake::new("a");
    let fleet = Arc::new(ScriptedFleet::default());
    let store = Arc::new(MemoryStore::default());
    let pool = listening_pool(&fleet, &store, &[&a]).await;
    // Mirrored here while no server is leased: it waits in the local queue.
    let mut record = mirrored_here(&fleet, &store, "raced").await;
    let job = pool.job("raced").expect("mirrored");
    // Another process changes it (its notice lost): this copy is stale.
    change(&store, &mut record, Transition::CancelRequested).await;
    // A server is leased: the claim fails, nothing runs; the handle follows the store.
    fleet.grant(&["a"]);
    pass(TTL).await;
    assert_eq!(a.run_count(), 0, "a job whose claim failed never runs");
    let local = pool.record("raced").unwrap();
    assert_eq!(local.attempts.len(), 1, "the dispatch here was tried");
    assert!(
        store
            .get("raced")
            .await
            .unwrap()
            .unwrap()
            .attempts
            .is_empty()
    );
    change(
        &store,
        &mut record,
        Transition::Finished {
            outcome: Err(Error::Cancelled),
        },
    )
    .await;
    assert!(matches!(job.result().await, Err(Error::Cancelled)));
    assert_eq!(pool.record("raced").unwrap().state, JobState::Cancelled);
}

/// A claim here loses to another process's while its write waits unanswered: meanwhile the
/// other process runs the job to its end and tells each change, which finds no copy here to
/// act on (this one is dispatched). Once the claim is refused, the copy is read again, so its
/// handle ends at once, not at the next resync.
#[tokio::test(start_paused = true)]
async fn a_lost_claim_whose_end_was_told_meanwhile_ends_its_handle_at_once() {
    let a = Fake::new("a");
    let fleet = Arc::new(ScriptedFleet::default());
    let store = Gated::new("dispatched");
    let pool = listening_pool(&fleet, &store, &[&a]).await;
    let mut record = mirrored_here(&fleet, &store.inner, "raced").await;
    let job = pool.job("raced").expect("mirrored");
    // The server is leased: the job is dispatched here, its claim held at the store.
    fleet.grant(&["a"]);
    pass(TTL).await;
    assert_eq!(
        pool.record("raced").map(|r| r.state),
        Some(JobState::Running)
    );
    ended_elsewhere(&fleet, &store.inner, &mut record).await;
    // The claim reaches the store now, stale: refused.
    store.gate.add_permits(1);
    let refused = tokio::time::Instant::now();
    assert!(matches!(job.result().await, Err(Error::Cancelled)));
    let waited = refused.elapsed();
    assert!(
        waited < Duration::from_secs(1),
        "the handle ended {waited:?} after the refusal (the resync comes every 5 s)"
    );
    assert_eq!(a.run_count(), 0, "a job whose claim failed never runs");
}

/// Another process claims `record` (mirrored here) and ends it cancelled, telling each
/// change.
async fn ended_elsewhere(fleet: &ScriptedFleet, store: &MemoryStore, record: &mut JobRecord) {
    let dispatched = dispatched_to("b", &format!("prompt-{}", record.id));
    let cancelled = Transition::Finished {
        outcome: Err(Error::Cancelled),
    };
    for transition in [dispatched, cancelled] {
        change(store, record, transition).await;
        fleet
            .deliver(FleetNotice::Changed {
                job: record.id.clone(),
                version: record.version,
                state: record.state,
            })
            .await;
    }
    pass(Duration::from_millis(10)).await;
}

/// A job mirrored here that another process ran to its end: read to end its copy here only
/// if something here could see that end (a stream of its events, a subscriber of the pool's
/// events); otherwise its copy is forgotten, and the store has it.
#[tokio::test(start_paused = true)]
async fn a_mirrored_job_ended_elsewhere_is_read_only_if_watched_here() {
    let a = Fake::new("a");
    let fleet = Arc::new(ScriptedFleet::default());
    let store = Arc::new(MemoryStore::default());
    let pool = listening_pool(&fleet, &store, &[&a]).await;
    // No lease here: the mirrored jobs wait in this process's queue.
    let mut unseen = mirrored_here(&fleet, &store, "unseen").await;
    let mut streamed = mirrored_here(&fleet, &store, "streamed").await;
    let mut events = pool.job("streamed").expect("mirrored").events();
    ended_elsewhere(&fleet, &store, &mut unseen).await;
    ended_elsewhere(&fleet, &store, &mut streamed).await;
    assert!(pool.record("unseen").is_none(), "nothing watched it here");
    assert_eq!(
        pool.record("streamed").map(|r| r.state),
        Some(JobState::Cancelled)
    );
    let mut last = None;
    while let Some(event) = events.recv().await {
        last = Some(event.kind);
    }
    assert!(matches!(last, Some(JobEventKind::Cancelled)), "{last:?}");

    // A subscriber of the pool's events sees every end: read.
    let _all = pool.subscribe();
    let mut fed = mirrored_here(&fleet, &store, "fed").await;
    ended_elsewhere(&fleet, &store, &mut fed).await;
    assert_eq!(
        pool.record("fed").map(|r| r.state),
        Some(JobState::Cancelled)
    );
    assert_eq!(a.run_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn cancels_cross_processes() {
    let a = Fake::scripted("a", |_| Step::Hang);
    let fleet = Arc::new(ScriptedFleet::default());
    fleet.grant(&["a"]);
    let store = Arc::new(MemoryStore::default());
    let pool = listening_pool(&fleet, &store, &[&a]).await;

    // Another process asks to cancel a job running here: it is cancelled here.
    let job = pool.enqueue(workflow("w"), options("here")).await.unwrap();
    pass(Duration::from_secs(1)).await;
    assert_eq!(pool.record("here").unwrap().state, JobState::Running);
    fleet
        .deliver(FleetNotice::Cancel { job: "here".into() })
        .await;
    assert!(matches!(job.result().await, Err(Error::Cancelled)));
    assert_eq!(
        store.get("here").await.unwrap().unwrap().state,
        JobState::Cancelled
    );

    // A job this process only follows (it runs elsewhere): the cancel goes to the others.
    fleet.grant(&[]);
    pass(TTL).await;
    let mut record = mirrored_here(&fleet, &store, "there").await;
    assert!(pool.job("there").is_some(), "mirrored");
    change(&store, &mut record, Transition::CancelRequested).await;
    fleet
        .deliver(FleetNotice::Changed {
            job: "there".into(),
            version: record.version,
            state: JobState::Running,
        })
        .await;
    pass(Duration::from_millis(10)).await;
    assert!(pool.cancel("there"));
    pass(Duration::from_millis(10)).await;
    assert!(
        fleet.sent.lock().contains(&FleetNotice::Cancel {
            job: "there".into()
        }),
        "the holder is told"
    );
    // Told again at the resync while the job has not ended (a notice may be lost).
    pass(Duration::from_secs(6)).await;
    let told = fleet
        .sent
        .lock()
        .iter()
        .filter(|n| {
            **n == FleetNotice::Cancel {
                job: "there".into(),
            }
        })
        .count();
    assert!(told >= 2, "told {told} times");
}

#[tokio::test(start_paused = true)]
async fn a_copy_the_store_refused_once_writes_nothing_more() {
    let a = Fake::new("a");
    let fleet = Arc::new(ScriptedFleet::default());
    let store = Arc::new(MemoryStore::default());
    let pool = listening_pool(&fleet, &store, &[&a]).await;
    let mut record = mirrored_here(&fleet, &store, "stale").await;
    let job = pool.job("stale").expect("mirrored");
    // Another process changes the job (version 2); this copy does not know.
    let expired = Transition::DeadlineExpired {
        kind: pool_core::DeadlineKind::Total,
    };
    change(&store, &mut record, expired).await;
    // Cancelled here: the copy's first write (version 2) is refused, and its end (version
    // 3, which alone would fit the store) must not overwrite the other process's change.
    // The job is read again and the cancel asked here still applies to it.
    assert!(pool.cancel("stale"));
    let end = job.result().await;
    let stored = store.get("stale").await.unwrap().unwrap();
    assert!(stored.state.is_terminal());
    assert_eq!(
        stored.deadline_expired,
        Some(pool_core::DeadlineKind::Total),
        "the other process's change survived"
    );
    assert_eq!(end.err(), stored.error);
    assert_eq!(pool.record("stale").unwrap().version, stored.version);
}

/// The job events told to the others, per job: `(job, seq, name)`.
fn told_events(fleet: &ScriptedFleet) -> Vec<(String, u64, &'static str)> {
    fleet
        .sent
        .lock()
        .iter()
        .filter_map(|n| match n {
            FleetNotice::Event { event } => Some((
                event.job.to_string(),
                event.seq,
                support::names(std::slice::from_ref(&event.kind))[0],
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_job_taken_up_from_the_store_tells_its_run_to_the_others() {
    let a = Fake::new("a");
    let fleet = Arc::new(ScriptedFleet::default());
    fleet.grant(&["a"]);
    let store = Arc::new(MemoryStore::default());
    let pool = listening_pool(&fleet, &store, &[&a]).await;
    mirrored_here(&fleet, &store, "remote").await;
    pool.job("remote")
        .expect("mirrored")
        .result()
        .await
        .unwrap();
    let local = pool.enqueue(workflow("w"), options("local")).await.unwrap();
    local.result().await.unwrap();
    pass(Duration::from_millis(10)).await;

    // The run of the job accepted elsewhere, numbered as here; not its output (the record
    // has it) nor its end (told as a change). A job accepted here tells no events: its
    // handles are here.
    let told = told_events(&fleet);
    let expected = [
        (2, "started"),
        (3, "accepted"),
        (4, "executing"),
        (5, "node"),
        (6, "progress"),
    ]
    .map(|(seq, name)| ("remote".to_owned(), seq, name));
    assert_eq!(told, expected);
    let stored = store.get("remote").await.unwrap().unwrap();
    assert_eq!(stored.last_seq, 8, "output 7 and the end 8 were not told");
}

#[tokio::test(start_paused = true)]
async fn a_copy_here_follows_the_run_another_process_tells() {
    let a = Fake::new("a");
    let fleet = Arc::new(ScriptedFleet::default());
    let store = Arc::new(MemoryStore::default());
    let pool = listening_pool(&fleet, &store, &[&a]).await;
    // Accepted here while this process leases no server: it waits in the queue here.
    let job = pool.enqueue(workflow("w"), options("j")).await.unwrap();
    let mut events = job.events_after(0);
    let event = |seq: u64, kind: JobEventKind| FleetNotice::Event {
        event: Box::new(JobEvent::new("j".into(), seq, Timestamp::now(), kind)),
    };
    let started = JobEventKind::Started {
        server: ServerId::new("b"),
        attempt: 1,
        probe: false,
    };
    let accepted = JobEventKind::Run(RunEvent::Accepted {
        prompt_id: "p".into(),
    });
    let progress = JobEventKind::Run(RunEvent::Progress {
        node: None,
        value: 3,
        max: 10,
    });
    for notice in [
        event(2, started),
        event(3, accepted),
        // Told twice, or out of order: only a newer event counts.
        event(3, JobEventKind::Run(RunEvent::Executing)),
        event(5, progress),
    ] {
        fleet.deliver(notice).await;
    }
    pass(Duration::from_millis(10)).await;

    // The job is the other process's: a server leased here now does not run it.
    fleet.grant(&["a"]);
    pass(TTL).await;
    assert_eq!(a.run_count(), 0, "the copy here left the queue");

    // It ends there: the copy ends as stored, under the stored end's number.
    let mut record = store.get("j").await.unwrap().unwrap();
    record.last_seq = 7;
    let end = Transition::Finished {
        outcome: Err(Error::Cancelled),
    };
    change(&store, &mut record, end).await;
    fleet
        .deliver(FleetNotice::Changed {
            job: "j".into(),
            version: record.version,
            state: JobState::Cancelled,
        })
        .await;
    assert!(matches!(job.result().await, Err(Error::Cancelled)));
    let mut seen = Vec::new();
    while let Some(event) = events.next().await {
        seen.push((event.seq, support::names(&[event.kind])[0]));
    }
    assert_eq!(
        seen,
        [
            (1, "queued"),
            (2, "started"),
            (3, "accepted"),
            (5, "progress"),
            (7, "cancelled")
        ]
    );
}

/// Polls `done` (every 10 ms, at most 10 s): whether it came true.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

/// A process keeps a websocket open on a server only while it holds the server's lease:
/// every socket on a server gets its broadcasts, so a fleet's other processes stay off it.
/// Health checks go on over HTTP meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_is_open_only_on_a_held_server() {
    let sim = comfy_sim::SimServer::start(comfy_sim::SimConfig::default())
        .await
        .unwrap();
    let fleet = Arc::new(ScriptedFleet::default());
    let store = Arc::new(MemoryStore::default());
    let pool = Pool::builder()
        .server(ServerConfig::new(sim.url()).id("s"))
        .store(Arc::clone(&store) as Arc<dyn JobStore>)
        .fleet(Arc::clone(&fleet) as Arc<dyn Fleet>)
        .lease_ttl(Duration::from_millis(300))
        .health_check_interval(Some(Duration::from_millis(20)))
        .build()
        .unwrap();
    pool.ready().await;
    assert!(
        eventually(|| sim.stats().requests("GET /system_stats") >= 3).await,
        "health checks go on"
    );
    assert_eq!(sim.stats().ws_connections, 0, "not held: no socket");

    fleet.grant(&["s"]);
    assert!(
        eventually(|| sim.open_websockets() == 1).await,
        "held: one socket"
    );
    let job = pool.enqueue(chain(1), JobOptions::new()).await.unwrap();
    job.result().await.unwrap();

    fleet.grant(&[]);
    assert!(
        eventually(|| sim.open_websockets() == 0).await,
        "let go: closed"
    );
    let checks = sim.stats().requests("GET /system_stats");
    assert!(
        eventually(|| sim.stats().requests("GET /system_stats") >= checks + 3).await,
        "health checks go on"
    );
    assert_eq!(sim.open_websockets(), 0, "and open no socket");
    assert_eq!(sim.stats().ws_connections, 1);
    pool.shutdown(ShutdownMode::Drain).await;
}
