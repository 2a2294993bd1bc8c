//! Servers that crash, restart, refuse connections or drop sockets, and cancelling work on
//! them, against simulated ComfyUI servers.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::time::Duration;

use comfy_sim::{SimCluster, SimConfig};
use pool_core::{
    AttemptOutcome, Backoff, FailureClass, JobEventKind, JobOptions, PoolEvent, PoolEvents,
    ServerState,
};
use support::{chain, sim_pool};

fn options() -> JobOptions {
    JobOptions::new().backoff(Backoff::none())
}

async fn wait_state(events: &mut PoolEvents, id: &str, wanted: ServerState) -> Option<String> {
    while let Some(event) = events.recv().await {
        if let PoolEvent::Server {
            server,
            state,
            last_error,
            ..
        } = event
            && server.as_str() == id
            && state == wanted
        {
            return last_error;
        }
    }
    panic!("pool closed");
}

async fn wait_accepted(events: &mut PoolEvents, job: &pool_core::JobId) -> String {
    while let Some(event) = events.recv().await {
        if let PoolEvent::Job(e) = event
            && e.job == *job
            && let JobEventKind::Run(pool_core::RunEvent::Accepted { prompt_id }) = e.kind
        {
            return prompt_id;
        }
    }
    panic!("pool closed");
}

#[tokio::test]
async fn a_prompt_lost_in_a_crash_is_run_elsewhere_and_the_server_rejoins() {
    let cluster = SimCluster::start(2, SimConfig::default()).await.unwrap();
    let s0 = &cluster.servers()[0];
    s0.faults().set_hang(true);
    let pool = sim_pool(&cluster.urls()).build().unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    let job = pool
        .enqueue(chain(1), options().prefer_server("s0"))
        .await
        .unwrap();
    let lost_prompt = wait_accepted(&mut events, job.id()).await;
    assert_eq!(s0.stats().received[0].prompt_id, lost_prompt);
    s0.crash_and_restart().await.unwrap();
    s0.faults().set_hang(false);
    let output = job.result().await.unwrap();
    assert_eq!(output.server.as_str(), "s1");
    assert_eq!(
        output.timings.attempts[0].outcome,
        AttemptOutcome::Failed(FailureClass::ServerDown)
    );
    assert_ne!(output.prompt_id, lost_prompt);
    // The retry went elsewhere, not back to the server that lost it.
    assert_eq!(s0.stats().prompts_received, 1);
    // s0 is back by itself and takes work again.
    if pool.stats().await.unwrap().server("s0").unwrap().state != ServerState::Online {
        wait_state(&mut events, "s0", ServerState::Online).await;
    }
    let again = pool
        .enqueue(chain(0), options().require_server("s0"))
        .await
        .unwrap();
    assert_eq!(again.result().await.unwrap().server.as_str(), "s0");
}

#[tokio::test]
async fn a_stopped_server_goes_offline_and_comes_back_after_restart() {
    let cluster = SimCluster::start(2, SimConfig::default()).await.unwrap();
    let s0 = &cluster.servers()[0];
    let pool = sim_pool(&cluster.urls()).build().unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    s0.stop().await;
    let error = wait_state(&mut events, "s0", ServerState::Offline).await;
    assert!(error.is_some());
    let mut handles = Vec::new();
    for _ in 0..5 {
        handles.push(pool.enqueue(chain(0), options()).await.unwrap());
    }
    for h in handles {
        assert_eq!(h.result().await.unwrap().server.as_str(), "s1");
    }
    s0.restart().await.unwrap();
    wait_state(&mut events, "s0", ServerState::Online).await;
    let job = pool
        .enqueue(chain(0), options().require_server("s0"))
        .await
        .unwrap();
    assert_eq!(job.result().await.unwrap().server.as_str(), "s0");
}

#[tokio::test]
async fn a_crash_is_noticed_from_the_dropped_socket_without_jobs_or_periodic_checks() {
    let cluster = SimCluster::start(1, SimConfig::default()).await.unwrap();
    let s0 = &cluster.servers()[0];
    // No periodic checks and an hour between checks of an offline server: only the
    // websocket can tell the pool that the server went away and came back.
    let hour = Duration::from_secs(3600);
    let pool = sim_pool(&cluster.urls())
        .health_check_interval(None)
        .offline_backoff(hour, hour)
        .build()
        .unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    s0.stop().await;
    let offline = tokio::time::timeout(
        Duration::from_secs(30),
        wait_state(&mut events, "s0", ServerState::Offline),
    )
    .await
    .expect("the crash went unnoticed");
    assert!(offline.is_some_and(|e| e.contains("connect")));
    s0.restart().await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        wait_state(&mut events, "s0", ServerState::Online),
    )
    .await
    .expect("the restart went unnoticed");
    let job = pool.enqueue(chain(0), options()).await.unwrap();
    assert_eq!(job.result().await.unwrap().server.as_str(), "s0");
}

#[tokio::test]
async fn dropped_sockets_do_not_lose_or_duplicate_work() {
    let cluster = SimCluster::start(1, SimConfig::default().exec_time(Duration::from_millis(30)))
        .await
        .unwrap();
    let s0 = &cluster.servers()[0];
    let pool = sim_pool(&cluster.urls()).build().unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    let job = pool.enqueue(chain(3), options()).await.unwrap();
    wait_accepted(&mut events, job.id()).await;
    s0.drop_websockets();
    let output = job.result().await.unwrap();
    assert_eq!(output.timings.attempts.len(), 1);
    assert_eq!(s0.stats().prompts_received, 1);
    assert_eq!(s0.stats().prompts_executed, 1);
}

#[tokio::test]
async fn cancelling_deletes_queued_prompts_and_interrupts_running_ones() {
    let cluster = SimCluster::start(1, SimConfig::default()).await.unwrap();
    let s0 = &cluster.servers()[0];
    s0.faults().set_hang(true);
    let pool = sim_pool(&cluster.urls()).build().unwrap();
    // Two slots: the second prompt waits in the server's own queue.
    drop(pool);
    let pool = pool_core::Pool::builder()
        .server(
            pool_core::ServerConfig::new(s0.url())
                .id("s0")
                .max_concurrent(2),
        )
        .build()
        .unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    let running = pool.enqueue(chain(1), options()).await.unwrap();
    wait_accepted(&mut events, running.id()).await;
    let waiting = pool.enqueue(chain(1), options()).await.unwrap();
    wait_accepted(&mut events, waiting.id()).await;
    assert_eq!(s0.queue_remaining(), 2);
    waiting.cancel();
    assert!(waiting.result().await.unwrap_err().is_cancelled());
    assert!(support::cleaned(&mut events, None).await.1);
    assert_eq!(
        s0.queue_remaining(),
        1,
        "the waiting prompt was deleted from the server queue"
    );
    running.cancel();
    assert!(running.result().await.unwrap_err().is_cancelled());
    assert!(support::cleaned(&mut events, None).await.1);
    assert!(s0.stats().requests("POST /interrupt") >= 1);
    s0.faults().set_hang(false);
    assert_eq!(
        pool.stats().await.unwrap().server("s0").unwrap().in_flight,
        0
    );
}
