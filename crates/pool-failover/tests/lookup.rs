//! Lookups of the smart strategy's table: hashes that differ in a single byte, server ids built
//! separately, many servers, and growth and shrinking under load.

mod support;

use pool_failover::{FailoverStrategy, FailureClass, ServerId};
use support::{exact, server};
use tokio::time::Instant;
use workflow_hash::WorkflowHash;

fn with_byte(at: usize, value: u8) -> WorkflowHash {
    let mut bytes = [7u8; 32];
    bytes[at] = value;
    WorkflowHash::from_bytes(bytes)
}

#[test]
fn hashes_differing_in_one_byte_anywhere_are_tracked_apart() {
    let s = exact().build().unwrap();
    let (a, now) = (server("a"), Instant::now());
    for at in 0..32 {
        let _ = s.record_failure(&a, &with_byte(at, 1), FailureClass::Execution, now);
    }
    for at in 0..32 {
        assert!(!s.is_allowed(&a, &with_byte(at, 1), now), "byte {at}");
        assert!(s.is_allowed(&a, &with_byte(at, 2), now), "byte {at}");
    }
    assert_eq!(s.len(), 32);
}

#[test]
fn ids_built_separately_name_the_same_server() {
    let s = exact().build().unwrap();
    let (h, now) = (with_byte(0, 1), Instant::now());
    let _ = s.record_failure(&ServerId::from("gpu-1"), &h, FailureClass::Execution, now);
    assert!(!s.is_allowed(&ServerId::new(String::from("gpu-1")), &h, now));
    assert!(s.is_allowed(&ServerId::from("gpu-10"), &h, now));
    assert!(s.is_allowed(&ServerId::from("gpu-"), &h, now));
    let _ = s.record_success(&ServerId::from(String::from("gpu-1")), &h, now);
    assert!(s.is_empty());
}

#[test]
fn first_allowed_agrees_with_is_allowed_across_many_pairs() {
    let s = exact().build().unwrap();
    let now = Instant::now();
    let servers: Vec<ServerId> = (0..64).map(|i| server(&format!("s{i}"))).collect();
    let hash = |n: u32| {
        let mut bytes = [0u8; 32];
        bytes[28..].copy_from_slice(&n.to_be_bytes());
        WorkflowHash::from_bytes(bytes)
    };
    // Hash n is blocked on the servers below n % 65: none, some, or all 64 of them.
    for n in 0..400u32 {
        for server in &servers[..(n % 65) as usize] {
            let _ = s.record_failure(server, &hash(n), FailureClass::Execution, now);
        }
    }
    for n in 0..400u32 {
        let expected = servers
            .iter()
            .position(|server| s.is_allowed(server, &hash(n), now));
        let blocked = (n % 65) as usize;
        assert_eq!(expected, (blocked < servers.len()).then_some(blocked));
        assert_eq!(
            s.first_allowed(&servers, &hash(n), now),
            expected,
            "hash {n}"
        );
    }
}

#[test]
fn pairs_survive_growth_and_shrinking() {
    let s = exact().build().unwrap();
    let now = Instant::now();
    let servers: Vec<ServerId> = (0..3).map(|i| server(&format!("s{i}"))).collect();
    let hash = |n: u32| {
        let mut bytes = [0u8; 32];
        bytes[..4].copy_from_slice(&n.to_le_bytes());
        WorkflowHash::from_bytes(bytes)
    };
    let pair = |n: u32| (&servers[(n % 3) as usize], hash(n));
    for n in 0..6000 {
        let (server, h) = pair(n);
        let _ = s.record_failure(server, &h, FailureClass::Execution, now);
    }
    // Clear all but every tenth pair, so every table shrinks several times.
    for n in (0..6000).filter(|n| n % 10 != 0) {
        let (server, h) = pair(n);
        assert!(!s.is_allowed(server, &h, now));
        let _ = s.record_success(server, &h, now);
    }
    assert_eq!(s.len(), 600);
    for n in 0..6000 {
        let (server, h) = pair(n);
        assert_eq!(s.is_allowed(server, &h, now), n % 10 != 0, "pair {n}");
    }
    assert_eq!(s.snapshot(now).len(), 600);
}
