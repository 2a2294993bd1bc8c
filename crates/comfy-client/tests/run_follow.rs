//! `Client::submit` + `Client::follow`, the two halves of `run`: following a prompt of
//! another client while it runs, a finished prompt, an unknown prompt, and re-attaching
//! with the same client id after a restart (live events again).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use comfy_client::{Client, Event, Execution, RunOptions, RunOutput};
use comfy_sim::{SimConfig, SimServer};

/// A guard against a run that never ends; no assertion depends on how long a run took.
const HANG_GUARD: Duration = Duration::from_secs(30);

fn client(sim: &SimServer, id: &str) -> Client {
    Client::builder(sim.url())
        .client_id(id)
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap()
}

/// A client whose polls come an hour apart: a result it gets came from its first poll.
fn patient_client(sim: &SimServer, id: &str) -> Client {
    Client::builder(sim.url())
        .client_id(id)
        .poll_interval(Duration::from_secs(3600))
        .build()
        .unwrap()
}

/// Reads every event, then the result.
async fn finish(mut exec: Execution) -> (Vec<Event>, comfy_client::Result<RunOutput>) {
    tokio::time::timeout(HANG_GUARD, async {
        let mut events = Vec::new();
        while let Some(event) = exec.next_event().await {
            events.push(event);
        }
        (events, exec.wait().await)
    })
    .await
    .expect("the run never ended")
}

async fn until_started(exec: &mut Execution) {
    loop {
        let event = tokio::time::timeout(HANG_GUARD, exec.next_event())
            .await
            .expect("no event")
            .expect("the run ended first");
        if matches!(event, Event::ExecutionStart(_)) {
            return;
        }
    }
}

#[tokio::test]
async fn another_client_follows_a_running_prompt_to_its_outputs() {
    let sim = SimServer::start(SimConfig::default().exec_time(Duration::from_millis(20)))
        .await
        .unwrap();
    // The prompt starts, then holds still until the follower is attached.
    sim.faults().set_hang(true);
    let submitter = client(&sim, "submitter");
    let workflow = common::workflow("invert-save.json");
    let options = RunOptions::default().prompt_id("followed-1");
    let mut socket = submitter.subscribe();
    assert!(submitter.wait_connected(HANG_GUARD).await);
    let submitted = submitter.submit(&workflow, &options).await.unwrap();
    assert_eq!(submitted.prompt_id, "followed-1");
    assert!(submitted.number.is_some());
    loop {
        let event = tokio::time::timeout(HANG_GUARD, socket.next())
            .await
            .expect("no event")
            .expect("the socket closed");
        if matches!(&event, Event::ExecutionStart(s) if s.prompt_id == "followed-1") {
            break;
        }
    }
    assert!(submitter.queue().await.unwrap().is_running("followed-1"));

    let follower = client(&sim, "follower");
    let followed = follower
        .follow("followed-1", RunOptions::default())
        .await
        .unwrap();
    assert_eq!(followed.prompt_id(), "followed-1");
    sim.faults().set_hang(false);
    let (events, out) = finish(followed).await;
    let out = out.unwrap();
    // ComfyUI sent the execution messages to the submitter's socket only.
    assert!(events.iter().all(Event::is_connection_event), "{events:?}");
    assert_eq!(out.images().len(), 1, "{:?}", out.outputs);
    assert!(out.history.unwrap().is_success());
}

#[tokio::test]
async fn following_a_finished_prompt_returns_its_result_at_once() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let c = client(&sim, "runner");
    let exec = c
        .run(common::workflow("invert-save.json"), RunOptions::default())
        .await
        .unwrap();
    let id = exec.prompt_id().to_owned();
    let (_, ran) = finish(exec).await;
    let ran = ran.unwrap();
    // Another client id, and this one again: no event of the prompt will come, and the
    // first poll finds it finished; with an hour between polls, anything but concluding
    // from that poll would trip the guard.
    for follower in [
        patient_client(&sim, "other"),
        patient_client(&sim, "runner"),
    ] {
        let (_, out) = finish(follower.follow(&id, RunOptions::default()).await.unwrap()).await;
        let out = out.unwrap();
        assert_eq!(out.images(), ran.images());
        assert_eq!(out.prompt_id, id);
    }
}

#[tokio::test]
async fn following_an_unknown_prompt_ends_lost() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let c = patient_client(&sim, "anyone");
    let (_, out) = finish(
        c.follow("no-such-prompt", RunOptions::default())
            .await
            .unwrap(),
    )
    .await;
    let err = out.unwrap_err();
    assert!(err.is_lost(), "{err}");
    assert_eq!(err.prompt_id(), Some("no-such-prompt"));
    assert!(c.follow("", RunOptions::default()).await.is_err());
}

#[tokio::test]
async fn a_restarted_process_with_the_same_client_id_gets_live_events_again() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    sim.faults().set_hang(true);
    let before = client(&sim, "pool-1");
    let mut exec = before
        .run(
            common::workflow("getimagesize-savews-binary.json"),
            RunOptions::default().prompt_id("reattached-1"),
        )
        .await
        .unwrap();
    until_started(&mut exec).await;
    // The process goes away, its socket with it.
    drop(exec);
    drop(before);

    let after = client(&sim, "pool-1");
    let followed = after
        .follow(
            "reattached-1",
            RunOptions::default().collect_previews(false),
        )
        .await
        .unwrap();
    sim.faults().set_hang(false);
    let (events, out) = finish(followed).await;
    let out = out.unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Executing(x) if x.node.is_none())),
        "no live event: {events:?}"
    );
    for e in events.iter().filter(|e| !e.is_connection_event()) {
        assert_eq!(e.prompt_id(), Some("reattached-1"), "{e:?}");
    }
    // The workflow was learnt from the queue: the websocket-only image is kept.
    assert!(!out.ws_outputs.is_empty(), "{out:?}");
    assert!(out.ws_outputs.iter().all(|o| o.node == "4"));
}
