//! Cancel, shutdown, idempotent ids, retention, deadlines and server membership, on fake
//! servers.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use pool_core::{
    DeadlineKind, Error, FailureClass, JobOptions, JobStatus, Pool, PoolEvent, ServerState,
    ShutdownMode,
};
use pool_failover::NoopStrategy;
use support::{Fake, Step, collect_job, names, workflow};

#[tokio::test]
async fn cancel_a_queued_job_and_a_running_one() {
    let a = Fake::scripted("a", |_| Step::Hang);
    let pool = Pool::builder().server(a.config()).build().unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    let mut starts = a.watch_starts();
    let running = pool
        .enqueue(workflow("w"), JobOptions::new())
        .await
        .unwrap();
    let (_, prompt_id) = starts.recv().await.unwrap();
    let queued = pool
        .enqueue(workflow("w"), JobOptions::new())
        .await
        .unwrap();
    assert_eq!(queued.status(), JobStatus::Queued);
    assert!(matches!(
        running.status(),
        JobStatus::Running { attempt: 1, .. }
    ));
    queued.cancel();
    assert_eq!(queued.result().await.unwrap_err(), Error::Cancelled);
    assert!(pool.cancel(running.id().as_str()));
    assert!(running.result().await.unwrap_err().is_cancelled());
    support::cleaned(&mut events, Some(&prompt_id)).await;
    assert_eq!(
        *a.cancels.lock(),
        [prompt_id],
        "the running prompt was interrupted on its server"
    );
    assert_eq!(a.run_count(), 1, "the queued job never ran");
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.cancelled, stats.live()), (2, 0));
    assert_eq!(stats.server("a").unwrap().in_flight, 0);
}

#[tokio::test]
async fn shutdown_drain_runs_everything_accepted() {
    let a = Fake::scripted("a", |_| Step::Sleep(Duration::from_millis(2)));
    let pool = Pool::builder().server(a.config()).build().unwrap();
    let mut handles = Vec::new();
    for _ in 0..10 {
        handles.push(
            pool.enqueue(workflow("w"), JobOptions::new())
                .await
                .unwrap(),
        );
    }
    pool.shutdown(ShutdownMode::Drain).await;
    for h in &handles {
        assert!(h.try_result().unwrap().is_ok());
    }
    assert_eq!(a.run_count(), 10);
    assert_eq!(
        pool.enqueue(workflow("w"), JobOptions::new())
            .await
            .unwrap_err(),
        Error::ShuttingDown
    );
}

#[tokio::test]
async fn shutdown_cancel_ends_every_job_once() {
    let a = Fake::scripted("a", |_| Step::Hang);
    let pool = Pool::builder()
        .server(a.config().max_concurrent(2))
        .build()
        .unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    let mut starts = a.watch_starts();
    let mut handles = Vec::new();
    for _ in 0..6 {
        handles.push(
            pool.enqueue(workflow("w"), JobOptions::new())
                .await
                .unwrap(),
        );
    }
    starts.recv().await.unwrap();
    starts.recv().await.unwrap();
    pool.shutdown(ShutdownMode::Cancel).await;
    for h in &handles {
        assert_eq!(h.try_result().unwrap().unwrap_err(), Error::Cancelled);
    }
    assert_eq!(
        a.cancels.lock().len(),
        2,
        "both running prompts were interrupted"
    );
    let mut terminal = std::collections::HashMap::new();
    while let Some(event) = events.try_recv() {
        if let PoolEvent::Job(e) = event
            && e.kind.is_terminal()
        {
            *terminal.entry(e.job).or_insert(0) += 1;
        }
    }
    assert_eq!(terminal.len(), 6);
    assert!(terminal.values().all(|n| *n == 1));
}

#[tokio::test]
async fn the_same_caller_id_is_one_job() {
    let a = Fake::scripted("a", |_| Step::Gated);
    let pool = Pool::builder()
        .server(a.config())
        .retain_finished(2)
        .build()
        .unwrap();
    let one = pool
        .enqueue(workflow("w"), JobOptions::new().job_id("order-1"))
        .await
        .unwrap();
    let two = pool
        .enqueue(workflow("w"), JobOptions::new().job_id("order-1"))
        .await
        .unwrap();
    assert_eq!(one.id(), two.id());
    // Another workflow under the same id is refused, not a silent alias.
    assert_eq!(
        pool.enqueue(workflow("other"), JobOptions::new().job_id("order-1"))
            .await
            .unwrap_err(),
        pool_core::Error::JobIdConflict {
            id: "order-1".into()
        }
    );
    a.open(10);
    let (x, y) = (one.result().await.unwrap(), two.result().await.unwrap());
    assert!(Arc::ptr_eq(&x, &y));
    // Still known after it finished: no second run.
    let three = pool
        .enqueue(workflow("w"), JobOptions::new().job_id("order-1"))
        .await
        .unwrap();
    assert!(three.try_result().unwrap().is_ok());
    assert_eq!(a.run_count(), 1);
    assert!(pool.job("order-1").is_some());
    // Retention is bounded: after two more finished jobs, the first is forgotten.
    for id in ["order-2", "order-3"] {
        pool.enqueue(workflow("w"), JobOptions::new().job_id(id))
            .await
            .unwrap()
            .result()
            .await
            .unwrap();
    }
    assert!(pool.job("order-1").is_none());
    assert!(pool.job("order-3").is_some());
}

#[tokio::test(start_paused = true)]
async fn deadlines_end_jobs_that_wait_or_run_too_long() {
    let a = Fake::scripted("a", |req| {
        if req.job.as_str() == "silent" {
            Step::Hang
        } else {
            Step::Gated
        }
    });
    let pool = Pool::builder()
        .server(a.config())
        .strategy(Arc::new(NoopStrategy))
        .build()
        .unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    let mut starts = a.watch_starts();
    let busy = pool
        .enqueue(workflow("w"), JobOptions::new().job_id("busy"))
        .await
        .unwrap();
    starts.recv().await.unwrap();
    let late = pool
        .enqueue(
            workflow("w"),
            JobOptions::new().start_deadline(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    let err = late.result().await.unwrap_err();
    assert_eq!(err, Error::DeadlineExceeded(DeadlineKind::Start));
    assert!(err.is_deadline());
    let total = pool
        .enqueue(
            workflow("w"),
            JobOptions::new().total_deadline(Duration::from_secs(7)),
        )
        .await
        .unwrap();
    assert_eq!(
        total.result().await.unwrap_err(),
        Error::DeadlineExceeded(DeadlineKind::Total)
    );
    a.open(1);
    busy.result().await.unwrap();
    // A run with no event for too long is interrupted and counts as stuck.
    let silent = pool
        .enqueue(
            workflow("w"),
            JobOptions::new()
                .job_id("silent")
                .max_attempts(1)
                .between_events_deadline(Duration::from_secs(3)),
        )
        .await
        .unwrap();
    let err = silent.result().await.unwrap_err();
    assert_eq!(err.attempts().len(), 1, "{err}");
    assert_eq!(err.attempts()[0].class, FailureClass::Stuck);
    support::cleaned(&mut events, None).await;
    assert_eq!(
        a.cancels.lock().len(),
        1,
        "the stuck prompt was interrupted"
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_that_goes_down_goes_offline_and_rejoins_by_itself() {
    let a = Fake::new("a");
    let pool = Pool::builder()
        .server(a.config())
        .health_check_interval(Some(Duration::from_secs(1)))
        .build()
        .unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    a.set_healthy(false);
    let mut saw = Vec::new();
    while let Some(event) = events.recv().await {
        if let PoolEvent::Server {
            state, last_error, ..
        } = event
        {
            saw.push(state);
            if state == ServerState::Offline {
                assert!(last_error.unwrap().contains("refused"));
                break;
            }
        }
    }
    // Work waits while the only server is offline, and runs once it is back.
    let job = pool
        .enqueue(workflow("w"), JobOptions::new())
        .await
        .unwrap();
    assert_eq!(pool.stats().await.unwrap().queued, 1);
    a.set_healthy(true);
    assert_eq!(job.result().await.unwrap().server.as_str(), "a");
    assert_eq!(
        pool.stats().await.unwrap().server("a").unwrap().state,
        ServerState::Online
    );
}

#[tokio::test]
async fn a_failure_that_takes_the_server_down_moves_the_job() {
    let a = Fake::scripted("a", |_| Step::Fail(FailureClass::ServerDown));
    let b = Fake::new("b");
    let pool = Pool::builder()
        .servers([a.config().weight(5), b.config()])
        .health_check_interval(None)
        .build()
        .unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    a.set_healthy(false);
    // a is believed online until the run fails.
    let job = pool
        .enqueue(
            workflow("w"),
            JobOptions::new()
                .prefer_server("a")
                .backoff(pool_core::Backoff::none()),
        )
        .await
        .unwrap();
    let kinds = collect_job(&mut events, job.id()).await;
    assert_eq!(names(&kinds).last(), Some(&"completed"));
    assert_eq!(job.result().await.unwrap().server.as_str(), "b");
    let stats = pool.stats().await.unwrap();
    assert_eq!(stats.server("a").unwrap().state, ServerState::Offline);
}

#[tokio::test]
async fn servers_join_drain_and_leave_while_running() {
    let a = Fake::scripted("a", |_| Step::Gated);
    let pool = Pool::builder().server(a.config()).build().unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    let mut starts = a.watch_starts();
    let first = pool
        .enqueue(workflow("w"), JobOptions::new())
        .await
        .unwrap();
    starts.recv().await.unwrap();
    let second = pool
        .enqueue(workflow("w"), JobOptions::new())
        .await
        .unwrap();
    let stranded = pool
        .enqueue(workflow("w"), JobOptions::new().require_server("a"))
        .await
        .unwrap();
    let b = Fake::new("b");
    pool.add_server(b.config()).await.unwrap();
    pool.drain_server("a").await.unwrap();
    let err = stranded.result().await.unwrap_err();
    assert!(err.is_no_eligible_server(), "{err}");
    assert_eq!(
        pool.add_server(Fake::new("b").config()).await.unwrap_err(),
        Error::DuplicateServer("b".into())
    );
    assert_eq!(second.result().await.unwrap().server.as_str(), "b");
    a.open(1);
    assert_eq!(
        first.result().await.unwrap().server.as_str(),
        "a",
        "draining finishes running work"
    );
    let mut removed = false;
    while let Some(event) = events.recv().await {
        if let PoolEvent::Server {
            server,
            state: ServerState::Removed,
            ..
        } = event
        {
            assert_eq!(server.as_str(), "a");
            removed = true;
            break;
        }
    }
    assert!(removed);
    // Removing a server withdraws its running job, which runs elsewhere.
    let c = Fake::scripted("c", |_| Step::Hang);
    pool.add_server(c.config().tag("c")).await.unwrap();
    let mut c_starts = c.watch_starts();
    let moved = pool
        .enqueue(workflow("w"), JobOptions::new().require_tag("c"))
        .await
        .unwrap();
    c_starts.recv().await.unwrap();
    pool.add_server(Fake::new("d").config().tag("c"))
        .await
        .unwrap();
    pool.remove_server("c").await.unwrap();
    let output = moved.result().await.unwrap();
    assert_eq!(output.server.as_str(), "d");
    assert_eq!(output.timings.attempts.len(), 2);
    assert_eq!(
        pool.remove_server("zzz").await.unwrap_err(),
        Error::UnknownServer("zzz".into())
    );
}
