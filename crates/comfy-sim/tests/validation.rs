//! `POST /prompt` validation: status codes and error bodies compared with the recordings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use comfy_sim::{SimConfig, SimServer};
use serde_json::{Value, json};
use support::{fixture, post, shape};

async fn sim() -> SimServer {
    SimServer::start(SimConfig::default()).await.unwrap()
}

/// Replays a recorded `POST /prompt` and returns (recorded, simulated) status and body.
async fn replay(sim: &SimServer, name: &str) -> ((u64, Value), (u16, Value)) {
    let recording = fixture(name);
    let body = &recording["request"]["body"];
    let answer = post(sim, "/prompt", body).await;
    let recorded = (
        recording["response"]["status"].as_u64().unwrap(),
        recording["response"]["body"].clone(),
    );
    (recorded, answer)
}

#[tokio::test]
async fn rejections_match_the_recorded_bodies_exactly() {
    let sim = sim().await;
    for name in [
        "17-prompt-post-unknown-class.json",
        "18-prompt-post-bad-value.json",
        "19-prompt-post-missing-input.json",
        "19b-prompt-post-wrong-type.json",
        "20-prompt-post-no-outputs.json",
        "20b-prompt-post-no-prompt.json",
        "20c-prompt-post-loadimage-missing-file.json",
        "20d-prompt-post-missing-class_type.json",
    ] {
        let ((status, body), (got_status, got)) = replay(&sim, name).await;
        assert_eq!(u64::from(got_status), status, "{name}");
        assert_eq!(got, body, "{name}");
    }
}

#[tokio::test]
async fn link_to_a_missing_node_is_an_inner_validation_exception() {
    let sim = sim().await;
    let ((status, body), (got_status, got)) = replay(&sim, "19c-prompt-post-bad-link.json").await;
    assert_eq!(u64::from(got_status), status);
    assert_eq!(got["error"], body["error"]);
    let error = &got["node_errors"]["2"]["errors"][0];
    let recorded = &body["node_errors"]["2"]["errors"][0];
    assert_eq!(error["type"], "exception_during_inner_validation");
    assert_eq!(error["extra_info"]["exception_type"], "KeyError");
    assert_eq!(shape(error), shape(recorded));
    assert_eq!(got["node_errors"]["2"]["dependent_outputs"], json!(["3"]));
}

#[tokio::test]
async fn accepted_prompt_answer_matches_the_recording() {
    let sim = sim().await;
    let ((status, body), (got_status, got)) = replay(&sim, "16-prompt-post-success.json").await;
    assert_eq!(u64::from(got_status), status);
    assert_eq!(shape(&got), shape(&body));
    assert_eq!(got["number"], 0);
    assert_eq!(got["node_errors"], json!({}));
}

#[tokio::test]
async fn non_json_body_is_a_plain_text_500() {
    let sim = sim().await;
    let recording = fixture("20e-prompt-post-not-json.json");
    let response = support::http()
        .post(format!("{}/prompt", sim.url()))
        .header("content-type", "application/json")
        .body("this is not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 500);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"));
    assert_eq!(
        response.text().await.unwrap(),
        recording["response"]["body_raw"].as_str().unwrap()
    );
}

#[tokio::test]
async fn uninstalled_model_is_value_not_in_list_on_the_loader() {
    let sim = sim().await;
    let (status, body) = post(
        &sim,
        "/prompt",
        &json!({"prompt": support::txt2img("sdxl.safetensors")}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "prompt_outputs_failed_validation");
    let node = &body["node_errors"]["1"];
    assert_eq!(node["class_type"], "CheckpointLoaderSimple");
    let error = &node["errors"][0];
    assert_eq!(error["type"], "value_not_in_list");
    assert_eq!(error["extra_info"]["input_name"], "ckpt_name");
    assert_eq!(error["extra_info"]["received_value"], "sdxl.safetensors");
    assert_eq!(
        error["details"],
        "ckpt_name: 'sdxl.safetensors' not in ['sd15.safetensors']"
    );
    // The installed checkpoint passes.
    let (status, _) = post(
        &sim,
        "/prompt",
        &json!({"prompt": support::txt2img("sd15.safetensors")}),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn model_lists_follow_the_configuration() {
    let config = SimConfig::default()
        .models("checkpoints", &["a.safetensors"])
        .model("loras", "detail.safetensors");
    let sim = SimServer::start(config).await.unwrap();
    let (status, _) = post(
        &sim,
        "/prompt",
        &json!({"prompt": support::txt2img("sd15.safetensors")}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post(
        &sim,
        "/prompt",
        &json!({"prompt": support::txt2img("a.safetensors")}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, info) = support::get(&sim, "/object_info/CheckpointLoaderSimple").await;
    assert_eq!(
        info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0],
        json!(["a.safetensors"])
    );
    let (_, loras) = support::get(&sim, "/models/loras").await;
    assert_eq!(loras, json!(["detail.safetensors"]));
}

#[tokio::test]
async fn value_above_max_and_bad_combo_are_reported() {
    let sim = sim().await;
    let mut prompt = support::invert_save(1);
    prompt["1"]["inputs"]["width"] = json!(20000);
    let (status, body) = post(&sim, "/prompt", &json!({"prompt": prompt})).await;
    assert_eq!(status, 400);
    let error = &body["node_errors"]["1"]["errors"][0];
    assert_eq!(error["type"], "value_bigger_than_max");
    assert_eq!(error["message"], "Value 20000 bigger than max of 16384");

    let prompt = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 1}},
        "2": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "magic", "scale_by": 1.0}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}
    });
    let (status, body) = post(&sim, "/prompt", &json!({"prompt": prompt})).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["node_errors"]["2"]["errors"][0]["type"],
        "value_not_in_list"
    );
}

#[tokio::test]
async fn wrong_link_type_is_a_return_type_mismatch() {
    let sim = sim().await;
    let prompt = json!({
        "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}
    });
    let (status, body) = post(&sim, "/prompt", &json!({"prompt": prompt})).await;
    assert_eq!(status, 400);
    let error = &body["node_errors"]["2"]["errors"][0];
    assert_eq!(error["type"], "return_type_mismatch");
    assert_eq!(error["extra_info"]["received_type"], "LATENT");
}

#[tokio::test]
async fn rejected_prompts_still_take_a_number() {
    let sim = sim().await;
    post(&sim, "/prompt", &json!({"prompt": {}})).await;
    post(&sim, "/prompt", &json!({"client_id": "x"})).await;
    let (_, body) = post(&sim, "/prompt", &json!({"prompt": support::trivial(1)})).await;
    assert_eq!(body["number"], 2);
    let (_, body) = post(
        &sim,
        "/prompt",
        &json!({"prompt": support::trivial(2), "front": true}),
    )
    .await;
    assert_eq!(body["number"], -3);
}

#[tokio::test]
async fn caller_prompt_id_is_echoed_and_used() {
    let sim = sim().await;
    let (status, body) = post(
        &sim,
        "/prompt",
        &json!({"prompt": support::trivial(1), "prompt_id": "my-own-id", "client_id": "c"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["prompt_id"], "my-own-id");
    let received = sim.stats().received;
    assert_eq!(received[0].prompt_id, "my-own-id");
    assert_eq!(received[0].extra_data, json!({"client_id": "c"}));
}

#[tokio::test]
async fn malformed_prompts_get_an_answer_not_a_panic() {
    let sim = sim().await;
    let cases = [
        json!({"prompt": {"1": 5}}),
        json!({"prompt": [1, 2]}),
        json!({"prompt": "text"}),
        json!({"prompt": {"1": {"class_type": "SaveImage", "inputs": [1]}}}),
        json!({"prompt": {"1": {"class_type": 7, "inputs": {}}}}),
        json!({"prompt": {"1": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}}),
        json!({"prompt": {"1": {"class_type": "PreviewImage", "inputs": {"images": ["1", 99]}}}}),
        json!({"prompt": support::trivial(1), "number": "soon", "front": "yes", "extra_data": 3}),
        json!([1, 2, 3]),
    ];
    for body in cases {
        let (status, _) = post(&sim, "/prompt", &body).await;
        assert!(matches!(status, 200 | 400 | 500), "{body}: {status}");
    }
    assert_eq!(support::get(&sim, "/queue").await.0, 200);
}
