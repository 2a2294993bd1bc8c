//! Crash tests of `comfy-pool run` on an SQLite store, with real processes: simulated servers
//! in one `comfy-pool sim` process, the pool in a `comfy-pool run` process SIGKILLed at
//! seeded moments (while jobs are being accepted, mid-run, near the end), then the same
//! command run again to completion.
//!
//! What must hold: the last run reports every job completed, once; no job is ever reported
//! completed twice with different results; and every job's prompt ran exactly once on the
//! servers. With `--vary-seed` each job has its own seed, so the servers' `/history` entries
//! are counted per seed (the simulator loses nothing here: it keeps running, so no prompt
//! may run twice, and every completed job's prompt is in a history).
#![cfg(unix)]
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use pool_core::JobQuery;
use pool_store::{JobStore, SqliteStore};
use serde_json::Value;
use support::{PATIENCE, ScratchDir, Sim, seeds_in_history, workflow};

/// Jobs per batch: more than one group commit of enqueues (64 at a time).
const JOBS: u64 = 150;
/// The seed of `txt2img-checkpoint.json`; repeat N runs seed 42 + N - 1.
const FIRST_SEED: u64 = 42;
/// How long the simulator runs each prompt.
const EXEC_MS: &str = "2";

/// A small deterministic generator (splitmix64) for the kill points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high` (`low` when `high` is smaller).
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high.saturating_sub(low) + 1)
    }
}

/// When a run is killed.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// Once this run accepted this many jobs into the store (while it still enqueues the
    /// rest).
    Accepted(usize),
    /// Once this many job lines were printed.
    Lines(usize),
    /// This long after the process started (a point in time to kill at, nothing waits on
    /// it).
    After(Duration),
}

/// One `comfy-pool run` process and the lines it prints.
struct Running {
    child: Child,
    lines: Receiver<String>,
    /// Its standard error, read to the end by a thread.
    stderr: std::thread::JoinHandle<String>,
}

impl Running {
    fn next_line(&self) -> Option<String> {
        match self.lines.recv_timeout(PATIENCE) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => panic!("comfy-pool run printed nothing for a minute"),
        }
    }

    /// Whether the process has ended.
    fn ended(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }
}

/// A batch on one store, run again and again, with what every run reported.
struct Batch {
    sim: Sim,
    dir: ScratchDir,
    store: SqliteStore,
    runtime: tokio::runtime::Runtime,
    /// The job lines of each run, in order.
    runs: Vec<Vec<Value>>,
}

impl Batch {
    fn new(name: &str) -> Self {
        let sim = Sim::start(2, &["--exec-ms", EXEC_MS]);
        let dir = ScratchDir::new(name);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Created here (schema and all) and kept open to watch the jobs being accepted.
        let store = runtime
            .block_on(SqliteStore::open(dir.path.join("jobs.db")))
            .unwrap();
        Self {
            sim,
            dir,
            store,
            runtime,
            runs: Vec::new(),
        }
    }

    fn start(&self) -> Running {
        let (store, hosts, repeat) = (self.dir.sqlite("jobs.db"), self.sim.hosts(), JOBS);
        let mut child = support::comfy_pool()
            .args([
                "run",
                "--json",
                "--vary-seed",
                "--store",
                &store,
                "--hosts",
                &hosts,
            ])
            .args([
                "--repeat",
                &repeat.to_string(),
                &workflow("txt2img-checkpoint"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            stderr,
        }
    }

    /// Jobs in the store: (accepted, unfinished).
    fn stored(&self) -> (usize, usize) {
        let all = self.runtime.block_on(self.store.list(&JobQuery::new(1000)));
        let unfinished = self.runtime.block_on(self.store.unfinished());
        (all.unwrap().jobs.len(), unfinished.unwrap().len())
    }

    /// Runs the command and SIGKILLs it at `kill` (unless it ended before); keeps the job
    /// lines it printed.
    fn run_killed(&mut self, kill: Kill) {
        let before = self.stored().0;
        let mut run = self.start();
        let mut lines = Vec::new();
        match kill {
            Kill::Accepted(count) => {
                let start = std::time::Instant::now();
                while self.stored().0 < before + count && !run.ended() {
                    assert!(start.elapsed() < PATIENCE, "no job accepted");
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Kill::Lines(count) => {
                while lines.len() < count {
                    let Some(line) = run.next_line() else { break };
                    lines.push(line);
                }
            }
            Kill::After(delay) => std::thread::sleep(delay),
        }
        let _ = run.child.kill();
        run.child.wait().unwrap();
        lines.extend(std::iter::from_fn(|| run.next_line()));
        self.keep(&lines);
        let (accepted, unfinished) = self.stored();
        eprintln!(
            "killed at {kill:?}: {} job lines printed; {accepted} jobs accepted, {unfinished} unfinished",
            self.runs.last().map_or(0, Vec::len),
        );
    }

    /// Runs the command to its end; returns its exit code and summary.
    fn run_to_end(&mut self) -> (Option<i32>, Value) {
        let mut run = self.start();
        let lines: Vec<String> = std::iter::from_fn(|| run.next_line()).collect();
        let status = run.child.wait().unwrap();
        let stderr = run.stderr.join().unwrap();
        let summary = lines
            .last()
            .and_then(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|value| value.get("summary").is_some())
            .unwrap_or_else(|| panic!("no summary line ({status}): {lines:?}; stderr: {stderr}"));
        self.keep(&lines);
        (status.code(), summary["summary"].clone())
    }

    fn keep(&mut self, lines: &[String]) {
        let jobs = lines
            .iter()
            .map(|line| {
                serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"))
            })
            .filter(|value| value.get("job_id").is_some())
            .collect();
        self.runs.push(jobs);
    }

    /// Distinct job ids reported completed so far.
    fn completed(&self) -> usize {
        let ids: BTreeSet<&str> = self
            .runs
            .iter()
            .flatten()
            .filter(|job| job["status"] == "completed")
            .map(|job| job["job_id"].as_str().unwrap())
            .collect();
        ids.len()
    }

    /// The checks of a batch after its last run ended with `code` and `summary`.
    fn check(&self, code: Option<i32>, summary: &Value) {
        let last = self.runs.last().unwrap();
        assert_eq!(code, Some(0), "{summary}");
        assert_eq!(summary["submitted"], JOBS, "{summary}");
        assert_eq!(summary["completed"], JOBS, "{summary}");
        assert_eq!(last.len(), JOBS as usize, "{summary}");
        for (n, run) in self.runs.iter().enumerate() {
            let mut seen = BTreeSet::new();
            for job in run {
                assert!(
                    seen.insert(job["job_id"].as_str().unwrap()),
                    "run {n} reported {job} twice"
                );
                assert_ne!(job["status"], "failed", "run {n}: {job}");
            }
        }
        assert!(last.iter().all(|job| job["status"] == "completed"));
        // A job reported completed in several runs: always the same result.
        let mut results: BTreeMap<&str, &Value> = BTreeMap::new();
        for job in self.runs.iter().flatten() {
            if job["status"] != "completed" {
                continue;
            }
            let id = job["job_id"].as_str().unwrap();
            let first = results.entry(id).or_insert(job);
            assert_eq!(*first, job, "{id} completed twice with different results");
        }
        // Each job's prompt ran once: one history entry per seed, none other.
        let mut runs_per_seed: BTreeMap<u64, usize> = BTreeMap::new();
        for url in &self.sim.urls {
            for seed in seeds_in_history(url) {
                *runs_per_seed.entry(seed).or_default() += 1;
            }
        }
        let twice: Vec<(&u64, &usize)> = runs_per_seed.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "prompts that ran more than once (seed, times): {twice:?}"
        );
        let expected: BTreeSet<u64> = (FIRST_SEED..FIRST_SEED + JOBS).collect();
        let ran: BTreeSet<u64> = runs_per_seed.keys().copied().collect();
        assert_eq!(ran, expected, "every job's prompt ran, and nothing else");
    }
}

#[test]
fn killed_while_jobs_are_accepted_the_rerun_finishes_the_batch_once() {
    let mut rng = Rng(0x5EED_0001);
    let mut batch = Batch::new("crash-enqueue");
    batch.run_killed(Kill::Accepted(rng.between(1, JOBS / 3) as usize));
    // Again while the restarted run accepts the jobs the first one never did (recovered
    // ones running meanwhile).
    batch.run_killed(Kill::Accepted(rng.between(1, JOBS / 3) as usize));
    // At a moment anywhere from start-up (opening the store, recovery) into the run.
    batch.run_killed(Kill::After(Duration::from_millis(rng.between(100, 900))));
    let (code, summary) = batch.run_to_end();
    batch.check(code, &summary);
}

#[test]
fn killed_mid_run_several_times_every_job_ends_once() {
    let mut rng = Rng(0x5EED_0002);
    let mut batch = Batch::new("crash-mid-run");
    for _ in 0..3 {
        // Past the jobs that a rerun reports from the store at once, before the end.
        let done = batch.completed() as u64;
        let lines = rng.between(done + 1, (done + JOBS / 3).min(JOBS - 1));
        batch.run_killed(Kill::Lines(lines as usize));
    }
    let (code, summary) = batch.run_to_end();
    batch.check(code, &summary);
}

#[test]
fn killed_near_the_end_the_rerun_reports_the_stored_results() {
    let mut rng = Rng(0x5EED_0003);
    let mut batch = Batch::new("crash-end");
    let lines = rng.between(JOBS - 3, JOBS - 1);
    batch.run_killed(Kill::Lines(lines as usize));
    // Every job line printed: killed between the last job and the summary, or later.
    batch.run_killed(Kill::Lines(JOBS as usize));
    let (code, summary) = batch.run_to_end();
    batch.check(code, &summary);
    assert!(
        batch.runs[0].len() >= lines as usize,
        "the first run printed its lines before the kill"
    );
}
