//! `Client::run_inline` and `Client::follow_inline`: the prompt followed in the caller's
//! task, its events handed to a callback. The same events in the same order as an
//! `Execution` streams them, even for prompts that finish before the run looks; the same
//! results (outputs, failures, lost prompts); a cancel from a handle wins.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use comfy_client::{Client, Event, RunOptions, RunOutput};
use comfy_sim::{SimConfig, SimServer};
use futures_util::future::join_all;
use tokio::sync::mpsc;

/// A guard against a run that never ends; no assertion depends on how long a run took.
const HANG_GUARD: Duration = Duration::from_secs(30);

fn client(sim: &SimServer) -> Client {
    Client::builder(sim.url())
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap()
}

/// Invert-save with its own `color`, so that nothing is served from the cache.
fn workflow(color: u32) -> serde_json::Value {
    let mut wf = common::workflow("invert-save.json");
    wf["1"]["inputs"]["color"] = color.into();
    wf
}

/// Runs inline and returns the prompt id, the events the callback got (connection events
/// left out) and the result.
async fn run_inline(
    c: &Client,
    color: u32,
) -> (String, Vec<Event>, comfy_client::Result<RunOutput>) {
    let run = c
        .run_inline(workflow(color), RunOptions::default())
        .await
        .unwrap();
    let id = run.prompt_id().to_owned();
    let mut events = Vec::new();
    let result = tokio::time::timeout(
        HANG_GUARD,
        run.drive(|event| {
            if !event.is_connection_event() {
                events.push(event);
            }
        }),
    )
    .await
    .expect("the run never ended");
    (id, events, result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_inline_runs_call_back_every_event_in_order() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let c = client(&sim);
    for color in 0..30 {
        let (id, events, result) = run_inline(&c, color).await;
        common::assert_complete_invert_save(&id, &events);
        let out = result.unwrap();
        assert_eq!(out.prompt_id, id);
        assert_eq!(out.images().len(), 1, "{:?}", out.outputs);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inline_runs_each_get_only_their_own_events() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let c = client(&sim);
    let runs = join_all((0..30).map(|color| run_inline(&c, color))).await;
    for (id, events, result) in runs {
        common::assert_complete_invert_save(&id, &events);
        assert_eq!(result.unwrap().images().len(), 1);
    }
}

#[tokio::test]
async fn an_inline_run_ends_with_the_same_results_as_run() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let c = client(&sim);
    let (_, _, inline) = run_inline(&c, 7).await;
    let direct = c
        .run(workflow(7), RunOptions::default())
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let inline = inline.unwrap();
    assert_eq!(inline.outputs, direct.outputs);
    // The second run of the same workflow was served from the server's cache.
    assert!(inline.cached_nodes.is_empty());
    assert_eq!(direct.cached_nodes.len(), 3, "{:?}", direct.cached_nodes);

    sim.faults().fail_class("ImageInvert");
    let (_, events, failed) = run_inline(&c, 8).await;
    let err = failed.unwrap_err();
    let failure = err.execution().unwrap_or_else(|| panic!("{err}"));
    assert_eq!(
        (failure.node_id.as_str(), failure.node_type.as_str()),
        ("2", "ImageInvert")
    );
    assert!(
        matches!(events.last(), Some(Event::ExecutionError(_))),
        "the error message is the last event: {events:?}"
    );
}

#[tokio::test]
async fn a_cancel_handle_ends_an_inline_run_cancelled() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    sim.faults().set_hang(true);
    let c = client(&sim);
    let run = c
        .run_inline(workflow(1), RunOptions::default())
        .await
        .unwrap();
    let cancel = run.cancel_handle();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let driving = tokio::spawn(run.drive(move |event| {
        if matches!(event, Event::ExecutionStart(_)) {
            let _ = started_tx.send(());
        }
    }));
    tokio::time::timeout(HANG_GUARD, started.recv())
        .await
        .expect("the prompt never started");
    cancel.cancel().await.unwrap();
    let err = tokio::time::timeout(HANG_GUARD, driving)
        .await
        .expect("the cancelled run never ended")
        .unwrap()
        .unwrap_err();
    assert!(err.is_cancelled(), "{err}");
}

#[tokio::test]
async fn follow_inline_takes_a_finished_prompt_and_loses_an_unknown_one() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let c = client(&sim);
    let (id, _, ran) = run_inline(&c, 3).await;
    let ran = ran.unwrap();

    let followed = c
        .follow_inline(id.clone(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(followed.prompt_id(), id);
    assert_eq!(followed.number(), None);
    let mut events = Vec::new();
    let out = tokio::time::timeout(HANG_GUARD, followed.drive(|e| events.push(e)))
        .await
        .expect("following a finished prompt never ended")
        .unwrap();
    assert_eq!(out.outputs, ran.outputs);
    assert!(
        events.iter().all(Event::is_connection_event),
        "a finished prompt has no live events: {events:?}"
    );

    let unknown = c
        .follow_inline("no-such-prompt", RunOptions::default())
        .await
        .unwrap();
    let err = tokio::time::timeout(HANG_GUARD, unknown.drive(|_| {}))
        .await
        .expect("following an unknown prompt never ended")
        .unwrap_err();
    assert!(err.is_lost(), "{err}");
}
