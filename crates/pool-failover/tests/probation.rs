//! Probation probes, expiry events, cleanup, resets and snapshots, on paused time.

mod support;

use pool_failover::{
    ClaimKind, FailoverEvent, FailoverStrategy, FailureClass, PairState, UnblockReason,
};
use support::{blocked_until, exact, hash, is_blocked, secs, server, unblock_reason};
use tokio::time::{Instant, advance};

#[tokio::test(start_paused = true)]
async fn the_first_claim_after_a_cooldown_is_the_only_probe() {
    let s = exact().build().unwrap();
    let (a, h) = (server("a"), hash(1));
    let _ = s.record_failure(&a, &h, FailureClass::Execution, Instant::now());
    assert_eq!(
        s.claim(&a, &h, Instant::now()).kind,
        ClaimKind::Denied,
        "still cooling down"
    );
    advance(secs(60)).await;
    let now = Instant::now();
    let probe = s.claim(&a, &h, now);
    assert_eq!(probe.kind, ClaimKind::Probe);
    assert_eq!(
        probe.events.iter().map(unblock_reason).collect::<Vec<_>>(),
        [Some(UnblockReason::Expired), None],
        "the unreported expiry comes first, then Probing: {:?}",
        probe.events
    );
    assert!(matches!(probe.events[1], FailoverEvent::Probing { .. }));
    assert!(
        !s.is_allowed(&a, &h, now),
        "others see the pair blocked while the probe runs"
    );
    assert_eq!(s.claim(&a, &h, now).kind, ClaimKind::Denied);
    assert_eq!(s.first_allowed(std::slice::from_ref(&a), &h, now), None);
}

#[tokio::test(start_paused = true)]
async fn a_successful_probe_clears_the_pair() {
    let s = exact().build().unwrap();
    let (a, h) = (server("a"), hash(1));
    let _ = s.record_failure(&a, &h, FailureClass::Execution, Instant::now());
    advance(secs(60)).await;
    let _ = s.poll_events(Instant::now());
    assert!(s.claim(&a, &h, Instant::now()).is_probe());
    assert!(
        s.record_success(&a, &h, Instant::now()).is_empty(),
        "the block was already matched"
    );
    assert!(s.is_empty());
    assert_eq!(s.claim(&a, &h, Instant::now()).kind, ClaimKind::Granted);
    assert_eq!(s.claim(&a, &h, Instant::now()).kind, ClaimKind::Granted);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_blocks_again_for_the_next_step() {
    let s = exact().build().unwrap();
    let (a, h) = (server("a"), hash(1));
    let _ = s.record_failure(&a, &h, FailureClass::Execution, Instant::now());
    advance(secs(60)).await;
    assert!(s.claim(&a, &h, Instant::now()).is_probe());
    advance(secs(3)).await;
    let now = Instant::now();
    let events = s.record_failure(&a, &h, FailureClass::Execution, now);
    assert!(matches!(
        events[..],
        [FailoverEvent::Blocked {
            blocked_count: 2,
            failures: 2,
            ..
        }]
    ));
    assert_eq!(blocked_until(&events) - now, secs(120));
    assert!(!s.is_allowed(&a, &h, now));
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_ends_without_verdict_frees_the_slot() {
    for class in [
        FailureClass::Cancelled,
        FailureClass::ServerDown,
        FailureClass::WorkflowInvalid,
    ] {
        let s = exact().build().unwrap();
        let (a, h) = (server("a"), hash(1));
        let _ = s.record_failure(&a, &h, FailureClass::Execution, Instant::now());
        advance(secs(60)).await;
        assert!(s.claim(&a, &h, Instant::now()).is_probe());
        assert!(s.record_failure(&a, &h, class, Instant::now()).is_empty());
        assert!(
            s.is_allowed(&a, &h, Instant::now()),
            "{class} frees the probe slot"
        );
        assert!(
            s.claim(&a, &h, Instant::now()).is_probe(),
            "a new probe may start after {class}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_never_reports_times_out() {
    let s = exact().probe_timeout(secs(300)).build().unwrap();
    let (a, h) = (server("a"), hash(1));
    let _ = s.record_failure(&a, &h, FailureClass::Execution, Instant::now());
    advance(secs(60)).await;
    assert!(s.claim(&a, &h, Instant::now()).is_probe());
    advance(secs(299)).await;
    assert!(!s.claim(&a, &h, Instant::now()).is_granted());
    advance(secs(1)).await;
    assert!(s.claim(&a, &h, Instant::now()).is_probe());
}

#[tokio::test(start_paused = true)]
async fn expiry_is_reported_without_any_dispatch_exactly_at_the_deadline() {
    let s = exact().build().unwrap();
    let (a, b, h) = (server("a"), server("b"), hash(1));
    let start = Instant::now();
    assert_eq!(s.next_deadline(), None);
    let _ = s.record_failure(&a, &h, FailureClass::Execution, start);
    advance(secs(10)).await;
    let _ = s.record_failure(&b, &h, FailureClass::Execution, Instant::now());
    assert_eq!(s.next_deadline(), Some(start + secs(60)));
    assert!(s.poll_events(start + secs(59)).is_empty());

    let deadline = s.next_deadline().unwrap();
    advance(deadline - Instant::now()).await;
    let events = s.poll_events(Instant::now());
    assert_eq!(
        events,
        vec![FailoverEvent::Unblocked {
            server: a.clone(),
            hash: h,
            reason: UnblockReason::Expired
        }]
    );
    assert!(s.poll_events(Instant::now()).is_empty(), "reported once");
    let next = s.next_deadline().unwrap();
    assert_eq!(next, start + secs(70), "b's expiry is next");
    let events = s.poll_events(next);
    assert!(matches!(&events[..], [FailoverEvent::Unblocked { server, .. }] if *server == b));
}

#[tokio::test(start_paused = true)]
async fn a_failure_after_an_unreported_expiry_reports_it_first() {
    let s = exact().build().unwrap();
    let (a, h) = (server("a"), hash(1));
    let _ = s.record_failure(&a, &h, FailureClass::Execution, Instant::now());
    advance(secs(61)).await;
    let events = s.record_failure(&a, &h, FailureClass::Execution, Instant::now());
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(unblock_reason(&events[0]), Some(UnblockReason::Expired));
    assert!(is_blocked(&events[1]));
}

#[tokio::test(start_paused = true)]
async fn a_success_during_a_block_unblocks_it() {
    let s = exact().build().unwrap();
    let (a, h) = (server("a"), hash(1));
    let _ = s.record_failure(&a, &h, FailureClass::Execution, Instant::now());
    let events = s.record_success(&a, &h, Instant::now());
    assert_eq!(
        events,
        vec![FailoverEvent::Unblocked {
            server: a.clone(),
            hash: h,
            reason: UnblockReason::Success
        }]
    );
    assert!(s.is_allowed(&a, &h, Instant::now()));
    assert!(s.is_empty());
    assert_eq!(s.next_deadline(), None);
}

#[tokio::test(start_paused = true)]
async fn quiet_entries_are_dropped_after_the_window() {
    let s = exact()
        .max_failures_before_block(3)
        .failure_window(secs(100))
        .build()
        .unwrap();
    let (a, h, g) = (server("a"), hash(1), hash(2));
    let _ = s.record_failure(&a, &h, FailureClass::Execution, Instant::now());
    let _ = s.record_failure(&a, &g, FailureClass::ServerLacksResource, Instant::now());
    assert_eq!(s.len(), 2);
    advance(secs(100)).await;
    let _ = s.poll_events(Instant::now());
    assert_eq!(
        s.len(),
        1,
        "the watched pair is forgotten, the blocked one is not"
    );
    let deadline = s.next_deadline().unwrap();
    advance(deadline - Instant::now()).await;
    let events = s.poll_events(Instant::now());
    assert_eq!(events.len(), 1);
    assert_eq!(s.len(), 1, "on probation until a quiet window has passed");
    advance(secs(100)).await;
    assert!(s.poll_events(Instant::now()).is_empty());
    assert!(s.is_empty());
    assert_eq!(s.next_deadline(), None);
}

#[tokio::test(start_paused = true)]
async fn resets_unblock_what_they_cover() {
    let s = exact().build().unwrap();
    let (a, b, h, g) = (server("a"), server("b"), hash(1), hash(2));
    let now = Instant::now();
    for (srv, hh) in [(&a, &h), (&a, &g), (&b, &h), (&b, &g)] {
        let _ = s.record_failure(srv, hh, FailureClass::Execution, now);
    }
    let events = s.reset_workflow(&h);
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| unblock_reason(e) == Some(UnblockReason::Reset) && *e.hash() == h)
    );
    assert!(s.is_allowed(&a, &h, now) && s.is_allowed(&b, &h, now));
    assert!(!s.is_allowed(&a, &g, now));

    let events = s.reset_server(&a);
    assert!(matches!(&events[..], [e] if *e.server() == a && *e.hash() == g));
    assert!(s.is_allowed(&a, &g, now) && !s.is_allowed(&b, &g, now));

    let events = s.reset_all();
    assert!(matches!(&events[..], [e] if *e.server() == b));
    assert!(s.is_empty() && s.is_allowed(&b, &g, now));
    assert!(s.reset_all().is_empty());
}

#[tokio::test(start_paused = true)]
async fn snapshot_shows_each_state() {
    let s = exact().max_failures_before_block(2).build().unwrap();
    let (a, h1, h2, h3) = (server("a"), hash(1), hash(2), hash(3));
    let t0 = Instant::now();
    let _ = s.record_failure(&a, &h1, FailureClass::Execution, t0);
    let _ = s.record_failure(&a, &h2, FailureClass::ServerLacksResource, t0);
    let _ = s.record_failure(&a, &h3, FailureClass::Stuck, t0);
    let _ = s.record_failure(&a, &h3, FailureClass::Stuck, t0);
    advance(secs(60)).await;
    let now = Instant::now();
    assert!(s.claim(&a, &h3, now).is_probe());
    let mut snap = s.snapshot(now);
    snap.sort_by_key(|p| p.hash);
    let states: Vec<_> = snap.iter().map(|p| p.state).collect();
    assert_eq!(
        states,
        [
            PairState::Watching,
            PairState::Blocked {
                until: t0 + secs(600)
            },
            PairState::Probing {
                deadline: now + s.config().probe_timeout
            },
        ]
    );
    assert_eq!(snap[1].last_class, FailureClass::ServerLacksResource);
    assert_eq!(snap[2].consecutive_failures, 2);
    assert_eq!(
        [
            snap[0].is_blocked(),
            snap[1].is_blocked(),
            snap[2].is_blocked()
        ],
        [false, true, true]
    );
    let stats = s.stats(now);
    assert_eq!(
        (stats.tracked, stats.watching, stats.blocked, stats.probing),
        (3, 1, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn resource_blocks_escalate_from_their_own_base() {
    let s = exact()
        .max_cooldown(secs(60))
        .resource_cooldown(secs(600))
        .build()
        .unwrap();
    let (a, h) = (server("a"), hash(1));
    let t0 = Instant::now();
    let until = blocked_until(&s.record_failure(&a, &h, FailureClass::ServerLacksResource, t0));
    assert_eq!(until - t0, secs(600));
    advance(secs(600)).await;
    let now = Instant::now();
    assert!(s.claim(&a, &h, now).is_probe());
    let until = blocked_until(&s.record_failure(&a, &h, FailureClass::ServerLacksResource, now));
    assert_eq!(
        until - now,
        secs(600),
        "capped at the larger of max_cooldown and the base"
    );
}
