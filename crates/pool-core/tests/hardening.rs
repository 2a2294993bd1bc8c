//! Hardening on fake servers, with paused time: cancels that always win, jobs that never
//! wait on a frozen server, deadlines that hold, prompts left on servers cleaned up, servers
//! that fail every prompt ejected, and the deadlines of a run counted from its execution.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pool_core::{
    DeadlineKind, Error, FailureClass, JobOptions, OutlierEjection, Pool, PoolEvent, ServerState,
    ShutdownMode,
};
use pool_failover::NoopStrategy;
use serde_json::json;
use support::{Fake, Step, cleaned, workflow};
use tokio::time::Instant;

/// Awaits `f`, failing the test if it takes ten minutes of (paused) time: a regression here
/// is a job waiting on a frozen server forever.
async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(600), f)
        .await
        .expect("waited ten minutes on a frozen server")
}

/// A pool over fake servers with the strategy out of the way.
fn pool(servers: &[&Arc<Fake>]) -> pool_core::PoolBuilder {
    Pool::builder()
        .servers(servers.iter().map(|f| f.config()))
        .strategy(Arc::new(NoopStrategy))
        .health_check_interval(Some(Duration::from_secs(1)))
}

#[tokio::test(start_paused = true)]
async fn a_cancel_racing_a_failing_attempt_is_not_lost() {
    // The attempt fails just as the cancel is sent: the cancel reaches the engine after the
    // attempt task has dropped its stop signal, and before its failure report.
    let a = Fake::scripted("a", |_| Step::GatedFail(FailureClass::Execution));
    let pool = pool(&[&a]).build().unwrap();
    pool.ready().await;
    let mut starts = a.watch_starts();
    let job = pool
        .enqueue(workflow("w"), JobOptions::new().max_attempts(50))
        .await
        .unwrap();
    starts.recv().await.unwrap();
    a.open(50);
    job.cancel();
    assert_eq!(job.result().await.unwrap_err(), Error::Cancelled);
    assert_eq!(a.run_count(), 1, "no retry after the cancel");
}

#[tokio::test(start_paused = true)]
async fn a_cancel_after_its_server_was_removed_wins_over_the_replacement() {
    let a = Fake::scripted("a", |_| Step::Hang);
    let b = Fake::new("b");
    let pool = pool(&[&a, &b]).build().unwrap();
    pool.ready().await;
    let mut starts = a.watch_starts();
    let job = pool
        .enqueue(workflow("w"), JobOptions::new().prefer_server("a"))
        .await
        .unwrap();
    starts.recv().await.unwrap();
    // The removal and the cancel reach the engine together, before the withdrawn attempt
    // reports: the stop signal is already spent on the withdrawal.
    let mut removal = Box::pin(pool.remove_server("a"));
    std::future::poll_fn(|cx| {
        assert!(removal.as_mut().poll(cx).is_pending());
        std::task::Poll::Ready(())
    })
    .await;
    job.cancel();
    removal.await.unwrap();
    assert_eq!(job.result().await.unwrap_err(), Error::Cancelled);
    assert_eq!(b.run_count(), 0, "the cancelled job was not placed again");
}

#[tokio::test(start_paused = true)]
async fn cancelling_shutdown_does_not_wait_for_a_frozen_server() {
    let a = Fake::scripted("a", |_| Step::Hang);
    a.cancel_frozen.store(true, Ordering::SeqCst);
    let pool = pool(&[&a])
        .cleanup_limits(Duration::from_secs(5), Duration::from_secs(60))
        .build()
        .unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    let mut starts = a.watch_starts();
    let job = pool
        .enqueue(workflow("w"), JobOptions::new())
        .await
        .unwrap();
    starts.recv().await.unwrap();
    let t0 = Instant::now();
    let stopped = tokio::time::timeout(
        Duration::from_secs(600),
        pool.shutdown(ShutdownMode::Cancel),
    )
    .await;
    assert!(stopped.is_ok(), "shutdown waited on the frozen server");
    assert!(
        t0.elapsed() <= Duration::from_secs(5),
        "shutdown took {:?}, more than one clean-up try",
        t0.elapsed()
    );
    assert_eq!(job.try_result().unwrap().unwrap_err(), Error::Cancelled);
    // The clean-up goes on in the background and gives up as an event.
    let (_, confirmed) = cleaned(&mut events, None).await;
    assert!(!confirmed);
}

#[tokio::test(start_paused = true)]
async fn a_stuck_attempt_fails_over_at_once_although_its_server_is_frozen() {
    let a = Fake::scripted("a", |_| Step::Hang);
    a.cancel_frozen.store(true, Ordering::SeqCst);
    let b = Fake::new("b");
    let pool = pool(&[&a, &b]).build().unwrap();
    pool.ready().await;
    let t0 = Instant::now();
    let job = pool
        .enqueue(
            workflow("w"),
            JobOptions::new()
                .prefer_server("a")
                .between_events_deadline(Duration::from_secs(3))
                .backoff(pool_core::Backoff::none()),
        )
        .await
        .unwrap();
    let output = within(job.result()).await.unwrap();
    assert_eq!(output.server.as_str(), "b");
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "failed over after {:?}",
        t0.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn the_total_deadline_holds_on_a_frozen_server_and_after_a_late_failure() {
    let a = Fake::scripted("a", |req| {
        if req.job.as_str() == "late-failure" {
            Step::SleepFail(Duration::from_secs(44), FailureClass::Execution)
        } else {
            Step::Hang
        }
    });
    a.cancel_frozen.store(true, Ordering::SeqCst);
    let pool = pool(&[&a]).server(Fake::new("b").config()).build().unwrap();
    pool.ready().await;
    let t0 = Instant::now();
    let options = JobOptions::new()
        .require_server("a")
        .total_deadline(Duration::from_secs(45));
    let frozen = pool.enqueue(workflow("w"), options.clone()).await.unwrap();
    assert_eq!(
        within(frozen.result()).await.unwrap_err(),
        Error::DeadlineExceeded(DeadlineKind::Total)
    );
    assert_eq!(t0.elapsed(), Duration::from_secs(45), "fired on time");

    // A failure one second before the deadline: the retry (after its backoff) would start
    // past the deadline, so the job ends with it instead of running again.
    let runs = a.run_count();
    let t1 = Instant::now();
    let late = pool
        .enqueue(
            workflow("w"),
            JobOptions::new()
                .job_id("late-failure")
                .require_server("a")
                .total_deadline(Duration::from_secs(45))
                .backoff(
                    pool_core::Backoff::new(Duration::from_secs(5), Duration::from_secs(5))
                        .jitter(0.0),
                ),
        )
        .await
        .unwrap();
    assert_eq!(
        within(late.result()).await.unwrap_err(),
        Error::DeadlineExceeded(DeadlineKind::Total)
    );
    assert_eq!(t1.elapsed(), Duration::from_secs(45));
    assert_eq!(a.run_count() - runs, 1, "no attempt after the deadline");
}

#[tokio::test(start_paused = true)]
async fn a_cleanup_holds_the_slot_until_its_first_try_ends() {
    let a = Fake::scripted("a", |_| Step::Hang);
    a.cancel_frozen.store(true, Ordering::SeqCst);
    let pool = pool(&[&a])
        .cleanup_limits(Duration::from_secs(4), Duration::from_secs(10))
        .build()
        .unwrap();
    pool.ready().await;
    let mut starts = a.watch_starts();
    let first = pool
        .enqueue(workflow("w"), JobOptions::new())
        .await
        .unwrap();
    let second = pool
        .enqueue(workflow("w"), JobOptions::new())
        .await
        .unwrap();
    starts.recv().await.unwrap();
    let t0 = Instant::now();
    first.cancel();
    assert!(first.result().await.unwrap_err().is_cancelled());
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "the job ended at once"
    );
    let (id, _) = within(starts.recv()).await.unwrap();
    assert_eq!(id, second.id().as_str());
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(4),
        "the next prompt waited for the frozen server's clean-up try"
    );
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_prompt_is_cleaned_up_on_its_server() {
    // The submission "timed out": the server may have queued the prompt anyway.
    let a = Fake::scripted("a", |_| Step::Fail(FailureClass::ServerDown));
    let b = Fake::new("b");
    let pool = pool(&[&a, &b]).build().unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    let job = pool
        .enqueue(workflow("w"), JobOptions::new().prefer_server("a"))
        .await
        .unwrap();
    let output = job.result().await.unwrap();
    assert_eq!(output.server.as_str(), "b");
    let abandoned = output.timings.attempts[0].prompt_id.clone();
    let (id, confirmed) = cleaned(&mut events, Some(&abandoned)).await;
    assert!(confirmed);
    assert_eq!(*a.cancels.lock(), [id]);
    assert!(
        b.cancels.lock().is_empty(),
        "nothing to clean where it succeeded"
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_leaves_a_server_that_went_offline_under_it() {
    let a = Fake::scripted("a", |_| Step::Hang);
    let b = Fake::new("b");
    let pool = pool(&[&a, &b]).build().unwrap();
    pool.ready().await;
    let mut starts = a.watch_starts();
    let job = pool
        .enqueue(
            workflow("w"),
            JobOptions::new()
                .prefer_server("a")
                .backoff(pool_core::Backoff::none()),
        )
        .await
        .unwrap();
    starts.recv().await.unwrap();
    a.set_healthy(false);
    let output = tokio::time::timeout(Duration::from_secs(30), job.result())
        .await
        .expect("the job stayed on the offline server")
        .unwrap();
    assert_eq!(output.server.as_str(), "b");
    let attempts = &output.timings.attempts;
    assert_eq!(
        attempts[0].outcome,
        pool_core::AttemptOutcome::Failed(FailureClass::ServerDown)
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_whose_health_check_hangs_goes_offline_and_its_job_moves_on() {
    // HTTP frozen, socket alive: the run hangs and so does every health check. The job moves
    // on once one check has gone unanswered for the health-check timeout, not after the
    // request deadline of the hanging run.
    let a = Fake::scripted("a", |_| Step::Hang);
    let b = Fake::new("b");
    let pool = pool(&[&a, &b])
        .health_check_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    pool.ready().await;
    let mut events = pool.subscribe();
    let mut starts = a.watch_starts();
    let job = pool
        .enqueue(
            workflow("w"),
            JobOptions::new()
                .prefer_server("a")
                .backoff(pool_core::Backoff::none()),
        )
        .await
        .unwrap();
    starts.recv().await.unwrap();
    let frozen_at = Instant::now();
    a.health_frozen.store(true, Ordering::SeqCst);
    let output = within(job.result()).await.unwrap();
    assert_eq!(output.server.as_str(), "b");
    // At most one interval until the next check, plus the timeout (and scheduling slack).
    assert!(
        frozen_at.elapsed() <= Duration::from_secs(5),
        "moved on after {:?}",
        frozen_at.elapsed()
    );
    let attempts = &output.timings.attempts;
    assert_eq!(
        attempts[0].outcome,
        pool_core::AttemptOutcome::Failed(FailureClass::ServerDown)
    );
    let mut offline_reason = None;
    while let Some(event) = events.try_recv() {
        if let PoolEvent::Server {
            server,
            state: ServerState::Offline,
            last_error,
            ..
        } = event
            && server.as_str() == "a"
        {
            offline_reason = last_error;
        }
    }
    let reason = offline_reason.expect("server a went offline");
    assert!(reason.contains("health check"), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn a_server_that_fails_every_prompt_is_ejected_and_returns() {
    // Every prompt fails as server-down (5xx on POST /prompt) while the health check passes.
    let a = Fake::scripted("a", |_| Step::Fail(FailureClass::ServerDown));
    let b = Fake::scripted("b", |_| Step::Sleep(Duration::from_millis(100)));
    let pool = pool(&[&a, &b])
        .outlier_ejection(
            OutlierEjection::default()
                .consecutive_failures(3)
                .base_time(Duration::from_secs(30)),
        )
        .build()
        .unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    let mut jobs = Vec::new();
    for _ in 0..20 {
        let options = JobOptions::new().max_attempts(1);
        jobs.push(pool.enqueue(workflow("w"), options).await.unwrap());
    }
    let mut failed = 0;
    for job in &jobs {
        if job.result().await.is_err() {
            failed += 1;
        }
    }
    assert!(failed <= 3, "{failed} of 20 jobs failed on the bad server");
    let mut states = Vec::new();
    let t0 = Instant::now();
    while let Some(event) = events.recv().await {
        if let PoolEvent::Server { server, state, .. } = event
            && server.as_str() == "a"
        {
            states.push(state);
            if state == ServerState::Ejected {
                break;
            }
        }
    }
    assert!(states.contains(&ServerState::Ejected), "{states:?}");
    // It returns when the ejection ends, although no job touched it.
    loop {
        match events.recv().await.unwrap() {
            PoolEvent::Server { server, state, .. } if server.as_str() == "a" => {
                assert_eq!(state, ServerState::Online);
                break;
            }
            _ => {}
        }
    }
    assert!(t0.elapsed() <= Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn the_between_events_deadline_starts_when_the_prompt_executes() {
    // Ten seconds in the server's own queue, then a normal run: not silence.
    let a = Fake::scripted("a", |_| Step::Queued(Duration::from_secs(10)));
    let pool = pool(&[&a]).build().unwrap();
    pool.ready().await;
    let job = pool
        .enqueue(
            workflow("w"),
            JobOptions::new().between_events_deadline(Duration::from_secs(3)),
        )
        .await
        .unwrap();
    let output = job.result().await.unwrap();
    assert_eq!(output.timings.attempts.len(), 1, "not counted as stuck");
}

#[tokio::test(start_paused = true)]
async fn the_start_deadline_covers_the_wait_in_the_servers_queue() {
    let a = Fake::scripted("a", |_| Step::Queued(Duration::from_secs(10)));
    let pool = pool(&[&a]).build().unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    let t0 = Instant::now();
    let job = pool
        .enqueue(
            workflow("w"),
            JobOptions::new().start_deadline(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    assert_eq!(
        job.result().await.unwrap_err(),
        Error::DeadlineExceeded(DeadlineKind::Start)
    );
    assert_eq!(t0.elapsed(), Duration::from_secs(5));
    // The prompt waiting on the server is removed from its queue.
    assert!(cleaned(&mut events, None).await.1);
    assert_eq!(a.cancels.lock().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn timings_count_the_queue_wait_and_the_whole_job() {
    let a = Fake::scripted("a", |req| {
        if req.job.as_str() == "first" {
            Step::Sleep(Duration::from_secs(5))
        } else {
            Step::Sleep(Duration::from_secs(2))
        }
    });
    let pool = pool(&[&a]).build().unwrap();
    pool.ready().await;
    let first = pool
        .enqueue(workflow("w"), JobOptions::new().job_id("first"))
        .await
        .unwrap();
    let second = pool
        .enqueue(workflow("w"), JobOptions::new())
        .await
        .unwrap();
    let timings = second.result().await.unwrap().timings.clone();
    assert_eq!(timings.queue_wait, Duration::from_secs(5));
    assert_eq!(timings.total, Duration::from_secs(7));
    let first = first.result().await.unwrap();
    assert_eq!(first.timings.queue_wait, Duration::ZERO);
    assert_eq!(first.timings.total, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn jobs_uploading_one_file_name_with_other_bytes_do_not_overwrite_each_other() {
    let a = Fake::scripted("a", |_| Step::Sleep(Duration::from_secs(1)));
    let pool = pool(&[&a]).build().unwrap();
    pool.ready().await;
    let load = |tag: &str| {
        let mut wf = workflow(tag);
        wf["5"] = json!({"class_type": "LoadImage", "inputs": {"image": "input.png"}});
        wf
    };
    let mut jobs = Vec::new();
    for bytes in [b"red".as_slice(), b"blue".as_slice(), b"red".as_slice()] {
        let file = pool_core::InputFile::new("input.png", bytes.to_vec());
        let options = JobOptions::new().input(file);
        jobs.push(pool.enqueue(load("w"), options).await.unwrap());
    }
    for job in &jobs {
        job.result().await.unwrap();
    }
    let uploaded = a.uploaded.lock().clone();
    let runs = a.runs.lock().clone();
    assert_eq!(runs.len(), 3);
    for (i, (_, _, wf)) in runs.iter().enumerate() {
        let name = wf["5"]["inputs"]["image"].as_str().unwrap();
        let bytes = &uploaded
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("run {i} names {name}, never uploaded"))
            .1;
        let expected: &[u8] = if i == 1 { b"blue" } else { b"red" };
        assert_eq!(bytes, expected, "run {i} reads its own bytes");
    }
    let names: std::collections::HashSet<_> = uploaded.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names.len(), 2, "same bytes, same name: {names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("input") && n.ends_with(".png"))
    );
}
