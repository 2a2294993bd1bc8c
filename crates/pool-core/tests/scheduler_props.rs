//! Property tests of the scheduler over fake servers (paused time): no job is lost, priority
//! order holds, and a blocked (server, workflow) pair is never dispatched to — also by jobs of
//! several workflow variants, whose variants fail and block independently.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use pool_core::{
    Backoff, FailureClass, JobEventKind, JobOptions, Pool, PoolEvent, ShutdownMode, WorkflowEvent,
};
use pool_failover::{SmartConfig, SmartStrategy};
use proptest::prelude::*;
use support::{Fake, Step, workflow};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

#[derive(Debug, Clone)]
struct JobSpec {
    priority: i32,
    tenant: u8,
    /// The job's workflow variants (workflows `0` to `3`), in order of preference.
    variants: Vec<u8>,
}

fn job_spec() -> impl Strategy<Value = JobSpec> {
    (0i32..3, 0u8..3, proptest::collection::vec(0u8..4, 1..3)).prop_map(
        |(priority, tenant, variants)| JobSpec {
            priority,
            tenant,
            variants,
        },
    )
}

/// Per server, per variant: what a run does.
fn fault() -> impl Strategy<Value = Option<FailureClass>> {
    prop_oneof![
        6 => Just(None),
        1 => Just(Some(FailureClass::ServerLacksResource)),
        1 => Just(Some(FailureClass::Execution)),
        1 => Just(Some(FailureClass::ServerDown)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn no_job_is_lost_and_blocked_pairs_are_never_dispatched_to(
        faults in proptest::collection::vec(proptest::collection::vec(fault(), 4), 1..4),
        jobs in proptest::collection::vec(job_spec(), 1..40),
    ) {
        runtime().block_on(async move {
            let fakes: Vec<_> = faults
                .iter()
                .enumerate()
                .map(|(i, per_variant)| {
                    let per_variant = per_variant.clone();
                    Fake::scripted(&format!("s{i}"), move |req| {
                        let variant = req.workflow["2"]["inputs"]["filename_prefix"].as_str().unwrap();
                        let v: usize = variant.parse().unwrap();
                        match per_variant[v] {
                            Some(class) => Step::Fail(class),
                            None => Step::Ok,
                        }
                    })
                })
                .collect();
            let mut config = SmartConfig::production();
            config.jitter = 0.0;
            let strategy = Arc::new(SmartStrategy::new(config).unwrap());
            let pool = Pool::builder()
                .servers(fakes.iter().map(|f| f.config()))
                .strategy(strategy)
                .event_capacity(1 << 16)
                .build()
                .unwrap();
            let mut events = pool.subscribe();
            pool.ready().await;
            let mut hashes_of = HashMap::new();
            for (i, spec) in jobs.iter().enumerate() {
                let wfs: Vec<_> = spec.variants.iter().map(|v| workflow(&v.to_string())).collect();
                let hashes: Vec<_> = wfs.iter().map(|wf| pool_core::WorkflowHash::of(wf).unwrap()).collect();
                let options = JobOptions::new()
                    .priority(spec.priority)
                    .tenant(spec.tenant.to_string())
                    .backoff(Backoff::none())
                    .job_id(format!("j{i}"));
                let handle = pool.enqueue_variants(wfs, options).await.unwrap();
                hashes_of.insert(handle.id().clone(), hashes);
            }
            pool.shutdown(ShutdownMode::Drain).await;
            let mut blocked = HashSet::new();
            let mut terminal: HashMap<_, usize> = HashMap::new();
            let mut running = HashSet::new();
            while let Some(event) = events.try_recv() {
                match event {
                    PoolEvent::Workflow(WorkflowEvent::Blocked { server, hash, .. }) => {
                        blocked.insert((server, hash));
                    }
                    PoolEvent::Workflow(WorkflowEvent::Unblocked { server, hash, .. }) => {
                        blocked.remove(&(server, hash));
                    }
                    PoolEvent::Job(e) => match e.kind {
                        JobEventKind::Started { server, probe, attempt, .. } => {
                            // The variant this attempt ran, from the job's record.
                            let record = pool.record(e.job.as_str()).unwrap();
                            let ran = &record.attempts[attempt as usize - 1];
                            let hash = hashes_of[&e.job][ran.variant];
                            assert_eq!(ran.hash, Some(hash));
                            assert!(probe || !blocked.contains(&(server.clone(), hash)), "dispatched {} to blocked {server}", e.job);
                            assert!(running.insert(e.job.clone()), "{} runs twice at once", e.job);
                        }
                        JobEventKind::Failed { will_retry: true, .. } => {
                            running.remove(&e.job);
                        }
                        kind if kind.is_terminal() => {
                            running.remove(&e.job);
                            *terminal.entry(e.job).or_default() += 1;
                        }
                        _ => {}
                    },
                    PoolEvent::Lagged { missed } => panic!("lagged {missed}"),
                    _ => {}
                }
            }
            assert_eq!(terminal.len(), jobs.len());
            assert!(terminal.values().all(|n| *n == 1));
        });
    }

    #[test]
    fn dispatch_follows_priority_and_fifo_per_tenant(jobs in proptest::collection::vec(job_spec(), 1..40)) {
        runtime().block_on(async move {
            let fake = Fake::scripted("a", |_| Step::Gated);
            let pool = Pool::builder().server(fake.config()).build().unwrap();
            pool.ready().await;
            let mut starts = fake.watch_starts();
            let _blocker = pool.enqueue(workflow("0"), JobOptions::new().job_id("blocker")).await.unwrap();
            starts.recv().await.unwrap();
            for (i, spec) in jobs.iter().enumerate() {
                let options = JobOptions::new().priority(spec.priority).tenant(spec.tenant.to_string()).job_id(format!("{i}"));
                let wfs = spec.variants.iter().map(|v| workflow(&v.to_string()));
                pool.enqueue_variants(wfs, options).await.unwrap();
            }
            pool.stats().await.unwrap();
            fake.open(1000);
            pool.shutdown(ShutdownMode::Drain).await;
            let order: Vec<usize> = fake.jobs_run().iter().skip(1).map(|id| id.parse().unwrap()).collect();
            assert_eq!(order.len(), jobs.len());
            for pair in order.windows(2) {
                assert!(jobs[pair[0]].priority >= jobs[pair[1]].priority, "{order:?}");
            }
            let mut last_per_tenant: HashMap<(i32, u8), usize> = HashMap::new();
            for i in order {
                let key = (jobs[i].priority, jobs[i].tenant);
                if let Some(prev) = last_per_tenant.insert(key, i) {
                    assert!(prev < i, "FIFO within a tenant and priority");
                }
            }
        });
    }
}
