//! Many clients at once, one executor per server, and clusters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashSet;

use comfy_sim::{SimCluster, SimConfig, SimServer};
use serde_json::json;
use support::{Frame, Ws, get, of_kind, submit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_clients_each_receive_only_their_own_runs() {
    let sim = std::sync::Arc::new(SimServer::start(SimConfig::default()).await.unwrap());
    let mut tasks = Vec::new();
    for client in 0..32u32 {
        let sim = std::sync::Arc::clone(&sim);
        tasks.push(tokio::spawn(async move {
            let name = format!("client-{client}");
            let mut ws = Ws::ready(&sim, &name).await;
            let mut mine = HashSet::new();
            for run in 0..4u32 {
                let id = submit(&sim, &support::trivial(client * 10 + run), &name).await;
                mine.insert(id.clone());
                let frames = ws.run(&id).await;
                assert_eq!(of_kind(&frames, "execution_success").len(), 1);
                for frame in &frames {
                    if let Frame::Json(v) = frame
                        && let Some(pid) = v["data"]["prompt_id"].as_str()
                    {
                        assert!(mine.contains(pid), "{name} got a message of {pid}");
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let stats = sim.stats();
    assert_eq!(stats.prompts_executed, 128);
    assert_eq!(stats.ws_connections, 32);
    assert_eq!(
        get(&sim, "/history").await.1.as_object().unwrap().len(),
        128
    );
}

#[tokio::test]
async fn one_prompt_runs_at_a_time_in_queue_order() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let mut ws = Ws::ready(&sim, "o").await;
    let mut ids = Vec::new();
    for color in 0..5 {
        ids.push(submit(&sim, &support::trivial(color), "o").await);
    }
    let last = ids.last().unwrap().clone();
    let frames = ws.run(&last).await;
    let starts: Vec<&str> = of_kind(&frames, "execution_start")
        .iter()
        .map(|f| f.data()["prompt_id"].as_str().unwrap())
        .collect();
    assert_eq!(starts, ids.iter().map(String::as_str).collect::<Vec<_>>());
    // Each run ends before the next starts.
    let mut open = false;
    for frame in &frames {
        match frame.kind().as_str() {
            "execution_start" => {
                assert!(!open);
                open = true;
            }
            "execution_success" => open = false,
            _ => {}
        }
    }
}

#[tokio::test]
async fn cluster_servers_are_independent() {
    let cluster = SimCluster::start(3, SimConfig::default()).await.unwrap();
    assert_eq!(cluster.len(), 3);
    let urls: HashSet<String> = cluster.urls().into_iter().collect();
    assert_eq!(urls.len(), 3);
    let second = cluster.server(1).unwrap();
    second.faults().reject_class("ImageInvert");
    let body = json!({"prompt": support::invert_save(1)});
    assert_eq!(
        support::post(cluster.server(0).unwrap(), "/prompt", &body)
            .await
            .0,
        200
    );
    assert_eq!(support::post(second, "/prompt", &body).await.0, 400);
    assert_eq!(cluster.server(2).unwrap().stats().prompts_received, 0);
}
