//! Routing and the events of real runs, against simulated ComfyUI servers.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use comfy_sim::{SimCluster, SimConfig};
use pool_core::{JobEventKind, JobOptions, ShutdownMode};
use support::{chain, collect_job, names, sim_pool};

#[tokio::test]
async fn jobs_spread_over_servers_and_return_history_outputs() {
    let cluster = SimCluster::start(3, SimConfig::default()).await.unwrap();
    let pool = sim_pool(&cluster.urls()).build().unwrap();
    pool.ready().await;
    let mut handles = Vec::new();
    for i in 0..30 {
        handles.push(pool.enqueue(chain(i % 3), JobOptions::new()).await.unwrap());
    }
    let mut per_server = std::collections::HashMap::new();
    for h in &handles {
        let output = h.result().await.unwrap();
        let images = output.outputs["2"]["images"].as_array().unwrap();
        assert_eq!(images.len(), 1, "{:?}", output.outputs);
        *per_server.entry(output.server.to_string()).or_insert(0) += 1;
    }
    assert_eq!(per_server.len(), 3, "{per_server:?}");
    let executed: u64 = cluster
        .servers()
        .iter()
        .map(|s| s.stats().prompts_executed)
        .sum();
    assert_eq!(executed, 30);
    pool.shutdown(ShutdownMode::Drain).await;
}

#[tokio::test]
async fn a_real_run_reports_progress_outputs_and_timings_in_order() {
    let config = SimConfig::default()
        .node_steps("ImageInvert", 3)
        .exec_time(std::time::Duration::ZERO);
    let cluster = SimCluster::start(1, config).await.unwrap();
    let pool = sim_pool(&cluster.urls()).build().unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    let job = pool.enqueue(chain(2), JobOptions::new()).await.unwrap();
    let kinds = collect_job(&mut events, job.id()).await;
    let n = names(&kinds);
    let pos = |name: &str| {
        n.iter()
            .position(|k| *k == name)
            .unwrap_or_else(|| panic!("no {name} in {n:?}"))
    };
    assert!(pos("queued") < pos("started"));
    assert!(pos("started") < pos("accepted"));
    assert!(pos("accepted") < pos("executing"));
    assert!(pos("executing") < pos("progress"));
    assert!(pos("progress") < pos("output"));
    assert_eq!(n.last(), Some(&"completed"));
    let prompt_id = kinds.iter().find_map(|k| match k {
        JobEventKind::Run(pool_core::RunEvent::Accepted { prompt_id }) => Some(prompt_id.clone()),
        _ => None,
    });
    let output = job.result().await.unwrap();
    assert_eq!(prompt_id.as_deref(), Some(output.prompt_id.as_str()));
    let received = &cluster.servers()[0].stats().received;
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].prompt_id, output.prompt_id,
        "submitted under the pool's prompt id"
    );
    assert!(!output.timings.nodes.is_empty());
    assert_eq!(output.timings.attempts.len(), 1);
}
