//! The one event stream per job: numbered without gaps, in order, stamped with wall-clock
//! time, written only by the engine — with 1,000 jobs at once; resumable after a `seq`;
//! and what a detaching shutdown leaves behind.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pool_core::{
    Error, FailureClass, JobEventKind, JobId, JobOptions, JobState, Pool, PoolEvent, RunEvent,
    ShutdownMode,
};
use pool_failover::NoopStrategy;
use support::{Fake, Step, names, workflow};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_jobs_events_are_numbered_without_gaps_with_a_thousand_jobs_at_once() {
    let mut n = 0u32;
    let servers: Vec<Arc<Fake>> = (0..4)
        .map(|i| {
            Fake::scripted(&format!("s{i}"), move |req| {
                n += 1;
                // Some first attempts fail (their retry succeeds), some take a while.
                match n % 5 {
                    0 if req.attempt == 1 => Step::Fail(FailureClass::Execution),
                    1 => Step::Sleep(Duration::from_micros(300)),
                    _ => Step::Ok,
                }
            })
        })
        .collect();
    let pool = Pool::builder()
        .servers(servers.iter().map(|s| s.config().max_concurrent(8)))
        .strategy(Arc::new(NoopStrategy))
        .event_capacity(1 << 20)
        .build()
        .unwrap();
    let mut all = pool.subscribe();
    pool.ready().await;
    let mut streams = Vec::new();
    let mut handles = Vec::new();
    for i in 0..1000 {
        let job = pool
            .enqueue(
                workflow(&format!("w{}", i % 3)),
                JobOptions::new()
                    .max_attempts(5)
                    .backoff(pool_core::Backoff::none()),
            )
            .await
            .unwrap();
        // Half of the readers start from the first event, half resume later.
        let stream = if i % 2 == 0 {
            job.events_after(0)
        } else {
            job.events()
        };
        streams.push(tokio::spawn(async move {
            let mut stream = stream;
            let mut events = Vec::new();
            while let Some(event) = stream.recv().await {
                events.push(event);
            }
            events
        }));
        handles.push(job);
    }
    for job in &handles {
        job.result().await.unwrap();
    }
    let mut per_job: HashMap<JobId, Vec<(u64, pool_core::Timestamp)>> = HashMap::new();
    while let Some(event) = all.try_recv() {
        match event {
            PoolEvent::Job(e) => per_job.entry(e.job).or_default().push((e.seq, e.at)),
            PoolEvent::Lagged { missed } => panic!("lagged by {missed}"),
            _ => {}
        }
    }
    assert_eq!(per_job.len(), 1000);
    for (job, events) in &per_job {
        let seqs: Vec<u64> = events.iter().map(|(seq, _)| *seq).collect();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "job {job}: gaps or disorder");
        assert!(
            events.windows(2).all(|w| w[0].1 <= w[1].1),
            "job {job}: time went back"
        );
    }
    for (i, (stream, job)) in streams.into_iter().zip(&handles).enumerate() {
        let events = stream.await.unwrap();
        let record = job.record();
        assert!(events.last().unwrap().kind.is_terminal());
        assert_eq!(events.last().unwrap().seq, record.last_seq);
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "job {i}: {seqs:?}");
        if i % 2 == 0 {
            let all = per_job[job.id()].len() as u64;
            assert_eq!(
                seqs,
                (1..=all).collect::<Vec<_>>(),
                "job {i} read from the start"
            );
        }
        // The record and the stream agree.
        assert_eq!(record.state, JobState::Completed);
        let started = events
            .iter()
            .filter(|e| matches!(e.kind, JobEventKind::Started { .. }))
            .count();
        if i % 2 == 0 {
            assert_eq!(started, record.attempts.len());
        }
    }
    pool.shutdown(ShutdownMode::Drain).await;
}

#[tokio::test(start_paused = true)]
async fn a_stream_resumes_after_the_last_seq_seen() {
    let a = Fake::scripted("a", |_| Step::Gated);
    let pool = Pool::builder().server(a.config()).build().unwrap();
    pool.ready().await;
    let mut starts = a.watch_starts();
    let job = pool
        .enqueue(workflow("w"), JobOptions::new())
        .await
        .unwrap();
    starts.recv().await.unwrap();
    let mut first = job.events_after(0);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.push(first.recv().await.unwrap());
    }
    drop(first);
    assert_eq!(
        names(&seen.iter().map(|e| e.kind.clone()).collect::<Vec<_>>()),
        ["queued", "started", "accepted"]
    );
    a.open(1);
    let mut resumed = job.events_after(seen[2].seq);
    let mut rest = Vec::new();
    while let Some(event) = resumed.recv().await {
        rest.push(event);
    }
    assert_eq!(
        rest[0].seq,
        seen[2].seq + 1,
        "resumed right after the last event seen"
    );
    assert!(matches!(
        rest[0].kind,
        JobEventKind::Run(RunEvent::Executing)
    ));
    assert!(rest.last().unwrap().kind.is_terminal());
    let seqs: Vec<u64> = rest.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (4..4 + rest.len() as u64).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_detaching_shutdown_leaves_running_prompts_and_queued_jobs_as_they_are() {
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
    let t0 = tokio::time::Instant::now();
    pool.shutdown(ShutdownMode::Detach).await;
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "detaching waits for nothing"
    );
    assert_eq!(running.result().await.unwrap_err(), Error::Detached);
    assert_eq!(queued.try_result().unwrap().unwrap_err(), Error::Detached);
    assert!(
        a.cancels.lock().is_empty(),
        "the running prompt was left on its server"
    );
    let record = running.record();
    assert_eq!(record.state, JobState::Running);
    let current = record.current().unwrap();
    assert_eq!(
        (current.server.as_str(), current.prompt_id.as_str()),
        ("a", prompt_id.as_str())
    );
    assert_eq!(queued.record().state, JobState::Queued);
    while let Some(event) = events.try_recv() {
        if let PoolEvent::Job(e) = event {
            assert!(!e.kind.is_terminal(), "no job ended: {e:?}");
        }
    }
    assert_eq!(
        pool.enqueue(workflow("w"), JobOptions::new())
            .await
            .unwrap_err(),
        Error::ShuttingDown
    );
}
