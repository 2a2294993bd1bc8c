//! Every fault mode, set at start or while running.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use comfy_sim::{FaultSettings, SimConfig, SimServer, Stats};
use serde_json::{Value, json};
use support::{Ws, get, http, kinds, of_kind, post, submit};

async fn sim() -> SimServer {
    SimServer::start(SimConfig::default()).await.unwrap()
}

fn tagged(prompt: &Value, client: &str, tag: &str) -> Value {
    json!({"prompt": prompt, "client_id": client, "extra_data": {"sim_tag": tag}})
}

async fn run_tagged(
    sim: &SimServer,
    ws: &mut Ws,
    prompt: &Value,
    client: &str,
    tag: &str,
) -> Vec<support::Frame> {
    let (status, body) = post(sim, "/prompt", &tagged(prompt, client, tag)).await;
    assert_eq!(status, 200, "{body}");
    ws.run(body["prompt_id"].as_str().unwrap()).await
}

#[tokio::test]
async fn failing_class_errors_at_run_time_and_is_counted_per_workflow() {
    let sim = sim().await;
    sim.faults().fail_class("ImageInvert");
    let mut ws = Ws::ready(&sim, "c").await;
    let frames = run_tagged(&sim, &mut ws, &support::invert_save(1), "c", "wf-invert").await;
    let error = of_kind(&frames, "execution_error")[0].data().clone();
    assert_eq!(error["node_type"], "ImageInvert");
    let frames = run_tagged(&sim, &mut ws, &support::trivial(1), "c", "wf-trivial").await;
    assert_eq!(of_kind(&frames, "execution_success").len(), 1);

    let stats = sim.stats();
    assert_eq!(stats.for_tag("wf-invert").failed, 1);
    assert_eq!(stats.for_tag("wf-invert").executed, 0);
    assert_eq!(stats.for_tag("wf-trivial").executed, 1);
    assert_eq!(
        stats
            .for_classes(["SaveImage", "EmptyImage", "ImageInvert"])
            .failed,
        1
    );
    assert_eq!(Stats::classes_key(["b", "a", "b"]), "a+b");
    assert_eq!(stats.prompts_failed, 1);
    assert_eq!(stats.prompts_executed, 1);
    assert_eq!(stats.requests("POST /prompt"), 2);
    assert_eq!(stats.requests("GET /ws"), 1);

    let (_, history) = get(&sim, "/history").await;
    let failed = history
        .as_object()
        .unwrap()
        .values()
        .find(|e| e["status"]["status_str"] == "error")
        .unwrap();
    assert_eq!(failed["status"]["completed"], false);
    let recorded = support::recorded_history_entry("06c-history-by-id-error.json");
    assert_eq!(support::shape(failed), support::shape(&recorded));
    assert_eq!(failed["status"]["messages"][2][0], "execution_error");
}

#[tokio::test]
async fn failing_model_errors_on_the_loader() {
    let sim = sim().await;
    sim.faults().fail_model("sd15.safetensors");
    let mut ws = Ws::ready(&sim, "m").await;
    let id = submit(&sim, &support::txt2img("sd15.safetensors"), "m").await;
    let frames = ws.run(&id).await;
    let error = of_kind(&frames, "execution_error")[0].data();
    assert_eq!(error["node_id"], "1");
    assert_eq!(error["node_type"], "CheckpointLoaderSimple");
}

#[tokio::test]
async fn rejected_class_and_removed_model_fail_validation_until_restored() {
    let sim = sim().await;
    let faults = sim.faults();
    faults.reject_class("ImageInvert");
    let (status, body) = post(&sim, "/prompt", &json!({"prompt": support::invert_save(1)})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_prompt");
    assert_eq!(get(&sim, "/object_info/ImageInvert").await.1, json!({}));
    faults.update(|f| {
        f.reject_classes.clear();
    });
    assert_eq!(
        post(&sim, "/prompt", &json!({"prompt": support::invert_save(1)}))
            .await
            .0,
        200
    );

    faults.remove_model("sd15.safetensors");
    let (status, body) = post(
        &sim,
        "/prompt",
        &json!({"prompt": support::txt2img("sd15.safetensors")}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["node_errors"]["1"]["errors"][0]["type"],
        "value_not_in_list"
    );
    assert_eq!(get(&sim, "/models/checkpoints").await.1, json!([]));
    faults.add_model("checkpoints", "sd15.safetensors");
    assert_eq!(
        post(
            &sim,
            "/prompt",
            &json!({"prompt": support::txt2img("sd15.safetensors")})
        )
        .await
        .0,
        200
    );
    let stats = sim.stats();
    assert_eq!(stats.prompts_rejected, 2);
    assert_eq!(stats.prompts_accepted, 2);
}

#[tokio::test]
async fn hang_accepts_then_never_progresses_until_released() {
    let sim = sim().await;
    sim.faults().set_hang(true);
    let mut ws = Ws::ready(&sim, "h").await;
    let id = submit(&sim, &support::trivial(1), "h").await;
    ws.until(|f| f.kind() == "executing").await;
    // Interrupting a hung server does nothing.
    post(&sim, "/interrupt", &json!({})).await;
    let (_, queue) = get(&sim, "/queue").await;
    assert_eq!(queue["queue_running"][0][1], id.as_str());
    assert_eq!(get(&sim, &format!("/history/{id}")).await.1, json!({}));
    sim.faults().set_hang(false);
    let frames = ws.run(&id).await;
    // The interrupt sent while hung takes effect once released.
    assert_eq!(
        kinds(&frames),
        ["execution_interrupted", "status", "executing"]
    );
    assert_eq!(
        get(&sim, &format!("/history/{id}")).await.1[&id]["status"]["status_str"],
        "error"
    );
}

#[tokio::test]
async fn crash_and_restart_loses_queue_history_and_sockets_on_the_same_port() {
    let (sim, mut ws) = support::blur_server(Duration::from_secs(600), "x").await;
    let addr = sim.addr();
    let done = submit(&sim, &support::trivial(1), "x").await;
    ws.run(&done).await;
    support::submit_until_node(&sim, &mut ws, &support::blur(1, 1.0), "x", "2").await;
    submit(&sim, &support::trivial(2), "x").await;

    sim.crash_and_restart().await.unwrap();
    // Frames queued before the crash may still arrive, then the socket ends without the run.
    while let Some(frame) = ws.try_next().await {
        assert_eq!(frame.kind(), "status");
    }
    assert_eq!(sim.addr(), addr);
    assert_eq!(
        get(&sim, "/queue").await.1,
        json!({"queue_running": [], "queue_pending": []})
    );
    assert_eq!(get(&sim, "/history").await.1, json!({}));
    // Counters survive, queue numbers start again.
    assert_eq!(sim.stats().prompts_accepted, 3);
    let (_, body) = post(&sim, "/prompt", &json!({"prompt": support::trivial(3)})).await;
    assert_eq!(body["number"], 0);
    // The restarted server runs prompts again.
    let mut ws = Ws::ready(&sim, "x").await;
    let id = submit(&sim, &support::trivial(4), "x").await;
    assert_eq!(of_kind(&ws.run(&id).await, "execution_success").len(), 1);
}

#[tokio::test]
async fn stopped_server_refuses_connections_until_restarted() {
    let sim = sim().await;
    sim.stop().await;
    assert!(!sim.is_listening());
    let error = http()
        .get(format!("{}/queue", sim.url()))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_connect(), "{error}");
    assert!(sim.restart().await.is_ok());
    assert!(sim.restart().await.is_err(), "already running");
    assert_eq!(get(&sim, "/queue").await.0, 200);
}

#[tokio::test]
async fn dropping_websockets_closes_them_and_runs_continue() {
    let sim = sim().await;
    let mut a = Ws::ready(&sim, "a").await;
    let mut b = Ws::ready(&sim, "b").await;
    assert_eq!(sim.open_websockets(), 2);
    sim.faults().drop_websockets();
    assert_eq!(a.try_next().await, None);
    assert_eq!(b.try_next().await, None);
    let mut a = Ws::ready(&sim, "a").await;
    let id = submit(&sim, &support::trivial(1), "a").await;
    assert_eq!(of_kind(&a.run(&id).await, "execution_success").len(), 1);
    assert_eq!(sim.stats().ws_connections, 3);
}

#[tokio::test]
async fn http_500_on_all_routes_or_a_prefix() {
    let sim = sim().await;
    let faults = sim.faults();
    faults.set_http_500(Some(""));
    for path in ["/queue", "/api/system_stats", "/history", "/object_info"] {
        let response = http()
            .get(format!("{}{path}", sim.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 500, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
    }
    assert_eq!(
        post(&sim, "/prompt", &json!({"prompt": support::trivial(1)}))
            .await
            .0,
        500
    );
    faults.set_http_500(Some("/prompt"));
    assert_eq!(
        post(&sim, "/api/prompt", &json!({"prompt": support::trivial(1)}))
            .await
            .0,
        500
    );
    assert_eq!(get(&sim, "/queue").await.0, 200);
    faults.set_http_500(None);
    assert_eq!(
        post(&sim, "/prompt", &json!({"prompt": support::trivial(1)}))
            .await
            .0,
        200
    );
    assert_eq!(
        sim.stats().prompts_received,
        1,
        "failed requests never reached the handler"
    );
}

#[tokio::test(start_paused = true)]
async fn http_delay_holds_every_answer() {
    let mut settings = FaultSettings::default();
    settings.http_delay = Duration::from_secs(30);
    let sim = SimServer::start(SimConfig::default().faults(settings))
        .await
        .unwrap();
    let before = tokio::time::Instant::now();
    assert_eq!(get(&sim, "/queue").await.0, 200);
    assert!(before.elapsed() >= Duration::from_secs(30));
}

#[tokio::test]
async fn fail_next_fails_exactly_n_prompts() {
    let sim = sim().await;
    sim.faults().fail_next(2);
    let mut ws = Ws::ready(&sim, "n").await;
    let mut outcomes = Vec::new();
    for color in 0..3 {
        let id = submit(&sim, &support::trivial(color), "n").await;
        let frames = ws.run(&id).await;
        outcomes.push(kinds(&frames)[kinds(&frames).len() - 3].clone());
    }
    assert_eq!(
        outcomes,
        ["execution_error", "execution_error", "execution_success"]
    );
    assert_eq!(sim.faults().get().fail_next, 0);
}

async fn chaos_outcomes(seed: u64) -> Vec<String> {
    let mut settings = FaultSettings::default();
    settings.error_probability = 0.5;
    let sim = SimServer::start(SimConfig::default().seed(seed).faults(settings))
        .await
        .unwrap();
    let mut ws = Ws::ready(&sim, "r").await;
    let mut outcomes = Vec::new();
    for color in 0..16 {
        let id = submit(&sim, &support::trivial(color), "r").await;
        let frames = ws.run(&id).await;
        outcomes.push(kinds(&frames)[kinds(&frames).len() - 3].clone());
    }
    outcomes
}

#[tokio::test]
async fn seeded_chaos_is_repeatable() {
    let first = chaos_outcomes(42).await;
    assert_eq!(first, chaos_outcomes(42).await);
    assert!(first.contains(&"execution_error".to_owned()));
    assert!(first.contains(&"execution_success".to_owned()));
}

#[tokio::test]
async fn ws_drop_probability_drops_sockets_when_a_prompt_starts() {
    let sim = sim().await;
    sim.faults().set_ws_drop_probability(1.0);
    let mut ws = Ws::ready(&sim, "d").await;
    let id = submit(&sim, &support::trivial(1), "d").await;
    let mut seen = Vec::new();
    while let Some(frame) = ws.try_next().await {
        seen.push(frame.kind());
    }
    assert!(!seen.contains(&"execution_success".to_owned()));
    // The run itself completes; history is authoritative.
    sim.faults().set_ws_drop_probability(0.0);
    let mut ws = Ws::ready(&sim, "d").await;
    let next = submit(&sim, &support::trivial(2), "d").await;
    ws.run(&next).await;
    assert_eq!(
        get(&sim, &format!("/history/{id}")).await.1[&id]["status"]["status_str"],
        "success"
    );
}
