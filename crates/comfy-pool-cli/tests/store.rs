//! `comfy-pool run --store`: a second run of the same command on the same store reports the
//! stored jobs instead of running them again; a job id stored with another workflow, or a
//! store that cannot be used, is an error; an interrupt leaves the jobs for the next run.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::{ScratchDir, Sim, run, seeds_in_history, text, workflow};

/// Runs `comfy-pool run --json ARGS`: the exit code, the job lines and the summary.
fn run_json(args: &[&str]) -> (Option<i32>, Vec<Value>, Value) {
    let mut full = vec!["run", "--json"];
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
    (output.status.code(), lines, summary["summary"].clone())
}

fn sorted(jobs: &[Value]) -> Vec<Value> {
    let mut jobs = jobs.to_vec();
    jobs.sort_by(|a, b| a["job_id"].as_str().cmp(&b["job_id"].as_str()));
    jobs
}

#[test]
fn a_rerun_reports_the_finished_jobs_from_the_store_without_running_them() {
    let sim = Sim::start(1, &[]);
    let dir = ScratchDir::new("store-rerun");
    let (store, hosts, txt2img) = (
        dir.sqlite("jobs.db"),
        sim.hosts(),
        workflow("txt2img-checkpoint"),
    );
    let args = [
        "--store",
        &store,
        "--hosts",
        &hosts,
        "--repeat",
        "3",
        "--vary-seed",
        &txt2img,
    ];
    let (code, first, summary) = run_json(&args);
    assert_eq!(code, Some(0), "{first:?} {summary}");
    assert_eq!(summary["completed"], 3);
    let (code, again, summary) = run_json(&args);
    assert_eq!(code, Some(0), "{again:?} {summary}");
    assert_eq!(summary["completed"], 3, "{summary}");
    assert_eq!(
        sorted(&first),
        sorted(&again),
        "the stored results, field for field"
    );
    let mut seeds = seeds_in_history(&sim.urls[0]);
    seeds.sort_unstable();
    assert_eq!(
        seeds,
        [42, 43, 44],
        "each prompt ran once, in the first run"
    );
}

#[test]
fn a_job_id_stored_with_another_workflow_is_an_error_naming_it() {
    let sim = Sim::start(1, &[]);
    let dir = ScratchDir::new("store-conflict");
    let (store, hosts) = (dir.sqlite("jobs.db"), sim.hosts());
    let original = std::fs::read_to_string(workflow("txt2img-checkpoint")).unwrap();
    let file = dir.path.join("txt2img.json");
    std::fs::write(&file, &original).unwrap();
    let file = file.display().to_string();
    let (code, jobs, _) = run_json(&["--store", &store, "--hosts", &hosts, &file]);
    assert_eq!(code, Some(0), "{jobs:?}");
    // The same file name with another seed: the id `txt2img-1` now means another prompt.
    std::fs::write(&file, original.replace("\"seed\": 42", "\"seed\": 7")).unwrap();
    let output = run(&["run", "--json", "--store", &store, "--hosts", &hosts, &file]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("job id txt2img-1"), "{stderr}");
    assert!(stderr.contains(&file), "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(seeds_in_history(&sim.urls[0]), [42], "nothing was sent");
}

#[test]
fn a_store_that_cannot_be_used_is_exit_2() {
    let dir = ScratchDir::new("store-bad");
    let not_a_dir = dir.path.join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let in_a_file = format!("sqlite:{}/jobs.db", not_a_dir.display());
    let fine = workflow("invert-save");
    for (store, says) in [
        ("ftp://u:s3cret@host/db", "unsupported store URL"),
        (in_a_file.as_str(), "job store"),
    ] {
        let output = run(&["run", "--store", store, &fine]);
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(2), "{store}: {stdout}{stderr}");
        assert!(stderr.contains(says), "{store}: {stderr}");
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }
}

#[cfg(unix)]
#[test]
fn sigint_leaves_the_jobs_in_the_store_and_the_rerun_finishes_them_once() {
    use std::process::Stdio;
    use support::{get, wait_until};

    let sim = Sim::start(1, &["--exec-ms", "300"]);
    let dir = ScratchDir::new("store-sigint");
    let (store, hosts, txt2img) = (
        dir.sqlite("jobs.db"),
        sim.hosts(),
        workflow("txt2img-checkpoint"),
    );
    let args = [
        "--store",
        &store,
        "--hosts",
        &hosts,
        "--repeat",
        "3",
        "--vary-seed",
        &txt2img,
    ];
    let child = support::comfy_pool()
        .args(["run", "--json"])
        .args(args)
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
    let summary = &lines.last().unwrap()["summary"];
    assert!(summary["interrupted"].as_u64().unwrap() >= 1, "{stdout}");
    assert_eq!(summary["cancelled"], 0, "{stdout}");
    for job in &lines[..lines.len() - 1] {
        assert!(
            job["status"] == "interrupted" || job["status"] == "completed",
            "{job}"
        );
    }
    let (code, jobs, summary) = run_json(&args);
    assert_eq!(code, Some(0), "{jobs:?} {summary}");
    assert_eq!(summary["completed"], 3, "{summary}");
    let ids: BTreeSet<&str> = jobs.iter().map(|j| j["job_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    let mut seeds = seeds_in_history(&sim.urls[0]);
    seeds.sort_unstable();
    assert_eq!(
        seeds,
        [42, 43, 44],
        "the interrupted prompt was followed, not sent again"
    );
}
