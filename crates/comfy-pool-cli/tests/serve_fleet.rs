//! Three `comfy-pool serve` replicas on one PostgreSQL database, as real processes, with
//! simulated servers in `comfy-pool sim` processes and jobs of three tenants submitted over
//! HTTP through every replica:
//!
//! - 2,000 jobs, one replica SIGKILLed mid-run. The survivors report every job completed, the
//!   same way; each job's prompt ran exactly once per the sims' `/history` (each job has its
//!   own seed; the sims keep running, so no prompt is really lost); no sim ever held more
//!   prompts than its `max_concurrent` (`GET /sim/stats`); a job's state and its event stream
//!   answer on a replica other than the one it was submitted to.
//! - A block learnt by a replica (a workflow failing on one sim only) is honoured by the
//!   replica that takes that server over after the first is SIGKILLed: the workflow goes
//!   elsewhere while others still run there.
//! - A rolling restart: each replica stopped (SIGTERM: it detaches from its prompts and
//!   leaves the fleet) while jobs flow, and started again; nothing lost, nothing run twice.
//!
//! The tests take turns (each one loads the machine with three replicas and the sims).
#![cfg(unix)]
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{
    PATIENCE, ScratchDir, Sim, comfy_pool, get, request, seeds_in_history, stdout_lines,
    wait_until, workflow,
};

/// The seed of job `i` is `FIRST_SEED + i`.
const FIRST_SEED: u64 = 10_000;
/// Prompts each sim may hold at once (the pool's `max_concurrent`).
const MAX_CONCURRENT: u64 = 2;
/// The tenants.
const TENANTS: [&str; 3] = ["t-red", "t-green", "t-blue"];
/// Milliseconds each node of a prompt takes on the sims.
const EXEC_MS: &str = "5";
/// HTTP clients submitting (and reading) at once.
const CLIENTS: usize = 6;
/// The admin key of every replica.
const ADMIN_KEY: &str = "fleet-serve-admin-key-0123456789";

/// One test at a time: each starts three replicas and the sims on a small machine.
static TURN: Mutex<()> = Mutex::new(());

fn take_turn() -> MutexGuard<'static, ()> {
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A job's event stream on `base`, read to its end (HTTP/1.0: no chunking; the stream
/// closes after the terminal event).
fn event_stream(base: &str, id: &str, key: &str) -> String {
    let authority = base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(authority).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "GET /v1/jobs/{id}/events HTTP/1.0\r\nHost: {authority}\r\n\
         Authorization: Bearer {key}\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// `f` over `items` on [`CLIENTS`] threads at once; the answers in the order of `items`.
fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let f = &f;
    let mut answers: Vec<Option<R>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CLIENTS)
            .map(|client| {
                scope.spawn(move || {
                    (client..items.len())
                        .step_by(CLIENTS)
                        .map(|i| (i, f(&items[i])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut answers: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
        for worker in workers {
            for (i, answer) in worker.join().unwrap() {
                answers[i] = Some(answer);
            }
        }
        answers
    });
    answers.iter_mut().map(|a| a.take().unwrap()).collect()
}

/// One `comfy-pool serve` replica; killed when dropped.
struct Replica {
    child: Child,
    url: String,
}

impl Replica {
    fn start(config: &str, store: &str) -> Self {
        let mut child = comfy_pool()
            .args(["serve", "--config", config, "--store", store])
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let rx = stdout_lines(&mut child);
        let url = match rx.recv_timeout(PATIENCE) {
            Ok(Ok(line)) if line.starts_with("url: ") => line["url: ".len()..].to_owned(),
            other => {
                let _ = child.kill();
                panic!("comfy-pool serve printed no url line: {other:?}");
            }
        };
        wait_until("readiness", || {
            request(&url, "GET", "/readyz", "", None).0 == 200
        });
        Self { child, url }
    }

    /// This replica's rows `HOST-PID-RANDOM` are those matching this `LIKE` pattern.
    fn owner_pattern(&self) -> String {
        format!("%-{}-%", self.child.id())
    }

    /// The ids of the servers whose lease this replica holds now, read in the database.
    fn leases(&self, store: &str) -> Vec<String> {
        let query = format!(
            "SELECT server FROM fleet_leases WHERE owner LIKE '{}' AND lease_until > now()",
            self.owner_pattern()
        );
        sql(store, &query).lines().map(str::to_owned).collect()
    }

    /// Whether this replica holds a server that has prompts to run, or `sims` ran `all`
    /// prompts already (a loaded machine may submit more slowly than the sims run).
    fn holds_busy_server(&self, store: &str, sims: &Servers, all: u64) -> bool {
        let busy = self
            .leases(store)
            .iter()
            .any(|server| sim_stat(sims.url(server), "queue_remaining") > 0);
        busy || sims.sum("prompts_executed") >= all
    }

    /// SIGKILL: no shutdown, no last write.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM: the replica detaches from its prompts, leaves the fleet and exits 0.
    fn stop(mut self, store: &str) {
        let pid = self.child.id().to_string();
        let signalled = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(signalled.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "replica {pid} stopped with {status}");
        let left = sql(
            store,
            &format!(
                "SELECT (SELECT count(*) FROM fleet_processes WHERE process LIKE '{0}') + \
                 (SELECT count(*) FROM fleet_leases WHERE owner LIKE '{0}')",
                self.owner_pattern()
            ),
        );
        assert_eq!(
            left, "0",
            "replica {pid} left its presence or leases behind"
        );
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One SQL query's answer (unaligned, tuples only), by `psql`.
fn sql(store: &str, query: &str) -> String {
    let psql = test_infra::pg::PgBin::find().unwrap().program("psql");
    let output = std::process::Command::new(psql)
        .args([store, "-Atc", query])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A key for `tenant`, stored in the database by `comfy-pool keys new`.
fn tenant_key(store: &str, tenant: &str) -> String {
    let output = comfy_pool()
        .args(["keys", "new", "--tenant", tenant, "--store", store])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .unwrap_or_else(|| panic!("no key in {stdout}"))
        .to_owned()
}

/// The simulated servers of a test, `sim-0`, `sim-1`, … in the order of their URLs (from
/// one or more `comfy-pool sim` processes).
struct Servers {
    urls: Vec<String>,
}

impl Servers {
    fn of(sims: &[&Sim]) -> Self {
        Self {
            urls: sims.iter().flat_map(|s| s.urls.iter().cloned()).collect(),
        }
    }

    /// The URL of server `sim-N`.
    fn url(&self, id: &str) -> &str {
        let i: usize = id.strip_prefix("sim-").unwrap().parse().unwrap();
        &self.urls[i]
    }

    /// `GET /sim/stats` field `field`, summed over the servers.
    fn sum(&self, field: &str) -> u64 {
        self.urls.iter().map(|url| sim_stat(url, field)).sum()
    }

    /// Each of `seeds` ran exactly once, fleet-wide, and nothing else ran.
    fn assert_each_seed_ran_once(&self, seeds: &[u64]) {
        let mut runs: BTreeMap<u64, usize> = BTreeMap::new();
        for url in &self.urls {
            for seed in seeds_in_history(url) {
                *runs.entry(seed).or_default() += 1;
            }
        }
        let twice: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "prompts run more than once: {twice:?}");
        let mut expected = seeds.to_vec();
        expected.sort_unstable();
        assert_eq!(runs.keys().copied().collect::<Vec<_>>(), expected);
        assert_eq!(self.sum("prompts_executed"), seeds.len() as u64);
    }

    /// No sim ever held more than its `max_concurrent`.
    fn assert_within_max_concurrent(&self) {
        for url in &self.urls {
            let (_, body) = get(url, "/sim/stats");
            let stats: Value = serde_json::from_str(&body).unwrap();
            assert!(
                stats["max_prompts_held"].as_u64().unwrap() <= MAX_CONCURRENT,
                "{url}: {stats}"
            );
        }
    }
}

/// A sim's `GET /sim/stats` field `field`.
fn sim_stat(url: &str, field: &str) -> u64 {
    let (status, body) = get(url, "/sim/stats");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()[field]
        .as_u64()
        .unwrap()
}

/// Three replicas on a fresh database with the same configuration, and the tenants' keys.
struct Replicas {
    store: String,
    config: String,
    keys: Vec<String>,
    replicas: Vec<Option<Replica>>,
    urls: Vec<String>,
    _dir: ScratchDir,
}

impl Replicas {
    /// `extra` is appended to the configuration (TOML tables).
    fn start(name: &str, sims: &Servers, extra: &str) -> Self {
        let store = test_infra::fresh_database(&test_infra::pg_url());
        let dir = ScratchDir::new(name);
        let mut text = format!(
            "admin_key = \"{ADMIN_KEY}\"\n\
             health_check_interval = \"1s\"\n\
             [fleet]\nlease_ttl = \"1500ms\"\n\
             [limits]\nsubmissions_per_second = 100000.0\nburst = 100000\n\
             queued_per_tenant = 100000\n"
        );
        for (i, url) in sims.urls.iter().enumerate() {
            text.push_str(&format!(
                "[[servers]]\nid = \"sim-{i}\"\nurl = \"{url}\"\nmax_concurrent = {MAX_CONCURRENT}\n"
            ));
        }
        for tenant in TENANTS {
            text.push_str(&format!("[[tenants]]\nname = \"{tenant}\"\n"));
        }
        text.push_str(extra);
        let config = dir.path.join("comfy-pool.toml");
        std::fs::write(&config, text).unwrap();
        let config = config.display().to_string();
        let keys: Vec<String> = TENANTS.iter().map(|t| tenant_key(&store, t)).collect();
        let replicas: Vec<Option<Replica>> = std::thread::scope(|scope| {
            let starting: Vec<_> = (0..3)
                .map(|_| scope.spawn(|| Replica::start(&config, &store)))
                .collect();
            starting
                .into_iter()
                .map(|r| Some(r.join().unwrap()))
                .collect()
        });
        let urls = replicas
            .iter()
            .map(|r| r.as_ref().unwrap().url.clone())
            .collect();
        Self {
            store,
            config,
            keys,
            replicas,
            urls,
            _dir: dir,
        }
    }

    fn replica(&self, i: usize) -> &Replica {
        self.replicas[i].as_ref().unwrap()
    }

    /// Waits until every server is leased and every replica holds one.
    fn wait_for_leases(&self, servers: usize) {
        let settled = format!("3|{servers}");
        wait_until("every server leased, every replica holding one", || {
            sql(
                &self.store,
                "SELECT count(DISTINCT owner), count(*) FROM fleet_leases \
                 WHERE owner IS NOT NULL AND lease_until > now()",
            ) == settled
        });
    }

    /// Submits `body` as `tenant` through replica `through`: the answer's JSON.
    fn submit(&self, through: usize, tenant: usize, body: &Value) -> Value {
        let (status, answer) = request(
            &self.urls[through],
            "POST",
            "/v1/jobs",
            &self.keys[tenant],
            Some(body),
        );
        assert_eq!(status, 202, "through replica {through}: {answer}");
        serde_json::from_str(&answer).unwrap()
    }

    /// Submits `jobs` on [`CLIENTS`] connections at once; their ids, in order.
    fn submit_all(&self, jobs: &[Job]) -> Vec<String> {
        in_parallel(jobs, |job| {
            let answer = self.submit(job.through, job.tenant, &job.body());
            answer["id"].as_str().unwrap().to_owned()
        })
    }

    /// A job's view on replica `on`, once it has ended.
    fn ended_view(&self, on: usize, id: &str, tenant: usize, deadline: Instant) -> Value {
        let base = &self.urls[on];
        loop {
            let (status, body) = request(
                base,
                "GET",
                &format!("/v1/jobs/{id}"),
                &self.keys[tenant],
                None,
            );
            assert_eq!(status, 200, "job {id} on {base}: {body}");
            let view: Value = serde_json::from_str(&body).unwrap();
            if matches!(
                view["state"].as_str(),
                Some("completed" | "failed" | "cancelled")
            ) {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} did not end on {base}: {view}"
            );
            // Another process runs the job: there is no signal to wait on across processes.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The blocks replica `on`'s pool knows, as `(server, hash, state)`.
    fn blocks(&self, on: usize) -> Vec<(String, String, String)> {
        let (status, body) = request(&self.urls[on], "GET", "/v1/admin/blocks", ADMIN_KEY, None);
        assert_eq!(status, 200, "{body}");
        let blocks: Vec<Value> = serde_json::from_str(&body).unwrap();
        blocks
            .iter()
            .map(|b| {
                let field = |name: &str| b[name].as_str().unwrap().to_owned();
                (field("server"), field("hash"), field("state"))
            })
            .collect()
    }
}

/// `txt2img-checkpoint` with `seed`.
fn txt2img(seed: u64) -> Value {
    let mut prompt: Value =
        serde_json::from_str(&std::fs::read_to_string(workflow("txt2img-checkpoint")).unwrap())
            .unwrap();
    prompt["3"]["inputs"]["seed"] = json!(seed);
    prompt
}

/// A `txt2img-checkpoint` job to submit.
struct Job {
    tenant: usize,
    through: usize,
    seed: u64,
}

impl Job {
    /// Job `i`: tenant `i % 3`, through replica `(i / 3) % 3` (every tenant through every
    /// replica), or through one of the two others, in turn, when that one is `avoid`.
    fn nth(i: u64, avoid: Option<usize>) -> Self {
        let tenant = usize::try_from(i % 3).unwrap();
        let mut through = usize::try_from((i / 3) % 3).unwrap();
        if avoid == Some(through) {
            through = (through + 1 + usize::try_from(i % 2).unwrap()) % 3;
        }
        Self {
            tenant,
            through,
            seed: FIRST_SEED + i,
        }
    }

    fn body(&self) -> Value {
        json!({ "workflow": txt2img(self.seed) })
    }
}

#[test]
fn three_replicas_on_postgres_lose_nothing_when_one_is_killed() {
    /// Jobs in all (a third per tenant).
    const JOBS: u64 = 2_000;
    /// Jobs submitted before the first replica is killed (the rest go through the survivors).
    const BEFORE_KILL: u64 = JOBS * 2 / 3;
    let _turn = take_turn();
    let started = Instant::now();
    let sim = Sim::start(4, &["--exec-ms", EXEC_MS]);
    let sims = Servers::of(&[&sim]);
    let mut fleet = Replicas::start("serve-fleet-kill", &sims, "");
    // Settled: leases move while jobs flow in the rolling restart, not here.
    fleet.wait_for_leases(sims.urls.len());

    let jobs: Vec<Job> = (0..JOBS)
        .map(|i| Job::nth(i, (i >= BEFORE_KILL).then_some(0)))
        .collect();
    let (before, after) = jobs.split_at(usize::try_from(BEFORE_KILL).unwrap());
    let mut ids = fleet.submit_all(before);
    eprintln!("{BEFORE_KILL} jobs submitted at {:?}", started.elapsed());

    // Mid-run: some prompts have run, and the replica killed holds a server with prompts on
    // it (taken over by a survivor), unless the sims already ran every prompt submitted (a
    // loaded machine submits slowly): then the jobs submitted after the kill are still to run.
    wait_until("a quarter of the prompts executed", || {
        sims.sum("prompts_executed") >= JOBS / 4
    });
    let victim = fleet.replicas[0].take().unwrap();
    wait_until("replica 0 holding a busy server, or no prompt left", || {
        victim.holds_busy_server(&fleet.store, &sims, BEFORE_KILL)
    });
    let held = victim.leases(&fleet.store);
    victim.kill();
    eprintln!(
        "killed replica 0 holding {held:?} with {} of {BEFORE_KILL} submitted prompts executed, \
         at {:?}",
        sims.sum("prompts_executed"),
        started.elapsed()
    );

    // The first job after the kill is followed to its end on the survivor it was not
    // submitted to, from just after its submission.
    let (first, rest) = after.split_first().unwrap();
    let answer = fleet.submit(first.through, first.tenant, &first.body());
    let id = answer["id"].as_str().unwrap().to_owned();
    let follow_on = 3 - first.through;
    let followed = {
        let (url, id, key) = (
            fleet.urls[follow_on].clone(),
            id.clone(),
            fleet.keys[first.tenant].clone(),
        );
        std::thread::spawn(move || event_stream(&url, &id, &key))
    };
    ids.push(id.clone());
    ids.extend(fleet.submit_all(rest));
    eprintln!("{JOBS} jobs submitted at {:?}", started.elapsed());

    // Every job completed, asked on both survivors: on one that is not the replica it was
    // submitted to, then on the other; they agree on where it ran and on its outputs.
    let deadline = Instant::now() + PATIENCE;
    let checks: Vec<(&Job, &String)> = jobs.iter().zip(&ids).collect();
    in_parallel(&checks, |(job, id)| {
        let first = if job.through == 1 { 2 } else { 1 };
        let view = fleet.ended_view(first, id, job.tenant, deadline);
        assert_eq!(view["state"], "completed", "{view}");
        assert_eq!(view["tenant"], TENANTS[job.tenant], "{view}");
        let other = fleet.ended_view(3 - first, id, job.tenant, deadline);
        assert_eq!(other["state"], "completed", "{other}");
        assert_eq!(other["server"], view["server"], "one end: {view} {other}");
        assert_eq!(other["outputs"], view["outputs"], "one end: {view} {other}");
    });
    eprintln!("{JOBS} jobs seen completed at {:?}", started.elapsed());

    let seeds: Vec<u64> = jobs.iter().map(|j| j.seed).collect();
    sims.assert_each_seed_ran_once(&seeds);
    sims.assert_within_max_concurrent();

    // The job followed on another replica than its own ended there with its terminal event.
    let stream = followed.join().unwrap();
    assert!(stream.starts_with("HTTP/1.0 200"), "{stream}");
    assert!(stream.contains("event: completed"), "job {id}: {stream}");

    fleet.replicas.clear();
    eprintln!(
        "three replicas, {JOBS} jobs, one killed: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_block_learnt_by_a_killed_replica_is_honoured_by_the_next_holder() {
    /// Jobs of each workflow submitted after the takeover.
    const AFTER: u64 = 6;
    let _turn = take_turn();
    let started = Instant::now();
    // sim-0..2 run everything; sim-3 fails every prompt with an `ImageInvert` node.
    let healthy = Sim::start(3, &["--exec-ms", EXEC_MS]);
    let failing = Sim::start(1, &["--exec-ms", EXEC_MS, "--fail-class", "ImageInvert"]);
    let sims = Servers::of(&[&healthy, &failing]);
    let bad = "sim-3";
    // A block lasts far longer than the test (no probe while it runs).
    let mut fleet = Replicas::start(
        "serve-fleet-block",
        &sims,
        "[strategy]\ncooldown = \"10m\"\n",
    );
    fleet.wait_for_leases(sims.urls.len());
    let holder = (0..3)
        .find(|&r| {
            fleet
                .replica(r)
                .leases(&fleet.store)
                .iter()
                .any(|s| s == bad)
        })
        .unwrap();

    // One `invert-save` job that may only run on sim-3, once: it fails there, and the
    // replica holding sim-3 blocks the pair (the production preset blocks at the first
    // execution failure) and writes the block through to the store.
    let invert: Value =
        serde_json::from_str(&std::fs::read_to_string(workflow("invert-save")).unwrap()).unwrap();
    let probe = fleet.submit(
        (holder + 1) % 3,
        0,
        &json!({ "workflow": invert, "required_servers": [bad], "max_attempts": 1 }),
    );
    let hash = probe["hash"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + PATIENCE;
    let view = fleet.ended_view(holder, probe["id"].as_str().unwrap(), 0, deadline);
    assert_eq!(view["state"], "failed", "{view}");
    assert_eq!(view["attempts"][0]["server"], bad, "{view}");
    assert_eq!(view["attempts"][0]["class"], "execution", "{view}");
    let pair = format!(
        "SELECT class FROM blocks WHERE server = '{bad}' AND hash = '{hash}' AND blocked_until IS NOT NULL"
    );
    wait_until("the block in the store", || {
        sql(&fleet.store, &pair) == "execution"
    });
    let blocked = (bad.to_owned(), hash, "blocked".to_owned());
    assert!(fleet.blocks(holder).contains(&blocked));
    assert_eq!(sim_stat(sims.url(bad), "prompts_failed"), 1);

    // The holder dies; a survivor takes sim-3 over and restores the block from the store.
    fleet.replicas[holder].take().unwrap().kill();
    let mut next = None;
    wait_until("a survivor holding sim-3", || {
        next = (0..3).filter(|&r| r != holder).find(|&r| {
            fleet
                .replica(r)
                .leases(&fleet.store)
                .iter()
                .any(|s| s == bad)
        });
        next.is_some()
    });
    let next = next.unwrap();
    wait_until("the next holder knowing the block", || {
        fleet.blocks(next).contains(&blocked)
    });
    eprintln!(
        "replica {holder} killed, replica {next} holds {bad} with its block at {:?}",
        started.elapsed()
    );

    // After the takeover: `invert-save` jobs that prefer sim-3 run elsewhere; `txt2img`
    // jobs that require sim-3 still run there.
    let other = 3 - holder - next;
    let mut submitted = Vec::new();
    for i in 0..AFTER {
        let tenant = usize::try_from(i % 3).unwrap();
        let through = if i % 2 == 0 { next } else { other };
        let mut prompt = invert.clone();
        prompt["1"]["inputs"]["color"] = json!(i);
        let answer = fleet.submit(
            through,
            tenant,
            &json!({ "workflow": prompt, "preferred_servers": [bad] }),
        );
        submitted.push((answer, tenant, false));
        let answer = fleet.submit(
            through,
            tenant,
            &json!({ "workflow": txt2img(FIRST_SEED + i), "required_servers": [bad] }),
        );
        submitted.push((answer, tenant, true));
    }
    let deadline = Instant::now() + PATIENCE;
    for (answer, tenant, on_bad) in &submitted {
        let view = fleet.ended_view(next, answer["id"].as_str().unwrap(), *tenant, deadline);
        assert_eq!(view["state"], "completed", "{view}");
        assert_eq!(view["server"] == bad, *on_bad, "{view}");
    }
    // sim-3 never received another `invert-save` prompt (each would have failed there), and
    // the block still stands.
    assert_eq!(sim_stat(sims.url(bad), "prompts_failed"), 1);
    assert_eq!(sim_stat(sims.url(bad), "prompts_executed"), AFTER);
    assert!(fleet.blocks(next).contains(&blocked));
    sims.assert_within_max_concurrent();
    fleet.replicas.clear();
    eprintln!("block honoured after a takeover: {:?}", started.elapsed());
}

#[test]
fn replicas_stopped_and_started_in_turn_lose_nothing_and_run_nothing_twice() {
    /// Jobs submitted before each replica's restart, and once more after the last one.
    const BATCH: u64 = 200;
    let _turn = take_turn();
    let started = Instant::now();
    let sim = Sim::start(4, &["--exec-ms", EXEC_MS]);
    let sims = Servers::of(&[&sim]);
    let mut fleet = Replicas::start("serve-fleet-rolling", &sims, "");

    let mut jobs = Vec::new();
    let mut ids = Vec::new();
    for restart in 0..=3 {
        let first = jobs.len() as u64;
        let batch: Vec<Job> = (first..first + BATCH).map(|i| Job::nth(i, None)).collect();
        ids.extend(fleet.submit_all(&batch));
        jobs.extend(batch);
        if restart == 3 {
            break;
        }
        // Jobs are flowing, and the replica stopped holds a server with prompts on it
        // (unless the sims ran everything already): it detaches from them, leaves the fleet,
        // and the replica taking the server over re-attaches.
        let all = jobs.len() as u64;
        wait_until("a quarter of the batch executed", || {
            sims.sum("prompts_executed") >= first + BATCH / 4
        });
        let stopping = fleet.replicas[restart].take().unwrap();
        wait_until(
            "the replica stopped holding a busy server, or no prompt left",
            || stopping.holds_busy_server(&fleet.store, &sims, all),
        );
        stopping.stop(&fleet.store);
        let replica = Replica::start(&fleet.config, &fleet.store);
        fleet.urls[restart] = replica.url.clone();
        fleet.replicas[restart] = Some(replica);
        eprintln!(
            "replica {restart} restarted with {} of {all} submitted prompts executed, at {:?}",
            sims.sum("prompts_executed"),
            started.elapsed()
        );
    }

    // Every job completed, asked on a replica it was not submitted to.
    let deadline = Instant::now() + PATIENCE;
    let checks: Vec<(&Job, &String)> = jobs.iter().zip(&ids).collect();
    in_parallel(&checks, |(job, id)| {
        let view = fleet.ended_view((job.through + 1) % 3, id, job.tenant, deadline);
        assert_eq!(view["state"], "completed", "{view}");
        assert_eq!(view["tenant"], TENANTS[job.tenant], "{view}");
    });
    let seeds: Vec<u64> = jobs.iter().map(|j| j.seed).collect();
    sims.assert_each_seed_ran_once(&seeds);
    sims.assert_within_max_concurrent();
    fleet.replicas.clear();
    eprintln!(
        "three replicas restarted in turn, {} jobs: {:?}",
        jobs.len(),
        started.elapsed()
    );
}
