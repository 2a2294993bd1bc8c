//! Threshold, failure window, classes and escalation of the smart strategy, on paused time.

mod support;

use pool_failover::{FailoverEvent, FailoverStrategy, FailureClass, SmartConfig, SmartStrategy};
use support::{blocked_until, exact, hash, secs, server};
use tokio::time::{Instant, advance};

#[tokio::test(start_paused = true)]
async fn one_failure_blocks_only_that_pair_in_production() {
    let s = exact().build().unwrap();
    let (a, b, h, other) = (server("a"), server("b"), hash(1), hash(2));
    let now = Instant::now();
    let events = s.record_failure(&a, &h, FailureClass::Execution, now);
    assert_eq!(
        events,
        vec![FailoverEvent::Blocked {
            server: a.clone(),
            hash: h,
            class: FailureClass::Execution,
            failures: 1,
            blocked_count: 1,
            until: now + secs(60),
        }]
    );
    assert!(!s.is_allowed(&a, &h, now));
    assert!(s.is_allowed(&b, &h, now), "other servers keep the workflow");
    assert!(
        s.is_allowed(&a, &other, now),
        "the server keeps other workflows"
    );
    advance(secs(59)).await;
    assert!(!s.is_allowed(&a, &h, Instant::now()));
    advance(secs(1)).await;
    assert!(s.is_allowed(&a, &h, Instant::now()));
}

#[tokio::test(start_paused = true)]
async fn threshold_counts_consecutive_failures_despite_checks_in_between() {
    let s = exact().max_failures_before_block(3).build().unwrap();
    let (a, h) = (server("a"), hash(1));
    for _ in 0..2 {
        let now = Instant::now();
        assert!(
            s.record_failure(&a, &h, FailureClass::Execution, now)
                .is_empty()
        );
        // Routing checks and claims between failures must not reset the count
        // (they do in comfyui-node, which is why values above 1 never block there).
        assert!(s.is_allowed(&a, &h, now));
        assert!(s.claim(&a, &h, now).is_granted());
        advance(secs(5)).await;
    }
    let now = Instant::now();
    let events = s.record_failure(&a, &h, FailureClass::Execution, now);
    assert!(matches!(
        events[..],
        [FailoverEvent::Blocked {
            failures: 3,
            blocked_count: 1,
            ..
        }]
    ));
    assert!(!s.is_allowed(&a, &h, now));
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_consecutive_count() {
    let s = exact().max_failures_before_block(2).build().unwrap();
    let (a, h) = (server("a"), hash(1));
    let _ = s.record_failure(&a, &h, FailureClass::Execution, Instant::now());
    let _ = s.record_success(&a, &h, Instant::now());
    assert!(s.is_empty());
    assert!(
        s.record_failure(&a, &h, FailureClass::Execution, Instant::now())
            .is_empty()
    );
    assert!(s.is_allowed(&a, &h, Instant::now()));
}

#[tokio::test(start_paused = true)]
async fn failures_older_than_the_window_are_forgotten() {
    let s = exact()
        .max_failures_before_block(2)
        .failure_window(secs(30))
        .build()
        .unwrap();
    let (a, h) = (server("a"), hash(1));
    assert!(
        s.record_failure(&a, &h, FailureClass::Execution, Instant::now())
            .is_empty()
    );
    advance(secs(30)).await;
    assert!(
        s.record_failure(&a, &h, FailureClass::Execution, Instant::now())
            .is_empty(),
        "the first failure fell out of the window"
    );
    advance(secs(29)).await;
    let events = s.record_failure(&a, &h, FailureClass::Execution, Instant::now());
    assert!(matches!(
        events[..],
        [FailoverEvent::Blocked { failures: 2, .. }]
    ));
}

#[tokio::test(start_paused = true)]
async fn classes_that_say_nothing_about_the_pair_block_nothing() {
    let s = exact().build().unwrap();
    let (a, h) = (server("a"), hash(1));
    for class in [
        FailureClass::WorkflowInvalid,
        FailureClass::ServerDown,
        FailureClass::Cancelled,
    ] {
        for _ in 0..5 {
            assert!(s.record_failure(&a, &h, class, Instant::now()).is_empty());
        }
        assert!(
            s.is_allowed(&a, &h, Instant::now()),
            "{class} must not block"
        );
        assert!(s.is_empty(), "{class} must not be tracked");
    }
}

#[tokio::test(start_paused = true)]
async fn a_missing_resource_blocks_at_once_with_the_long_cooldown() {
    let s = exact()
        .max_failures_before_block(5)
        .resource_cooldown(secs(600))
        .build()
        .unwrap();
    let (a, h) = (server("a"), hash(1));
    let now = Instant::now();
    let events = s.record_failure(&a, &h, FailureClass::ServerLacksResource, now);
    assert!(matches!(
        events[..],
        [FailoverEvent::Blocked {
            class: FailureClass::ServerLacksResource,
            failures: 1,
            ..
        }]
    ));
    assert_eq!(blocked_until(&events), now + secs(600));
}

#[tokio::test(start_paused = true)]
async fn stuck_counts_like_an_execution_failure() {
    let s = exact().max_failures_before_block(2).build().unwrap();
    let (a, h) = (server("a"), hash(1));
    assert!(
        s.record_failure(&a, &h, FailureClass::Stuck, Instant::now())
            .is_empty()
    );
    let now = Instant::now();
    let events = s.record_failure(&a, &h, FailureClass::Execution, now);
    assert!(matches!(
        events[..],
        [FailoverEvent::Blocked {
            class: FailureClass::Execution,
            failures: 2,
            ..
        }]
    ));
    assert_eq!(
        blocked_until(&events),
        now + secs(60),
        "stuck uses the ordinary cooldown"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_during_a_block_neither_extends_nor_escalates_it() {
    let s = exact().build().unwrap();
    let (a, h) = (server("a"), hash(1));
    let start = Instant::now();
    let _ = s.record_failure(&a, &h, FailureClass::Execution, start);
    advance(secs(30)).await;
    assert!(
        s.record_failure(&a, &h, FailureClass::ServerLacksResource, Instant::now())
            .is_empty()
    );
    advance(secs(30)).await;
    assert!(
        s.is_allowed(&a, &h, Instant::now()),
        "the block still ends at its first deadline"
    );
}

/// Blocks `a` for `h` again from probation and returns the cooldown it got.
fn reblock(s: &SmartStrategy, now: Instant) -> std::time::Duration {
    let (a, h) = (server("a"), hash(1));
    assert!(s.claim(&a, &h, now).is_probe());
    blocked_until(&s.record_failure(&a, &h, FailureClass::Execution, now)) - now
}

#[tokio::test(start_paused = true)]
async fn cooldown_escalates_up_to_the_cap_and_a_success_resets_it() {
    let s = exact()
        .cooldown(secs(10))
        .cooldown_multiplier(3.0)
        .max_cooldown(secs(100))
        .build()
        .unwrap();
    let (a, h) = (server("a"), hash(1));
    let first = blocked_until(&s.record_failure(&a, &h, FailureClass::Execution, Instant::now()));
    assert_eq!(first - Instant::now(), secs(10));
    let mut got = Vec::new();
    for _ in 0..3 {
        tokio::time::advance(got.last().copied().unwrap_or(secs(10))).await;
        got.push(reblock(&s, Instant::now()));
    }
    assert_eq!(got, [secs(30), secs(90), secs(100)]);
    advance(secs(100)).await;
    assert!(s.claim(&a, &h, Instant::now()).is_probe());
    let _ = s.record_success(&a, &h, Instant::now());
    let now = Instant::now();
    let again = blocked_until(&s.record_failure(&a, &h, FailureClass::Execution, now));
    assert_eq!(again - now, secs(10), "a success resets the escalation");
}

#[tokio::test(start_paused = true)]
async fn escalation_is_forgotten_after_a_quiet_window() {
    let s = exact()
        .cooldown(secs(10))
        .failure_window(secs(60))
        .build()
        .unwrap();
    let (a, h) = (server("a"), hash(1));
    let _ = s.record_failure(&a, &h, FailureClass::Execution, Instant::now());
    advance(secs(10 + 60)).await;
    let _ = s.poll_events(Instant::now());
    assert!(s.is_empty(), "expired and quiet for a window: dropped");
    let now = Instant::now();
    let events = s.record_failure(&a, &h, FailureClass::Execution, now);
    assert!(matches!(
        events[..],
        [FailoverEvent::Blocked {
            blocked_count: 1,
            ..
        }]
    ));
    assert_eq!(blocked_until(&events) - now, secs(10));
}

#[tokio::test(start_paused = true)]
async fn jitter_only_lengthens_and_is_reproducible_from_the_seed() {
    let build = |seed| {
        SmartStrategy::builder()
            .cooldown(secs(100))
            .jitter(0.25)
            .seed(seed)
            .build()
            .unwrap()
    };
    let now = Instant::now();
    let run = |seed| -> Vec<std::time::Duration> {
        let s = build(seed);
        (0..50u8)
            .map(|n| {
                blocked_until(&s.record_failure(
                    &server("a"),
                    &hash(n),
                    FailureClass::Execution,
                    now,
                )) - now
            })
            .collect()
    };
    let first = run(7);
    assert_eq!(first, run(7), "same seed, same cooldowns");
    assert_ne!(first, run(8), "another seed, other cooldowns");
    for cooldown in &first {
        assert!(
            *cooldown >= secs(100) && *cooldown <= secs(125),
            "{cooldown:?} out of [100 s, 125 s]"
        );
    }
    assert!(first.iter().any(|c| *c > secs(101)), "jitter is applied");
}

#[test]
fn presets_match_the_well_known_configurations() {
    let dev = SmartConfig::development();
    assert_eq!((dev.cooldown, dev.max_failures_before_block), (secs(30), 3));
    let prod = SmartConfig::production();
    assert_eq!(
        (prod.cooldown, prod.max_failures_before_block),
        (secs(60), 1)
    );
    let ha = SmartConfig::high_availability();
    assert_eq!((ha.cooldown, ha.max_failures_before_block), (secs(120), 1));
    assert_eq!(SmartConfig::default(), prod);
    for preset in [dev, prod, ha] {
        assert!(preset.validate().is_ok());
    }
}

#[test]
fn invalid_configurations_name_the_field() {
    let cases = [
        (SmartStrategy::builder().cooldown(secs(0)), "cooldown"),
        (
            SmartStrategy::builder().max_failures_before_block(0),
            "max_failures_before_block",
        ),
        (
            SmartStrategy::builder().cooldown_multiplier(0.5),
            "cooldown_multiplier",
        ),
        (
            SmartStrategy::builder().cooldown_multiplier(f64::NAN),
            "cooldown_multiplier",
        ),
        (SmartStrategy::builder().jitter(-0.1), "jitter"),
        (
            SmartStrategy::builder().max_cooldown(secs(1)),
            "max_cooldown",
        ),
        (
            SmartStrategy::builder().probe_timeout(secs(0)),
            "probe_timeout",
        ),
        (
            SmartStrategy::builder().failure_window(secs(400 * 24 * 3600)),
            "failure_window",
        ),
    ];
    for (builder, field) in cases {
        match builder.build() {
            Err(pool_failover::Error::InvalidConfig { field: got, .. }) => assert_eq!(got, field),
            other => panic!("expected an invalid {field}, got {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_restored_block_holds_until_its_end_then_probation_and_escalation_go_on() {
    let s = exact().build().unwrap();
    let (a, h) = (server("a"), hash(3));
    let now = Instant::now();
    let events = s.restore_block(&a, &h, FailureClass::Execution, 2, 2, now + secs(30), now);
    assert!(matches!(
        events.as_slice(),
        [FailoverEvent::Blocked {
            failures: 2,
            blocked_count: 2,
            ..
        }]
    ));
    assert!(!s.is_allowed(&a, &h, now));
    advance(secs(30)).await;
    let expired = s.poll_events(Instant::now());
    assert!(matches!(
        expired.as_slice(),
        [FailoverEvent::Unblocked { .. }]
    ));
    let claim = s.claim(&a, &h, Instant::now());
    assert!(
        claim.is_probe(),
        "the first job after the restored block is the probe"
    );
    // The escalation went on from the restored step: the third block is the longest yet.
    let again = s.record_failure(&a, &h, FailureClass::Execution, Instant::now());
    assert!(matches!(
        again.as_slice(),
        [FailoverEvent::Blocked {
            blocked_count: 3,
            ..
        }]
    ));
    assert_eq!(blocked_until(&again), Instant::now() + secs(240));
    // A block that ended while the pool was down expires at once.
    let (b, past) = (server("b"), Instant::now());
    advance(secs(1)).await;
    let events = s.restore_block(&b, &h, FailureClass::Stuck, 1, 1, past, Instant::now());
    assert_eq!(events.len(), 1);
    let expired = s.poll_events(Instant::now());
    assert!(matches!(
        expired.as_slice(),
        [FailoverEvent::Unblocked { .. }]
    ));
    assert!(s.is_allowed(&b, &h, Instant::now()));
}

#[tokio::test(start_paused = true)]
async fn a_pair_reset_ends_its_block_and_only_its_block() {
    let s = exact().build().unwrap();
    let (a, h, other) = (server("a"), hash(4), hash(5));
    let now = Instant::now();
    let _ = s.record_failure(&a, &h, FailureClass::Execution, now);
    let _ = s.record_failure(&a, &other, FailureClass::Execution, now);
    let events = s.reset_pair(&a, &h);
    assert!(matches!(
        events.as_slice(),
        [FailoverEvent::Unblocked {
            reason: pool_failover::UnblockReason::Reset,
            ..
        }]
    ));
    assert!(s.is_allowed(&a, &h, now));
    assert!(
        !s.is_allowed(&a, &other, now),
        "the other pair stays blocked"
    );
    assert!(s.reset_pair(&a, &h).is_empty(), "nothing left to reset");
}
