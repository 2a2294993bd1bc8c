//! Prompts of any depth and width get an answer: validation and planning walk the graph
//! without recursion, so no input can overflow the server's stack.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use comfy_sim::{FaultSettings, SimConfig, SimServer};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use support::{Ws, get, post};

/// `EmptyImage` -> `len - 2` × `ImageInvert` -> `PreviewImage`, each node linking to the one
/// before it; node ids are "0" .. "len-1".
fn chain(len: usize) -> Value {
    let mut nodes = Map::new();
    nodes.insert(
        "0".into(),
        json!({"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 3}}),
    );
    for i in 1..len - 1 {
        nodes.insert(
            i.to_string(),
            json!({"class_type": "ImageInvert", "inputs": {"image": [(i - 1).to_string(), 0]}}),
        );
    }
    nodes.insert(
        (len - 1).to_string(),
        json!({"class_type": "PreviewImage", "inputs": {"images": [(len - 2).to_string(), 0]}}),
    );
    Value::Object(nodes)
}

async fn big_sim(faults: FaultSettings) -> SimServer {
    let config = SimConfig::default()
        .body_limit(64 * 1024 * 1024)
        .faults(faults);
    SimServer::start(config).await.unwrap()
}

#[tokio::test]
async fn a_ten_thousand_node_chain_validates_and_runs() {
    let sim = big_sim(FaultSettings::default()).await;
    // The run's messages go to a client without a socket; the watcher hears the broadcasts.
    let mut watcher = Ws::ready(&sim, "watcher").await;
    let (status, body) = post(
        &sim,
        "/prompt",
        &json!({"prompt": chain(10_000), "client_id": "runner"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["prompt_id"].as_str().unwrap().to_owned();
    watcher
        .until(|f| f.kind() == "status" && f.data()["status"]["exec_info"]["queue_remaining"] == 0)
        .await;
    let (_, history) = get(&sim, &format!("/history/{id}")).await;
    let entry = &history[&id];
    assert_eq!(entry["status"]["status_str"], "success");
    assert_eq!(entry["outputs"]["9999"]["images"][0]["type"], "temp");
    assert_eq!(sim.stats().prompts_executed, 1);
}

#[tokio::test]
async fn a_hundred_thousand_node_chain_is_validated_to_its_root() {
    // A broken root: the error is found 100,000 links away from the output.
    let sim = big_sim(FaultSettings::default()).await;
    let mut prompt = chain(100_000);
    prompt["0"]["inputs"]["width"] = json!(-5);
    let (status, body) = post(&sim, "/prompt", &json!({"prompt": prompt})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "prompt_outputs_failed_validation");
    let root = &body["node_errors"]["0"];
    assert_eq!(root["errors"][0]["type"], "value_smaller_than_min");
    assert_eq!(root["dependent_outputs"], json!(["99999"]));
    assert_eq!(body["node_errors"].as_object().unwrap().len(), 1);
}

#[tokio::test]
async fn a_cycle_is_planned_once_and_the_run_ends() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let mut ws = Ws::ready(&sim, "c").await;
    let prompt = json!({
        "1": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}
    });
    let id = support::submit(&sim, &prompt, "c").await;
    let frames = ws.run(&id).await;
    // Each node of the cycle runs once, then the output.
    assert_eq!(support::of_kind(&frames, "executing").len(), 4);
}

/// `[[[ ... 7 ... ]]]`, `depth` arrays deep.
fn nested(depth: usize) -> Value {
    let mut value = json!(7);
    for _ in 0..depth {
        value = Value::Array(vec![value]);
    }
    value
}

#[tokio::test]
async fn deeply_nested_input_values_are_rejected_not_crashed_on() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let mut prompt = support::trivial(1);
    prompt["1"]["inputs"]["width"] = nested(100);
    let (status, _) = post(&sim, "/prompt", &json!({"prompt": prompt})).await;
    assert_eq!(status, 400);
    // Deeper than any JSON parser here accepts: the body is refused like invalid JSON.
    let deep = format!(
        "{{\"prompt\": {{\"1\": {{\"class_type\": \"EmptyImage\", \"inputs\": {{\"width\": {}7{}}}}}}}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let response = support::http()
        .post(format!("{}/prompt", sim.url()))
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(get(&sim, "/queue").await.0, 200);
}

const CLASSES: &[&str] = &[
    "EmptyImage",
    "ImageInvert",
    "ImageBlur",
    "ImageScaleBy",
    "GetImageSize",
    "PreviewImage",
    "SaveImage",
    "SaveImageWebsocket",
    "EmptyLatentImage",
    "NoSuchNode",
];

const INPUTS: &[&str] = &[
    "image",
    "images",
    "width",
    "height",
    "batch_size",
    "color",
    "filename_prefix",
    "blur_radius",
    "sigma",
    "scale_by",
    "upscale_method",
];

/// Any input value: links (to existing, missing or the same node, any slot), numbers,
/// strings, nested arrays and objects.
fn value(nodes: usize) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        (0..nodes + 2, 0u64..4).prop_map(|(n, slot)| json!([n.to_string(), slot])),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-z ]{0,8}".prop_map(Value::from),
        Just(Value::Null),
        Just(json!("nearest-exact")),
        (1i64..64).prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A wide workflow of up to 40 random nodes with random inputs.
fn wide() -> impl Strategy<Value = Value> {
    (1usize..40).prop_flat_map(|n| {
        prop::collection::vec(
            (
                prop::sample::select(CLASSES),
                prop::collection::btree_map(prop::sample::select(INPUTS), value(n), 0..5),
            ),
            n,
        )
        .prop_map(|nodes| {
            let map: Map<String, Value> = nodes
                .into_iter()
                .enumerate()
                .map(|(i, (class, inputs))| {
                    let inputs: Map<String, Value> =
                        inputs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                    (
                        i.to_string(),
                        json!({"class_type": class, "inputs": inputs}),
                    )
                })
                .collect();
            Value::Object(map)
        })
    })
}

/// A long chain with a few random nodes rewired, retyped or broken.
fn deep() -> impl Strategy<Value = Value> {
    (3usize..1000).prop_flat_map(|len| {
        let edits =
            prop::collection::vec((0..len, prop::sample::select(CLASSES), 0..len + 2), 0..4);
        edits.prop_map(move |edits| {
            let mut prompt = chain(len);
            for (node, class, target) in edits {
                let node = &mut prompt[node.to_string()];
                node["class_type"] = json!(class);
                node["inputs"]["image"] = json!([target.to_string(), 0]);
            }
            prompt
        })
    })
}

/// Posts each prompt; accepted ones must run to their end.
fn never_panics(prompts: impl Strategy<Value = Value>, cases: u32) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (sim, ws) = runtime.block_on(async {
        let sim = SimServer::start(SimConfig::default()).await.unwrap();
        let ws = Ws::ready(&sim, "prop").await;
        (sim, ws)
    });
    let ws = tokio::sync::Mutex::new(ws);
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(prompt in prompts)| {
        runtime.block_on(async {
            let body = json!({"prompt": prompt, "client_id": "prop"});
            let (status, answer) = post(&sim, "/prompt", &body).await;
            assert!(matches!(status, 200 | 400), "{status}: {answer}");
            if status == 200 {
                let id = answer["prompt_id"].as_str().unwrap();
                ws.lock().await.run(id).await;
            }
        });
    });
    runtime.block_on(async {
        assert_eq!(get(&sim, "/queue").await.0, 200);
    });
}

#[test]
fn generated_wide_workflows_never_panic_the_server() {
    never_panics(wide(), 96);
}

#[test]
fn generated_deep_workflows_never_panic_the_server() {
    never_panics(deep(), 16);
}
