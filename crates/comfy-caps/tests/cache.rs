//! The verdict cache: hits, invalidation by capabilities version, bounded size.
#![allow(clippy::unwrap_used)]

use comfy_caps::{Capabilities, CapsVersion, Requirements, Result, Verdict, VerdictCache};
use serde_json::json;
use workflow_hash::WorkflowHash;

fn caps(ckpts: &[&str]) -> Capabilities {
    let doc = json!({
        "CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [ckpts]}}},
        "SaveImage": {"input": {"required": {"images": ["IMAGE"]}}},
    });
    Capabilities::from_object_info(doc.to_string().as_bytes()).unwrap()
}

fn workflow(ckpt: &str) -> (WorkflowHash, Requirements) {
    let wf = json!({
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}},
    });
    (
        WorkflowHash::of(&wf).unwrap(),
        Requirements::of(&wf).unwrap(),
    )
}

fn hash(n: u32) -> WorkflowHash {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&n.to_le_bytes());
    bytes[31] = 1;
    WorkflowHash::from_bytes(bytes)
}

#[test]
fn a_verdict_is_checked_once_then_served_from_the_cache() {
    let before = caps(&[]);
    let (h, reqs) = workflow("a.safetensors");
    let mut cache = VerdictCache::new(16);
    assert_eq!(cache.get(&"gpu-1", before.version(), &h), None);
    let verdict = cache.get_or_check(&"gpu-1", &before, &h, &reqs).clone();
    assert!(!verdict.is_capable());
    assert_eq!(cache.get(&"gpu-1", before.version(), &h), Some(&verdict));
    assert_eq!(cache.peek(&"gpu-1", before.version(), &h), Some(&verdict));
    // Other servers and workflows have their own entries.
    assert_eq!(cache.get(&"gpu-2", before.version(), &h), None);
    assert_eq!(cache.get(&"gpu-1", before.version(), &hash(1)), None);

    // A cached entry is what is served, not a fresh check.
    cache.insert("gpu-1", before.version(), h, Verdict::Capable);
    assert_eq!(
        cache.get_or_check(&"gpu-1", &before, &h, &reqs),
        &Verdict::Capable
    );
    assert_eq!(cache.len(), 1);
}

#[test]
fn new_capabilities_invalidate_old_verdicts() -> Result<()> {
    let (h, reqs) = workflow("a.safetensors");
    let mut cache = VerdictCache::new(16);
    let mut server = caps(&[]);
    let old = server.version();
    assert!(
        !cache
            .get_or_check(&"gpu-1", &server, &h, &reqs)
            .is_capable()
    );

    // The checkpoint gets installed: the new version misses the old verdict.
    let installed = json!({"CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [["a.safetensors"]]}}}});
    server.update_class("CheckpointLoaderSimple", installed.to_string().as_bytes())?;
    assert_ne!(server.version(), old);
    assert_eq!(cache.get(&"gpu-1", server.version(), &h), None);
    assert!(
        cache
            .get_or_check(&"gpu-1", &server, &h, &reqs)
            .is_capable()
    );

    // Uninstalled again: the content is the earlier one, and so is the verdict.
    let removed = json!({"CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [[]]}}}});
    server.update_class("CheckpointLoaderSimple", removed.to_string().as_bytes())?;
    assert_eq!(server.version(), old);
    assert!(
        !cache
            .get(&"gpu-1", server.version(), &h)
            .unwrap()
            .is_capable()
    );
    Ok(())
}

#[test]
fn the_cache_stays_within_its_capacity_and_keeps_what_is_used() {
    let version = CapsVersion::from_u64(7);
    let mut cache = VerdictCache::new(100);
    assert_eq!(cache.capacity(), 100);
    let hot = hash(u32::MAX);
    cache.insert(0u32, version, hot, Verdict::Capable);
    for n in 0..10_000 {
        cache.insert(n % 3, version, hash(n), Verdict::Capable);
        assert!(cache.len() <= 100, "{}", cache.len());
        // Used once per 25 inserts: never ages out.
        if n % 25 == 0 {
            assert!(cache.get(&0, version, &hot).is_some(), "lost at {n}");
        }
    }
    // The last entries are there, the early ones are gone.
    assert!(cache.get(&(9_999 % 3), version, &hash(9_999)).is_some());
    assert!(cache.get(&0, version, &hash(0)).is_none());
    assert!(cache.heap_size() > 0);

    cache.clear();
    assert!(cache.is_empty());
    assert!(cache.get(&0, version, &hot).is_none());
}

#[test]
fn forgetting_a_server_drops_only_its_verdicts() {
    let version = CapsVersion::from_u64(1);
    let mut cache = VerdictCache::new(64);
    for n in 0..20 {
        cache.insert(format!("gpu-{}", n % 2), version, hash(n), Verdict::Capable);
    }
    cache.forget_server(&"gpu-0".to_owned());
    assert_eq!(cache.len(), 10);
    assert!(cache.get(&"gpu-0".to_owned(), version, &hash(0)).is_none());
    assert!(cache.get(&"gpu-1".to_owned(), version, &hash(1)).is_some());
    assert_eq!(
        format!("{cache:?}"),
        "VerdictCache { len: 10, capacity: 64 }"
    );
}

#[test]
fn a_tiny_cache_still_works() {
    let version = CapsVersion::default();
    let mut cache = VerdictCache::new(0);
    assert_eq!(cache.capacity(), 2);
    for n in 0..10 {
        cache.insert(1u8, version, hash(n), Verdict::Capable);
        assert!(cache.get(&1, version, &hash(n)).is_some());
        assert!(cache.len() <= 2);
    }
}
