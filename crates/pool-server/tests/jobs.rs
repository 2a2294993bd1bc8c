//! End to end over real HTTP against simulated ComfyUI servers: submit, wait, status,
//! outputs, cancel, SSE resumed mid-stream, idempotency.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use comfy_sim::SimConfig;
use serde_json::{Value, json};
use support::{ADMIN_KEY, TestService, workflow};

#[tokio::test]
async fn a_submitted_job_is_waited_for_read_and_its_output_downloaded() {
    let svc = TestService::start(2, SimConfig::default(), |_| {}).await;
    let job = svc
        .run(
            &svc.key_a,
            json!({"workflow": workflow(), "priority": 3, "metadata": {"order": 42}}),
        )
        .await;
    assert_eq!(job["state"], "completed");
    assert_eq!(job["tenant"], "team-a");
    assert_eq!(job["priority"], 3);
    assert_eq!(job["metadata"], json!({"order": 42}));
    assert_eq!(job["attempts"][0]["outcome"], "succeeded");
    assert!(job["timings"]["total_ms"].is_u64());
    let id = job["id"].as_str().unwrap();

    let read = svc.job(id, &svc.key_a).await;
    assert_eq!(read["state"], "completed");
    assert_eq!(read["hash"], job["hash"]);
    let output = &read["outputs"][0];
    assert_eq!(output["node"], "2");
    assert!(output["filename"].as_str().unwrap().ends_with(".png"));
    let url = output["url"].as_str().unwrap();
    let file = svc.get(url, &svc.key_a).send().await.unwrap();
    assert_eq!(file.status().as_u16(), 200);
    assert_eq!(file.headers()["content-type"], "image/png");
    let bytes = file.bytes().await.unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "the server's file, proxied"
    );
    let missing = svc
        .get(&format!("/v1/jobs/{id}/outputs/node/2/9"), &svc.key_a)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    svc.stop().await;
}

#[tokio::test]
async fn a_submission_answers_202_with_id_state_and_hash_at_once() {
    let sim = SimConfig::default().exec_time(Duration::from_millis(300));
    let svc = TestService::start(1, sim, |_| {}).await;
    let response = svc
        .post("/v1/jobs", &svc.key_a)
        .json(&json!({"workflow": workflow()}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/jobs/{}", body["id"].as_str().unwrap())
    );
    assert!(matches!(body["state"].as_str(), Some("queued" | "running")));
    assert_eq!(body["hash"].as_str().unwrap().len(), 64);
    assert_eq!(body["created"], true);
    // An invalid workflow is refused with the pool's code.
    let bad = svc
        .post("/v1/jobs", &svc.key_a)
        .json(&json!({"workflow": {"1": {"inputs": {}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let error: Value = bad.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_workflow");
    svc.stop().await;
}

#[tokio::test]
async fn a_job_of_variants_runs_the_first_one_a_server_can_run_and_says_which() {
    // No server has ImageBlur: the second variant runs.
    let svc = TestService::start(1, SimConfig::default().without_node("ImageBlur"), |_| {}).await;
    let blurred = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 1, "sigma": 1.0}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "b"}}
    });
    let job = svc
        .run(&svc.key_a, json!({"variants": [blurred, workflow()]}))
        .await;
    assert_eq!(job["state"], "completed");
    assert_eq!(job["variants"], 2);
    assert_eq!(job["variant"], 1);
    assert_eq!(
        job["variant_hash"].as_str(),
        Some(
            pool_core::WorkflowHash::of(&workflow())
                .unwrap()
                .to_string()
                .as_str()
        )
    );
    assert_eq!(job["attempts"].as_array().map(Vec::len), Some(1));
    assert_eq!(job["attempts"][0]["variant"], 1);
    let single = svc.run(&svc.key_a, json!({"workflow": workflow()})).await;
    assert_eq!(
        (&single["variants"], &single["variant"]),
        (&json!(1), &json!(0))
    );

    // Exactly one of `workflow` and `variants`; a bad variant is named by its index.
    for (body, code, words) in [
        (
            json!({"workflow": workflow(), "variants": [workflow()]}),
            "invalid_request",
            "not both",
        ),
        (json!({"priority": 1}), "invalid_request", "`variants`"),
        (json!({"variants": []}), "invalid_request", "at least one"),
        (
            json!({"variants": [workflow(), {"1": {"inputs": {}}}]}),
            "invalid_variant",
            "variant 1",
        ),
    ] {
        let response = svc
            .post("/v1/jobs", &svc.key_a)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], code, "{body}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{body}: {message}");
    }
    svc.stop().await;
}

#[tokio::test]
async fn a_running_job_is_cancelled_and_its_stream_ends_with_it() {
    let sim = SimConfig::default().exec_time(Duration::from_secs(30));
    let svc = TestService::start(1, sim, |_| {}).await;
    let submitted = svc
        .submit(&svc.key_a, json!({"workflow": workflow()}), 202)
        .await;
    let id = submitted["id"].as_str().unwrap();
    let mut events = svc
        .sse(&format!("/v1/jobs/{id}/events"), &svc.key_a, None)
        .await;
    events.until("started").await;
    let response = svc
        .delete(&format!("/v1/jobs/{id}"), &svc.key_a)
        .send()
        .await
        .unwrap();
    assert!(matches!(response.status().as_u16(), 200 | 202));
    let rest = events.until("cancelled").await;
    assert!(
        events.next().await.is_none(),
        "closed after the terminal event"
    );
    assert!(rest.iter().all(|e| e.event != "completed"));
    let job = svc.job(id, &svc.key_a).await;
    assert_eq!(job["state"], "cancelled");
    assert_eq!(job["error"]["code"], "cancelled");
    svc.stop().await;
}

#[tokio::test]
async fn an_event_stream_resumes_after_the_last_event_id() {
    let sim = SimConfig::default()
        .exec_time(Duration::from_millis(600))
        .steps(6);
    let svc = TestService::start(1, sim, |_| {}).await;
    let submitted = svc
        .submit(&svc.key_a, json!({"workflow": workflow()}), 202)
        .await;
    let id = submitted["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/jobs/{id}/events");
    let mut first = svc.sse(&path, &svc.key_a, None).await;
    let mut seen = first.until("progress").await;
    let last = seen.last().unwrap().id.unwrap();
    drop(first);

    let mut resumed = svc.sse(&path, &svc.key_a, Some(last)).await;
    let mut rest = Vec::new();
    while let Some(event) = resumed.next().await {
        rest.push(event);
    }
    assert_eq!(rest.first().unwrap().id, Some(last + 1), "{rest:?}");
    assert_eq!(rest.last().unwrap().event, "completed");
    seen.extend(rest);
    let ids: Vec<u64> = seen.iter().filter_map(|e| e.id).collect();
    let expected: Vec<u64> = (1..=ids.len() as u64).collect();
    assert_eq!(
        ids, expected,
        "every event once, in order, across the reconnect"
    );
    assert!(seen.iter().all(|e| e.data["job"] == id.as_str()));
    svc.stop().await;
}

#[tokio::test]
async fn idempotency_keys_and_job_ids_return_the_same_job() {
    let svc = TestService::start(1, SimConfig::default(), |_| {}).await;
    let send = |key: &str, idem: &str| {
        svc.post("/v1/jobs", key)
            .header("idempotency-key", idem)
            .json(&json!({"workflow": workflow()}))
            .send()
    };
    let first: Value = send(&svc.key_a, "order-1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let again: Value = send(&svc.key_a, "order-1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["id"], again["id"]);
    assert_eq!(
        (first["created"].clone(), again["created"].clone()),
        (json!(true), json!(false))
    );
    let other: Value = send(&svc.key_b, "order-1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(other["id"], first["id"], "keys are per tenant");
    assert_eq!(other["created"], true);

    let named = svc
        .submit(
            &svc.key_a,
            json!({"workflow": workflow(), "id": "render-7"}),
            202,
        )
        .await;
    assert_eq!(named["id"], "render-7");
    let same = svc
        .submit(
            &svc.key_a,
            json!({"workflow": workflow(), "id": "render-7"}),
            202,
        )
        .await;
    assert_eq!(same["created"], false);
    let taken = svc
        .post("/v1/jobs", &svc.key_b)
        .json(&json!({"workflow": workflow(), "id": "render-7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status().as_u16(), 409);
    let error: Value = taken.json().await.unwrap();
    assert_eq!(error["error"]["code"], "job_id_conflict");
    // The same id with another workflow names another job: refused.
    let other = svc
        .post("/v1/jobs", &svc.key_a)
        .json(&json!({"workflow": support::inverted_workflow(), "id": "render-7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 409);
    // The admin sees every tenant's job.
    assert_eq!(svc.job("render-7", ADMIN_KEY).await["tenant"], "team-a");
    svc.stop().await;
}

#[tokio::test]
async fn submitted_jobs_are_listed_from_the_store_by_tenant_and_state() {
    let svc = TestService::start(1, SimConfig::default(), |_| {}).await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        let job = svc.run(&svc.key_a, json!({"workflow": workflow()})).await;
        mine.push(job["id"].as_str().unwrap().to_owned());
    }
    svc.run(&svc.key_b, json!({"workflow": workflow()})).await;
    let listed: Value = svc
        .get("/v1/jobs?state=completed&limit=2", &svc.key_a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine[2].as_str(), mine[1].as_str()], "newest first");
    let cursor = listed["next_cursor"].as_str().unwrap();
    let rest: Value = svc
        .get(
            &format!("/v1/jobs?state=completed&limit=2&cursor={cursor}"),
            &svc.key_a,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["jobs"][0]["id"], mine[0].as_str());
    assert_eq!(rest["jobs"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    assert_eq!(rest["jobs"][0]["outputs"][0]["node"], "2");
    svc.stop().await;
}

#[tokio::test]
async fn previews_come_as_urls_and_websocket_images_are_kept_with_the_job() {
    let sim = SimConfig::default().exec_time(Duration::from_millis(800));
    let svc = TestService::start(1, sim, |_| {}).await;
    let workflow = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 4, "color": 0}},
        "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}}
    });
    let submitted = svc
        .submit(&svc.key_a, json!({"workflow": workflow}), 202)
        .await;
    let id = submitted["id"].as_str().unwrap();
    let mut events = svc
        .sse(&format!("/v1/jobs/{id}/events"), &svc.key_a, None)
        .await;
    let preview = events.until("preview").await.pop().unwrap();
    assert!(
        preview.data.get("image").is_none(),
        "no image bytes in the stream"
    );
    let url = preview.data["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("/v1/jobs/{id}/preview")), "{url}");
    let image = svc.get(&url, &svc.key_a).send().await.unwrap();
    assert_eq!(image.status().as_u16(), 200);
    assert_eq!(image.headers()["content-type"], "image/png");
    let view = svc.job(id, &svc.key_a).await;
    assert_eq!(view["preview_url"], format!("/v1/jobs/{id}/preview"));
    events.until("completed").await;

    let job = svc.job(id, &svc.key_a).await;
    assert!(
        job["preview_url"].is_null(),
        "previews are for running jobs"
    );
    let ws: Vec<&Value> = job["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "websocket")
        .collect();
    assert!(!ws.is_empty(), "{job}");
    let file = svc
        .get(ws[0]["url"].as_str().unwrap(), &svc.key_a)
        .send()
        .await
        .unwrap();
    assert_eq!(file.status().as_u16(), 200);
    assert_eq!(&file.bytes().await.unwrap()[..4], b"\x89PNG");
    svc.stop().await;
}

#[tokio::test]
async fn copied_outputs_are_served_after_their_server_is_gone() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pool-server-copies");
    let _ = std::fs::remove_dir_all(&dir);
    let copies = dir.clone();
    let svc = TestService::start(1, SimConfig::default(), move |c| {
        c.outputs.mode = pool_server::config::OutputMode::Copy;
        c.outputs.dir = Some(copies);
    })
    .await;
    let mut feed = svc.sse("/v1/events", ADMIN_KEY, None).await;
    let job = svc.run(&svc.key_a, json!({"workflow": workflow()})).await;
    let id = job["id"].as_str().unwrap();
    // The service's work on a finished job (copies, then the webhook) is done when the
    // pool-wide stream says `finished`.
    while feed.until("finished").await.pop().unwrap().data["job"] != id {}
    let copied = dir.join(id).join("2");
    let files: Vec<_> = std::fs::read_dir(&copied).unwrap().collect();
    assert_eq!(files.len(), 1, "copied at completion");
    svc.sims.servers()[0].stop().await;
    let url = job["outputs"][0]["url"].as_str().unwrap();
    let file = svc.get(url, &svc.key_a).send().await.unwrap();
    assert_eq!(file.status().as_u16(), 200);
    assert_eq!(&file.bytes().await.unwrap()[..4], b"\x89PNG");
    svc.stop().await;
}
