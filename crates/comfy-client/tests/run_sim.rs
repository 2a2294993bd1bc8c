//! `Client::run` against the simulated server: success (fresh, cached, websocket-only
//! outputs, kept whether previews are collected or not), run-time failure, rejection, cancel (running and queued), lost prompts after
//! a restart, a server gone while its socket reconnects, a socket dropped mid-run,
//! deadlines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use comfy_client::{
    Client, ConnectionState, Deadline, Error, Event, Execution, ImageFormat, RunOptions,
};
use comfy_sim::{SimConfig, SimServer};

async fn sim() -> SimServer {
    SimServer::start(SimConfig::default()).await.unwrap()
}

fn client(sim: &SimServer) -> Client {
    Client::builder(sim.url())
        .poll_interval(Duration::from_millis(50))
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .unwrap()
}

async fn until(exec: &mut Execution, pred: impl Fn(&Event) -> bool) -> Event {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), exec.next_event())
            .await
            .expect("no event within 10 s")
            .expect("run ended first");
        if pred(&ev) {
            return ev;
        }
    }
}

async fn finish(exec: Execution) -> comfy_client::Result<comfy_client::RunOutput> {
    tokio::time::timeout(Duration::from_secs(20), exec.wait())
        .await
        .expect("run did not end within 20 s")
}

#[tokio::test]
async fn a_run_streams_only_its_events_and_resolves_to_history_outputs() {
    let sim = sim().await;
    let c = client(&sim);
    let mut exec = c
        .run(
            common::workflow("invert-save.json"),
            RunOptions::default().prompt_id("my-id-1"),
        )
        .await
        .unwrap();
    assert_eq!(exec.prompt_id(), "my-id-1");
    let mut events = Vec::new();
    while let Some(ev) = exec.next_event().await {
        events.push(ev);
    }
    for ev in &events {
        assert!(
            ev.is_connection_event() || ev.prompt_id() == Some("my-id-1"),
            "{ev:?}"
        );
    }
    assert!(
        events.iter().any(|e| matches!(e, Event::ExecutionStart(_))),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::ExecutionSuccess(_)))
    );
    assert!(matches!(events.last(), Some(Event::Executing(e)) if e.node.is_none()));
    let out = exec.wait().await.unwrap();
    // The socket delivered every output: the history was not read.
    assert!(out.history.is_none());
    let images = out.images();
    assert_eq!(images.len(), 1, "{:?}", out.outputs);
    let (node, image) = &images[0];
    assert_eq!(node, "3");
    let png = c.download(image).await.unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let executed: Vec<&str> = out.timings.nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(executed, ["1", "2", "3"]);
    assert!(out.timings.started_at.is_some() && out.timings.server_started_ms.is_some());
    assert!(out.timings.finished_at >= out.timings.accepted_at);
}

#[tokio::test]
async fn a_cached_rerun_succeeds_and_reports_cached_nodes() {
    let sim = sim().await;
    let c = client(&sim);
    let wf = common::workflow("invert-save.json");
    let first = finish(c.run(wf.clone(), RunOptions::default()).await.unwrap())
        .await
        .unwrap();
    assert!(first.cached_nodes.is_empty());
    let second = finish(c.run(wf, RunOptions::default()).await.unwrap())
        .await
        .unwrap();
    let mut cached = second.cached_nodes.clone();
    cached.sort();
    assert_eq!(cached, ["1", "2", "3"]);
    assert_eq!(second.images().len(), 1);
    assert!(second.timings.nodes.is_empty());
}

#[tokio::test]
async fn websocket_only_outputs_are_collected_and_empty_history_is_success() {
    let sim = sim().await;
    let c = client(&sim);
    let exec = c
        .run(
            common::workflow("getimagesize-savews-binary.json"),
            RunOptions::default(),
        )
        .await
        .unwrap();
    let id = exec.prompt_id().to_owned();
    let out = finish(exec).await.unwrap();
    assert!(out.images().is_empty(), "{:?}", out.outputs);
    assert!(!out.previews.is_empty());
    for p in &out.previews {
        assert_eq!(p.prompt_id.as_deref(), Some(id.as_str()));
        assert_eq!(p.node_id.as_deref(), Some("4"));
        assert!(p.image.starts_with(b"\x89PNG"));
    }
}

#[tokio::test]
async fn websocket_only_images_are_kept_without_collecting_previews() {
    let sim = sim().await;
    let c = client(&sim);
    let exec = c
        .run(
            common::workflow("getimagesize-savews-binary.json"),
            RunOptions::default().collect_previews(false),
        )
        .await
        .unwrap();
    let out = finish(exec).await.unwrap();
    assert!(out.previews.is_empty());
    assert!(!out.ws_outputs.is_empty());
    for image in &out.ws_outputs {
        assert_eq!(image.node, "4");
        assert_eq!(image.format, ImageFormat::Png);
        assert!(image.bytes.starts_with(b"\x89PNG"));
    }
    assert!(out.dropped.is_empty(), "{:?}", out.dropped);
}

#[tokio::test]
async fn a_node_failure_is_a_typed_execution_error() {
    let sim = sim().await;
    sim.faults().fail_class("ImageInvert");
    let c = client(&sim);
    let exec = c
        .run(common::workflow("invert-save.json"), RunOptions::default())
        .await
        .unwrap();
    let err = finish(exec).await.unwrap_err();
    let failure = err.execution().unwrap_or_else(|| panic!("{err}"));
    assert_eq!(
        (failure.node_id.as_str(), failure.node_type.as_str()),
        ("2", "ImageInvert")
    );
    assert!(!failure.exception_type.is_empty());
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_rejected_prompt_fails_at_submission_with_node_errors() {
    let sim = sim().await;
    let c = client(&sim);
    let mut wf = common::workflow("invert-save.json");
    wf["2"]["class_type"] = "NoSuchNode".into();
    let err = c.run(wf, RunOptions::default()).await.unwrap_err();
    assert!(err.is_validation(), "{err}");
    assert!(err.validation().unwrap().is_missing_node_class());

    let mut wf = common::workflow("invert-save.json");
    wf["1"]["inputs"]["width"] = (-5).into();
    let err = c.run(wf, RunOptions::default()).await.unwrap_err();
    let v = err.validation().unwrap();
    assert_eq!(v.node_errors["1"].class_type, "EmptyImage");
    assert!(v.has_error_type("value_smaller_than_min"));
}

#[tokio::test]
async fn cancel_interrupts_a_running_prompt_and_deletes_a_queued_one() {
    let sim = sim().await;
    sim.faults().set_hang(true);
    let c = client(&sim);
    let mut running = c
        .run(common::workflow("invert-save.json"), RunOptions::default())
        .await
        .unwrap();
    until(&mut running, |e| matches!(e, Event::ExecutionStart(_))).await;
    let queued = c
        .run(common::workflow("invert-save.json"), RunOptions::default())
        .await
        .unwrap();
    let queued_id = queued.prompt_id().to_owned();
    assert!(c.queue().await.unwrap().is_pending(&queued_id));

    queued.cancel().await.unwrap();
    assert!(finish(queued).await.unwrap_err().is_cancelled());
    assert!(!c.queue().await.unwrap().contains(&queued_id));

    running.cancel().await.unwrap();
    let err = finish(running).await.unwrap_err();
    assert!(err.is_cancelled(), "{err}");
}

#[tokio::test]
async fn a_prompt_that_vanishes_in_a_restart_is_lost_never_success() {
    let sim = sim().await;
    sim.faults().set_hang(true);
    let c = client(&sim);
    let mut exec = c
        .run(common::workflow("invert-save.json"), RunOptions::default())
        .await
        .unwrap();
    until(&mut exec, |e| matches!(e, Event::ExecutionStart(_))).await;
    sim.crash_and_restart().await.unwrap();
    let err = finish(exec).await.unwrap_err();
    assert!(err.is_lost(), "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_run_on_a_server_that_went_away_fails_at_once_instead_of_waiting_for_the_socket() {
    let sim = sim().await;
    let c = client(&sim);
    assert!(c.wait_connected(Duration::from_secs(10)).await);
    let mut state = c.watch_connection();
    sim.stop().await;
    state
        .wait_for(|s| *s == ConnectionState::Reconnecting)
        .await
        .unwrap();
    // A reconnecting socket is not waited for: the submission finds the server gone. Were
    // the run to wait for the socket (up to `connect_wait`), the timeout would fire first.
    let options = RunOptions::default().connect_wait(Duration::from_secs(3600));
    let submitted = tokio::time::timeout(
        Duration::from_secs(30),
        c.run(common::workflow("invert-save.json"), options),
    )
    .await
    .expect("the run waited for the socket");
    let err = submitted.expect_err("a stopped server accepted a prompt");
    assert!(err.is_connect(), "{err}");
    // Once the server is back, runs go through again.
    sim.restart().await.unwrap();
    let exec = c
        .run(common::workflow("invert-save.json"), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(finish(exec).await.unwrap().images().len(), 1);
}

#[tokio::test]
async fn a_socket_dropped_mid_run_resumes_and_the_run_completes() {
    let sim = SimServer::start(SimConfig::default().exec_time(Duration::from_millis(150)))
        .await
        .unwrap();
    let c = client(&sim);
    let mut exec = c
        .run(common::workflow("invert-save.json"), RunOptions::default())
        .await
        .unwrap();
    until(
        &mut exec,
        |e| matches!(e, Event::Executing(x) if x.node.is_some()),
    )
    .await;
    sim.drop_websockets();
    until(&mut exec, |e| matches!(e, Event::Disconnected { .. })).await;
    until(&mut exec, |e| matches!(e, Event::Connected)).await;
    let out = finish(exec).await.unwrap();
    assert_eq!(out.images().len(), 1);
    // Outputs may have been missed while the socket was down: they come from the history.
    assert!(out.history.as_ref().unwrap().is_success());
    assert!(sim.stats().requests(HISTORY_ONE) >= 1);
}

/// The route a run asks for its history entry.
const HISTORY_ONE: &str = "GET /history/{prompt_id}";

#[tokio::test]
async fn outputs_from_an_unbroken_socket_equal_the_history_and_history_is_not_asked() {
    let sim = sim().await;
    let c = client(&sim);
    // A fresh run and its cached rerun, two output nodes, websocket-only images.
    let runs = [
        "invert-save.json",
        "invert-save.json",
        "emptyimage-scale-preview.json",
        "getimagesize-savews-binary.json",
    ];
    let mut outputs = Vec::new();
    for name in runs {
        let exec = c
            .run(common::workflow(name), RunOptions::default())
            .await
            .unwrap();
        let id = exec.prompt_id().to_owned();
        let out = finish(exec).await.unwrap();
        assert!(out.history.is_none(), "{name}");
        outputs.push((id, out));
    }
    assert_eq!(sim.stats().requests(HISTORY_ONE), 0);
    assert_eq!(outputs[1].1.cached_nodes.len(), 3);
    for (id, out) in &outputs {
        let entry = c.history(id).await.unwrap().unwrap();
        assert_eq!(out.outputs, entry.outputs, "{id}");
    }
    assert!(!outputs[1].1.outputs.is_empty());
    assert!(!outputs[2].1.outputs.is_empty());
    assert!(!outputs[3].1.ws_outputs.is_empty());

    // Asked for, the history is read and its outputs are the same.
    let before = sim.stats().requests(HISTORY_ONE);
    let exec = c
        .run(
            common::workflow("emptyimage-scale-preview.json"),
            RunOptions::default().fetch_history(true),
        )
        .await
        .unwrap();
    let out = finish(exec).await.unwrap();
    let entry = out.history.as_ref().unwrap();
    assert!(entry.is_success());
    assert_eq!(out.outputs, entry.outputs);
    assert!(sim.stats().requests(HISTORY_ONE) > before);
}

#[tokio::test]
async fn outputs_dropped_for_the_memory_limit_are_read_from_the_history() {
    let sim = sim().await;
    let c = client(&sim);
    let exec = c
        .run(
            common::workflow("invert-save.json"),
            RunOptions::default().memory_limit(64),
        )
        .await
        .unwrap();
    let out = finish(exec).await.unwrap();
    assert!(out.dropped.outputs > 0, "{:?}", out.dropped);
    assert!(out.history.is_some());
    assert_eq!(out.images().len(), 1);
    assert!(sim.stats().requests(HISTORY_ONE) >= 1);
}

#[tokio::test]
async fn a_prompt_that_never_starts_hits_the_start_deadline_and_is_removed() {
    let sim = sim().await;
    sim.faults().set_hang(true);
    let c = client(&sim);
    let mut blocker = c
        .run(common::workflow("invert-save.json"), RunOptions::default())
        .await
        .unwrap();
    until(&mut blocker, |e| matches!(e, Event::ExecutionStart(_))).await;
    let waiting = c
        .run(
            common::workflow("invert-save.json"),
            RunOptions::default().start_timeout(Duration::from_millis(200)),
        )
        .await
        .unwrap();
    let id = waiting.prompt_id().to_owned();
    let err = finish(waiting).await.unwrap_err();
    assert_eq!(err.deadline(), Some(Deadline::Start), "{err}");
    assert!(!c.queue().await.unwrap().contains(&id));
}

#[tokio::test]
async fn a_silent_running_prompt_hits_the_idle_and_total_deadlines() {
    let sim = sim().await;
    sim.faults().set_hang(true);
    let c = client(&sim);
    let exec = c
        .run(
            common::workflow("invert-save.json"),
            RunOptions::default().idle_timeout(Duration::from_millis(200)),
        )
        .await
        .unwrap();
    let err = finish(exec).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                deadline: Deadline::Idle,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_timeout() && err.is_retryable());

    let exec = c
        .run(
            common::workflow("invert-save.json"),
            RunOptions::default().total_timeout(Duration::from_millis(200)),
        )
        .await
        .unwrap();
    assert_eq!(
        finish(exec).await.unwrap_err().deadline(),
        Some(Deadline::Total)
    );
}
