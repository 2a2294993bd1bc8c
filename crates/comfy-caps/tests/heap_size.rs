//! `heap_size()` reports what is really held, measured with a counting allocator. The counter
//! sees every thread, so this binary has no test harness (`harness = false`): its `main` is the
//! only thread, and nothing else allocates meanwhile.
#![allow(clippy::unwrap_used)]

use std::alloc::System;

use comfy_caps::synthetic::SyntheticServer;
use comfy_caps::{Capabilities, Requirements};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Net bytes still allocated after `make` returned, and the value it made.
fn held<T>(make: impl FnOnce() -> T) -> (usize, T) {
    let region = Region::new(GLOBAL);
    let value = make();
    let change = region.change();
    (
        change
            .bytes_allocated
            .saturating_sub(change.bytes_deallocated),
        value,
    )
}

fn main() {
    heap_size_matches_the_allocator();
    println!("heap_size: ok");
}

fn heap_size_matches_the_allocator() {
    let server = SyntheticServer {
        classes: 600,
        ..SyntheticServer::default()
    };
    let doc = server.object_info();
    let (bytes, caps) = held(|| Capabilities::from_object_info(doc.as_bytes()).unwrap());
    let reported = caps.heap_size();
    assert!(
        bytes.abs_diff(reported) * 50 <= bytes,
        "allocator: {bytes}, heap_size(): {reported}"
    );
    // Compact: far below the document.
    assert!(reported * 4 < doc.len(), "{reported} of {}", doc.len());

    let workflow = serde_json::json!({
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"}},
        "2": {"class_type": "LoraLoader", "inputs": {"lora_name": "b.safetensors", "model": ["1", 0]}},
    });
    let (bytes, reqs) = held(|| Requirements::of(&workflow).unwrap());
    assert_eq!(bytes, reqs.heap_size());
}
