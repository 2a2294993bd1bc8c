//! `comfy-pool sim` and `comfy-pool run`, run as the real binary: servers in one process,
//! the pool in another, as other tests and users will run them.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use support::{Sim, get, run, scratch_file, text, workflow};

/// Runs `comfy-pool run --json ARGS` (with `--store memory` unless ARGS name a store) and
/// returns its exit code, job lines and summary.
fn run_json(args: &[&str]) -> (Option<i32>, Vec<Value>, Value) {
    let mut full = vec!["run", "--json"];
    if !args.contains(&"--store") {
        full.extend(["--store", "memory"]);
    }
    full.extend_from_slice(args);
    let output = run(&full);
    let (stdout, stderr) = text(&output);
    let mut lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let summary = lines
        .pop()
        .unwrap_or_else(|| panic!("no output; stderr: {stderr}"));
    assert!(summary.get("summary").is_some(), "{stdout}{stderr}");
    (output.status.code(), lines, summary["summary"].clone())
}

/// `host:port` of a base URL: the server name the pool reports.
fn name(url: &str) -> &str {
    url.strip_prefix("http://").unwrap()
}

#[test]
fn sim_prints_a_url_per_server_serves_them_and_stops_on_sigterm() {
    let sim = Sim::start(2, &[]);
    assert_eq!(sim.urls.len(), 2);
    assert_ne!(sim.urls[0], sim.urls[1]);
    for url in &sim.urls {
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        let (status, body) = get(url, "/system_stats");
        assert_eq!(status, 200, "{body}");
        let stats: Value = serde_json::from_str(&body).unwrap();
        assert!(stats["system"]["comfyui_version"].is_string(), "{body}");
        assert!(stats["devices"].is_array(), "{body}");
    }
    #[cfg(unix)]
    {
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &sim.pid().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        assert!(sim.wait_success(), "SIGTERM is a normal end");
    }
}

#[test]
fn sim_refuses_bad_options() {
    for args in [
        &["sim", "--count", "0"][..],
        &["sim", "--model", "sdxl.safetensors"][..],
        &["sim", "--error-probability", "2"][..],
    ] {
        let output = run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&output).0, "", "{args:?} printed a url");
    }
}

#[test]
fn run_json_reports_every_job_and_a_summary() {
    let sim = Sim::start(2, &[]);
    let (invert, scale) = (
        workflow("invert-save"),
        workflow("emptyimage-scale-preview"),
    );
    let hosts = sim.hosts();
    let (code, jobs, summary) = run_json(&["--hosts", &hosts, "--repeat", "2", &invert, &scale]);
    assert_eq!(code, Some(0), "{jobs:?} {summary}");
    assert_eq!(jobs.len(), 4, "{jobs:?}");
    let ids: BTreeSet<&str> = jobs.iter().map(|j| j["job_id"].as_str().unwrap()).collect();
    let expected = [
        "emptyimage-scale-preview-1",
        "emptyimage-scale-preview-2",
        "invert-save-1",
        "invert-save-2",
    ];
    assert_eq!(ids, BTreeSet::from(expected));
    let servers: Vec<&str> = sim.urls.iter().map(|u| name(u)).collect();
    let mut hashes: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for job in &jobs {
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(job["attempts"], 1, "{job}");
        assert_eq!(job["error"], Value::Null, "{job}");
        assert!(servers.contains(&job["server"].as_str().unwrap()), "{job}");
        let hash = job["hash"].as_str().unwrap();
        assert_eq!(hash.len(), 64);
        let file = job["workflow"].as_str().unwrap();
        assert!(file == invert || file == scale, "{job}");
        hashes.entry(file).or_default().insert(hash);
    }
    assert_eq!(hashes.len(), 2);
    assert!(
        hashes.values().all(|h| h.len() == 1),
        "repeats share a hash"
    );
    assert_eq!(summary["submitted"], 4);
    assert_eq!(summary["completed"], 4);
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["cancelled"], 0);
    assert_eq!(summary["blocks"], serde_json::json!([]));
}

#[test]
fn a_workflow_failing_everywhere_is_reported_failed_and_the_run_still_exits_0() {
    let sim = Sim::start(2, &["--fail-class", "ImageScaleBy"]);
    let (failing, fine) = (
        workflow("runtime-fail-imagescaleby"),
        workflow("invert-save"),
    );
    let hosts = sim.hosts();
    let (code, jobs, summary) = run_json(&["--hosts", &hosts, &failing, &fine]);
    assert_eq!(code, Some(0), "{jobs:?} {summary}");
    let job = |id: &str| jobs.iter().find(|j| j["job_id"] == id).unwrap();
    let failed = job("runtime-fail-imagescaleby-1");
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed["attempts"].as_u64().unwrap() >= 1, "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("ImageScaleBy"), "{error}");
    assert_eq!(job("invert-save-1")["status"], "completed");
    assert_eq!(summary["completed"], 1);
    assert_eq!(summary["failed"], 1);
    let blocks = summary["blocks"].as_array().unwrap();
    assert!(!blocks.is_empty(), "{summary}");
    for block in blocks {
        assert_eq!(block["hash"], failed["hash"], "{block}");
        assert_eq!(block["class"], "execution", "{block}");
    }
}

#[test]
fn vary_seed_gives_each_repeat_its_own_seed_and_reruns_send_the_same() {
    let sim = Sim::start(1, &[]);
    let txt2img = workflow("txt2img-checkpoint");
    let hosts = sim.hosts();
    let seeds_sent = || -> BTreeSet<u64> {
        let (status, body) = get(&sim.urls[0], "/history");
        assert_eq!(status, 200, "{body}");
        let history: BTreeMap<String, Value> = serde_json::from_str(&body).unwrap();
        history
            .values()
            .map(|entry| entry["prompt"][2]["3"]["inputs"]["seed"].as_u64().unwrap())
            .collect()
    };
    let args = ["--hosts", &hosts, "--repeat", "3", "--vary-seed", &txt2img];
    let (code, jobs, _) = run_json(&args);
    assert_eq!(code, Some(0), "{jobs:?}");
    assert_eq!(seeds_sent(), BTreeSet::from([42, 43, 44]));
    let (code, again, _) = run_json(&args);
    assert_eq!(code, Some(0), "{again:?}");
    let ids = |jobs: &[Value]| -> BTreeSet<String> {
        jobs.iter().map(|j| j["job_id"].to_string()).collect()
    };
    assert_eq!(
        ids(&jobs),
        ids(&again),
        "the same command gives the same ids"
    );
    assert_eq!(seeds_sent(), BTreeSet::from([42, 43, 44]));
}

#[test]
fn run_without_hosts_starts_two_simulated_servers() {
    let (code, jobs, summary) = run_json(&["--repeat", "2", &workflow("invert-save")]);
    assert_eq!(code, Some(0), "{jobs:?}");
    assert_eq!(summary["completed"], 2);
    for job in &jobs {
        assert!(job["server"].as_str().unwrap().starts_with("sim-"), "{job}");
    }
}

#[test]
fn run_refuses_bad_input_with_exit_2_before_using_a_server() {
    let not_workflow = scratch_file("run-not-a-workflow.json", "{\"1\": 5}");
    let fine = workflow("invert-save");
    for (args, says) in [
        (vec!["run", &fine, &not_workflow], not_workflow.as_str()),
        (
            vec!["run", "--hosts", "ftp://u:s3cret@gpu:1", &fine],
            "***@gpu",
        ),
        (vec!["run", "--repeat", "0", &fine], "--repeat"),
        (vec!["run"], "WORKFLOW.json"),
    ] {
        let output = run(&args);
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }
}

#[cfg(unix)]
#[test]
fn sigint_cancels_the_jobs_reports_them_and_exits_1() {
    use std::process::Stdio;
    use support::wait_until;

    let sim = Sim::start(1, &["--exec-ms", "60000"]);
    let hosts = sim.hosts();
    let invert = workflow("invert-save");
    let child = support::comfy_pool()
        .args(["run", "--json", "--store", "memory", "--hosts", &hosts])
        .args(["--repeat", "2", &invert])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("a prompt running on the server", || {
        let (_, body) = get(&sim.urls[0], "/queue");
        let queue: Value = serde_json::from_str(&body).unwrap();
        !queue["queue_running"].as_array().unwrap().is_empty()
    });
    let signalled = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let output = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    for job in &lines[..2] {
        assert_eq!(job["status"], "cancelled", "{job}");
    }
    assert_eq!(lines[2]["summary"]["cancelled"], 2, "{stdout}");
    wait_until("the server to be idle again", || {
        let (_, body) = get(&sim.urls[0], "/queue");
        let queue: Value = serde_json::from_str(&body).unwrap();
        queue["queue_running"].as_array().unwrap().is_empty()
            && queue["queue_pending"].as_array().unwrap().is_empty()
    });
}
