//! A crash ends the old server life completely: its running, hung, sleeping and queued
//! prompts never run, never reach a socket and never count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use comfy_sim::{SimConfig, SimServer, WorkflowCounts};
use serde_json::{Value, json};
use support::{Ws, http_unpooled, keys, send, trivial};

/// `GET path` on a new connection: the old life's keep-alive connections die with it.
async fn get(sim: &SimServer, path: &str) -> (u16, Value) {
    send(http_unpooled().get(format!("{}{path}", sim.url()))).await
}

/// Posts `prompt` tagged `tag` for `client` and returns the accepted prompt id.
async fn submit_tagged(sim: &SimServer, prompt: &Value, client: &str, tag: &str) -> String {
    let body = json!({"prompt": prompt, "client_id": client, "extra_data": {"sim_tag": tag}});
    let url = format!("{}/prompt", sim.url());
    let (status, answer) = send(http_unpooled().post(url).json(&body)).await;
    assert_eq!(status, 200, "{answer}");
    answer["prompt_id"].as_str().unwrap().to_owned()
}

/// Asserts that no run of workflow `counts` ended, in any way.
fn assert_never_ended(counts: WorkflowCounts) {
    assert_eq!(
        (counts.executed, counts.failed, counts.interrupted),
        (0, 0, 0),
        "{counts:?}"
    );
}

/// The server is empty: nothing running, pending or remembered.
async fn assert_fresh_life(sim: &SimServer) {
    assert_eq!(sim.queue_remaining(), 0);
    assert_eq!(
        get(sim, "/queue").await.1,
        json!({"queue_running": [], "queue_pending": []})
    );
    assert_eq!(get(sim, "/history").await.1, json!({}));
}

#[tokio::test]
async fn hung_and_queued_prompts_of_a_crashed_life_never_run() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    // Each round gives the old life a fresh chance to leak; crash and stop alternate.
    let rounds: u32 = 6;
    for round in 0..rounds {
        sim.faults().set_hang(true);
        let mut old = Ws::ready(&sim, "old").await;
        submit_tagged(&sim, &trivial(round), "old", "old").await;
        for queued in 1..=2 {
            submit_tagged(&sim, &trivial(100 * queued + round), "old", "old").await;
        }
        old.until(|f| f.kind() == "executing").await;

        if round % 2 == 0 {
            sim.crash_and_restart().await.unwrap();
            sim.faults().set_hang(false);
        } else {
            sim.stop().await;
            sim.faults().set_hang(false);
            sim.restart().await.unwrap();
        }
        assert_fresh_life(&sim).await;

        // A full run of the new life: the old executor, were it alive, runs meanwhile.
        let mut new = Ws::ready(&sim, "new").await;
        let id = submit_tagged(&sim, &trivial(1000 + round), "new", "new").await;
        let frames = new.run(&id).await;
        for frame in &frames {
            if let Some(prompt_id) = frame.json().pointer("/data/prompt_id") {
                assert_eq!(prompt_id, id.as_str(), "{frame:?}");
            }
        }
        assert_eq!(keys(&get(&sim, "/history").await.1), BTreeSet::from([id]));
        assert_eq!(sim.queue_remaining(), 0);
        while let Some(frame) = old.try_next().await {
            assert_eq!(frame.kind(), "status", "{frame:?}");
        }
    }

    let stats = sim.stats();
    assert_never_ended(stats.for_tag("old"));
    assert_eq!(stats.for_tag("old").accepted, u64::from(3 * rounds));
    assert_eq!(stats.for_tag("new").executed, u64::from(rounds));
    assert_eq!(stats.prompts_executed, u64::from(rounds));
    assert_eq!((stats.prompts_failed, stats.prompts_interrupted), (0, 0));
}

/// Submits a prompt tagged `tag` (of a `color` not run before, so nothing is cached) that takes `EmptyImage`'s long time, and returns once its
/// run sleeps in that node. Hanging holds the run at the node while HTTP lets time run freely.
async fn sleeping_in_first_node(sim: &SimServer, tag: &str, color: u32) -> String {
    sim.faults().set_hang(true);
    let id = submit_tagged(sim, &trivial(color), tag, tag).await;
    assert_eq!(
        get(sim, "/queue").await.1["queue_running"][0][1],
        id.as_str()
    );
    sim.faults().set_hang(false);
    // One turn of the scheduler moves the released run into its sleep.
    tokio::task::yield_now().await;
    id
}

#[tokio::test(start_paused = true)]
async fn a_prompt_sleeping_in_a_long_node_ends_with_its_life() {
    let node_time = Duration::from_secs(60);
    let config = SimConfig::default().node_exec_time("EmptyImage", node_time);
    let sim = SimServer::start(config).await.unwrap();

    // Control: without a crash, the time passing alone finishes such a run.
    let control = sleeping_in_first_node(&sim, "control", 1).await;
    tokio::time::advance(node_time * 3).await;
    let entry = get(&sim, &format!("/history/{control}")).await.1;
    assert_eq!(entry[&control]["status"]["status_str"], "success");
    assert_eq!(sim.stats().for_tag("control").executed, 1);

    sleeping_in_first_node(&sim, "old", 2).await;
    submit_tagged(&sim, &trivial(3), "old", "old").await;
    sim.crash_and_restart().await.unwrap();
    tokio::time::advance(node_time * 3).await;

    assert_never_ended(sim.stats().for_tag("old"));
    assert_fresh_life(&sim).await;
    assert_never_ended(sim.stats().for_tag("old"));
    assert_eq!(sim.stats().prompts_executed, 1);
}
