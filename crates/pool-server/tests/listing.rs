//! `GET /v1/jobs`: the tenant's jobs from the store, newest first, filtered by state, with
//! cursor paging. The records are written to the store as the pool writes them.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use comfy_sim::SimConfig;
use pool_core::{JobId, JobOptions, JobRecord, JobSpec, JobState, Timestamp, WorkflowHash};
use serde_json::Value;
use support::{ADMIN_KEY, TestService, workflow};

fn record(id: &str, tenant: &str, millis: u64, state: JobState) -> JobRecord {
    let workflow = Arc::new(workflow());
    let hash = WorkflowHash::of(&workflow).unwrap();
    let spec = JobSpec::new(workflow, hash, JobOptions::new().tenant(tenant));
    let mut record = JobRecord::new(
        JobId::from(id),
        Arc::new(spec),
        Timestamp::from_millis(millis),
    );
    record.state = state;
    record
}

async fn page(svc: &TestService, key: &str, query: &str) -> (Vec<String>, Option<String>) {
    let response = svc
        .get(&format!("/v1/jobs{query}"), key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{query}");
    let body: Value = response.json().await.unwrap();
    let ids = body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, body["next_cursor"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn a_tenant_lists_only_its_own_jobs_page_by_page() {
    let svc = TestService::start(1, SimConfig::default(), |_| {}).await;
    for i in 0..5u64 {
        let state = if i % 2 == 0 {
            JobState::Completed
        } else {
            JobState::Queued
        };
        svc.store
            .insert(&record(&format!("a-{i}"), "team-a", 1_000 + i, state))
            .await
            .unwrap();
        svc.store
            .insert(&record(&format!("b-{i}"), "team-b", 1_000 + i, state))
            .await
            .unwrap();
    }
    let (first, cursor) = page(&svc, &svc.key_a, "?limit=2").await;
    assert_eq!(first, ["a-4", "a-3"]);
    let cursor = cursor.unwrap();
    let (second, cursor) = page(&svc, &svc.key_a, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(second, ["a-2", "a-1"]);
    let (last, end) = page(
        &svc,
        &svc.key_a,
        &format!("?limit=2&cursor={}", cursor.unwrap()),
    )
    .await;
    assert_eq!((last, end), (vec!["a-0".to_owned()], None));

    let (done, _) = page(&svc, &svc.key_b, "?state=completed").await;
    assert_eq!(done, ["b-4", "b-2", "b-0"]);
    let (queued, _) = page(&svc, &svc.key_b, "?state=queued,running&tenant=team-a").await;
    assert_eq!(
        queued,
        ["b-3", "b-1"],
        "a tenant cannot ask for another's jobs"
    );

    let (all, _) = page(&svc, ADMIN_KEY, "?limit=100").await;
    assert_eq!(all.len(), 10, "the admin sees every tenant");
    let (only_a, _) = page(&svc, ADMIN_KEY, "?tenant=team-a&state=queued").await;
    assert_eq!(only_a, ["a-3", "a-1"]);

    for bad in ["?state=sleeping", "?cursor=garbage"] {
        let response = svc
            .get(&format!("/v1/jobs{bad}"), &svc.key_a)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{bad}");
    }
    // A job only the store knows is readable, and another tenant's is not.
    assert_eq!(svc.job("a-1", &svc.key_a).await["state"], "queued");
    let theirs = svc.get("/v1/jobs/a-1", &svc.key_b).send().await.unwrap();
    assert_eq!(theirs.status().as_u16(), 404);
    svc.stop().await;
}
