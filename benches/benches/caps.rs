//! Capability routing (`comfy-caps`): reading a 5 MB `/object_info` (target ≤ 50 ms, held in
//! ≤ 1 MiB), a workflow's requirements, a check, and the cached verdict (target ≤ 100 ns).

use std::alloc::System;
use std::hint::black_box;

use benches::record_figure;
use benches::workflow::golden;
use comfy_caps::synthetic::SyntheticServer;
use comfy_caps::{Capabilities, Requirements, VerdictCache, check};
use criterion::{Criterion, Throughput, criterion_group};
use pool_failover::ServerId;
use serde_json::{Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use workflow_hash::WorkflowHash;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Servers and distinct workflows behind the cache bench.
const SERVERS: usize = 64;
const WORKFLOWS: u32 = 1_000;

/// A txt2img workflow on the synthetic server's files (capable there).
fn txt2img() -> Value {
    json!({
        "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "sampler_name": "euler",
              "model": ["10", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": SyntheticServer::checkpoint(42)}},
        "10": {"class_type": "LoraLoader", "inputs": {"lora_name": SyntheticServer::lora(7),
               "model": ["4", 0], "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["10", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["10", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["11", 0]}},
        "11": {"class_type": "VAELoader", "inputs": {"vae_name": SyntheticServer::vae(2)}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "ComfyUI"}},
    })
}

fn hash_of(n: u32) -> WorkflowHash {
    let mut bytes = [0u8; 32];
    let mixed = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    bytes[..8].copy_from_slice(&mixed.to_le_bytes());
    bytes[8..12].copy_from_slice(&n.to_le_bytes());
    WorkflowHash::from_bytes(bytes)
}

/// Heap bytes a `Capabilities` of the 5 MB document keeps, counted by the allocator.
fn retained_bytes(doc: &str) {
    let region = Region::new(GLOBAL);
    let caps = Capabilities::from_object_info(doc.as_bytes()).expect("synthetic document parses");
    let change = region.change();
    let held = change
        .bytes_allocated
        .saturating_sub(change.bytes_deallocated);
    println!(
        "/object_info of {} bytes, {} classes, {} combos: heap_size() says {} bytes",
        doc.len(),
        caps.class_count(),
        caps.combo_count(),
        caps.heap_size()
    );
    record_figure(
        "caps_retained_bytes",
        "capabilities held for a 5 MB /object_info",
        held as f64,
        "bytes",
    );
    drop(caps);
}

fn bench_caps(c: &mut Criterion) {
    let doc = SyntheticServer::default().object_info();
    retained_bytes(&doc);
    let caps = Capabilities::from_object_info(doc.as_bytes()).expect("synthetic document parses");

    let mut group = c.benchmark_group("caps");
    group.throughput(Throughput::Bytes(doc.len() as u64));
    group.sample_size(20);
    group.bench_function("parse_object_info_5mb", |b| {
        b.iter(|| Capabilities::from_object_info(black_box(doc.as_bytes())));
    });
    group.finish();

    let mut group = c.benchmark_group("caps");
    let loader = SyntheticServer::custom_class(10);
    let update = json!({ &loader: {"input": {"required": {
        "lora_name": ["COMBO", {"options": (0..250).map(SyntheticServer::lora).collect::<Vec<_>>()}]
    }}}})
    .to_string();
    group.bench_function("update_class", |b| {
        let mut caps = caps.clone();
        b.iter(|| caps.update_class(&loader, black_box(update.as_bytes())));
    });

    let nova = golden("real/T2I-anime-nova-xl.json");
    group.bench_function("requirements/T2I-anime-nova-xl", |b| {
        b.iter(|| Requirements::of(black_box(&nova)));
    });
    let capable = Requirements::of(&txt2img()).expect("workflow is an object");
    assert!(check(&caps, &capable).is_capable());
    group.bench_function("check/txt2img_capable", |b| {
        b.iter(|| check(black_box(&caps), black_box(&capable)));
    });
    let lacking = Requirements::of(&nova).expect("workflow is an object");
    group.bench_function("check/T2I-anime-nova-xl_lacking", |b| {
        b.iter(|| check(black_box(&caps), black_box(&lacking)));
    });

    // 64 servers × 1,000 workflows cached, looked up in a scattered order.
    let servers: Vec<ServerId> = (0..SERVERS)
        .map(|i| ServerId::from(format!("server-{i}")))
        .collect();
    let hashes: Vec<WorkflowHash> = (0..WORKFLOWS).map(hash_of).collect();
    let mut cache = VerdictCache::new(2 * SERVERS * WORKFLOWS as usize);
    for server in &servers {
        for hash in &hashes {
            cache.get_or_check(server, &caps, hash, &capable);
        }
    }
    let version = caps.version();
    let mut n = 0usize;
    group.bench_function("verdict_cache_hit", |b| {
        b.iter(|| {
            n = (n + 7919) % (SERVERS * WORKFLOWS as usize);
            let (server, hash) = (&servers[n % SERVERS], &hashes[n / SERVERS]);
            black_box(cache.get(server, version, black_box(hash)).is_some())
        });
    });
    group.bench_function("verdict_cache_get_or_check_hit", |b| {
        b.iter(|| {
            n = (n + 7919) % (SERVERS * WORKFLOWS as usize);
            let (server, hash) = (&servers[n % SERVERS], &hashes[n / SERVERS]);
            black_box(
                cache
                    .get_or_check(server, &caps, black_box(hash), &capable)
                    .is_capable(),
            )
        });
    });
    group.finish();
}

criterion_group!(benches, bench_caps);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
