//! The admin API over real HTTP: servers (list, drain, remove, add), blocks (list with time
//! left, reset), stats, the pool-wide event stream, keys, metrics and the OpenAPI document.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;

use comfy_sim::SimConfig;
use prometheus_parse::{Scrape, Value as Metric};
use serde_json::{Value, json};
use support::{ADMIN_KEY, TestService, inverted_workflow, workflow};

async fn admin_json(svc: &TestService, path: &str) -> Value {
    let response = svc.get(path, ADMIN_KEY).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_failure_blocks_the_pair_which_the_admin_sees_and_resets() {
    let svc = TestService::start(2, SimConfig::default(), |_| {}).await;
    let mut feed = svc.sse("/v1/events", ADMIN_KEY, None).await;
    svc.sims.servers()[1].faults().fail_class("ImageInvert");
    let job = svc
        .run(
            &svc.key_a,
            json!({"workflow": inverted_workflow(), "required_servers": ["sim-2"], "max_attempts": 1}),
        )
        .await;
    assert_eq!(job["state"], "failed");
    assert_eq!(job["error"]["code"], "attempts_exhausted");
    let blocked = loop {
        let event = feed.until("workflow").await.pop().unwrap();
        if event.data["change"] == "blocked" {
            break event;
        }
    };
    assert_eq!(blocked.data["server"], "sim-2");
    assert_eq!(blocked.data["hash"], job["hash"]);

    let blocks = admin_json(&svc, "/v1/admin/blocks").await;
    let block = &blocks[0];
    assert_eq!(
        (block["server"].clone(), block["state"].clone()),
        (json!("sim-2"), json!("blocked"))
    );
    assert!(block["remaining_ms"].as_u64().unwrap() > 1000, "{block}");
    let stats = admin_json(&svc, "/v1/admin/stats").await;
    assert_eq!(stats["active_blocks"], 1);
    assert_eq!(stats["recent"][0]["id"], job["id"]);
    assert_eq!(stats["recent"][0]["error"], "attempts_exhausted");

    let reset = svc
        .post("/v1/admin/blocks/reset", ADMIN_KEY)
        .json(&json!({"server": "sim-2", "hash": job["hash"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        reset.json::<Value>().await.unwrap(),
        json!({"unblocked": 1})
    );
    let unblocked = loop {
        let event = feed.until("workflow").await.pop().unwrap();
        if event.data["change"] == "unblocked" {
            break event;
        }
    };
    assert_eq!(unblocked.data["reason"], "reset");
    assert_eq!(admin_json(&svc, "/v1/admin/blocks").await, json!([]));
    let bad = svc
        .post("/v1/admin/blocks/reset", ADMIN_KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    svc.stop().await;
}

#[tokio::test]
async fn servers_are_listed_drained_removed_and_added() {
    let svc = TestService::start(2, SimConfig::default(), |_| {}).await;
    let servers = admin_json(&svc, "/v1/admin/servers").await;
    assert_eq!(servers.as_array().unwrap().len(), 2);
    assert_eq!(servers[0]["id"], "sim-1");
    assert_eq!(servers[0]["state"], "online");
    assert_eq!(servers[0]["max_concurrent"], 1);
    assert!(
        servers[0]["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );

    let drain = svc
        .post("/v1/admin/servers/sim-2/drain", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(drain.status().as_u16(), 202);
    let remove = svc
        .delete("/v1/admin/servers/sim-1", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(remove.status().as_u16(), 204);
    let unknown = svc
        .delete("/v1/admin/servers/nope", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let code: Value = unknown.json().await.unwrap();
    assert_eq!(code["error"]["code"], "unknown_server");

    let url = svc.sims.urls()[0].clone();
    let add = svc
        .post("/v1/admin/servers", ADMIN_KEY)
        .json(&json!({"id": "sim-1b", "url": url, "max_concurrent": 2, "tags": ["fast"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(add.status().as_u16(), 201);
    let again = svc
        .post("/v1/admin/servers", ADMIN_KEY)
        .json(&json!({"id": "sim-1b", "url": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 409);
    let invalid = svc
        .post("/v1/admin/servers", ADMIN_KEY)
        .json(&json!({"id": "x", "url": "ftp://h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status().as_u16(), 400);
    // A job needing the tag runs on the added server.
    let job = svc
        .run(
            &svc.key_a,
            json!({"workflow": workflow(), "tags": ["fast"]}),
        )
        .await;
    assert_eq!(job["server"], "sim-1b");
    let servers = admin_json(&svc, "/v1/admin/servers").await;
    let added = servers
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "sim-1b")
        .unwrap();
    assert_eq!(added["tags"], json!(["fast"]));
    svc.stop().await;
}

#[tokio::test]
async fn a_key_made_by_the_admin_works_at_once() {
    let svc = TestService::start(1, SimConfig::default(), |_| {}).await;
    let response = svc
        .post("/v1/admin/keys", ADMIN_KEY)
        .json(&json!({"tenant": "team-c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let key: Value = response.json().await.unwrap();
    let secret = key["key"].as_str().unwrap();
    let job = svc.run(secret, json!({"workflow": workflow()})).await;
    assert_eq!(job["tenant"], "team-c");
    let stored = svc.store.keys().await.unwrap();
    assert!(
        stored
            .iter()
            .all(|k| !k.hash.contains(secret) && k.hash.len() == 64)
    );
    svc.stop().await;
}

fn samples(text: &str) -> Vec<prometheus_parse::Sample> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    Scrape::parse(lines).unwrap().samples
}

fn value(samples: &[prometheus_parse::Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.metric == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(k).is_some_and(|x| x == *v))
        })
        .map(|s| match &s.value {
            Metric::Counter(v) | Metric::Gauge(v) | Metric::Untyped(v) => *v,
            Metric::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Metric::Summary(_) => f64::NAN,
        })
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_count_what_happened() {
    let svc = TestService::start(2, SimConfig::default(), |_| {}).await;
    svc.run(&svc.key_a, json!({"workflow": workflow()})).await;
    svc.run(&svc.key_a, json!({"workflow": workflow()})).await;
    svc.sims.servers()[1].faults().fail_class("ImageInvert");
    svc.run(
        &svc.key_b,
        json!({"workflow": inverted_workflow(), "required_servers": ["sim-2"], "max_attempts": 1}),
    )
    .await;
    let response = svc
        .http
        .get(format!("{}/metrics", svc.url))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    let samples = samples(&text);
    let names: HashMap<&str, ()> = samples.iter().map(|s| (s.metric.as_str(), ())).collect();
    assert_eq!(
        value(
            &samples,
            "comfy_pool_jobs_total",
            &[("tenant", "team-a"), ("outcome", "completed")]
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &samples,
            "comfy_pool_jobs_total",
            &[("tenant", "team-b"), ("outcome", "failed")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "comfy_pool_attempts_total",
            &[("server", "sim-2"), ("class", "execution")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(value(&samples, "comfy_pool_active_blocks", &[]), Some(1.0));
    assert_eq!(
        value(
            &samples,
            "comfy_pool_server_state",
            &[("server", "sim-1"), ("state", "online")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "comfy_pool_server_state",
            &[("server", "sim-1"), ("state", "offline")]
        ),
        Some(0.0)
    );
    assert!(names.contains_key("comfy_pool_server_in_flight"));
    assert_eq!(
        value(&samples, "comfy_pool_dispatch_latency_seconds_count", &[]),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(
            &samples,
            "comfy_pool_job_duration_seconds_count",
            &[("outcome", "completed")]
        ),
        Some(2.0)
    );
    svc.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let svc = TestService::start(1, SimConfig::default(), |_| {}).await;
    let doc: Value = svc
        .http
        .get(format!("{}/openapi.json", svc.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/jobs",
        "/v1/jobs/{id}",
        "/v1/jobs/{id}/events",
        "/v1/jobs/{id}/outputs/node/{node}/{index}",
        "/v1/events",
        "/v1/admin/servers",
        "/v1/admin/blocks/reset",
        "/metrics",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    assert!(doc["paths"]["/v1/jobs"]["post"]["requestBody"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["JobView"].is_object());
    svc.stop().await;
}
