//! The all-blocked policies, object safety, the no-op strategy and the small public types.

mod support;

use std::sync::Arc;

use pool_failover::{
    AllBlockedDecision, AllBlockedPolicy, Error, FailoverEvent, FailoverStrategy, FailureClass,
    NoopStrategy, ServerId, SmartStrategy, UnblockReason,
};
use support::{exact, hash, secs, server, unblock_reason};
use tokio::time::{Instant, advance};

/// Blocks `h` on a (at t0), b (at t0 + 10 s, lacking a resource) and c (at t0 + 20 s).
async fn three_blocked(policy: AllBlockedPolicy) -> (SmartStrategy, Vec<ServerId>, Instant) {
    let s = exact().all_blocked(policy).build().expect("valid config");
    let t0 = Instant::now();
    let servers = vec![server("a"), server("b"), server("c")];
    let classes = [
        FailureClass::Execution,
        FailureClass::ServerLacksResource,
        FailureClass::Stuck,
    ];
    for (srv, class) in servers.iter().zip(classes) {
        let _ = s.record_failure(srv, &hash(1), class, Instant::now());
        advance(secs(10)).await;
    }
    (s, servers, t0)
}

#[tokio::test(start_paused = true)]
async fn wait_for_earliest_names_the_first_server_to_free_up() {
    let (s, servers, t0) = three_blocked(AllBlockedPolicy::WaitForEarliest).await;
    let now = Instant::now();
    assert_eq!(s.first_allowed(&servers, &hash(1), now), None);
    let answer = s.on_all_blocked(&servers, &hash(1), now);
    assert!(answer.events.is_empty());
    assert_eq!(
        answer.decision,
        AllBlockedDecision::Wait {
            server: server("a"),
            until: t0 + secs(60)
        }
    );
    advance(t0 + secs(60) - now).await;
    let answer = s.on_all_blocked(&servers, &hash(1), Instant::now());
    assert_eq!(
        answer.decision,
        AllBlockedDecision::Proceed {
            server: server("a")
        }
    );
}

#[tokio::test(start_paused = true)]
async fn probe_least_recently_failed_forces_one_probe() {
    let (s, servers, _) = three_blocked(AllBlockedPolicy::ProbeLeastRecentlyFailed).await;
    let now = Instant::now();
    let answer = s.on_all_blocked(&servers, &hash(1), now);
    assert_eq!(
        answer.decision,
        AllBlockedDecision::Probe {
            server: server("a")
        }
    );
    assert_eq!(answer.events.len(), 2);
    assert_eq!(
        unblock_reason(&answer.events[0]),
        Some(UnblockReason::ForcedProbe)
    );
    assert!(
        matches!(&answer.events[1], FailoverEvent::Probing { server, .. } if *server == servers[0])
    );
    assert!(
        !s.is_allowed(&servers[0], &hash(1), now),
        "the probe holds the slot"
    );
    let next = s.on_all_blocked(&servers, &hash(1), now);
    assert_eq!(
        next.decision,
        AllBlockedDecision::Probe {
            server: server("b")
        },
        "then the next oldest"
    );
    let _ = s.on_all_blocked(&servers, &hash(1), now);
    let last = s.on_all_blocked(&servers, &hash(1), now);
    assert!(
        matches!(last.decision, AllBlockedDecision::Wait { .. }),
        "every probe slot taken: wait, never loop: {:?}",
        last.decision
    );
    assert!(
        s.poll_events(now + secs(3600))
            .iter()
            .all(|e| unblock_reason(e).is_none()),
        "no double unblock"
    );
}

#[tokio::test(start_paused = true)]
async fn fail_fast_says_per_server_why_and_until_when() {
    let (s, servers, t0) = three_blocked(AllBlockedPolicy::FailFast).await;
    let now = Instant::now();
    let AllBlockedDecision::Fail(error) = s.on_all_blocked(&servers, &hash(1), now).decision else {
        panic!("expected a failure");
    };
    assert!(error.is_all_blocked());
    let blocks = error.blocked_servers();
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[1].server, server("b"));
    assert_eq!(blocks[1].class, Some(FailureClass::ServerLacksResource));
    assert_eq!(blocks[1].until, Some(t0 + secs(10) + secs(600)));
    assert_eq!(blocks[1].remaining, Some(secs(580)));
    let text = error.to_string();
    assert!(text.starts_with(&format!(
        "workflow {} is blocked on every candidate server: ",
        hash(1)
    )));
    assert!(
        text.contains("a (execution, 1 failure, blocked for 30.0s more)"),
        "{text}"
    );
    assert!(
        text.contains("b (server_lacks_resource, 1 failure, blocked for 580.0s more)"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn no_candidates_is_an_error_not_a_wait() {
    let s = exact().build().unwrap();
    let answer = s.on_all_blocked(&[], &hash(1), Instant::now());
    assert_eq!(
        answer.decision,
        AllBlockedDecision::Fail(Error::NoCandidates { hash: hash(1) })
    );
    let answer = NoopStrategy.on_all_blocked(&[], &hash(1), Instant::now());
    assert!(matches!(
        answer.decision,
        AllBlockedDecision::Fail(Error::NoCandidates { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn strategies_are_object_safe_and_shareable() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Arc<dyn FailoverStrategy>>();
    let strategies: Vec<Arc<dyn FailoverStrategy>> =
        vec![Arc::new(exact().build().unwrap()), Arc::new(NoopStrategy)];
    let (a, h, now) = (server("a"), hash(1), Instant::now());
    let blocked: Vec<bool> = strategies
        .iter()
        .map(|s| {
            let _ = s.record_failure(&a, &h, FailureClass::Execution, now);
            !s.is_allowed(&a, &h, now)
        })
        .collect();
    assert_eq!(blocked, [true, false], "smart blocks, noop never does");
    let noop = &strategies[1];
    assert!(noop.claim(&a, &h, now).is_granted());
    assert_eq!(
        noop.first_allowed(std::slice::from_ref(&a), &h, now),
        Some(0)
    );
    assert_eq!(
        noop.on_all_blocked(std::slice::from_ref(&a), &h, now)
            .decision,
        AllBlockedDecision::Proceed { server: a }
    );
}

#[test]
fn server_ids_borrow_compare_and_serialize_as_strings() {
    let id = ServerId::from("gpu-1");
    assert_eq!(id, "gpu-1");
    assert_eq!(id.to_string(), "gpu-1");
    assert_eq!(format!("{id:?}"), "\"gpu-1\"");
    assert_eq!(serde_json::to_string(&id).unwrap(), "\"gpu-1\"");
    assert_eq!(serde_json::from_str::<ServerId>("\"gpu-1\"").unwrap(), id);
    assert_eq!(
        serde_json::to_string(&FailureClass::ServerLacksResource).unwrap(),
        "\"server_lacks_resource\""
    );
    let mut set = std::collections::HashSet::new();
    set.insert(id);
    assert!(set.contains("gpu-1"), "lookups by &str");
}

#[test]
fn failure_classes_have_stable_names_and_retry_rules() {
    let names: Vec<_> = FailureClass::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        names,
        [
            "workflow_invalid",
            "server_lacks_resource",
            "execution",
            "server_down",
            "stuck",
            "cancelled"
        ]
    );
    let retryable: Vec<_> = FailureClass::ALL.iter().map(|c| c.is_retryable()).collect();
    assert_eq!(retryable, [false, true, true, true, true, false]);
    let affects: Vec<_> = FailureClass::ALL.iter().map(|c| c.affects_pair()).collect();
    assert_eq!(affects, [false, true, true, false, true, false]);
}
