//! WebSocket message sequences compared with the recordings of a real ComfyUI server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use comfy_sim::{SimConfig, SimServer};
use serde_json::{Value, json};
use support::{Frame, Ws, keys, kinds, of_kind, recorded_kinds, recorded_message, submit};

/// Recorded kinds without the initial `status` (consumed by `Ws::ready`).
fn recorded_after_hello(name: &str) -> Vec<String> {
    recorded_kinds(name).into_iter().skip(1).collect()
}

/// Every text message has the same data keys as the first recorded message of its type.
fn assert_same_keys(frames: &[Frame], recording: &str) {
    for frame in frames {
        if let Frame::Json(v) = frame {
            let kind = v["type"].as_str().unwrap();
            if kind == "status" || kind == "executing" {
                continue;
            }
            let recorded = recorded_message(recording, kind);
            assert_eq!(
                keys(&v["data"]),
                keys(&recorded["data"]),
                "data keys of {kind}"
            );
        }
    }
}

async fn sim() -> SimServer {
    SimServer::start(SimConfig::default()).await.unwrap()
}

#[tokio::test]
async fn successful_run_follows_the_recorded_order() {
    let sim = sim().await;
    let mut ws = Ws::ready(&sim, "client-a").await;
    let id = submit(&sim, &support::invert_save(2211223), "client-a").await;
    let frames = ws.run(&id).await;
    assert_eq!(kinds(&frames), recorded_after_hello("ws-01-success.jsonl"));
    assert_same_keys(&frames, "ws-01-success.jsonl");
    let executing: Vec<&Value> = of_kind(&frames, "executing")
        .iter()
        .map(|f| &f.data()["node"])
        .collect();
    assert_eq!(
        executing,
        [&json!("1"), &json!("2"), &json!("3"), &Value::Null]
    );
    let executed = of_kind(&frames, "executed");
    let image = &executed[0].data()["output"]["images"][0];
    assert_eq!(image["type"], "output");
    assert!(
        image["filename"]
            .as_str()
            .unwrap()
            .starts_with("peer_fixture_")
    );
    // The last progress_state reports every node finished.
    let last_state = of_kind(&frames, "progress_state")
        .last()
        .unwrap()
        .data()
        .clone();
    for node in ["1", "2", "3"] {
        assert_eq!(last_state["nodes"][node]["state"], "finished");
    }
}

#[tokio::test]
async fn identical_rerun_is_served_from_cache() {
    let sim = sim().await;
    let mut ws = Ws::ready(&sim, "c").await;
    let prompt = support::invert_save(7);
    let first = submit(&sim, &prompt, "c").await;
    let first_frames = ws.run(&first).await;
    let second = submit(&sim, &prompt, "c").await;
    let frames = ws.run(&second).await;
    assert_eq!(kinds(&frames), recorded_after_hello("ws-02-cached.jsonl"));
    let cached = of_kind(&frames, "execution_cached")[0].data();
    assert_eq!(cached["nodes"], json!(["1", "2", "3"]));
    let output = |frames: &[Frame]| of_kind(frames, "executed")[0].data()["output"].clone();
    assert_eq!(output(&frames), output(&first_frames));
    // A changed input upstream invalidates the cache.
    let third = submit(&sim, &support::invert_save(8), "c").await;
    let frames = ws.run(&third).await;
    assert_eq!(
        of_kind(&frames, "execution_cached")[0].data()["nodes"],
        json!([])
    );
}

fn getimagesize_savews() -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 24, "batch_size": 1, "color": 4478310}},
        "2": {"class_type": "GetImageSize", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "EmptyImage", "inputs": {"width": ["2", 0], "height": ["2", 1], "batch_size": 2, "color": 4478310}},
        "4": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["3", 0]}}
    })
}

#[tokio::test]
async fn binary_text_and_preview_frames_have_the_recorded_layout() {
    let sim = sim().await;
    let mut ws = Ws::ready(&sim, "bin").await;
    let id = submit(&sim, &getimagesize_savews(), "bin").await;
    let frames = ws.run(&id).await;
    // The real server races binary previews against text frames; compare text order and
    // binary counts separately.
    let text_only = |k: Vec<String>| {
        k.into_iter()
            .filter(|k| !k.starts_with("bin"))
            .collect::<Vec<_>>()
    };
    let recorded = recorded_after_hello("ws-03-progress-binary.jsonl");
    assert_eq!(text_only(kinds(&frames)), text_only(recorded.clone()));
    let count = |k: &[String], kind: &str| k.iter().filter(|x| *x == kind).count();
    assert_eq!(count(&kinds(&frames), "bin1"), count(&recorded, "bin1"));
    assert_eq!(count(&kinds(&frames), "bin3"), 1);
    for frame in &frames {
        let Frame::Binary(bytes) = frame else {
            continue;
        };
        match frame.kind().as_str() {
            "bin3" => {
                assert_eq!(&bytes[4..8], &1u32.to_be_bytes());
                assert_eq!(&bytes[8..9], b"2");
                assert_eq!(
                    &bytes[9..],
                    "width: 32, height: 24\n batch size: 1".as_bytes()
                );
            }
            "bin1" => {
                assert_eq!(&bytes[4..8], &2u32.to_be_bytes(), "format 2 = PNG");
                assert_eq!(&bytes[8..16], b"\x89PNG\r\n\x1a\n");
            }
            other => panic!("unexpected {other}"),
        }
    }
    // SaveImageWebsocket has no UI output: no `executed`.
    assert!(of_kind(&frames, "executed").is_empty());
}

#[tokio::test]
async fn preview_metadata_after_feature_flags_negotiation() {
    let sim = sim().await;
    let mut ws = Ws::connect(&sim, "meta").await;
    ws.send_json(json!({"type": "feature_flags", "data": {"supports_preview_metadata": true}}))
        .await;
    assert_eq!(ws.next().await.kind(), "status");
    let flags = ws.next().await;
    assert_eq!(flags.kind(), "feature_flags");
    assert_eq!(
        keys(flags.data()),
        keys(&recorded_message("ws-04-progress-binary-metadata.jsonl", "feature_flags")["data"])
    );
    let id = submit(&sim, &getimagesize_savews(), "meta").await;
    let frames = ws.run(&id).await;
    let recorded: Vec<String> = recorded_kinds("ws-04-progress-binary-metadata.jsonl")
        .into_iter()
        .skip(2)
        .collect();
    assert_eq!(kinds(&frames), recorded);
    let previews: Vec<&Frame> = frames.iter().filter(|f| f.kind() == "bin4").collect();
    assert_eq!(previews.len(), 2);
    let Frame::Binary(bytes) = previews[0] else {
        unreachable!()
    };
    let len = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
    let metadata: Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    assert_eq!(metadata["node_id"], "4");
    assert_eq!(metadata["prompt_id"], id.as_str());
    assert_eq!(metadata["image_type"], "image/png");
    let recorded_meta = support::recorded_frames("ws-04-progress-binary-metadata.jsonl")
        .into_iter()
        .find(|e| e["event_type"] == 4)
        .unwrap();
    assert_eq!(keys(&metadata), keys(&recorded_meta["decoded"]["metadata"]));
    assert_eq!(&bytes[8 + len..16 + len], b"\x89PNG\r\n\x1a\n");
}

#[tokio::test]
async fn runtime_failure_sends_execution_error_like_the_recording() {
    let sim = sim().await;
    sim.faults().fail_class("ImageScaleBy");
    let mut ws = Ws::ready(&sim, "f").await;
    let prompt = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 1}},
        "2": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact", "scale_by": 0.01}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "peer_fail"}}
    });
    let id = submit(&sim, &prompt, "f").await;
    let frames = ws.run(&id).await;
    assert_eq!(
        kinds(&frames),
        recorded_after_hello("ws-06-failed-runtime.jsonl")
    );
    assert_same_keys(&frames, "ws-06-failed-runtime.jsonl");
    let error = of_kind(&frames, "execution_error")[0].data();
    assert_eq!(error["node_id"], "2");
    assert_eq!(error["node_type"], "ImageScaleBy");
    assert_eq!(error["executed"], json!(["1"]));
    assert!(error["traceback"].as_array().is_some_and(|t| !t.is_empty()));
}

#[tokio::test]
async fn interrupt_stops_the_running_prompt() {
    let (sim, mut ws) = support::blur_server(Duration::from_secs(600), "i").await;
    let id = support::submit_until_node(&sim, &mut ws, &support::blur(31, 10.0), "i", "2").await;
    let (status, _) = support::post(&sim, "/interrupt", &json!({})).await;
    assert_eq!(status, 200);
    let frames = ws.run(&id).await;
    let tail: Vec<String> = recorded_kinds("ws-05-interrupted.jsonl")
        .into_iter()
        .rev()
        .take(3)
        .rev()
        .collect();
    assert_eq!(kinds(&frames), tail);
    let interrupted = frames[0].data();
    assert_eq!(
        keys(interrupted),
        keys(&recorded_message("ws-05-interrupted.jsonl", "execution_interrupted")["data"])
    );
    assert_eq!(interrupted["node_id"], "2");
    assert_eq!(interrupted["executed"], json!(["1"]));
    assert_eq!(sim.stats().prompts_interrupted, 1);
    let (_, history) = support::get(&sim, &format!("/history/{id}")).await;
    let recorded = support::recorded_history_entry("06e-history-by-id-interrupted.json");
    assert_eq!(support::shape(&history[&id]), support::shape(&recorded));
    assert_eq!(history[&id]["status"]["status_str"], "error");
}

#[tokio::test]
async fn interrupt_with_another_prompt_id_is_a_no_op() {
    let (sim, mut ws) = support::blur_server(Duration::from_millis(300), "n").await;
    let id = support::submit_until_node(&sim, &mut ws, &support::blur(1, 1.0), "n", "2").await;
    support::post(
        &sim,
        "/interrupt",
        &json!({"prompt_id": "not-the-running-one"}),
    )
    .await;
    let frames = ws.run(&id).await;
    assert_eq!(of_kind(&frames, "execution_success").len(), 1);
}

#[tokio::test]
async fn prompt_without_client_id_only_broadcasts_status_and_progress_state() {
    let sim = sim().await;
    let mut observer = Ws::ready(&sim, "observer").await;
    let (status, _) =
        support::post(&sim, "/prompt", &json!({"prompt": support::invert_save(3)})).await;
    assert_eq!(status, 200);
    let frames = observer
        .until(|f| f.kind() == "status" && f.data()["status"]["exec_info"]["queue_remaining"] == 0)
        .await;
    assert_eq!(
        kinds(&frames),
        recorded_after_hello("ws-10-no-client-id.jsonl")
    );
}

#[tokio::test]
async fn rejected_prompt_sends_nothing_and_other_clients_hear_only_broadcasts() {
    let sim = sim().await;
    let mut owner = Ws::ready(&sim, "owner").await;
    let mut other = Ws::ready(&sim, "other").await;
    let bad = json!({"1": {"class_type": "EmptyImage", "inputs": {"width": 8}}, "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}});
    let (status, _) = support::post(
        &sim,
        "/prompt",
        &json!({"prompt": bad, "client_id": "owner"}),
    )
    .await;
    assert_eq!(status, 400);
    let id = submit(&sim, &getimagesize_savews(), "owner").await;
    // The first frame after the rejected prompt belongs to the accepted one.
    let first = owner.next().await;
    assert_eq!(first.kind(), "status");
    assert_eq!(first.data()["status"]["exec_info"]["queue_remaining"], 1);
    owner.run(&id).await;
    let frames = other
        .until(|f| f.kind() == "status" && f.data()["status"]["exec_info"]["queue_remaining"] == 0)
        .await;
    assert_eq!(kinds(&frames), ["status", "status", "bin3", "status"]);
}

#[tokio::test]
async fn second_socket_with_same_client_id_takes_over_mid_run() {
    let config = SimConfig::default().node_exec_time("ImageBlur", Duration::from_millis(200));
    let sim = SimServer::start(config).await.unwrap();
    let mut first = Ws::ready(&sim, "same").await;
    let prompt = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 1}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 1, "sigma": 1.0}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}
    });
    let id = submit(&sim, &prompt, "same").await;
    first
        .until(|f| f.kind() == "executing" && f.data()["node"] == "2")
        .await;
    let mut second = Ws::connect(&sim, "same").await;
    let hello = second.next().await;
    assert_eq!(hello.kind(), "status");
    assert_eq!(hello.data()["status"]["exec_info"]["queue_remaining"], 1);
    let current = second.next().await;
    assert_eq!(
        current.json(),
        &json!({"type": "executing", "data": {"node": "2"}})
    );
    let rest = second.run(&id).await;
    assert_eq!(of_kind(&rest, "execution_success").len(), 1);
    // The first socket went quiet: nothing is queued before the close that dropping brings.
    sim.drop_websockets();
    assert_eq!(first.try_next().await, None);
}

#[tokio::test]
async fn socket_without_client_id_gets_a_generated_sid() {
    let sim = sim().await;
    let mut ws = Ws::connect_url(&sim.ws_url()).await;
    let hello = ws.next().await;
    assert_eq!(hello.kind(), "status");
    assert!(hello.data()["sid"].as_str().is_some_and(|s| s.len() == 32));
}
