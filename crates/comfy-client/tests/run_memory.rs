//! One run holds at most its memory limit whatever a server floods it with: previews,
//! node texts, `SaveImageWebsocket` images, `executed` outputs, `executing` of ever new
//! nodes, and events its reader does not read. Measured with a counting global allocator
//! (this binary holds a single test so nothing else allocates meanwhile) and with the
//! run's own counters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::alloc::System;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use comfy_client::{Client, Event, RunOptions};
use common::hostile::{Answer, Frames, Hostile, Socket, node_text, preview, success_end, text};
use common::live_heap;
use serde_json::json;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const LIMIT: usize = 8 << 20;
const PREVIEWS: u64 = 128;
const WS_IMAGES: u64 = 64;
const IMAGE_BYTES: usize = 256 << 10;
const TEXTS: u64 = 512;
const TEXT_BYTES: usize = 64 << 10;
const EXECUTED: u64 = 200;
const IMAGES_PER_EXECUTED: usize = 500;
const NODES: u64 = 20_000;

/// The flood, in order: previews of node 1, images of the `SaveImageWebsocket` node 7,
/// texts, `executed` outputs of node 9 (each adding images to the last), `executing` of
/// ever new nodes, then the end of a successful run. `peak` records the live heap before
/// each frame.
fn flood(peak: Arc<AtomicI64>) -> Frames {
    Arc::new(move |id, i| {
        peak.fetch_max(live_heap(), Ordering::SeqCst);
        let mut i = i;
        let mut section = |n: u64| {
            let here = i < n;
            if !here {
                i -= n;
            }
            here
        };
        Some(if section(1) {
            text("executing", json!({"node": "1", "prompt_id": id}))
        } else if section(PREVIEWS) {
            preview(&vec![1u8; IMAGE_BYTES])
        } else if section(1) {
            text("executing", json!({"node": "7", "prompt_id": id}))
        } else if section(WS_IMAGES) {
            preview(&vec![7u8; IMAGE_BYTES])
        } else if section(TEXTS) {
            node_text("7", &"t".repeat(TEXT_BYTES))
        } else if section(EXECUTED) {
            let image = json!({"filename": "out_00001_.png", "subfolder": "", "type": "output"});
            let images = vec![image; IMAGES_PER_EXECUTED];
            text(
                "executed",
                json!({"node": "9", "output": {"images": images}, "prompt_id": id}),
            )
        } else if section(NODES) {
            text(
                "executing",
                json!({"node": format!("n{i}"), "prompt_id": id}),
            )
        } else {
            return success_end(id).into_iter().nth(usize::try_from(i).ok()?);
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_run_keeps_within_its_memory_limit_and_counts_what_it_dropped() {
    let peak = Arc::new(AtomicI64::new(0));
    let server = Hostile::start(
        Answer::Running,
        Answer::Finished,
        Socket::Frames {
            frames: flood(Arc::clone(&peak)),
            pace: None,
        },
    )
    .await;
    let client = Client::builder(&server.url).build().unwrap();
    assert!(client.wait_connected(Duration::from_secs(10)).await);
    let workflow = json!({
        "1": {"class_type": "PreviewImage", "inputs": {}},
        "7": {"class_type": "SaveImageWebsocket", "inputs": {}},
        "9": {"class_type": "SaveImage", "inputs": {}}
    });
    // The history request tells when the flood is over.
    let options = RunOptions::default()
        .fetch_history(true)
        .memory_limit(LIMIT)
        .collect_previews(true)
        .collect_texts(true);
    let base = live_heap();
    peak.store(base, Ordering::SeqCst);
    let mut exec = client.run(workflow, options).await.unwrap();

    // The run reads the history once every event is in its buffer, unread.
    tokio::time::timeout(Duration::from_secs(120), server.history_requested())
        .await
        .expect("the flood did not end");
    peak.fetch_max(live_heap(), Ordering::SeqCst);
    let growth = peak.load(Ordering::SeqCst) - base;
    let flooded = (PREVIEWS + WS_IMAGES) as usize * IMAGE_BYTES + TEXTS as usize * TEXT_BYTES;
    println!("peak growth {growth} bytes for a flood of more than {flooded} bytes");
    let slack = 8 << 20; // sockets, the client's broadcast, the server's frame in flight
    assert!(
        growth <= i64::try_from(LIMIT + slack).unwrap(),
        "{growth} bytes retained, limit {LIMIT}"
    );

    let mut lagged = 0;
    let mut last = None;
    while let Some(event) = exec.next_event().await {
        if let Event::Lagged { skipped } = event {
            lagged += skipped;
        }
        last = Some(event);
    }
    assert!(
        matches!(&last, Some(Event::Executing(e)) if e.node.is_none()),
        "the run's last message was dropped: {last:?}"
    );
    let out = exec.wait().await.unwrap();
    // Images of node 7 are in both `previews` and `ws_outputs`, sharing their bytes.
    let kept: usize = out
        .previews
        .iter()
        .filter(|p| p.node_id.as_deref() != Some("7"))
        .map(|p| p.image.len())
        .sum::<usize>()
        + out.texts.iter().map(|t| t.text.len()).sum::<usize>()
        + out.ws_outputs.iter().map(|o| o.bytes.len()).sum::<usize>();
    assert!(kept <= LIMIT, "{kept} bytes of images and texts kept");
    let d = &out.dropped;
    println!("{d:?}");
    assert!(
        d.previews > 0 && d.texts > 0 && d.ws_outputs > 0 && d.outputs > 0 && d.events > 0,
        "{d:?}"
    );
    assert!(
        d.nodes > 0 && out.timings.nodes.len() < NODES as usize,
        "{d:?}"
    );
    assert_eq!(
        d.events + d.missed,
        lagged,
        "the reader was told of every event it did not get"
    );
    // The result keeps what fits, in order.
    assert!(!out.ws_outputs.is_empty());
    assert!(
        out.ws_outputs
            .iter()
            .all(|o| o.node == "7" && o.bytes[0] == 7)
    );
    assert_eq!(out.images().len(), 1, "history outputs are authoritative");
}
