//! Property test: random sequences of failures, successes, claims, polls, resets and time
//! steps never break the strategy's promises.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use pool_failover::{
    AllBlockedDecision, AllBlockedPolicy, FailoverEvent, FailoverStrategy, FailureClass, ServerId,
    SmartStrategy, UnblockReason,
};
use proptest::prelude::*;
use support::{hash, server};
use tokio::time::Instant;
use workflow_hash::WorkflowHash;

#[derive(Debug, Clone)]
enum Op {
    Fail(usize, u8, FailureClass),
    Success(usize, u8),
    Claim(usize, u8),
    Advance(u64),
    Poll,
    ResetWorkflow(u8),
    ResetServer(usize),
    AllBlocked(u8),
}

const SERVERS: usize = 3;
const HASHES: u8 = 3;

fn op() -> impl Strategy<Value = Op> {
    let s = 0..SERVERS;
    let h = 0..HASHES;
    let class = prop::sample::select(FailureClass::ALL.to_vec());
    prop_oneof![
        6 => (s.clone(), h.clone(), class).prop_map(|(s, h, c)| Op::Fail(s, h, c)),
        2 => (s.clone(), h.clone()).prop_map(|(s, h)| Op::Success(s, h)),
        4 => (s.clone(), h.clone()).prop_map(|(s, h)| Op::Claim(s, h)),
        4 => (0u64..200_000).prop_map(Op::Advance),
        2 => Just(Op::Poll),
        1 => h.clone().prop_map(Op::ResetWorkflow),
        1 => s.prop_map(Op::ResetServer),
        2 => h.prop_map(Op::AllBlocked),
    ]
}

fn config() -> impl Strategy<Value = SmartStrategy> {
    (
        1u32..4,
        1u64..60,
        0.0f64..0.5,
        1.0f64..3.0,
        1u64..300,
        1u64..120,
        prop::sample::select(vec![
            AllBlockedPolicy::WaitForEarliest,
            AllBlockedPolicy::ProbeLeastRecentlyFailed,
            AllBlockedPolicy::FailFast,
        ]),
        any::<u64>(),
    )
        .prop_map(
            |(threshold, cooldown, jitter, mult, window, probe, policy, seed)| {
                SmartStrategy::builder()
                    .max_failures_before_block(threshold)
                    .cooldown(Duration::from_secs(cooldown))
                    .resource_cooldown(Duration::from_secs(cooldown * 3))
                    .max_cooldown(Duration::from_secs(cooldown * 5))
                    .jitter(jitter)
                    .cooldown_multiplier(mult)
                    .failure_window(Duration::from_secs(window))
                    .probe_timeout(Duration::from_secs(probe))
                    .all_blocked(policy)
                    .seed(seed)
                    .build()
                    .expect("generated configs are valid")
            },
        )
}

/// What the events told an observer.
#[derive(Default)]
struct Observer {
    /// Pairs with a `Blocked` event not yet matched by an `Unblocked`, and their `until`.
    open: HashMap<(ServerId, WorkflowHash), Instant>,
    /// Counted failures recorded per pair since its last clear.
    failures: HashMap<(ServerId, WorkflowHash), u64>,
}

impl Observer {
    fn see(&mut self, events: &[FailoverEvent], now: Instant) -> Result<(), TestCaseError> {
        for event in events {
            let key = (event.server().clone(), *event.hash());
            match event {
                FailoverEvent::Blocked {
                    until,
                    failures,
                    blocked_count,
                    ..
                } => {
                    prop_assert!(
                        !self.open.contains_key(&key),
                        "blocked twice without unblock"
                    );
                    prop_assert!(*until > now, "a block ends in the future");
                    prop_assert!(*failures >= 1 && *blocked_count >= 1);
                    let recorded = self.failures.get(&key).copied().unwrap_or(0);
                    prop_assert!(
                        u64::from(*failures) <= recorded,
                        "{failures} > {recorded} recorded"
                    );
                    self.open.insert(key, *until);
                }
                FailoverEvent::Unblocked { reason, .. } => {
                    let until = self.open.remove(&key);
                    prop_assert!(until.is_some(), "unblocked without a block: {event:?}");
                    if *reason == UnblockReason::Expired {
                        prop_assert!(until.is_some_and(|until| now >= until), "expired early");
                    }
                }
                FailoverEvent::Probing { .. } => {
                    prop_assert!(
                        !self.open.contains_key(&key),
                        "probing a pair still blocked"
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn promises_hold_for_any_sequence(strategy in config(), ops in prop::collection::vec(op(), 1..120)) {
        let servers: Vec<ServerId> = (0..SERVERS).map(|i| server(&format!("s{i}"))).collect();
        let mut now = Instant::now();
        let mut seen = Observer::default();
        for op in ops {
            match op {
                Op::Fail(s, h, class) => {
                    let key = (servers[s].clone(), hash(h));
                    if class.affects_pair() {
                        *seen.failures.entry(key).or_default() += 1;
                    }
                    let events = strategy.record_failure(&servers[s], &hash(h), class, now);
                    seen.see(&events, now)?;
                }
                Op::Success(s, h) => {
                    let events = strategy.record_success(&servers[s], &hash(h), now);
                    seen.see(&events, now)?;
                    seen.failures.remove(&(servers[s].clone(), hash(h)));
                    prop_assert!(strategy.is_allowed(&servers[s], &hash(h), now), "a success clears");
                    prop_assert!(strategy.claim(&servers[s], &hash(h), now).kind == pool_failover::ClaimKind::Granted);
                }
                Op::Claim(s, h) => {
                    let allowed = strategy.is_allowed(&servers[s], &hash(h), now);
                    let claim = strategy.claim(&servers[s], &hash(h), now);
                    prop_assert_eq!(claim.is_granted(), allowed, "claim agrees with is_allowed");
                    seen.see(&claim.events, now)?;
                    if claim.is_probe() {
                        prop_assert!(!strategy.is_allowed(&servers[s], &hash(h), now), "one probe only");
                    }
                }
                Op::Advance(ms) => now += Duration::from_millis(ms),
                Op::Poll => {
                    let events = strategy.poll_events(now);
                    seen.see(&events, now)?;
                    if let Some(deadline) = strategy.next_deadline() {
                        prop_assert!(deadline > now, "poll handled everything due");
                    }
                }
                Op::ResetWorkflow(h) => {
                    let events = strategy.reset_workflow(&hash(h));
                    seen.see(&events, now)?;
                    seen.failures.retain(|(_, hh), _| *hh != hash(h));
                }
                Op::ResetServer(s) => {
                    let events = strategy.reset_server(&servers[s]);
                    seen.see(&events, now)?;
                    seen.failures.retain(|(ss, _), _| *ss != servers[s]);
                }
                Op::AllBlocked(h) => {
                    let answer = strategy.on_all_blocked(&servers, &hash(h), now);
                    seen.see(&answer.events, now)?;
                    match answer.decision {
                        AllBlockedDecision::Wait { until, .. } => prop_assert!(until > now),
                        AllBlockedDecision::Proceed { server } => {
                            prop_assert!(strategy.is_allowed(&server, &hash(h), now));
                        }
                        _ => {}
                    }
                }
            }
            // A pair reported blocked is never allowed before its expiry.
            for ((s, h), until) in &seen.open {
                if now < *until {
                    prop_assert!(!strategy.is_allowed(s, h, now), "blocked pair allowed early");
                }
            }
            for status in strategy.snapshot(now) {
                let recorded = seen.failures.get(&(status.server.clone(), status.hash)).copied().unwrap_or(0);
                prop_assert!(u64::from(status.consecutive_failures) <= recorded);
                prop_assert!(u64::from(status.blocked_count) <= recorded);
            }
            prop_assert!(strategy.len() <= SERVERS * usize::from(HASHES));
        }
        // Once time passes, every block is matched and the table empties itself.
        for _ in 0..3 {
            now += Duration::from_secs(10_000);
            let events = strategy.poll_events(now);
            seen.see(&events, now)?;
        }
        prop_assert!(seen.open.is_empty(), "blocks never unblocked: {:?}", seen.open);
        prop_assert_eq!(strategy.len(), 0);
        prop_assert_eq!(strategy.next_deadline(), None);
    }
}
