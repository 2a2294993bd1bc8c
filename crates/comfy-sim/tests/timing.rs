//! Node execution time and progress steps, on tokio's clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use comfy_sim::{SimConfig, SimServer};
use serde_json::json;
use support::{Ws, of_kind, submit};

#[tokio::test(start_paused = true)]
async fn execution_time_runs_on_tokio_time() {
    let config = SimConfig::default().node_exec_time("ImageInvert", Duration::from_secs(5));
    let sim = SimServer::start(config).await.unwrap();
    let mut ws = Ws::ready(&sim, "t").await;
    let before = tokio::time::Instant::now();
    let id = submit(&sim, &support::invert_save(1), "t").await;
    let frames = ws.run(&id).await;
    assert!(before.elapsed() >= Duration::from_secs(5));
    assert_eq!(of_kind(&frames, "execution_success").len(), 1);
}

#[tokio::test]
async fn steps_produce_progress_messages() {
    let config = SimConfig::default().node_steps("KSampler", 4);
    let sim = SimServer::start(config).await.unwrap();
    let mut ws = Ws::ready(&sim, "s").await;
    let id = submit(&sim, &support::txt2img("sd15.safetensors"), "s").await;
    let frames = ws.run(&id).await;
    let progress: Vec<(u64, u64, String)> = of_kind(&frames, "progress")
        .iter()
        .map(|f| {
            let d = f.data();
            (
                d["value"].as_u64().unwrap(),
                d["max"].as_u64().unwrap(),
                d["node"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        progress,
        (1..=4).map(|v| (v, 4, "5".to_owned())).collect::<Vec<_>>()
    );
    let recorded = support::recorded_message("ws-03-progress-binary.jsonl", "progress");
    assert_eq!(
        support::keys(of_kind(&frames, "progress")[0].data()),
        support::keys(&recorded["data"])
    );
    // Steps changed while running apply to the next prompt.
    sim.faults().set_node_steps("KSampler", 2);
    let mut prompt = support::txt2img("sd15.safetensors");
    prompt["5"]["inputs"]["seed"] = json!(2);
    let id = submit(&sim, &prompt, "s").await;
    assert_eq!(of_kind(&ws.run(&id).await, "progress").len(), 2);
}
