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

#[tokio::test]
async fn the_high_water_mark_counts_pending_and_running_prompts_per_client() {
    let (sim, mut ws) = support::blur_server(std::time::Duration::from_secs(600), "a").await;
    // One after the other: never more than one held.
    let id = submit(&sim, &support::trivial(1), "a").await;
    ws.run(&id).await;
    assert_eq!(sim.stats().max_prompts_held, 1);

    support::submit_until_node(&sim, &mut ws, &support::blur(1, 1.0), "a", "2").await;
    let pending = submit(&sim, &support::trivial(2), "a").await;
    submit(&sim, &support::trivial(3), "a").await;
    submit(&sim, &support::trivial(4), "b").await;
    let stats = sim.stats();
    assert_eq!(stats.max_prompts_held, 4);
    assert_eq!(stats.max_held_by("a"), 3);
    assert_eq!(stats.max_held_by("b"), 1);
    assert_eq!(stats.max_held_by("nobody"), 0);

    // Prompts leaving the queue make room: the marks only move when exceeded.
    support::post(&sim, "/queue", &json!({"delete": [pending]})).await;
    submit(&sim, &support::trivial(5), "a").await;
    assert_eq!(sim.stats().max_held_by("a"), 3);
    support::post(&sim, "/queue", &json!({"clear": true})).await;
    for color in 6..9 {
        submit(&sim, &support::trivial(color), "b").await;
    }
    let stats = sim.stats();
    assert_eq!(stats.max_prompts_held, 4);
    assert_eq!(stats.max_held_by("b"), 3);
    // Prompts without a client id count in the total only.
    support::post(&sim, "/prompt", &json!({"prompt": support::trivial(9)})).await;
    let stats = sim.stats();
    assert_eq!(stats.max_prompts_held, 5);
    assert_eq!(stats.max_prompts_held_by_client.len(), 2);

    // A crash empties the queue but the marks stay until reset.
    sim.crash_and_restart().await.unwrap();
    assert_eq!(sim.stats().max_prompts_held, 5);
    sim.reset_stats();
    assert_eq!(sim.stats().max_prompts_held, 0);
}
