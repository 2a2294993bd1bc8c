//! Security over real HTTP: keys, tenant isolation, admin routes, body and rate limits.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use comfy_sim::SimConfig;
use serde_json::{Value, json};
use support::{ADMIN_KEY, TestService, workflow};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"]["code"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn every_v1_route_needs_a_valid_key() {
    let svc = TestService::start(1, SimConfig::default(), |_| {}).await;
    for path in ["/v1/jobs", "/v1/jobs/x", "/v1/events", "/v1/admin/stats"] {
        let none = svc
            .http
            .get(format!("{}{path}", svc.url))
            .send()
            .await
            .unwrap();
        assert_eq!(none.headers()["www-authenticate"], "Bearer");
        assert_eq!(code(none).await, (401, "unauthorized".into()), "{path}");
        let wrong = svc
            .get(path, "cpk_00000000_not-a-key")
            .send()
            .await
            .unwrap();
        assert_eq!(code(wrong).await, (401, "unauthorized".into()), "{path}");
    }
    let post = svc
        .http
        .post(format!("{}/v1/jobs", svc.url))
        .json(&json!({"workflow": workflow()}))
        .send()
        .await
        .unwrap();
    assert_eq!(code(post).await.0, 401);
    // Health, metrics and the API description are open.
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/"] {
        let open = svc
            .http
            .get(format!("{}{path}", svc.url))
            .send()
            .await
            .unwrap();
        assert_eq!(open.status().as_u16(), 200, "{path}");
    }
    svc.stop().await;
}

#[tokio::test]
async fn another_tenants_job_answers_exactly_like_an_unknown_one() {
    let svc = TestService::start(1, SimConfig::default(), |_| {}).await;
    let job = svc.run(&svc.key_a, json!({"workflow": workflow()})).await;
    let id = job["id"].as_str().unwrap();
    let output = job["outputs"][0]["url"].as_str().unwrap().to_owned();
    for path in [
        format!("/v1/jobs/{id}"),
        format!("/v1/jobs/{id}/events"),
        format!("/v1/jobs/{id}/preview"),
        output,
    ] {
        let theirs = svc.get(&path, &svc.key_b).send().await.unwrap();
        let (status, headers) = (theirs.status(), theirs.headers().clone());
        let theirs = theirs.text().await.unwrap();
        let unknown_path = path.replace(id, "no-such-job");
        let unknown = svc.get(&unknown_path, &svc.key_b).send().await.unwrap();
        assert_eq!(status.as_u16(), 404, "{path}");
        assert_eq!(unknown.status(), status, "{path}");
        assert_eq!(
            unknown.text().await.unwrap(),
            theirs,
            "{path}: the same body"
        );
        assert_eq!(headers.get("content-type").unwrap(), "application/json");
    }
    let cancel = svc
        .delete(&format!("/v1/jobs/{id}"), &svc.key_b)
        .send()
        .await
        .unwrap();
    assert_eq!(code(cancel).await, (404, "not_found".into()));
    assert_eq!(svc.job(id, &svc.key_a).await["state"], "completed");
    svc.stop().await;
}

#[tokio::test]
async fn admin_routes_refuse_tenant_keys() {
    let svc = TestService::start(1, SimConfig::default(), |_| {}).await;
    let gets = [
        "/v1/admin/servers",
        "/v1/admin/blocks",
        "/v1/admin/stats",
        "/v1/events",
    ];
    for path in gets {
        let response = svc.get(path, &svc.key_a).send().await.unwrap();
        assert_eq!(code(response).await, (403, "forbidden".into()), "{path}");
        let admin = svc.get(path, ADMIN_KEY).send().await.unwrap();
        assert_eq!(admin.status().as_u16(), 200, "{path}");
    }
    let posts = [
        (
            "/v1/admin/servers",
            json!({"id": "x", "url": "http://127.0.0.1:1"}),
        ),
        ("/v1/admin/servers/sim-1/drain", json!({})),
        ("/v1/admin/blocks/reset", json!({"all": true})),
        ("/v1/admin/keys", json!({"tenant": "team-a"})),
    ];
    for (path, body) in posts {
        let response = svc.post(path, &svc.key_b).json(&body).send().await.unwrap();
        assert_eq!(code(response).await, (403, "forbidden".into()), "{path}");
    }
    let delete = svc
        .delete("/v1/admin/servers/sim-1", &svc.key_a)
        .send()
        .await
        .unwrap();
    assert_eq!(code(delete).await.0, 403);
    svc.stop().await;
}

/// Sends raw request `head` and reads what comes back, with no body ever sent.
async fn raw(svc: &TestService, head: String) -> String {
    let addr = svc.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("an answer before any body byte was sent")
        .unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_before_it_is_read() {
    let svc = TestService::start(1, SimConfig::default(), |c| c.limits.body_bytes = 4096).await;
    // Declared too large: refused without waiting for a single body byte.
    let answer = raw(
        &svc,
        format!(
            "POST /v1/jobs HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n",
            svc.key_a
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    // Streamed without a length: cut off at the limit.
    let big = json!({"workflow": workflow(), "metadata": {"pad": "x".repeat(10_000)}});
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = serde_json::to_vec(&big)
        .unwrap()
        .chunks(1000)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let response = svc
        .post("/v1/jobs", &svc.key_a)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(code(response).await, (413, "payload_too_large".into()));
    svc.stop().await;
}

#[tokio::test]
async fn submissions_over_the_rate_get_429_with_retry_after() {
    let svc = TestService::start(1, SimConfig::default(), |c| {
        c.limits.submissions_per_second = 0.2;
        c.limits.burst = 2;
    })
    .await;
    for _ in 0..2 {
        svc.submit(&svc.key_a, json!({"workflow": workflow()}), 202)
            .await;
    }
    let over = svc
        .post("/v1/jobs", &svc.key_a)
        .json(&json!({"workflow": workflow()}))
        .send()
        .await
        .unwrap();
    let retry: u64 = over.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=5).contains(&retry), "{retry}");
    assert_eq!(code(over).await, (429, "rate_limited".into()));
    // Another tenant has its own rate; the admin has none.
    svc.submit(&svc.key_b, json!({"workflow": workflow()}), 202)
        .await;
    svc.submit(ADMIN_KEY, json!({"workflow": workflow()}), 202)
        .await;
    svc.stop().await;
}

#[tokio::test]
async fn a_tenant_over_its_queue_limit_gets_429() {
    let sim = SimConfig::default().exec_time(Duration::from_secs(30));
    let svc = TestService::start(1, sim, |c| c.limits.queued_per_tenant = 2).await;
    for _ in 0..2 {
        svc.submit(&svc.key_a, json!({"workflow": workflow()}), 202)
            .await;
    }
    let over = svc
        .post("/v1/jobs", &svc.key_a)
        .json(&json!({"workflow": workflow()}))
        .send()
        .await
        .unwrap();
    assert!(over.headers().contains_key("retry-after"));
    assert_eq!(code(over).await, (429, "queue_full".into()));
    svc.submit(&svc.key_b, json!({"workflow": workflow()}), 202)
        .await;
    svc.stop().await;
}

#[tokio::test]
async fn webhooks_to_hosts_off_the_list_are_refused_at_submission() {
    let svc = TestService::start(1, SimConfig::default(), |c| {
        c.webhooks.secret = Some(pool_server::Secret::new("a-signing-secret-0123"));
        c.webhooks.allowed_hosts = vec!["hooks.example.com".into()];
    })
    .await;
    for url in [
        "http://127.0.0.1:9/x",
        "https://hooks.example.com.evil.org/",
    ] {
        let response = svc
            .post("/v1/jobs", &svc.key_a)
            .json(&json!({"workflow": workflow(), "webhook": url}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            code(response).await,
            (400, "webhook_host_not_allowed".into())
        );
    }
    let reserved = svc
        .post("/v1/jobs", &svc.key_a)
        .json(&json!({"workflow": workflow(), "metadata": {"comfy_pool.webhook": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(code(reserved).await, (400, "invalid_request".into()));
    svc.stop().await;
}
