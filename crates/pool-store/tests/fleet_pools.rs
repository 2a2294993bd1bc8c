//! Three pools as one fleet on a real PostgreSQL: each in a tokio runtime of its own on a
//! thread of its own (dropping that runtime is a process death: no clean shutdown, no last
//! write), one database, four comfy-sim servers. Jobs from three tenants are submitted
//! through all three; one pool dies mid-run. Every job ends exactly once, no prompt runs
//! twice, no server holds more prompts than its `max_concurrent`, and a block the dead
//! process learnt is honoured by the next holder of its server. A rolling restart (each pool
//! stopped cleanly and replaced in turn) loses nothing either.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use comfy_sim::{SimCluster, SimConfig};
use pool_core::{
    Backoff, FailureClass, Fleet, JobOptions, JobQuery, JobState, JobStore, Pool, PoolEvent,
    ServerConfig, ServerId, ShutdownMode, StoredBlock, Timestamp, WorkflowEvent, WorkflowHash,
};
use pool_store::{PgFleet, PostgresStore};
use serde_json::{Value, json};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// How long the test may take at most (it takes a few seconds when all is well).
const BOUND: Duration = Duration::from_secs(60);

/// Jobs per process.
const JOBS: usize = 200;

/// One pool "process": its runtime runs on a thread of its own until killed or stopped.
struct Process {
    name: String,
    pool: Pool,
    handle: Handle,
    end: Option<oneshot::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Process {
    fn start(name: &str, url: &str, servers: Vec<ServerConfig>) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        let (end, ended) = oneshot::channel::<bool>();
        let (url, id) = (url.to_owned(), name.to_owned());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let pool = rt.block_on(async {
                let store: Arc<dyn JobStore> =
                    Arc::new(PostgresStore::connect(&url).await.unwrap());
                let fleet: Arc<dyn Fleet> = Arc::new(PgFleet::connect(&url, id).await.unwrap());
                Pool::builder()
                    .servers(servers)
                    .store(store)
                    .fleet(fleet)
                    .lease_ttl(Duration::from_millis(1500))
                    .health_check_interval(Some(Duration::from_millis(300)))
                    .recovery_wait(Duration::from_secs(5))
                    .build()
                    .unwrap()
            });
            tx.send((pool.clone(), rt.handle().clone())).unwrap();
            let clean = rt.block_on(async { ended.await.unwrap_or(false) });
            if clean {
                rt.block_on(async {
                    tokio::time::timeout(BOUND, pool.shutdown(ShutdownMode::Detach))
                        .await
                        .expect("a clean shutdown in time");
                });
                drop(pool);
                drop(rt);
            } else {
                // Death: every task of the process stops where it is.
                rt.shutdown_background();
                std::mem::forget(pool);
            }
        });
        let (pool, handle) = rx.recv().unwrap();
        Self {
            name: name.to_owned(),
            pool,
            handle,
            end: Some(end),
            thread: Some(thread),
        }
    }

    /// Waits until the process's pool is ready.
    async fn ready(&self) {
        let pool = self.pool.clone();
        self.run(async move { pool.ready().await }).await;
    }

    /// Runs `f` on the process's runtime.
    async fn run<T: Send + 'static>(
        &self,
        f: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        self.handle.spawn(f).await.unwrap()
    }

    fn stop(&mut self, clean: bool) {
        if let Some(end) = self.end.take() {
            let _ = end.send(clean);
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

/// The servers of `cluster`, `s0`, `s1`, …, each with its `max_concurrent` from `limits`.
fn servers_of(cluster: &SimCluster, limits: &[usize]) -> Vec<ServerConfig> {
    cluster
        .urls()
        .iter()
        .zip(limits)
        .enumerate()
        .map(|(i, (url, max))| {
            ServerConfig::new(url.as_str())
                .id(format!("s{i}"))
                .max_concurrent(*max)
        })
        .collect()
}

/// A workflow whose prompts name their job (in the `SaveImage` prefix).
fn workflow(job: &str, inverts: usize) -> Value {
    let mut wf = serde_json::Map::new();
    wf.insert(
        "1".into(),
        json!({"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}),
    );
    let mut last = "1".to_owned();
    for i in 0..inverts {
        let id = format!("{}", 10 + i);
        wf.insert(
            id.clone(),
            json!({"class_type": "ImageInvert", "inputs": {"image": [last, 0]}}),
        );
        last = id;
    }
    wf.insert(
        "2".into(),
        json!({"class_type": "SaveImage", "inputs": {"images": [last, 0], "filename_prefix": job}}),
    );
    Value::Object(wf)
}

/// The job a received prompt belongs to.
fn job_of(prompt: &Value) -> Option<String> {
    prompt
        .get("2")?
        .get("inputs")?
        .get("filename_prefix")?
        .as_str()
        .map(str::to_owned)
}

/// The stored records, by id.
async fn stored(store: &PostgresStore) -> BTreeMap<String, pool_core::JobRecord> {
    let mut all = BTreeMap::new();
    let mut query = JobQuery::new(500);
    loop {
        let page = store.list(&query).await.unwrap();
        for record in page.jobs {
            all.insert(record.id.to_string(), record);
        }
        match page.next {
            Some(cursor) => query = query.after(cursor),
            None => return all,
        }
    }
}

/// Polls the store (the processes are independent: the store is what they share) until
/// `done` holds, within the test's bound.
async fn until(store: &PostgresStore, started: Instant, what: &str, done: impl Fn(usize) -> bool) {
    loop {
        let records = stored(store).await;
        let ended = records.values().filter(|r| r.state.is_terminal()).count();
        if done(ended) {
            return;
        }
        assert!(
            started.elapsed() < BOUND,
            "timed out waiting for {what} ({ended} ended)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Which process holds `server` now.
async fn holder(url: &str, server: &str) -> Option<String> {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let owner: Option<(Option<String>,)> =
        sqlx::query_as("SELECT owner FROM fleet_leases WHERE server = $1 AND lease_until > now()")
            .bind(server)
            .fetch_optional(&pool)
            .await
            .unwrap();
    pool.close().await;
    owner.and_then(|(o,)| o)
}

/// Checks the servers' side: none held more prompts than its `max_concurrent`; every
/// accepted prompt is an attempt of its job's record; a job whose record has one attempt was
/// submitted once. Returns how many jobs were submitted more than once.
fn check_prompts(
    cluster: &SimCluster,
    limits: &[usize],
    records: &BTreeMap<String, pool_core::JobRecord>,
) -> usize {
    let mut prompts: HashMap<String, Vec<String>> = HashMap::new();
    for (i, server) in cluster.servers().iter().enumerate() {
        let stats = server.stats();
        assert!(
            stats.max_prompts_held <= limits[i] as u64,
            "s{i} held {} prompts at once (max_concurrent {})",
            stats.max_prompts_held,
            limits[i]
        );
        for received in stats.received.iter().filter(|r| r.accepted) {
            let job = job_of(&received.prompt).expect("a job's prompt");
            if job == "blocked" {
                continue;
            }
            prompts
                .entry(job)
                .or_default()
                .push(received.prompt_id.clone());
        }
    }
    let mut reruns = 0;
    for (job, ids) in &prompts {
        let record = &records[job];
        for id in ids {
            assert!(
                record.attempts.iter().any(|a| &a.prompt_id == id),
                "{job}: prompt {id} is not an attempt of its record"
            );
        }
        if ids.len() > 1 {
            reruns += 1;
            assert!(
                record.attempts.len() > 1,
                "{job} ran {} times with one attempt",
                ids.len()
            );
        }
    }
    reruns
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_pools_one_dies_every_job_ends_once_and_no_server_is_overfilled() {
    let started = Instant::now();
    let url = test_infra::new_pg_database().await;
    let cluster = SimCluster::start(4, SimConfig::default().exec_time(Duration::from_millis(15)))
        .await
        .unwrap();
    let limits = [2usize, 1, 2, 1];
    let servers = servers_of(&cluster, &limits);
    let observer = PostgresStore::connect(&url).await.unwrap();
    let mut processes: Vec<Process> = ["p0", "p1", "p2"]
        .iter()
        .map(|name| Process::start(name, &url, servers.clone()))
        .collect();
    for p in &processes {
        p.ready().await;
    }

    // 600 jobs from three tenants, through all three processes at once.
    let mut submits = Vec::new();
    for (n, p) in processes.iter().enumerate() {
        let pool = p.pool.clone();
        let name = p.name.clone();
        submits.push(p.handle.spawn(async move {
            let mut handles = Vec::new();
            for i in 0..JOBS {
                let id = format!("{name}-j{i:03}");
                let options = JobOptions::new()
                    .job_id(id.as_str())
                    .tenant(format!("t{}", (i + n) % 3))
                    .backoff(Backoff::none())
                    .max_attempts(5);
                handles.push(pool.enqueue(workflow(&id, 1), options).await.unwrap());
            }
            handles
        }));
    }
    let mut handles = Vec::new();
    for submit in submits {
        handles.push(submit.await.unwrap());
    }

    // The process that dies learnt a block on a server it holds (written through to the
    // store, as its engine does): the next holder of that server must honour it.
    let dying = 2;
    let blocked_hash = WorkflowHash::of(&workflow("blocked", 2)).unwrap();
    let mut blocked_server = None;
    for i in 0..4 {
        let server = format!("s{i}");
        if holder(&url, &server).await.as_deref() == Some("p2") {
            blocked_server = Some(server);
            break;
        }
    }
    let blocked_server = ServerId::new(blocked_server.expect("p2 holds a server"));
    let block_until = Timestamp::from_millis(Timestamp::now().as_millis() + 600_000);
    let block = StoredBlock::new(
        blocked_server.clone(),
        blocked_hash,
        FailureClass::Execution,
        3,
        1,
        Some(block_until),
        Timestamp::now(),
    );
    observer.put_block(&block).await.unwrap();
    let mut survivor_events: Vec<_> = processes[..2].iter().map(|p| p.pool.subscribe()).collect();

    // Kill p2 a quarter of the way through.
    until(&observer, started, "a quarter of the jobs", |ended| {
        ended >= 150
    })
    .await;
    let at_death = stored(&observer).await;
    let running_at_death = at_death
        .values()
        .filter(|r| r.state == JobState::Running)
        .count();
    processes[dying].stop(false);
    eprintln!("fleet: p2 killed at {:?}", started.elapsed());

    // A survivor takes the dead process's server over and restores its block.
    let (e0, e1) = survivor_events.split_at_mut(1);
    let restored = async {
        let (a, b) = (&mut e0[0], &mut e1[0]);
        loop {
            let event = tokio::select! {
                e = a.recv() => e,
                e = b.recv() => e,
            };
            if let Some(PoolEvent::Workflow(WorkflowEvent::Blocked { server, hash, .. })) = event
                && server == blocked_server
                && hash == blocked_hash
            {
                return;
            }
        }
    };
    tokio::time::timeout(BOUND, restored)
        .await
        .expect("the next holder restores the block");

    eprintln!("fleet: block restored at {:?}", started.elapsed());
    // Jobs of the blocked workflow after the takeover: never on the blocked server.
    let mut blocked_jobs = Vec::new();
    for i in 0..12 {
        let id = format!("blocked-{i:02}");
        let pool = processes[i % 2].pool.clone();
        let options = JobOptions::new()
            .job_id(id.as_str())
            .backoff(Backoff::none());
        let job = processes[i % 2]
            .run(async move { pool.enqueue(workflow("blocked", 2), options).await.unwrap() })
            .await;
        blocked_jobs.push((i % 2, job));
    }
    let total = 3 * JOBS + blocked_jobs.len();
    until(&observer, started, "every job", |ended| ended >= total).await;
    eprintln!("fleet: all ended at {:?}", started.elapsed());
    for (p, job) in blocked_jobs {
        let output = processes[p]
            .run(async move { job.result().await })
            .await
            .expect("a blocked-workflow job completes elsewhere");
        assert_ne!(output.server, blocked_server, "the block was not honoured");
    }

    // Every job ended exactly once, and completed (nothing here fails).
    let records = stored(&observer).await;
    assert_eq!(records.len(), total);
    for record in records.values() {
        assert_eq!(
            record.state,
            JobState::Completed,
            "{} ended {:?}: {:?}",
            record.id,
            record.state,
            record.error
        );
    }

    // Prompts: every accepted prompt is an attempt of its job's record (no claim that failed
    // ever ran, no job dispatched by two processes), and a job ran once unless its record
    // shows an attempt that did not succeed.
    let reruns = check_prompts(&cluster, &limits, &records);
    assert!(reruns <= 10, "{reruns} jobs ran more than once");
    let ended_at_death = at_death.values().filter(|r| r.state.is_terminal()).count();
    let retried = records.values().filter(|r| r.attempts.len() > 1).count();
    eprintln!(
        "fleet: {ended_at_death} ended and {running_at_death} running when p2 died; \
         {retried} jobs with more than one attempt, {reruns} prompts run again; {:?}",
        started.elapsed()
    );
    for record in records.values().filter(|r| r.attempts.len() > 1) {
        let tries: Vec<_> = record
            .attempts
            .iter()
            .map(|a| (a.server.to_string(), a.outcome.clone(), a.reason.clone()))
            .collect();
        eprintln!("fleet: {} tried {tries:?}", record.id);
    }
    // The death was mid-run: work was left to take over.
    assert!(ended_at_death < total);

    // Handles of jobs accepted by a survivor end with the stored outcome, wherever the job
    // ran (here, in the other survivor, or in the dead process and taken over).
    for (p, handles) in processes[..2].iter().zip(handles) {
        let ends = p
            .run(async move {
                let mut ends = Vec::new();
                for handle in handles {
                    let id = handle.id().to_string();
                    let end = tokio::time::timeout(BOUND, handle.result())
                        .await
                        .unwrap_or_else(|_| panic!("{id}: the handle did not end"));
                    ends.push((id, end.map(|o| o.prompt_id.clone())));
                }
                ends
            })
            .await;
        for (id, end) in ends {
            let prompt = end.unwrap_or_else(|e| panic!("{id}: {e}"));
            let stored = records[&id].attempts.last().unwrap().prompt_id.clone();
            assert_eq!(
                prompt, stored,
                "{id}: the handle's outcome is the stored one"
            );
        }
    }

    for p in &mut processes[..2] {
        p.stop(true);
    }
    drop(cluster);
    assert!(started.elapsed() < BOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_loses_nothing_and_runs_nothing_twice() {
    let started = Instant::now();
    let url = test_infra::new_pg_database().await;
    let cluster = SimCluster::start(4, SimConfig::default().exec_time(Duration::from_millis(15)))
        .await
        .unwrap();
    let limits = [1usize, 2, 1, 2];
    let servers = servers_of(&cluster, &limits);
    let observer = PostgresStore::connect(&url).await.unwrap();
    let mut processes: Vec<Process> = ["p0", "p1", "p2"]
        .iter()
        .map(|name| Process::start(name, &url, servers.clone()))
        .collect();
    let per_process = 100;
    for (n, p) in processes.iter().enumerate() {
        let pool = p.pool.clone();
        let name = p.name.clone();
        p.run(async move {
            pool.ready().await;
            for i in 0..per_process {
                let id = format!("{name}-j{i:03}");
                let options = JobOptions::new()
                    .job_id(id.as_str())
                    .tenant(format!("t{}", (i + n) % 3))
                    .backoff(Backoff::none());
                pool.enqueue(workflow(&id, 1), options).await.unwrap();
            }
        })
        .await;
    }
    let total = 3 * per_process;
    // Each process in turn stops cleanly (detaching its prompts, leaving its queue and its
    // leases) and a new one starts in its place.
    for (k, process) in processes.iter_mut().enumerate() {
        let progress = (k + 1) * total / 5;
        until(&observer, started, "progress", |ended| ended >= progress).await;
        process.stop(true);
        let name = format!("p{k}-again");
        let replacement = Process::start(&name, &url, servers.clone());
        replacement.ready().await;
        *process = replacement;
    }
    until(&observer, started, "every job", |ended| ended >= total).await;
    let records = stored(&observer).await;
    assert_eq!(records.len(), total);
    for record in records.values() {
        assert_eq!(
            record.state,
            JobState::Completed,
            "{} ended {:?}: {:?}",
            record.id,
            record.state,
            record.error
        );
    }
    let reruns = check_prompts(&cluster, &limits, &records);
    assert!(reruns <= 10, "{reruns} jobs ran more than once");
    let retried = records.values().filter(|r| r.attempts.len() > 1).count();
    eprintln!(
        "rolling: {retried} jobs with more than one attempt, {reruns} submitted again; {:?}",
        started.elapsed()
    );
    for p in &mut processes {
        p.stop(true);
    }
    assert!(started.elapsed() < BOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_at_one_process_follows_the_run_in_another() {
    let started = Instant::now();
    let url = test_infra::new_pg_database().await;
    let cluster = SimCluster::start(1, SimConfig::default().exec_time(Duration::from_millis(50)))
        .await
        .unwrap();
    let servers = servers_of(&cluster, &[1]);
    let mut processes: Vec<Process> = ["p0", "p1"]
        .iter()
        .map(|name| Process::start(name, &url, servers.clone()))
        .collect();
    for p in &processes {
        p.ready().await;
    }
    // One server, two processes: one holds it, the job is accepted by the other.
    let holder_name = loop {
        if let Some(name) = holder(&url, "s0").await {
            break name;
        }
        assert!(started.elapsed() < BOUND, "nobody leased s0");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let here = processes
        .iter()
        .find(|p| p.name != holder_name)
        .expect("two processes");
    let pool = here.pool.clone();
    let seen = here
        .run(async move {
            let options = JobOptions::new().job_id("watched").backoff(Backoff::none());
            let job = pool.enqueue(workflow("watched", 2), options).await.unwrap();
            let mut events = job.events_after(0);
            let mut seen = Vec::new();
            while let Some(event) = tokio::time::timeout(BOUND, events.recv()).await.unwrap() {
                seen.push(event);
            }
            seen
        })
        .await;
    let observer = PostgresStore::connect(&url).await.unwrap();
    let stored = observer.get("watched").await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Completed);

    // The run as the holder numbered it: accepted here, started, the server's acceptance and
    // execution told by the holder, the end under the stored end's number.
    let kinds: Vec<String> = seen
        .iter()
        .map(|e| {
            serde_json::to_value(&e.kind).unwrap()["type"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        })
        .collect();
    let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?} {kinds:?}");
    assert_eq!(
        &kinds[..4],
        ["queued", "started", "accepted", "executing"],
        "{kinds:?}"
    );
    assert_eq!(seqs[..4], [1, 2, 3, 4], "{kinds:?}");
    assert!(
        matches!(&seen[1].kind, pool_core::JobEventKind::Started { server, .. } if server.as_str() == "s0")
    );
    assert_eq!(kinds.last().map(String::as_str), Some("completed"));
    assert_eq!(seqs.last(), Some(&stored.last_seq));
    for p in &mut processes {
        p.stop(true);
    }
}
