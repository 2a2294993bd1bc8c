//! The Jobs API against the simulated server: 0.8 serves it (list, filters, paging, one
//! job in every state, unknown ids), 0.3.64 does not and says so with a 404.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use comfy_client::{
    Client, Error, Event, Execution, JobSort, JobStatus, JobsQuery, RunOptions, SortOrder,
};
use comfy_sim::{ComfyVersion, SimConfig, SimServer};
use serde_json::{Value, json};

/// A 0.8 server whose `ImageBlur` nodes take ten minutes (an interrupt cuts them short).
async fn sim_0_8() -> SimServer {
    let config = SimConfig::default()
        .version(ComfyVersion::V0_8)
        .node_exec_time("ImageBlur", Duration::from_secs(600));
    SimServer::start(config).await.unwrap()
}

/// Three slow blurs, recolored so that no run is served from the cache.
fn slow(color: u32) -> Value {
    let mut workflow = common::workflow("slow-3xblur-2048.json");
    workflow["1"]["inputs"]["color"] = json!(color);
    workflow
}

/// Waits until the run executes node `node`.
async fn until_node(exec: &mut Execution, node: &str) {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), exec.next_event())
            .await
            .expect("no event within 10 s")
            .expect("the run ended first");
        if let Event::Executing(e) = &event
            && e.node.as_deref() == Some(node)
        {
            return;
        }
    }
}

fn ids(list: &comfy_client::JobList) -> Vec<&str> {
    list.jobs.iter().map(|j| j.id.as_str()).collect()
}

#[tokio::test]
async fn jobs_of_every_state_on_a_0_8_server() {
    let sim = sim_0_8().await;
    let c = Client::new(sim.url()).unwrap();
    assert!(c.supports_jobs_api().await.unwrap());
    let empty = c.jobs(&JobsQuery::new()).await.unwrap();
    assert!(empty.jobs.is_empty());
    assert_eq!(
        (
            empty.pagination.total,
            empty.pagination.limit,
            empty.pagination.has_more
        ),
        (0, None, false)
    );

    // Completed: outputs, a preview that downloads, the workflow it ran.
    let workflow = common::workflow("invert-save.json");
    let done = c
        .run(workflow.clone(), RunOptions::default().prompt_id("done"))
        .await
        .unwrap();
    done.wait().await.unwrap();
    let job = c.job("done").await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.outputs_count, Some(1));
    assert_eq!(job.priority, Some(0.0));
    assert!(job.create_time.is_some() && job.execution_duration().is_some());
    let preview = job.preview_output.as_ref().unwrap();
    assert_eq!(
        (preview.node_id.as_str(), preview.media_type.as_str()),
        ("3", "images")
    );
    assert!(
        c.download(&preview.to_ref())
            .await
            .unwrap()
            .starts_with(b"\x89PNG")
    );
    assert_eq!(job.images().len(), 1);
    assert_eq!(job.workflow.as_ref().unwrap().prompt, workflow);
    assert!(job.execution_status.as_ref().unwrap().is_success());

    // Failed at run time: the node error comes along.
    sim.faults().fail_class("ImageInvert");
    let failed = c
        .run(workflow.clone(), RunOptions::default().prompt_id("failed"))
        .await
        .unwrap();
    assert!(failed.wait().await.unwrap_err().is_execution());
    sim.faults().clear();
    let job = c.job("failed").await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(
        job.execution_error.as_ref().unwrap().node_type,
        "ImageInvert"
    );
    assert!(!job.is_interrupted());

    // Interrupted: 0.8 calls it failed, without a node error.
    let mut interrupted = c
        .run(slow(1), RunOptions::default().prompt_id("interrupted"))
        .await
        .unwrap();
    until_node(&mut interrupted, "2").await;
    c.interrupt(None).await.unwrap();
    assert!(interrupted.wait().await.is_err());
    let job = c.job("interrupted").await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.execution_error.is_none() && job.is_interrupted());

    // Running and pending.
    let mut running = c
        .run(slow(2), RunOptions::default().prompt_id("running"))
        .await
        .unwrap();
    until_node(&mut running, "2").await;
    // Queued with a workflow id, straight over HTTP (as any other client would).
    let body = json!({
        "prompt": workflow,
        "prompt_id": "pending",
        "extra_data": {"extra_pnginfo": {"workflow": {"id": "wf-42"}}},
    });
    let queued = reqwest::Client::new()
        .post(format!("{}/prompt", sim.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(queued.status().is_success());
    let job = c.job("running").await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.outputs_count),
        (JobStatus::InProgress, Some(0))
    );
    let job = c.job("pending").await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Pending);
    assert_eq!(job.workflow_id.as_deref(), Some("wf-42"));
    assert!(!job.status.is_finished() && job.workflow.is_none());

    // The list: newest first, filters, paging, sorting.
    let all = c.jobs(&JobsQuery::new()).await.unwrap();
    assert_eq!(
        ids(&all),
        ["pending", "running", "interrupted", "failed", "done"]
    );
    let queued = JobsQuery::new()
        .status(JobStatus::Pending)
        .status(JobStatus::InProgress);
    assert_eq!(ids(&c.jobs(&queued).await.unwrap()), ["pending", "running"]);
    let failed = JobsQuery::new().status(JobStatus::Failed);
    assert_eq!(
        ids(&c.jobs(&failed).await.unwrap()),
        ["interrupted", "failed"]
    );
    let page = c.jobs(&JobsQuery::new().limit(2).offset(1)).await.unwrap();
    assert_eq!(ids(&page), ["running", "interrupted"]);
    assert_eq!(
        (
            page.pagination.offset,
            page.pagination.limit,
            page.pagination.total,
            page.pagination.has_more
        ),
        (1, Some(2), 5, true)
    );
    let oldest_first = JobsQuery::new().sort(JobSort::CreatedAt, SortOrder::Asc);
    assert_eq!(ids(&c.jobs(&oldest_first).await.unwrap())[0], "done");
    let by_duration = JobsQuery::new()
        .status(JobStatus::Completed)
        .status(JobStatus::Failed)
        .sort(JobSort::ExecutionDuration, SortOrder::Desc);
    let longest = c.jobs(&by_duration).await.unwrap();
    let durations: Vec<Duration> = longest
        .jobs
        .iter()
        .map(|j| j.execution_duration().unwrap())
        .collect();
    assert!(durations.windows(2).all(|w| w[0] >= w[1]), "{durations:?}");
    let tagged = c
        .jobs(&JobsQuery::new().workflow_id("wf-42"))
        .await
        .unwrap();
    assert_eq!(ids(&tagged), ["pending"]);

    // Unknown ids, refused queries.
    assert!(c.job("no-such-job").await.unwrap().is_none());
    let zero = c.jobs(&JobsQuery::new().limit(0)).await.unwrap_err();
    assert!(matches!(zero, Error::InvalidInput(_)), "{zero}");
    let refused = c
        .jobs(&JobsQuery::new().status(JobStatus::Cancelled))
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(400));
    assert!(
        refused
            .to_string()
            .contains("Invalid status value(s): cancelled"),
        "{refused}"
    );

    // A base URL that already ends in /api/ reaches the same routes.
    let under_api = Client::new(format!("{}/api/", sim.url())).unwrap();
    assert_eq!(
        under_api
            .jobs(&JobsQuery::new())
            .await
            .unwrap()
            .pagination
            .total,
        5
    );
    assert!(under_api.job("done").await.unwrap().is_some());
    c.interrupt(None).await.unwrap();
    assert!(running.wait().await.is_err());
}

#[tokio::test]
async fn a_0_3_64_server_has_no_jobs_api() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let c = Client::new(sim.url()).unwrap();
    assert!(!c.supports_jobs_api().await.unwrap());
    assert_eq!(
        c.jobs(&JobsQuery::new()).await.unwrap_err().status(),
        Some(404)
    );
    // Not "job not found": the route itself is missing.
    let missing = c.job("anything").await.unwrap_err();
    assert_eq!(missing.status(), Some(404));
    // A server that is down is an error, not a "no".
    sim.stop().await;
    let down = c.supports_jobs_api().await.unwrap_err();
    assert!(down.is_retryable(), "{down}");
}
