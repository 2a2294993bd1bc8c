//! Every demo, run in simulated mode (short where it has one), must pass all its own checks
//! and say what it claims.
#![allow(clippy::unwrap_used, missing_docs)]

use comfy_pool_cli::run::{MEMORY_STORE, RunArgs};
use examples::Console;
use examples::advanced::AdvancedArgs;
use examples::basic::BasicArgs;
use examples::batch::BatchArgs;
use examples::multitenant::MultitenantArgs;
use serde_json::Value;

fn assert_passed(result: examples::Result<usize>, output: &str) -> usize {
    let checks = match result {
        Ok(checks) => checks,
        Err(error) => panic!("{}\n--- output ---\n{output}", examples::report(&error)),
    };
    assert!(
        output.contains(&format!("all {checks} checks passed")),
        "{output}"
    );
    assert!(!output.contains("FAILED"), "{output}");
    checks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_tour_checks_blocking_hashes_and_recovery() {
    let console = Console::capture();
    let result = examples::basic::run(&BasicArgs::default(), &console).await;
    let output = console.captured();
    let checks = assert_passed(result, &output);
    assert!(checks >= 15, "{output}");
    for claim in [
        "the failure blocked (gpu-a, runtime-fail-imagescaleby) and nothing else",
        "gpu-a kept serving other workflows during the block",
        "gpu-a itself received no further runtime-fail-imagescaleby prompt",
        "another model file or node class changes the hash",
        "the recoloured variant was not sent to gpu-a",
        "the failed probe re-blocked the pair with a longer cooldown",
        "the next probe ran on gpu-a and succeeded",
        "no workflow was ever dispatched to a server that blocked it",
    ] {
        assert!(
            output.contains(&format!("✔ {claim}")),
            "missing claim {claim:?}:\n{output}"
        );
    }
    assert!(
        output.contains("blocked, 1.0 s left"),
        "block table shown:\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_verbose_prints_every_event() {
    let console = Console::capture();
    let args = BasicArgs {
        verbose: true,
        ..BasicArgs::default()
    };
    let result = examples::basic::run(&args, &console).await;
    let output = console.captured();
    assert_passed(result, &output);
    for event in [
        "BLOCKED on gpu-a",
        "UNBLOCKED on gpu-a (expired)",
        "as the PROBE",
        "PROBING gpu-a",
    ] {
        assert!(output.contains(event), "missing event {event:?}:\n{output}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advanced_short_run_reports_performance() {
    let console = Console::capture();
    let args = AdvancedArgs {
        short: true,
        ..AdvancedArgs::default()
    };
    let result = examples::advanced::run(&args, &console).await;
    let output = console.captured();
    assert_passed(result, &output);
    for text in [
        "jobs/s",
        "p95 latency",
        "quarantines",
        "priorities hold under load",
        "custom Quarantine strategy",
    ] {
        assert!(output.contains(text), "missing {text:?}:\n{output}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multitenant_short_run_pages_on_a_workflow_blocked_on_two_servers() {
    let console = Console::capture();
    let args = MultitenantArgs {
        short: true,
        ..MultitenantArgs::default()
    };
    let result = examples::multitenant::run(&args, &console).await;
    let output = console.captured();
    assert_passed(result, &output);
    assert!(output.contains("PAGE: workflow"), "{output}");
    assert!(
        output.contains("is blocked on 2 servers (node-1, node-2)"),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_prints_one_json_line_per_job_and_a_summary() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows");
    let args = BatchArgs {
        run: RunArgs {
            repeat: 3,
            json: true,
            store: MEMORY_STORE.to_owned(),
            workflows: vec![
                format!("{dir}/invert-save.json").into(),
                format!("{dir}/emptyimage-scale-preview.json").into(),
            ],
            ..RunArgs::default()
        },
    };
    let console = Console::capture();
    let summary = examples::batch::run(&args, &console).await.unwrap();
    assert_eq!((summary.submitted, summary.completed), (6, 6));
    let lines: Vec<Value> = console
        .captured()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    let mut ids = std::collections::HashSet::new();
    for job in &lines[..6] {
        assert_eq!(job["status"], "completed");
        assert_eq!(job["attempts"], 1);
        assert!(job["server"].as_str().unwrap().starts_with("sim-"));
        assert_eq!(job["hash"].as_str().unwrap().len(), 64);
        assert!(ids.insert(job["job_id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(lines[6]["summary"]["completed"], 6);
    assert_eq!(lines[6]["summary"]["failed"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_refuses_a_file_that_is_not_a_workflow() {
    let args = BatchArgs {
        run: RunArgs {
            workflows: vec![concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml").into()],
            store: MEMORY_STORE.to_owned(),
            ..RunArgs::default()
        },
    };
    let error = examples::batch::run(&args, &Console::capture())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("Cargo.toml"), "{error}");
}
