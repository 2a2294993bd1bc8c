//! The event stream of `Client::run`: complete even when the prompt finishes before the
//! run looks at it (a zero-execution-time simulator, a socket that opens after
//! submission), in order, each event once; bounded, dropping progress first. Binary
//! images are attributed to the node executing when they came.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use comfy_client::{Client, Event, Execution, RunOptions};
use comfy_sim::{SimConfig, SimServer};
use common::fake_comfy::{FakeComfy, success_frames};
use common::hostile::{Answer, Hostile, Socket, preview, success_end, text};
use futures_util::future::join_all;
use serde_json::json;

fn client(sim: &SimServer) -> Client {
    Client::builder(sim.url())
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap()
}

/// Runs invert-save and returns the prompt's events, connection events left out.
/// Each `color` makes a distinct workflow, so that nothing is served from the cache.
async fn run_and_collect(c: &Client, color: u32) -> (String, Vec<Event>) {
    let mut wf = common::workflow("invert-save.json");
    wf["1"]["inputs"]["color"] = color.into();
    let mut exec = c.run(wf, RunOptions::default()).await.unwrap();
    let id = exec.prompt_id().to_owned();
    let mut events = Vec::new();
    while let Some(ev) = next(&mut exec).await {
        if !ev.is_connection_event() {
            events.push(ev);
        }
    }
    let out = exec.wait().await.unwrap();
    assert_eq!(out.images().len(), 1, "{:?}", out.outputs);
    (id, events)
}

/// The events of a fake run (`success_frames`) as read when two of its progress messages
/// are left in the stream.
const FAKE_RUN_TWO_PROGRESS: [&str; 8] = [
    "start",
    "cached",
    "executing:9",
    "progress",
    "progress",
    "executed:9",
    "success",
    "executing:-",
];

async fn next(exec: &mut Execution) -> Option<Event> {
    tokio::time::timeout(Duration::from_secs(10), exec.next_event())
        .await
        .expect("no event within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_sequential_runs_stream_every_event_in_order() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let c = client(&sim);
    for color in 0..50 {
        let (id, events) = run_and_collect(&c, color).await;
        common::assert_complete_invert_save(&id, &events);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_concurrent_runs_stream_every_event_in_order() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let c = client(&sim);
    let runs = join_all((0..50).map(|color| run_and_collect(&c, color))).await;
    for (id, events) in &runs {
        common::assert_complete_invert_save(id, events);
    }
}

#[tokio::test]
async fn a_socket_that_opens_after_submission_still_streams_a_finished_prompt() {
    let mut fake = FakeComfy::start().await;
    let c = Client::builder(&fake.url)
        .poll_interval(Duration::from_secs(2))
        .build()
        .unwrap();
    // The socket stays silent, so the prompt is submitted without it.
    let mut exec = c
        .run(
            json!({"9": {"class_type": "SaveImage", "inputs": {}}}),
            RunOptions::default().connect_wait(Duration::from_millis(50)),
        )
        .await
        .unwrap();
    let id = fake.next_prompt().await;
    fake.open();
    assert_eq!(next(&mut exec).await, Some(Event::Connected));
    // The socket is up: the run asks the server, which already finished the prompt,
    // while the prompt's events are still on their way.
    assert_eq!(fake.next_history().await, id);
    fake.send(&success_frames(&id, 2));
    let mut events = Vec::new();
    while let Some(ev) = next(&mut exec).await {
        events.push(ev);
    }
    let names: Vec<String> = events.iter().map(common::event_name).collect();
    assert_eq!(names, FAKE_RUN_TWO_PROGRESS);
    let out = exec.wait().await.unwrap();
    assert_eq!(out.images().len(), 1, "{:?}", out.outputs);
}

#[tokio::test]
async fn a_full_event_buffer_drops_progress_first_and_keeps_the_result() {
    let mut fake = FakeComfy::start().await;
    fake.open();
    let c = Client::builder(&fake.url)
        .poll_interval(Duration::from_secs(2))
        .build()
        .unwrap();
    assert!(c.wait_connected(Duration::from_secs(10)).await);
    let capacity = 8;
    let mut exec = c
        .run(
            json!({"9": {"class_type": "SaveImage", "inputs": {}}}),
            // The history request tells when every event is in the buffer.
            RunOptions::default()
                .event_buffer(capacity)
                .fetch_history(true),
        )
        .await
        .unwrap();
    let id = fake.next_prompt().await;
    let frames = success_frames(&id, 100);
    fake.send(&frames);
    // The run reads the history after `executing(null)`: every event was buffered by then.
    assert_eq!(fake.next_history().await, id);
    let mut events = Vec::new();
    while let Some(ev) = next(&mut exec).await {
        events.push(ev);
    }
    let skipped = u64::try_from(frames.len() - capacity).unwrap();
    assert_eq!(events.first(), Some(&Event::Lagged { skipped }));
    let names: Vec<String> = events[1..].iter().map(common::event_name).collect();
    assert_eq!(names, FAKE_RUN_TWO_PROGRESS);
    let out = exec.wait().await.unwrap();
    assert_eq!(out.images().len(), 1, "{:?}", out.outputs);
}

#[tokio::test]
async fn websocket_images_belong_to_the_node_executing_when_they_came() {
    let frames: common::hostile::Frames = std::sync::Arc::new(|id, i| {
        let executing = |node: &str| text("executing", json!({"node": node, "prompt_id": id}));
        let [success, end] = success_end(id);
        [
            executing("5"),
            preview(b"image of 5"),
            executing("7"),
            preview(b"preview of 7"),
            executing("6"),
            preview(b"image of 6"),
            preview(b"second image of 6"),
            success,
            end,
        ]
        .into_iter()
        .nth(usize::try_from(i).ok()?)
    });
    let server = Hostile::start(
        Answer::Running,
        Answer::Finished,
        Socket::Frames { frames, pace: None },
    )
    .await;
    let c = Client::builder(&server.url).build().unwrap();
    assert!(c.wait_connected(Duration::from_secs(10)).await);
    let workflow = json!({
        "5": {"class_type": "SaveImageWebsocket", "inputs": {}},
        "6": {"class_type": "SaveImageWebsocket", "inputs": {}},
        "7": {"class_type": "PreviewImage", "inputs": {}}
    });
    let exec = c
        .run(workflow, RunOptions::default().collect_previews(false))
        .await
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), exec.wait())
        .await
        .expect("the run never ended")
        .unwrap();
    let images: Vec<(&str, &[u8])> = out
        .ws_outputs
        .iter()
        .map(|o| (o.node.as_str(), o.bytes.as_ref()))
        .collect();
    assert_eq!(
        images,
        [
            ("5", &b"image of 5"[..]),
            ("6", &b"image of 6"[..]),
            ("6", &b"second image of 6"[..])
        ]
    );
    assert!(out.previews.is_empty());
}
