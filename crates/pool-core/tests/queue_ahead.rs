//! Queue-ahead (`PoolBuilder::queue_ahead`) on simulated servers: a busy server holds its
//! next prompt in its own queue; a prompt waiting there is taken back when another server
//! frees with nothing queued for it; no job runs twice, no server executes more than one
//! prompt at a time or holds more than `max_concurrent + 1`, and no job stays behind a busy
//! server while another one is free.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use comfy_sim::{SimConfig, SimServer, Stats};
use pool_core::{AttemptOutcome, JobHandle, JobOptions, Pool, ServerConfig, ShutdownMode};
use serde_json::{Value, json};
use support::sim_pool;

/// EmptyImage → ImageInvert → SaveImage, told apart by `color` (same structure, same hash).
fn job(color: usize) -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": color}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "ahead"}}
    })
}

/// Simulated servers whose `ImageInvert` takes these times.
async fn servers(times: &[Duration]) -> Vec<SimServer> {
    let mut servers = Vec::new();
    for time in times {
        let config = SimConfig::default().node_exec_time("ImageInvert", *time);
        servers.push(SimServer::start(config).await.unwrap());
    }
    servers
}

fn urls(servers: &[SimServer]) -> Vec<String> {
    servers.iter().map(SimServer::url).collect()
}

/// How many times each prompt id ended with `execution_success`, over all servers, from
/// what each server received and its history (a prompt executed is in its history).
async fn executions(servers: &[SimServer]) -> HashMap<String, usize> {
    let mut runs = HashMap::new();
    for server in servers {
        let client = comfy_client::Client::builder(server.url()).build().unwrap();
        for received in server.stats().received.iter().filter(|r| r.accepted) {
            if client.history(&received.prompt_id).await.unwrap().is_some() {
                *runs.entry(received.prompt_id.clone()).or_insert(0) += 1;
            }
        }
    }
    runs
}

/// Every job completed, its result's prompt executed exactly once and no other prompt of
/// it executed anywhere; no server executed a prompt twice or held more than `held`.
async fn check_once(servers: &[SimServer], handles: &[JobHandle], held: u64) -> usize {
    let mut outputs = Vec::new();
    for h in handles {
        outputs.push(h.result().await.unwrap());
    }
    let runs = executions(servers).await;
    let mut withdrawn = 0;
    for (h, output) in handles.iter().zip(outputs) {
        assert_eq!(runs.get(&output.prompt_id), Some(&1), "{}", h.id());
        for attempt in &h.record().attempts {
            if attempt.prompt_id != output.prompt_id {
                assert_eq!(attempt.outcome, AttemptOutcome::Withdrawn, "{attempt:?}");
                assert_eq!(runs.get(&attempt.prompt_id), None, "{attempt:?} ran");
                withdrawn += 1;
            }
        }
    }
    let stats: Vec<Stats> = servers.iter().map(SimServer::stats).collect();
    let executed: u64 = stats.iter().map(|s| s.prompts_executed).sum();
    assert_eq!(executed as usize, handles.len(), "{stats:?}");
    for s in &stats {
        assert_eq!(s.prompts_interrupted, 0);
        assert_eq!(s.prompts_failed, 0);
        assert!(s.max_prompts_held <= held, "held {}", s.max_prompts_held);
    }
    withdrawn
}

#[tokio::test]
async fn a_busy_server_holds_its_next_prompt_and_runs_each_job_once() {
    let servers = servers(&[Duration::from_millis(20), Duration::from_millis(20)]).await;
    let pool = sim_pool(&urls(&servers)).queue_ahead(1).build().unwrap();
    pool.ready().await;
    let mut handles = Vec::new();
    for i in 0..30 {
        handles.push(pool.enqueue(job(i), JobOptions::new()).await.unwrap());
    }
    check_once(&servers, &handles, 2).await;
    // Each server held its running prompt and the next one at once: the queue-ahead.
    for server in &servers {
        assert_eq!(server.stats().max_prompts_held, 2);
    }
    pool.shutdown(ShutdownMode::Drain).await;
}

#[tokio::test]
async fn without_queue_ahead_a_server_holds_one_prompt() {
    let servers = servers(&[Duration::from_millis(5), Duration::from_millis(5)]).await;
    let pool = sim_pool(&urls(&servers)).build().unwrap();
    pool.ready().await;
    let mut handles = Vec::new();
    for i in 0..20 {
        handles.push(pool.enqueue(job(i), JobOptions::new()).await.unwrap());
    }
    let withdrawn = check_once(&servers, &handles, 1).await;
    assert_eq!(withdrawn, 0);
    pool.shutdown(ShutdownMode::Drain).await;
}

#[tokio::test]
async fn a_prompt_waiting_on_a_busy_server_is_taken_back_for_a_free_one() {
    // s0 takes 3 s per prompt, s1 20 ms.
    let servers = servers(&[Duration::from_secs(3), Duration::from_millis(20)]).await;
    let pool = sim_pool(&urls(&servers)).queue_ahead(1).build().unwrap();
    pool.ready().await;
    let slow = pool
        .enqueue(job(1), JobOptions::new().prefer_server("s0"))
        .await
        .unwrap();
    let fast = pool
        .enqueue(job(2), JobOptions::new().prefer_server("s1"))
        .await
        .unwrap();
    // Both servers are busy: it waits in s0's queue (its preference), behind the slow one.
    let behind = pool
        .enqueue(job(3), JobOptions::new().prefer_server("s0"))
        .await
        .unwrap();
    fast.result().await.unwrap();
    // s1 freed with nothing queued: the waiting prompt was taken back and ran there, long
    // before s0's prompt ends.
    let output = behind.result().await.unwrap();
    assert_eq!(output.server.as_str(), "s1");
    let attempts = behind.record().attempts;
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0].server.as_str(), "s0");
    assert_eq!(attempts[0].outcome, AttemptOutcome::Withdrawn);
    assert_eq!(attempts[1].server.as_str(), "s1");
    assert_eq!(attempts[1].outcome, AttemptOutcome::Succeeded);
    // s0 accepted it once and no longer holds it: only the slow prompt is there, running.
    let on_s0 = servers[0].stats();
    assert!(
        on_s0
            .received
            .iter()
            .any(|r| r.accepted && r.prompt_id == attempts[0].prompt_id)
    );
    assert_eq!(servers[0].queue_remaining(), 1);
    assert!(slow.try_result().is_none(), "the slow job is still running");
    slow.result().await.unwrap();
    check_once(&servers, &[slow, fast, behind], 2).await;
    pool.shutdown(ShutdownMode::Drain).await;
}

#[tokio::test]
async fn a_quick_server_running_a_long_prompt_gives_back_the_prompt_behind_it() {
    // s0 is quick (1 ms a prompt) except for blurs (3 s); s1 takes 20 ms a prompt.
    let quick = SimConfig::default()
        .node_exec_time("ImageInvert", Duration::from_millis(1))
        .node_exec_time("ImageBlur", Duration::from_secs(3));
    let s0 = SimServer::start(quick).await.unwrap();
    let s1 = servers(&[Duration::from_millis(20)]).await.remove(0);
    let servers = [s0, s1];
    let pool = sim_pool(&urls(&servers)).queue_ahead(1).build().unwrap();
    pool.ready().await;
    // s0 is known to be quick: a waiting prompt there is not worth a pull at first.
    let mut handles = Vec::new();
    for i in 0..4 {
        let warm = pool.enqueue(job(i), JobOptions::new().require_server("s0"));
        let warm = warm.await.unwrap();
        warm.result().await.unwrap();
        handles.push(warm);
    }
    let blur = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 1, "sigma": 1.0}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "ahead"}}
    });
    let long = pool
        .enqueue(blur, JobOptions::new().prefer_server("s0"))
        .await
        .unwrap();
    let other = pool
        .enqueue(job(10), JobOptions::new().prefer_server("s1"))
        .await
        .unwrap();
    let behind = pool
        .enqueue(job(11), JobOptions::new().prefer_server("s0"))
        .await
        .unwrap();
    other.result().await.unwrap();
    // Once the blur had run long enough, the prompt behind it was taken back to s1.
    let output = behind.result().await.unwrap();
    assert_eq!(output.server.as_str(), "s1");
    assert!(long.try_result().is_none(), "the long prompt still runs");
    long.result().await.unwrap();
    handles.extend([long, other, behind]);
    check_once(&servers, &handles, 2).await;
    pool.shutdown(ShutdownMode::Drain).await;
}

#[tokio::test]
async fn racing_pulls_never_run_a_job_twice_nor_strand_one() {
    // Uneven servers and waves of jobs: at the end of each wave the quick servers free
    // while the slow ones still hold a prompt ahead, so pulls race with those prompts'
    // starts.
    // Two quick servers (never pulled from: their prompts start sooner than a pull would
    // move them) and two slow enough to pull from.
    let times = [0, 3, 30, 45].map(Duration::from_millis);
    let servers = servers(&times).await;
    let configs: Vec<ServerConfig> = urls(&servers)
        .into_iter()
        .enumerate()
        .map(|(i, url)| ServerConfig::new(url).id(format!("s{i}")))
        .collect();
    let pool = Pool::builder()
        .servers(configs)
        .queue_ahead(1)
        .build()
        .unwrap();
    pool.ready().await;
    let mut handles = Vec::new();
    for wave in 0..6 {
        let mut batch = Vec::new();
        for i in 0..24 {
            let job = pool.enqueue(job(wave * 100 + i), JobOptions::new()).await;
            batch.push(job.unwrap());
        }
        for h in &batch {
            h.result().await.unwrap();
        }
        handles.extend(batch);
    }
    let withdrawn = check_once(&servers, &handles, 2).await;
    println!("{withdrawn} prompts taken back");
    let stats = pool.stats().await.unwrap();
    assert_eq!(stats.completed, 144);
    pool.shutdown(ShutdownMode::Drain).await;
}
