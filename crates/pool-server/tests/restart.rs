//! A service stopped mid-batch (detaching from its jobs) and started again on the same
//! store: every job ends, each exactly once, and the new service delivers their webhooks. A
//! service beside another on one store follows the other's job to its end in the store.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use comfy_sim::SimConfig;
use serde_json::json;
use support::{TestService, workflow};

#[tokio::test]
async fn a_restarted_service_takes_up_the_jobs_of_the_last_one() {
    let sim = SimConfig::default().exec_time(Duration::from_millis(400));
    let svc = TestService::start(2, sim, |_| {}).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let key = if i % 2 == 0 { &svc.key_a } else { &svc.key_b };
        let job = svc.submit(key, json!({"workflow": workflow()}), 202).await;
        ids.push(job["id"].as_str().unwrap().to_owned());
    }
    let mut stream = svc
        .sse(&format!("/v1/jobs/{}/events", ids[0]), &svc.key_a, None)
        .await;
    stream.until("started").await;

    let svc = svc.restart(|_| {}).await;
    for (i, id) in ids.iter().enumerate() {
        let key = if i % 2 == 0 { &svc.key_a } else { &svc.key_b };
        let mut events = svc.sse(&format!("/v1/jobs/{id}/events"), key, None).await;
        let mut terminal = Vec::new();
        while let Some(event) = events.next().await {
            if matches!(event.event.as_str(), "completed" | "failed" | "cancelled") {
                terminal.push(event.event);
            }
        }
        assert_eq!(terminal, ["completed"], "{id}: one end, a completion");
        let job = svc.job(id, key).await;
        assert_eq!(job["state"], "completed", "{id}");
    }
    let listed: serde_json::Value = svc
        .get("/v1/jobs?state=completed", &svc.key_a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 3);
    svc.stop().await;
}

#[tokio::test]
async fn a_job_another_service_runs_on_the_store_ends_in_this_ones_event_stream() {
    let sim = SimConfig::default().exec_time(Duration::from_millis(300));
    let svc = TestService::start(1, sim, |_| {}).await;
    let other = svc.beside().await;
    let job = svc
        .submit(&svc.key_a, json!({"workflow": workflow()}), 202)
        .await;
    let id = job["id"].as_str().unwrap();
    assert!(
        other.pool.job(id).is_none(),
        "the other pool does not know it"
    );
    let mut events = other
        .sse(&format!("/v1/jobs/{id}/events"), &other.key_a, None)
        .await;
    let mut names = Vec::new();
    while let Some(event) = events.next().await {
        names.push(event.event);
    }
    assert_eq!(names, ["completed"], "its end, read in the store");
    let job = other.job(id, &other.key_a).await;
    assert_eq!(job["state"], "completed");
    other.stop().await;
    svc.stop().await;
}
