//! Information, file and history routes compared with the recordings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use comfy_sim::{SimConfig, SimServer};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use support::{Ws, fixture, get, http, post, shape, submit};

async fn sim() -> SimServer {
    SimServer::start(SimConfig::default()).await.unwrap()
}

fn recorded_body(name: &str) -> Value {
    fixture(name)["response"]["body"].clone()
}

#[tokio::test]
async fn info_routes_have_the_recorded_shapes_with_and_without_api_prefix() {
    let sim = sim().await;
    for (path, recording) in [
        ("/system_stats", "01-system_stats.json"),
        ("/queue", "02-queue-idle.json"),
        ("/features", "04b-features.json"),
    ] {
        for prefix in ["", "/api"] {
            let (status, body) = get(&sim, &format!("{prefix}{path}")).await;
            assert_eq!(status, 200, "{prefix}{path}");
            assert_eq!(
                shape(&body),
                shape(&recorded_body(recording)),
                "{prefix}{path}"
            );
        }
    }
    assert_eq!(
        get(&sim, "/features").await.1,
        recorded_body("04b-features.json")
    );
    assert_eq!(
        get(&sim, "/prompt").await.1,
        json!({"exec_info": {"queue_remaining": 0}})
    );
    assert_eq!(get(&sim, "/embeddings").await.1, json!([]));
    let (_, models) = get(&sim, "/api/models").await;
    assert!(models.as_array().unwrap().contains(&json!("checkpoints")));
    assert_eq!(
        get(&sim, "/models/checkpoints").await.1,
        json!(["sd15.safetensors"])
    );
    assert_eq!(get(&sim, "/models/nonsense").await.0, 404);
    assert_eq!(get(&sim, "/no/such/route").await.0, 404);
}

#[tokio::test]
async fn object_info_serves_the_recorded_definitions() {
    let sim = sim().await;
    let (_, one) = get(&sim, "/object_info/EmptyImage").await;
    assert_eq!(one, recorded_body("03-object_info-EmptyImage.json"));
    assert_eq!(get(&sim, "/object_info/NoSuchNode").await, (200, json!({})));
    let (_, all) = get(&sim, "/api/object_info").await;
    for class in [
        "EmptyImage",
        "SaveImage",
        "KSampler",
        "CheckpointLoaderSimple",
        "SaveImageWebsocket",
    ] {
        assert!(all.get(class).is_some(), "{class}");
    }
    let sim = SimServer::start(SimConfig::default().without_node("KSampler"))
        .await
        .unwrap();
    let (_, all) = get(&sim, "/object_info").await;
    assert!(all.get("KSampler").is_none());
}

#[tokio::test]
async fn history_and_view_after_a_run() {
    let sim = sim().await;
    let mut ws = Ws::ready(&sim, "h").await;
    let id = submit(&sim, &support::invert_save(5), "h").await;
    ws.run(&id).await;
    let (status, history) = get(&sim, &format!("/history/{id}")).await;
    assert_eq!(status, 200);
    let recorded = recorded_body("06-history-by-id.json");
    let recorded_entry = recorded.as_object().unwrap().values().next().unwrap();
    let entry = &history[&id];
    assert_eq!(shape(entry), shape(recorded_entry));
    assert_eq!(entry["prompt"][1], id.as_str());
    assert_eq!(entry["prompt"][3], json!({"client_id": "h"}));
    assert_eq!(entry["prompt"][4], json!(["3"]));
    assert_eq!(entry["status"]["status_str"], "success");
    let messages: Vec<&str> = entry["status"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[0].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        ["execution_start", "execution_cached", "execution_success"]
    );
    assert_eq!(entry["meta"]["3"], recorded_entry["meta"]["3"]);

    let image = &entry["outputs"]["3"]["images"][0];
    let url = format!(
        "{}/view?filename={}&subfolder={}&type={}",
        sim.url(),
        image["filename"].as_str().unwrap(),
        image["subfolder"].as_str().unwrap(),
        image["type"].as_str().unwrap()
    );
    let response = http().get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    let recorded = fixture("07-view-output.json");
    for name in [
        "Content-Disposition",
        "Content-Type",
        "Etag",
        "Accept-Ranges",
    ] {
        assert!(recorded["response"]["headers"].get(name).is_some());
        assert!(response.headers().contains_key(name), "{name}");
    }
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let bytes = response.bytes().await.unwrap();
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes.to_vec()))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; decoder.output_buffer_size().unwrap()];
    decoder.next_frame(&mut pixels).unwrap();

    let head = http().head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        bytes.len().to_string().as_str()
    );
    let cached = http()
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);

    assert_eq!(
        get(&sim, "/view?filename=nope.png&type=output&subfolder=")
            .await
            .0,
        404
    );
    assert_eq!(
        get(
            &sim,
            &format!(
                "/view?filename={}&type=bogus",
                image["filename"].as_str().unwrap()
            )
        )
        .await
        .0,
        400
    );
    assert_eq!(get(&sim, "/history/unknown-id").await, (200, json!({})));
}

#[tokio::test]
async fn history_max_items_delete_and_clear() {
    let sim = sim().await;
    let mut ws = Ws::ready(&sim, "m").await;
    let mut ids = Vec::new();
    for color in 0..3 {
        let id = submit(&sim, &support::trivial(color), "m").await;
        ws.run(&id).await;
        ids.push(id);
    }
    let (_, two) = get(&sim, "/history?max_items=2").await;
    let keys: Vec<&String> = two.as_object().unwrap().keys().collect();
    assert_eq!(keys, [&ids[1], &ids[2]]);
    assert_eq!(
        post(&sim, "/history", &json!({"delete": [ids[2]]})).await.0,
        200
    );
    assert_eq!(
        get(&sim, &format!("/history/{}", ids[2])).await.1,
        json!({})
    );
    assert_eq!(get(&sim, "/history").await.1.as_object().unwrap().len(), 2);
    post(&sim, "/history", &json!({"clear": true})).await;
    assert_eq!(get(&sim, "/history").await.1, json!({}));
}

#[tokio::test]
async fn queue_shows_running_and_pending_and_supports_delete_and_clear() {
    let (sim, mut ws) = support::blur_server(Duration::from_secs(600), "q").await;
    let running = support::submit_until_node(&sim, &mut ws, &support::blur(1, 1.0), "q", "2").await;
    let a = submit(&sim, &support::trivial(1), "q").await;
    let b = submit(&sim, &support::trivial(2), "q").await;
    let front = post(
        &sim,
        "/prompt",
        &json!({"prompt": support::trivial(3), "client_id": "q", "front": true}),
    )
    .await
    .1;
    let (_, queue) = get(&sim, "/queue").await;
    let recorded = recorded_body("15b-queue-running-and-pending.json");
    assert_eq!(
        shape(&queue["queue_running"][0]),
        shape(&recorded["queue_running"][0])
    );
    assert_eq!(queue["queue_running"][0][1], running.as_str());
    let pending: Vec<&str> = queue["queue_pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_str().unwrap())
        .collect();
    assert_eq!(
        pending,
        [front["prompt_id"].as_str().unwrap(), a.as_str(), b.as_str()]
    );
    assert_eq!(
        get(&sim, "/prompt").await.1["exec_info"]["queue_remaining"],
        4
    );

    assert_eq!(post(&sim, "/queue", &json!({"delete": [a]})).await.0, 200);
    assert_eq!(
        get(&sim, "/queue").await.1["queue_pending"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(post(&sim, "/queue", &json!({"clear": true})).await.0, 200);
    let (_, queue) = get(&sim, "/queue").await;
    assert_eq!(queue["queue_pending"], json!([]));
    assert_eq!(queue["queue_running"][0][1], running.as_str());
}

#[tokio::test]
async fn idle_interrupt_and_free_answer_empty_200() {
    let sim = sim().await;
    for (path, body) in [
        ("/interrupt", None),
        ("/interrupt", Some(json!({"prompt_id": "x"}))),
        (
            "/free",
            Some(json!({"unload_models": true, "free_memory": true})),
        ),
    ] {
        let mut request = http().post(format!("{}{path}", sim.url()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.text().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn free_drops_the_cache() {
    let sim = sim().await;
    let mut ws = Ws::ready(&sim, "f").await;
    let prompt = support::invert_save(9);
    let id = submit(&sim, &prompt, "f").await;
    ws.run(&id).await;
    post(
        &sim,
        "/free",
        &json!({"unload_models": true, "free_memory": true}),
    )
    .await;
    let id = submit(&sim, &prompt, "f").await;
    let frames = ws.run(&id).await;
    assert_eq!(
        support::of_kind(&frames, "execution_cached")[0].data()["nodes"],
        json!([])
    );
}

fn image_form(name: &str, bytes: Vec<u8>) -> Form {
    Form::new().part(
        "image",
        Part::bytes(bytes)
            .file_name(name.to_owned())
            .mime_str("image/png")
            .unwrap(),
    )
}

async fn upload(sim: &SimServer, form: Form) -> (u16, Value) {
    support::send(
        http()
            .post(format!("{}/upload/image", sim.url()))
            .multipart(form),
    )
    .await
}

#[tokio::test]
async fn uploads_dedup_rename_subfolder_and_feed_loadimage() {
    let sim = sim().await;
    let (status, body) = upload(
        &sim,
        image_form("up.png", vec![1, 2, 3])
            .text("type", "input")
            .text("overwrite", "false"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(shape(&body), shape(&recorded_body("10-upload-image.json")));
    assert_eq!(
        body,
        json!({"name": "up.png", "subfolder": "", "type": "input"})
    );
    assert_eq!(
        upload(&sim, image_form("up.png", vec![1, 2, 3])).await.1["name"],
        "up.png"
    );
    assert_eq!(
        upload(&sim, image_form("up.png", vec![9])).await.1["name"],
        "up (1).png"
    );
    let (_, body) = upload(
        &sim,
        image_form("up.png", vec![7])
            .text("subfolder", "sub")
            .text("overwrite", "true"),
    )
    .await;
    assert_eq!(
        body,
        json!({"name": "up.png", "subfolder": "sub", "type": "input"})
    );
    let (status, _) = upload(&sim, Form::new().text("type", "input")).await;
    assert_eq!(status, 400);

    let response = http()
        .get(format!(
            "{}/view?filename=up.png&type=input&subfolder=sub",
            sim.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.bytes().await.unwrap().as_ref(), &[7]);

    let prompt = json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": "up (1).png"}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    });
    assert_eq!(
        post(&sim, "/prompt", &json!({"prompt": prompt})).await.0,
        200
    );
    let (_, info) = get(&sim, "/object_info/LoadImage").await;
    let listed = &info["LoadImage"]["input"]["required"]["image"][0];
    assert!(listed.as_array().unwrap().contains(&json!("sub/up.png")));
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let sim = SimServer::start(SimConfig::default().body_limit(1024))
        .await
        .unwrap();
    let big = json!({"prompt": support::trivial(1), "extra_data": {"pad": "x".repeat(4096)}});
    assert_eq!(post(&sim, "/prompt", &big).await.0, 413);
}

#[tokio::test]
async fn sim_stats_shows_the_counters_to_another_process() {
    let sim = sim().await;
    let mut ws = Ws::ready(&sim, "s").await;
    let id = submit(&sim, &support::invert_save(7), "s").await;
    ws.run(&id).await;
    let (status, stats) = get(&sim, "/sim/stats").await;
    assert_eq!(status, 200, "{stats}");
    let local = sim.stats();
    assert_eq!(stats["prompts_accepted"], 1);
    assert_eq!(stats["prompts_executed"], local.prompts_executed);
    assert_eq!(stats["max_prompts_held"], local.max_prompts_held);
    assert_eq!(stats["max_prompts_held"], 1);
    assert_eq!(stats["queue_remaining"], 0);
    assert_eq!(
        sim.stats().requests("GET /sim/stats"),
        0,
        "the route is the sim's own: not counted"
    );
    let (status, _) = get(&sim, "/api/sim/stats").await;
    assert_eq!(status, 404, "not a ComfyUI route: not under /api");
}
