//! Three `comfy-pool serve` replicas on one PostgreSQL database, as real processes: four
//! simulated servers in one `comfy-pool sim` process, jobs of three tenants submitted over
//! HTTP through every replica, one replica SIGKILLed mid-run. The survivors report every job
//! completed, the same way; each job's prompt ran exactly once per the sims' `/history` (each
//! job has its own seed; the sims keep running, so no prompt is really lost); no sim ever held
//! more prompts than its `max_concurrent` (`GET /sim/stats`); a job's state and its event
//! stream answer on a replica other than the one it was submitted to.
#![cfg(unix)]
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{PATIENCE, ScratchDir, Sim, comfy_pool, get, seeds_in_history, wait_until, workflow};

/// Jobs in all (a third per tenant).
const JOBS: u64 = 300;
/// The seed of job `i` is `FIRST_SEED + i`.
const FIRST_SEED: u64 = 10_000;
/// Prompts each sim may hold at once (the pool's `max_concurrent`).
const MAX_CONCURRENT: u64 = 2;
/// The tenants.
const TENANTS: [&str; 3] = ["t-red", "t-green", "t-blue"];
/// Jobs submitted before the first replica is killed (the rest go through the survivors).
const BEFORE_KILL: u64 = JOBS * 2 / 3;

/// `method path` with a bearer key and a JSON body: the status and the body.
fn request(base: &str, method: &str, path: &str, key: &str, body: Option<&Value>) -> (u16, String) {
    let authority = base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(authority).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\
         Authorization: Bearer {key}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
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
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let url = match rx.recv_timeout(PATIENCE) {
            Ok(Ok(line)) if line.starts_with("url: ") => line["url: ".len()..].to_owned(),
            other => {
                let _ = child.kill();
                panic!("comfy-pool serve printed no url line: {other:?}");
            }
        };
        Self { child, url }
    }

    /// The ids of the servers whose lease this replica holds now (its fleet process id is
    /// `HOST-PID-RANDOM`), read in the database.
    fn leases(&self, store: &str) -> Vec<String> {
        let query = format!(
            "SELECT server FROM fleet_leases WHERE owner LIKE '%-{}-%' AND lease_until > now()",
            self.child.id()
        );
        sql(store, &query).lines().map(str::to_owned).collect()
    }

    /// SIGKILL: no shutdown, no last write.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
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

/// The configuration every replica shares: the sims, the tenants, a short lease.
fn configuration(sims: &Sim) -> String {
    let mut text = String::from(
        "admin_key = \"fleet-serve-admin-key-0123456789\"\n\
         health_check_interval = \"1s\"\n\
         [fleet]\nlease_ttl = \"1500ms\"\n\
         [limits]\nsubmissions_per_second = 100000.0\nburst = 100000\n",
    );
    for (i, url) in sims.urls.iter().enumerate() {
        text.push_str(&format!(
            "[[servers]]\nid = \"sim-{i}\"\nurl = \"{url}\"\nmax_concurrent = {MAX_CONCURRENT}\n"
        ));
    }
    for tenant in TENANTS {
        text.push_str(&format!("[[tenants]]\nname = \"{tenant}\"\n"));
    }
    text
}

/// A sim's `GET /sim/stats` field `field`.
fn sim_stat(url: &str, field: &str) -> u64 {
    let (status, body) = get(url, "/sim/stats");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()[field]
        .as_u64()
        .unwrap()
}

/// The sims' `GET /sim/stats` field `field`, summed.
fn sims_sum(sims: &Sim, field: &str) -> u64 {
    sims.urls.iter().map(|url| sim_stat(url, field)).sum()
}

/// A job's view on `base`, once it has ended.
fn ended_view(base: &str, id: &str, key: &str, deadline: Instant) -> Value {
    loop {
        let (status, body) = request(base, "GET", &format!("/v1/jobs/{id}"), key, None);
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

#[test]
fn three_replicas_on_postgres_lose_nothing_when_one_is_killed() {
    let started = Instant::now();
    let store = test_infra::fresh_database(&test_infra::pg_url());
    let sims = Sim::start(4, &["--exec-ms", "25"]);
    let dir = ScratchDir::new("serve-fleet");
    let config = dir.path.join("comfy-pool.toml");
    std::fs::write(&config, configuration(&sims)).unwrap();
    let config = config.display().to_string();
    let keys: Vec<String> = TENANTS.iter().map(|t| tenant_key(&store, t)).collect();
    let mut replicas: Vec<Option<Replica>> = (0..3)
        .map(|_| Some(Replica::start(&config, &store)))
        .collect();
    let urls: Vec<String> = replicas
        .iter()
        .map(|r| r.as_ref().unwrap().url.clone())
        .collect();
    for url in &urls {
        wait_until("readiness", || {
            request(url, "GET", "/readyz", "", None).0 == 200
        });
    }

    let template: Value =
        serde_json::from_str(&std::fs::read_to_string(workflow("txt2img-checkpoint")).unwrap())
            .unwrap();
    // Job i: tenant i % 3, through replica (i / 3) % 3 (every tenant through every replica);
    // after the kill, through the survivors only.
    let mut jobs: Vec<(String, usize, usize, u64)> = Vec::new(); // id, tenant, replica, seed
    let mut followed = None;
    for i in 0..JOBS {
        if i == BEFORE_KILL {
            // Mid-run: some prompts have run, and the replica killed holds a server with
            // prompts on it (taken over by a survivor), unless the sims already ran every
            // prompt submitted (a loaded machine submits slowly): then the jobs submitted
            // after the kill are still to run.
            wait_until("a quarter of the prompts executed", || {
                sims_sum(&sims, "prompts_executed") >= JOBS / 4
            });
            let victim = replicas[0].take().unwrap();
            wait_until("replica 0 holding a busy server, or no prompt left", || {
                let busy = victim.leases(&store).iter().any(|server| {
                    let i: usize = server.strip_prefix("sim-").unwrap().parse().unwrap();
                    sim_stat(&sims.urls[i], "queue_remaining") > 0
                });
                busy || sims_sum(&sims, "prompts_executed") >= BEFORE_KILL
            });
            let held = victim.leases(&store);
            victim.kill();
            eprintln!(
                "killed replica 0 holding {held:?} with {} of {BEFORE_KILL} submitted prompts \
                 executed",
                sims_sum(&sims, "prompts_executed")
            );
        }
        let tenant = usize::try_from(i % 3).unwrap();
        let mut through = usize::try_from((i / 3) % 3).unwrap();
        if i >= BEFORE_KILL && through == 0 {
            through = 1 + usize::try_from(i % 2).unwrap();
        }
        let seed = FIRST_SEED + i;
        let mut prompt = template.clone();
        prompt["3"]["inputs"]["seed"] = json!(seed);
        let (status, body) = request(
            &urls[through],
            "POST",
            "/v1/jobs",
            &keys[tenant],
            Some(&json!({ "workflow": prompt })),
        );
        assert_eq!(status, 202, "job {i} through replica {through}: {body}");
        let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        if i >= BEFORE_KILL && through == 1 && followed.is_none() {
            // Followed to its end on the other survivor, from just after its submission.
            let (url, id, key) = (urls[2].clone(), id.clone(), keys[tenant].clone());
            followed = Some((
                id.clone(),
                std::thread::spawn(move || event_stream(&url, &id, &key)),
            ));
        }
        jobs.push((id, tenant, through, seed));
    }

    // Every job completed, asked on both survivors: on one that is not the replica it was
    // submitted to, then on the other; they agree on where it ran and on its outputs.
    let deadline = Instant::now() + PATIENCE;
    for (id, tenant, through, _) in &jobs {
        let first = if *through == 1 { 2 } else { 1 };
        let second = 3 - first;
        let view = ended_view(&urls[first], id, &keys[*tenant], deadline);
        assert_eq!(view["state"], "completed", "{view}");
        assert_eq!(view["tenant"], TENANTS[*tenant], "{view}");
        let other = ended_view(&urls[second], id, &keys[*tenant], deadline);
        assert_eq!(other["state"], "completed", "{other}");
        assert_eq!(other["server"], view["server"], "one end: {view} {other}");
        assert_eq!(other["outputs"], view["outputs"], "one end: {view} {other}");
    }

    // Each prompt executed exactly once, fleet-wide.
    let mut runs: BTreeMap<u64, usize> = BTreeMap::new();
    for url in &sims.urls {
        for seed in seeds_in_history(url) {
            *runs.entry(seed).or_default() += 1;
        }
    }
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "prompts run more than once: {twice:?}");
    let expected: Vec<u64> = jobs.iter().map(|j| j.3).collect();
    assert_eq!(runs.keys().copied().collect::<Vec<_>>(), expected);
    assert_eq!(sims_sum(&sims, "prompts_executed"), JOBS);

    // No sim ever held more than its max_concurrent.
    for url in &sims.urls {
        let (_, body) = get(url, "/sim/stats");
        let stats: Value = serde_json::from_str(&body).unwrap();
        assert!(
            stats["max_prompts_held"].as_u64().unwrap() <= MAX_CONCURRENT,
            "{url}: {stats}"
        );
    }

    // The job followed on another replica than its own ended there with its terminal event.
    let (id, stream) = followed.unwrap();
    let stream = stream.join().unwrap();
    assert!(stream.starts_with("HTTP/1.0 200"), "{stream}");
    assert!(stream.contains("event: completed"), "job {id}: {stream}");

    drop(replicas);
    eprintln!(
        "three replicas, {JOBS} jobs, one killed: {:?}",
        started.elapsed()
    );
}
