//! The pool on a store, with fake servers: acceptance and every transition persisted, the
//! write-ahead of prompt ids, the terminal state durable before the terminal event, and a
//! pool started on the same store taking everything up again (queued jobs in order,
//! re-attaching to prompts, lost prompts run again, blocks honoured, ids idempotent).
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use pool_core::{
    Error, FailureClass, JobOptions, JobQuery, JobState, JobStore, MemoryStore, Pool, PoolBuilder,
    ServerId, ServerState, ShutdownMode,
};
use pool_failover::{SmartConfig, SmartStrategy};
use support::gated::{Gated, Seen};
use support::{Fake, Step, workflow};

fn pool_on(store: Arc<dyn JobStore>, servers: &[&Arc<Fake>]) -> PoolBuilder {
    Pool::builder()
        .servers(servers.iter().map(|f| f.config()))
        .store(store)
        .health_check_interval(Some(Duration::from_secs(1)))
}

#[tokio::test(start_paused = true)]
async fn every_transition_reaches_the_store_and_records_agree() {
    let store = Arc::new(MemoryStore::default());
    let a = Fake::scripted("a", |_| Step::Ok);
    let pool = pool_on(store.clone(), &[&a]).build().unwrap();
    let job = pool
        .enqueue(workflow("w"), JobOptions::new().job_id("j1").tenant("t"))
        .await
        .unwrap();
    // Accepted: stored before enqueue returned.
    assert!(store.get("j1").await.unwrap().is_some());
    job.result().await.unwrap();
    let stored = store.get("j1").await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Completed);
    assert_eq!(
        stored,
        pool.record("j1").unwrap(),
        "the store has the record as the pool knows it"
    );
    assert_eq!(stored.attempts.len(), 1);
    assert!(stored.attempts[0].submitted_at.is_some() && stored.attempts[0].executing_at.is_some());
    let page = store.list(&JobQuery::new(10).tenant("t")).await.unwrap();
    assert_eq!(page.jobs.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_prompt_is_submitted_only_once_its_id_is_durable() {
    let store = Gated::new("dispatched");
    let a = Fake::new("a");
    let pool = pool_on(store.clone(), &[&a]).build().unwrap();
    pool.ready().await;
    let job = pool
        .enqueue(workflow("w"), JobOptions::new())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        a.run_count(),
        0,
        "submitted before its prompt id was durable"
    );
    assert!(job.try_result().is_none());
    store.gate.add_permits(1);
    job.result().await.unwrap();
    assert_eq!(a.run_count(), 1);
    let record = store.get(job.id().as_str()).await.unwrap().unwrap();
    assert_eq!(record.attempts[0].prompt_id, a.runs.lock()[0].1);
}

/// A prompt's progress (submitted, executing) is not a commit of its own: it waits for the
/// job's next write, but no longer than 20 ms, and its attempt's end goes with the job's end.
#[tokio::test(start_paused = true)]
async fn progress_goes_to_the_store_within_20_ms_or_with_the_next_write() {
    let store = Gated::new("none");
    let a = Fake::scripted("a", |_| Step::Sleep(Duration::from_secs(10)));
    let pool = pool_on(store.clone(), &[&a]).build().unwrap();
    let job = pool
        .enqueue(workflow("w"), JobOptions::new())
        .await
        .unwrap();
    job.result().await.unwrap();
    let seen = store.seen.lock().unwrap().clone();
    let at = |name: &str| written_at(&seen, job.id().as_str(), name);
    let dispatched = at("dispatched");
    for progress in ["submitted", "executing"] {
        let delay = at(progress) - dispatched;
        assert!(
            delay > Duration::ZERO && delay <= Duration::from_millis(20),
            "{progress} reached the store {delay:?} after the dispatch: {seen:?}"
        );
    }
    assert_eq!(at("ended"), at("finished"), "{seen:?}");
    assert_eq!(at("finished") - dispatched, Duration::from_secs(10));
}

/// When `job`'s `transition` reached the store (its first such write).
fn written_at(seen: &[Seen], job: &str, transition: &str) -> tokio::time::Instant {
    seen.iter()
        .find(|(id, name, _)| id == job && *name == transition)
        .map(|(_, _, at)| *at)
        .unwrap_or_else(|| panic!("no {transition} write of {job} in {seen:?}"))
}

#[tokio::test(start_paused = true)]
async fn progress_waits_for_its_own_jobs_next_write_not_another_jobs() {
    let store = Gated::new("none");
    let slow = Fake::scripted("slow", |_| Step::Sleep(Duration::from_millis(10)));
    let fast = Fake::scripted("fast", |_| Step::Sleep(Duration::from_millis(5)));
    let pool = pool_on(store.clone(), &[&slow, &fast]).build().unwrap();
    pool.ready().await;
    let mut jobs = Vec::new();
    for name in ["one", "two"] {
        jobs.push(
            pool.enqueue(workflow(name), JobOptions::new())
                .await
                .unwrap(),
        );
    }
    let mut on = std::collections::HashMap::new();
    for job in &jobs {
        let output = job.result().await.unwrap();
        on.insert(output.server.to_string(), job.id().to_string());
    }
    let (slow_job, fast_job) = (&on["slow"], &on["fast"]);
    let seen = store.seen.lock().unwrap().clone();
    let at = |job: &str, name: &str| written_at(&seen, job, name);
    // The fast job's end was written (a write that presses) while the slow job ran...
    assert!(
        at(fast_job, "finished") < at(slow_job, "finished"),
        "{seen:?}"
    );
    // ...and did not take the slow job's progress along: that went with its own end.
    for progress in ["submitted", "executing", "ended"] {
        assert_eq!(
            at(slow_job, progress),
            at(slow_job, "finished"),
            "{progress}: {seen:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_jobs_end_is_durable_before_anyone_hears_of_it() {
    let store = Gated::new("finished");
    let a = Fake::new("a");
    let pool = pool_on(store.clone(), &[&a]).build().unwrap();
    let job = pool
        .enqueue(workflow("w"), JobOptions::new())
        .await
        .unwrap();
    let mut events = job.events_after(0);
    let waiter = tokio::spawn({
        let job = job.clone();
        async move { job.result().await }
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(a.run_count(), 1, "the job ran");
    assert!(
        job.try_result().is_none(),
        "the outcome waits for the store"
    );
    assert!(!waiter.is_finished());
    let mut seen = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(10), events.recv()).await
    {
        seen.push(event);
    }
    assert!(
        seen.iter().all(|e| !e.kind.is_terminal()),
        "no terminal event before the store has the end"
    );
    store.gate.add_permits(1);
    waiter.await.unwrap().unwrap();
    let last = events.recv().await.unwrap();
    assert!(last.kind.is_terminal());
    assert_eq!(
        store.get(job.id().as_str()).await.unwrap().unwrap().state,
        JobState::Completed
    );
}

#[tokio::test(start_paused = true)]
async fn a_pool_on_the_same_store_takes_everything_up_again() {
    let store = Arc::new(MemoryStore::default());
    // First life: a job running on a (its prompt stays there), one running on a server
    // that will be gone, and two waiting in order.
    let a = Fake::scripted("a", |_| Step::Hang);
    let gone = Fake::scripted("gone", |_| Step::Hang);
    let first = Pool::builder()
        .server(a.config())
        .server(gone.config())
        .store(store.clone())
        .build()
        .unwrap();
    first.ready().await;
    let mut starts_a = a.watch_starts();
    let mut starts_gone = gone.watch_starts();
    first
        .enqueue(
            workflow("w"),
            JobOptions::new().job_id("running").require_server("a"),
        )
        .await
        .unwrap();
    first
        .enqueue(
            workflow("w"),
            JobOptions::new().job_id("orphan").prefer_server("gone"),
        )
        .await
        .unwrap();
    let (_, prompt) = starts_a.recv().await.unwrap();
    starts_gone.recv().await.unwrap();
    for id in ["second", "third"] {
        first
            .enqueue(workflow("w"), JobOptions::new().job_id(id))
            .await
            .unwrap();
    }
    first.shutdown(ShutdownMode::Detach).await;
    assert_eq!(store.unfinished().await.unwrap().len(), 4);

    // Second life: the prompt on a finished meanwhile; "gone" is not configured any more.
    a.set_script(|_| Step::Ok);
    a.set_follow(|_| Step::Ok);
    let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let b = Fake::scripted("b", {
        let order = Arc::clone(&order);
        move |req| {
            order.lock().push(req.job.to_string());
            Step::Ok
        }
    });
    let second = Pool::builder()
        .server(a.config())
        .server(b.config())
        .store(store.clone())
        .build()
        .unwrap();
    second.ready().await;
    let running = second
        .job("running")
        .unwrap_or_else(|| panic!("not recovered"));
    let output = running.result().await.unwrap();
    assert_eq!(output.prompt_id, prompt, "re-attached, not submitted again");
    assert_eq!(*a.follows.lock(), std::slice::from_ref(&prompt));
    assert_eq!(
        a.jobs_run().iter().filter(|j| *j == "running").count(),
        1,
        "the prompt was never submitted twice"
    );
    for id in ["orphan", "second", "third"] {
        let job = second.job(id).unwrap();
        job.result().await.unwrap();
    }
    let orphan = store.get("orphan").await.unwrap().unwrap();
    assert_eq!(
        orphan.attempts[0].outcome,
        pool_core::AttemptOutcome::Withdrawn
    );
    assert_eq!(orphan.state, JobState::Completed);
    // Same id, same workflow: the stored job, not a new one.
    let again = second
        .enqueue(workflow("w"), JobOptions::new().job_id("running"))
        .await
        .unwrap();
    assert_eq!(again.result().await.unwrap().prompt_id, prompt);
    // Same id, another workflow: refused.
    assert_eq!(
        second
            .enqueue(workflow("other"), JobOptions::new().job_id("running"))
            .await
            .unwrap_err(),
        Error::JobIdConflict {
            id: "running".into()
        }
    );
    assert!(store.unfinished().await.unwrap().is_empty());
    let ran: Vec<String> = order.lock().clone();
    let pos = |id: &str| ran.iter().position(|j| j == id);
    if let (Some(s), Some(t)) = (pos("second"), pos("third")) {
        assert!(s < t, "queued jobs keep their order: {ran:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_prompt_lost_while_the_pool_was_down_runs_again_and_is_never_counted_done() {
    let store = Arc::new(MemoryStore::default());
    let a = Fake::scripted("a", |_| Step::Hang);
    let first = pool_on(store.clone(), &[&a]).build().unwrap();
    let mut starts = a.watch_starts();
    first
        .enqueue(workflow("w"), JobOptions::new().job_id("j"))
        .await
        .unwrap();
    let (_, lost) = starts.recv().await.unwrap();
    first.shutdown(ShutdownMode::Detach).await;
    // The server restarted meanwhile: it knows nothing of the prompt.
    a.set_follow(|_| Step::Fail(FailureClass::ServerDown));
    a.set_script(|_| Step::Ok);
    let second = pool_on(store.clone(), &[&a])
        .strategy(Arc::new(pool_failover::NoopStrategy))
        .build()
        .unwrap();
    second.ready().await;
    let job = second.job("j").unwrap();
    let output = job.result().await.unwrap();
    assert_ne!(output.prompt_id, lost, "ran again under a new prompt");
    let record = store.get("j").await.unwrap().unwrap();
    assert_eq!(record.attempts.len(), 2);
    assert_eq!(
        record.attempts[0].outcome,
        pool_core::AttemptOutcome::Failed(FailureClass::ServerDown)
    );
}

#[tokio::test(start_paused = true)]
async fn a_recovered_prompt_the_server_lacks_leaves_its_other_prompts_running() {
    let store = Arc::new(MemoryStore::default());
    let a = Fake::scripted("a", |_| Step::Hang);
    let on_a = |store: &Arc<MemoryStore>| {
        Pool::builder()
            .server(a.config().max_concurrent(2))
            .store(store.clone())
            .strategy(Arc::new(pool_failover::NoopStrategy))
    };
    let first = on_a(&store).build().unwrap();
    let mut starts = a.watch_starts();
    for id in ["kept", "lost"] {
        first
            .enqueue(workflow(id), JobOptions::new().job_id(id))
            .await
            .unwrap();
    }
    let mut prompts = std::collections::HashMap::new();
    for _ in 0..2 {
        let (job, prompt) = starts.recv().await.unwrap();
        prompts.insert(job, prompt);
    }
    first.shutdown(ShutdownMode::Detach).await;
    // The server still runs "kept"; "lost" never reached it (the pool died between its
    // write-ahead and its submission).
    let (kept_prompt, lost_prompt) = (prompts["kept"].clone(), prompts["lost"].clone());
    a.set_follow(move |prompt| {
        if prompt == lost_prompt {
            Step::Fail(FailureClass::ServerDown)
        } else {
            // Still running there for a minute.
            Step::Sleep(Duration::from_secs(60))
        }
    });
    a.set_script(|_| Step::Ok);
    let second = on_a(&store).build().unwrap();
    second.ready().await;
    let lost = second.job("lost").unwrap().result().await.unwrap();
    assert_ne!(
        lost.prompt_id, prompts["lost"],
        "ran again under a new prompt"
    );
    // The server was not taken for down: "kept" is still followed there, never run again.
    let stats = second.stats().await.unwrap();
    assert_eq!(stats.server("a").unwrap().state, ServerState::Online);
    let kept = second.job("kept").unwrap().result().await.unwrap();
    assert_eq!(kept.prompt_id, kept_prompt);
    assert_eq!(store.get("kept").await.unwrap().unwrap().attempts.len(), 1);
    assert_eq!(
        a.jobs_run().iter().filter(|j| *j == "kept").count(),
        1,
        "submitted once"
    );
}

#[tokio::test(start_paused = true)]
async fn a_detaching_shutdown_waits_a_bounded_time_for_a_submission_never_answered() {
    let store = Arc::new(MemoryStore::default());
    // The server takes the POST and never answers it.
    let a = Fake::scripted("a", |_| Step::Submitting {
        answer: Duration::from_secs(3600),
        run: Duration::ZERO,
    });
    let pool = pool_on(store.clone(), &[&a]).build().unwrap();
    let mut starts = a.watch_starts();
    pool.enqueue(workflow("w"), JobOptions::new().job_id("j"))
        .await
        .unwrap();
    starts.recv().await.unwrap();
    let shutdown =
        tokio::time::timeout(Duration::from_secs(60), pool.shutdown(ShutdownMode::Detach));
    assert!(shutdown.await.is_ok(), "the shutdown waited on the server");
    // Left for the next pool on the store, which finds the prompt there or queues it again.
    let record = store.get("j").await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Running);
    assert_eq!(record.attempts.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_server_silent_after_the_restart_loses_its_prompt_after_the_recovery_wait() {
    let store = Arc::new(MemoryStore::default());
    let a = Fake::scripted("a", |_| Step::Hang);
    let b = Fake::new("b");
    let first = pool_on(store.clone(), &[&a]).build().unwrap();
    let mut starts = a.watch_starts();
    first
        .enqueue(workflow("w"), JobOptions::new().job_id("j"))
        .await
        .unwrap();
    starts.recv().await.unwrap();
    first.shutdown(ShutdownMode::Detach).await;
    a.set_healthy(false);
    let t0 = tokio::time::Instant::now();
    let second = pool_on(store.clone(), &[&a, &b])
        .recovery_wait(Duration::from_secs(20))
        .build()
        .unwrap();
    second.ready().await;
    let output = second.job("j").unwrap().result().await.unwrap();
    assert_eq!(output.server.as_str(), "b");
    assert!(
        t0.elapsed() >= Duration::from_secs(20),
        "waited for a to come back"
    );
    assert!(a.follows.lock().is_empty(), "a never answered");
}

#[tokio::test(start_paused = true)]
async fn blocks_survive_a_restart() {
    let store = Arc::new(MemoryStore::default());
    let strategy = || Arc::new(SmartStrategy::new(SmartConfig::production()).unwrap());
    let a = Fake::scripted("a", |_| Step::Fail(FailureClass::ServerLacksResource));
    let b = Fake::new("b");
    let first = pool_on(store.clone(), &[&a, &b])
        .strategy(strategy())
        .build()
        .unwrap();
    first.ready().await;
    let job = first
        .enqueue(workflow("w"), JobOptions::new().prefer_server("a"))
        .await
        .unwrap();
    assert_eq!(job.result().await.unwrap().server.as_str(), "b");
    first.shutdown(ShutdownMode::Drain).await;
    tokio::task::yield_now().await;
    let blocks = store.blocks().await.unwrap();
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].server.as_str(), "a");
    // Second life: the remembered block keeps the workflow off a without failing there.
    a.set_script(|_| Step::Fail(FailureClass::ServerLacksResource));
    let runs_on_a = a.run_count();
    let second = pool_on(store.clone(), &[&a, &b])
        .strategy(strategy())
        .build()
        .unwrap();
    second.ready().await;
    let job = second
        .enqueue(workflow("w"), JobOptions::new().prefer_server("a"))
        .await
        .unwrap();
    assert_eq!(job.result().await.unwrap().server.as_str(), "b");
    assert_eq!(
        a.run_count(),
        runs_on_a,
        "the block was honoured, not learnt again"
    );
    assert!(!second.strategy().is_allowed(
        &ServerId::from("a"),
        &job.record().hash(),
        tokio::time::Instant::now()
    ));
}

#[tokio::test(start_paused = true)]
async fn a_block_reset_by_hand_is_forgotten_by_the_store() {
    let store = Arc::new(MemoryStore::default());
    let strategy = Arc::new(SmartStrategy::new(SmartConfig::production()).unwrap());
    let a = Fake::scripted("a", |_| Step::Fail(FailureClass::ServerLacksResource));
    let b = Fake::new("b");
    let pool = pool_on(store.clone(), &[&a, &b])
        .strategy(strategy)
        .build()
        .unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    let job = pool
        .enqueue(workflow("w"), JobOptions::new().prefer_server("a"))
        .await
        .unwrap();
    job.result().await.unwrap();
    let hash = job.record().hash();
    let ended = pool
        .reset_blocks(pool_core::BlockReset::Pair(ServerId::from("a"), hash))
        .await
        .unwrap();
    assert_eq!(ended, 1);
    pool.shutdown(ShutdownMode::Drain).await;
    assert!(
        store.blocks().await.unwrap().is_empty(),
        "a restart would not bring it back"
    );
    let mut reset = false;
    while let Some(event) = events.try_recv() {
        if let pool_core::PoolEvent::Workflow(pool_core::WorkflowEvent::Unblocked {
            reason, ..
        }) = event
        {
            reset |= reason == pool_failover::UnblockReason::Reset;
        }
    }
    assert!(reset, "the reset is an event");
}
