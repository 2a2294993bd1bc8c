//! Every fault mode, set at start or while running.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use comfy_sim::{FaultSettings, Garbage, RejectionStyle, SimConfig, SimServer, Stats, WsFlood};
use futures_util::StreamExt;
use serde_json::{Value, json};
use support::{Frame, Ws, get, http, kinds, of_kind, post, submit};

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

fn binary_len(frame: &Frame) -> usize {
    match frame {
        Frame::Binary(bytes) => bytes.len(),
        Frame::Json(_) => 0,
    }
}

#[tokio::test]
async fn ws_flood_repeats_frames_of_every_node() {
    let mut flood = WsFlood::texts(5);
    flood.executing = 3;
    flood.executed = 4;
    flood.previews = 2;
    flood.preview_bytes = 1000;
    let mut settings = FaultSettings::default();
    settings.ws_flood = flood;
    let sim = SimServer::start(SimConfig::default().faults(settings))
        .await
        .unwrap();
    let mut ws = Ws::ready(&sim, "f").await;
    // EmptyImage -> PreviewImage: two nodes, one output.
    let id = submit(&sim, &support::trivial(1), "f").await;
    let frames = ws.run(&id).await;
    assert_eq!(of_kind(&frames, "bin3").len(), 10);
    assert_eq!(of_kind(&frames, "executing").len(), 2 + 2 * 3 + 1);
    assert_eq!(of_kind(&frames, "executed").len(), 1 + 4);
    let previews = of_kind(&frames, "bin1");
    assert_eq!(previews.len(), 4);
    assert!(previews.iter().all(|f| binary_len(f) == 8 + 1000));
    assert_eq!(of_kind(&frames, "execution_success").len(), 1);
    // Every copy of `executed` is the real one.
    let executed = of_kind(&frames, "executed");
    assert!(executed.iter().all(|f| f.json() == executed[0].json()));

    // A socket that negotiated metadata gets event 4; turning the flood off ends it.
    ws.send_json(json!({"type": "feature_flags", "data": {"supports_preview_metadata": true}}))
        .await;
    assert_eq!(ws.next().await.kind(), "feature_flags");
    sim.faults().set_ws_flood(WsFlood::previews(3, 10));
    let id = submit(&sim, &support::trivial(2), "f").await;
    let frames = ws.run(&id).await;
    assert_eq!(of_kind(&frames, "bin4").len(), 6);
    assert_eq!(of_kind(&frames, "bin1").len(), 0);
    sim.faults().set_ws_flood(WsFlood::default());
    let id = submit(&sim, &support::trivial(3), "f").await;
    let frames = ws.run(&id).await;
    assert_eq!(of_kind(&frames, "bin4").len(), 0);
    assert_eq!(of_kind(&frames, "executing").len(), 3);
}

#[tokio::test]
async fn ws_flood_goes_at_the_pace_of_the_reader() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let mut ws = Ws::ready(&sim, "slow").await;
    sim.faults()
        .set_ws_flood(WsFlood::previews(32, 1024 * 1024));
    let id = submit(&sim, &support::trivial(1), "slow").await;
    // The reader takes one frame at a time; the server never queues more than a few for it.
    let mut previews = 0;
    let mut most_queued = 0;
    loop {
        most_queued = most_queued.max(sim.ws_backlog());
        let frame = ws.next().await;
        if frame.kind() == "bin1" {
            assert_eq!(binary_len(&frame), 8 + 1024 * 1024);
            previews += 1;
        }
        if support::is_run_end(&frame, &id) {
            break;
        }
    }
    assert_eq!(previews, 64);
    // 16 flood frames at most, plus the few ordinary messages of a node sent meanwhile.
    assert!(
        most_queued <= 24,
        "{most_queued} messages queued for one socket"
    );
}

#[tokio::test]
async fn an_interrupt_cuts_a_flood_short() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let mut ws = Ws::ready(&sim, "i").await;
    sim.faults().set_ws_flood(WsFlood::texts(1_000_000));
    let id = submit(&sim, &support::trivial(1), "i").await;
    ws.until(|f| f.kind() == "bin3").await;
    post(&sim, "/interrupt", &json!({})).await;
    let frames = ws.run(&id).await;
    assert_eq!(of_kind(&frames, "execution_interrupted").len(), 1);
}

async fn get_raw(sim: &SimServer, path: &str) -> reqwest::Response {
    http()
        .get(format!("{}{path}", sim.url()))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn garbage_history_and_queue_while_the_socket_and_runs_carry_on() {
    let mut settings = FaultSettings::default();
    settings.history_garbage = Some(Garbage::WrongTypes);
    settings.queue_garbage = Some(Garbage::WrongTypes);
    let sim = SimServer::start(SimConfig::default().faults(settings))
        .await
        .unwrap();
    let mut ws = Ws::ready(&sim, "g").await;
    let id = submit(&sim, &support::trivial(1), "g").await;
    assert_eq!(of_kind(&ws.run(&id).await, "execution_success").len(), 1);

    // Valid JSON, wrong types.
    assert_eq!(get(&sim, "/history").await, (200, json!({&id: 5})));
    assert_eq!(
        get(&sim, "/api/history/some-id").await,
        (200, json!({"some-id": 5}))
    );
    assert_eq!(
        get(&sim, "/queue").await,
        (200, json!({"queue_running": "x", "queue_pending": 7}))
    );

    // Malformed JSON.
    let faults = sim.faults();
    faults.set_history_garbage(Some(Garbage::MalformedJson));
    faults.set_queue_garbage(Some(Garbage::MalformedJson));
    for path in ["/history", &format!("/history/{id}"), "/queue"] {
        let response = get_raw(&sim, path).await;
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let text = response.text().await.unwrap();
        assert!(
            serde_json::from_str::<Value>(&text).is_err(),
            "{path}: {text}"
        );
    }
    // Other routes and the socket are fine meanwhile.
    assert_eq!(get(&sim, "/prompt").await.0, 200);
    let id = submit(&sim, &support::trivial(2), "g").await;
    assert_eq!(of_kind(&ws.run(&id).await, "execution_success").len(), 1);

    // A huge body, streamed.
    const HUGE: u64 = 20 * 1024 * 1024 + 3;
    faults.set_history_garbage(Some(Garbage::Huge(HUGE)));
    let response = get_raw(&sim, "/history").await;
    assert!(response.headers().get("content-length").is_none());
    let mut stream = response.bytes_stream();
    let (mut total, mut first, mut last) = (0u64, None, 0u8);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert!(chunk.len() <= 64 * 1024);
        first.get_or_insert(chunk[0]);
        last = chunk[chunk.len() - 1];
        total += chunk.len() as u64;
    }
    assert_eq!((total, first, last), (HUGE, Some(b'{'), b'}'));
    faults.set_history_garbage(Some(Garbage::Huge(5)));
    assert_eq!(
        get_raw(&sim, "/history").await.text().await.unwrap(),
        "xxxxx"
    );

    // Freeze: no answer at all, the socket and runs carry on.
    faults.set_history_garbage(Some(Garbage::Freeze));
    faults.set_queue_garbage(None);
    let frozen = http()
        .get(format!("{}/history", sim.url()))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(frozen.unwrap_err().is_timeout());
    let id = submit(&sim, &support::trivial(3), "g").await;
    assert_eq!(of_kind(&ws.run(&id).await, "execution_success").len(), 1);
    assert_eq!(get(&sim, "/queue").await.0, 200);
    faults.set_history_garbage(None);
    assert_eq!(
        get(&sim, &format!("/history/{id}")).await.1[&id]["status"]["status_str"],
        "success"
    );
}

#[tokio::test]
async fn frozen_http_leaves_the_socket_and_the_running_prompt_alive() {
    let (sim, mut ws) = support::blur_server(Duration::from_millis(200), "z").await;
    let id = support::submit_until_node(&sim, &mut ws, &support::blur(1, 1.0), "z", "2").await;
    sim.faults().set_http_freeze(Some(""));
    let frozen = http()
        .get(format!("{}/api/system_stats", sim.url()))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(frozen.unwrap_err().is_timeout());
    // The run goes on to its end and new sockets connect.
    let frames = ws.run(&id).await;
    assert_eq!(of_kind(&frames, "execution_success").len(), 1);
    let other = Ws::ready(&sim, "other").await;
    other.close().await;
    // A prefix freezes only its routes.
    sim.faults().set_http_freeze(Some("/history"));
    assert_eq!(get(&sim, "/queue").await.0, 200);
    let frozen = http()
        .get(format!("{}/history/{id}", sim.url()))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(frozen.unwrap_err().is_timeout());
}

#[tokio::test]
async fn http_500_on_post_prompt_leaves_get_routes_healthy() {
    let sim = sim().await;
    sim.faults().set_http_500(Some("POST /prompt"));
    let body = json!({"prompt": support::trivial(1)});
    assert_eq!(post(&sim, "/prompt", &body).await.0, 500);
    assert_eq!(post(&sim, "/api/prompt", &body).await.0, 500);
    assert_eq!(get(&sim, "/prompt").await.0, 200);
    assert_eq!(get(&sim, "/system_stats").await.0, 200);
    assert_eq!(post(&sim, "/interrupt", &json!({})).await.0, 200);
    // The plain prefix also fails GET /prompt.
    sim.faults().set_http_500(Some("/prompt"));
    assert_eq!(get(&sim, "/prompt").await.0, 500);
    assert_eq!(sim.stats().prompts_received, 0);
}

#[tokio::test]
async fn rejection_style_current_names_the_missing_node_type() {
    let sim = SimServer::start(SimConfig::default().rejection_style(RejectionStyle::Current))
        .await
        .unwrap();
    let prompt = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "7": {"class_type": "FancyUpscaler", "inputs": {"image": ["1", 0]}}
    });
    let (status, body) = post(&sim, "/prompt", &json!({"prompt": prompt})).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({
            "error": {
                "type": "missing_node_type",
                "message": "Node 'FancyUpscaler' not found. The custom node may not be installed.",
                "details": "Node ID '#7'",
                "extra_info": {"node_id": "7", "class_type": "FancyUpscaler", "node_title": "FancyUpscaler"}
            },
            "node_errors": {}
        })
    );
    let titled = json!({"7": {"class_type": "FancyUpscaler", "inputs": {}, "_meta": {"title": "Upscale 4x"}}});
    let (_, body) = post(&sim, "/prompt", &json!({"prompt": titled})).await;
    assert_eq!(
        body["error"]["message"],
        "Node 'Upscale 4x' not found. The custom node may not be installed."
    );
    assert_eq!(body["error"]["extra_info"]["node_title"], "Upscale 4x");
    let (_, body) = post(&sim, "/prompt", &json!({"prompt": {"3": {"inputs": {}}}})).await;
    assert_eq!(body["error"]["type"], "missing_node_type");
    assert_eq!(
        body["error"]["extra_info"],
        json!({"node_id": "3", "class_type": null, "node_title": null})
    );

    // Back to the recorded wording while running.
    sim.faults().set_rejection_style(RejectionStyle::Legacy);
    let (_, body) = post(&sim, "/prompt", &json!({"prompt": prompt})).await;
    assert_eq!(body["error"]["type"], "invalid_prompt");
    assert_eq!(
        body["error"]["message"],
        "Cannot execute because node FancyUpscaler does not exist."
    );
}
