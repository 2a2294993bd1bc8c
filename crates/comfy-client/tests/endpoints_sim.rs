//! Every HTTP endpoint against the simulated server, plus reconnection across repeated
//! server restarts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use comfy_client::{Client, Event, FreeRequest, PromptRequest, RunOptions, Upload};
use comfy_sim::{SimConfig, SimServer};

#[tokio::test]
async fn every_endpoint_answers_typed() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let c = Client::new(sim.url()).unwrap();

    let stats = c.system_stats().await.unwrap();
    assert!(!stats.devices.is_empty());
    assert!(stats.system.comfyui_version.is_some());
    assert_eq!(
        c.features().await.unwrap().supports_preview_metadata,
        Some(true)
    );
    assert!(
        c.model_folders()
            .await
            .unwrap()
            .contains(&"checkpoints".to_owned())
    );
    assert_eq!(c.models("checkpoints").await.unwrap(), ["sd15.safetensors"]);
    c.embeddings().await.unwrap();
    let all = c.object_info().await.unwrap();
    assert!(all.contains_key("EmptyImage"));
    let info = c.node_info("EmptyImage").await.unwrap().unwrap();
    assert_eq!(info.output, [serde_json::json!("IMAGE")]);
    assert!(c.node_info("NoSuchNode").await.unwrap().is_none());
    let loader = c
        .node_info("CheckpointLoaderSimple")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        loader.input_choices("ckpt_name").unwrap(),
        ["sd15.safetensors"]
    );
    assert_eq!(
        c.prompt_info().await.unwrap().exec_info.queue_remaining,
        Some(0)
    );

    // Upload, then view what was stored.
    let png = c
        .download(&comfy_client::ImageRef {
            filename: "example.png".into(),
            subfolder: String::new(),
            kind: "input".into(),
        })
        .await
        .unwrap();
    let up = c
        .upload_image(
            Upload::new("mine.png", png.clone())
                .subfolder("sub")
                .overwrite(true),
        )
        .await
        .unwrap();
    assert_eq!(
        (up.name.as_str(), up.subfolder.as_str(), up.kind.as_str()),
        ("mine.png", "sub", "input")
    );
    assert_eq!(c.download(&up.to_ref()).await.unwrap(), png);
    let mask = c
        .upload_mask(Upload::new("mask.png", png.clone()).original_ref(up.to_ref()))
        .await
        .unwrap();
    assert!(mask.name.ends_with(".png"));
    let missing = c
        .download(&comfy_client::ImageRef::output("nope.png"))
        .await
        .unwrap_err();
    assert_eq!(missing.status(), Some(404));

    // Queue management while a prompt hangs.
    sim.faults().set_hang(true);
    let wf = common::workflow("invert-save.json");
    let first = c
        .queue_prompt(&PromptRequest::new(wf.clone()).prompt_id("p1"))
        .await
        .unwrap();
    assert_eq!(first.prompt_id, "p1");
    c.queue_prompt(&PromptRequest::new(wf.clone()).prompt_id("p2"))
        .await
        .unwrap();
    c.queue_prompt(&PromptRequest::new(wf.clone()).prompt_id("p3"))
        .await
        .unwrap();
    c.queue_prompt(&PromptRequest::new(wf.clone()).prompt_id("p0").front(true))
        .await
        .unwrap();
    let q = c.queue().await.unwrap();
    assert!(q.is_running("p1"), "{q:?}");
    assert_eq!(q.queue_pending.len(), 3);
    assert_eq!(q.queue_pending[0].client_id(), Some(c.client_id()));
    c.delete_from_queue(&["p2"]).await.unwrap();
    assert!(!c.queue().await.unwrap().contains("p2"));
    c.clear_queue().await.unwrap();
    let q = c.queue().await.unwrap();
    assert!(q.queue_pending.is_empty() && q.is_running("p1"));
    c.interrupt(Some("not-running")).await.unwrap();
    assert!(c.queue().await.unwrap().is_running("p1"));
    sim.faults().set_hang(false);
    c.interrupt(None).await.unwrap();
    c.free(FreeRequest {
        unload_models: true,
        free_memory: true,
    })
    .await
    .unwrap();

    // History: list, one, delete, clear.
    let done = c
        .run(wf.clone(), RunOptions::default().prompt_id("h1"))
        .await
        .unwrap();
    done.wait().await.unwrap();
    let list = c.history_list(Some(1)).await.unwrap();
    assert_eq!(list.entries.len(), 1);
    assert_eq!(list.entries[0].prompt_id, "h1");
    assert!(c.history("h1").await.unwrap().unwrap().is_success());
    c.delete_history(&["h1"]).await.unwrap();
    assert!(c.history("h1").await.unwrap().is_none());
    c.clear_history().await.unwrap();
    assert!(c.history_list(None).await.unwrap().entries.is_empty());
    assert!(
        c.get_raw("/prompt")
            .await
            .unwrap()
            .get("exec_info")
            .is_some()
    );
}

#[tokio::test]
async fn the_socket_comes_back_after_each_of_several_restarts() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let c = Client::builder(sim.url())
        .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(50))
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let mut events = c.subscribe();
    let mut next = async || {
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
                .await
                .unwrap()
                .unwrap();
            if ev.is_connection_event() {
                return ev;
            }
        }
    };
    assert_eq!(next().await, Event::Connected);
    for _ in 0..3 {
        sim.crash_and_restart().await.unwrap();
        assert!(matches!(next().await, Event::Disconnected { .. }));
        loop {
            match next().await {
                Event::Reconnecting { .. } => {}
                Event::Connected => break,
                other => panic!("{other:?}"),
            }
        }
    }
    let out = c
        .run(common::workflow("invert-save.json"), RunOptions::default())
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(out.images().len(), 1);
}
