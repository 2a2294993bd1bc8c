//! ComfyUI 0.8 mode compared with the 0.8 recordings: the Jobs API (only under `/api`),
//! `extra_data.create_time`, the changed info routes; and 0.3.64 mode without them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use comfy_sim::{ComfyVersion, SimConfig, SimServer};
use serde_json::{Value, json};
use support::{Ws, get, http, keys, post, shape};

fn recorded(name: &str) -> Value {
    support::fixture(&format!("comfyui-0.8/{name}"))
}

fn recorded_body(name: &str) -> Value {
    recorded(name)["response"]["body"].clone()
}

/// The prompt a recorded websocket session submitted.
fn recorded_prompt(name: &str) -> Value {
    recorded(name)["request"]["body"]["prompt"].clone()
}

/// A 0.8 server whose `ImageBlur` nodes take ten minutes (interrupts cut them short).
async fn sim_0_8() -> SimServer {
    let config = SimConfig::default()
        .version(ComfyVersion::V0_8)
        .node_exec_time("ImageBlur", Duration::from_secs(600));
    SimServer::start(config).await.unwrap()
}

/// Sets the colour of node "1" so that a prompt is not served from the cache.
fn recolored(mut prompt: Value, color: u32) -> Value {
    prompt["1"]["inputs"]["color"] = json!(color);
    prompt
}

/// The prompt ids of one finished run of every kind the recordings have, then a running
/// and a pending prompt (as when the 0.8 recordings were made).
struct Jobs {
    success: String,
    cached: String,
    savews: String,
    interrupted: String,
    failed: String,
    running: String,
    pending: String,
}

async fn jobs_of_every_kind(sim: &SimServer, ws: &mut Ws) -> Jobs {
    let success = support::submit(sim, &recorded_prompt("ws-01-success.json"), "j").await;
    ws.run(&success).await;
    let cached = support::submit(sim, &recorded_prompt("ws-01-success.json"), "j").await;
    ws.run(&cached).await;
    let savews = support::submit(sim, &recorded_prompt("ws-03-savews-binary.json"), "j").await;
    ws.run(&savews).await;
    let slow = recorded_prompt("ws-05-interrupted.json");
    let interrupted = support::submit_until_node(sim, ws, &slow, "j", "2").await;
    post(sim, "/interrupt", &json!({})).await;
    ws.run(&interrupted).await;
    sim.faults().fail_class("ImageScaleBy");
    let failed = support::submit(sim, &recorded_prompt("ws-06-failed-runtime.json"), "j").await;
    ws.run(&failed).await;
    sim.faults().clear();
    let running = support::submit_until_node(sim, ws, &recolored(slow, 2), "j", "2").await;
    let pending = support::submit(
        sim,
        &recolored(recorded_prompt("ws-01-success.json"), 3),
        "j",
    )
    .await;
    Jobs {
        success,
        cached,
        savews,
        interrupted,
        failed,
        running,
        pending,
    }
}

/// What tells the recorded jobs apart: status, an execution error, a preview.
fn kind(job: &Value) -> (String, bool, bool) {
    (
        job["status"].as_str().unwrap().to_owned(),
        job.get("execution_error").is_some(),
        job.get("preview_output").is_some(),
    )
}

async fn job(sim: &SimServer, id: &str) -> (u16, Value) {
    get(sim, &format!("/api/jobs/{id}")).await
}

#[tokio::test]
async fn the_job_list_has_the_recorded_shapes_filters_and_pages() {
    let sim = sim_0_8().await;
    assert_eq!(
        get(&sim, "/api/jobs").await,
        (200, recorded_body("30a-jobs-empty.json"))
    );
    let mut ws = Ws::ready(&sim, "j").await;
    let ids = jobs_of_every_kind(&sim, &mut ws).await;

    let (status, all) = get(&sim, "/api/jobs").await;
    assert_eq!(status, 200);
    let jobs = all["jobs"].as_array().unwrap();
    let recorded_all = recorded_body("30-jobs-all-statuses.json");
    assert_eq!(keys(&all), keys(&recorded_all));
    assert_eq!(
        all["pagination"],
        json!({"offset": 0, "limit": null, "total": 7, "has_more": false})
    );
    for want in recorded_all["jobs"].as_array().unwrap() {
        let got = jobs
            .iter()
            .find(|j| kind(j) == kind(want))
            .unwrap_or_else(|| panic!("no job like {want}"));
        assert_eq!(shape(got), shape(want), "{:?}", kind(want));
    }
    // Newest first; the pending and running prompts are the newest.
    let created: Vec<u64> = jobs
        .iter()
        .map(|j| j["create_time"].as_u64().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");
    assert_eq!(jobs[0]["id"], ids.pending.as_str());
    assert_eq!(jobs[1]["id"], ids.running.as_str());
    // The priority is the queue number POST /prompt answered.
    assert_eq!(jobs[0]["priority"], 6);

    // Filters.
    let statuses = |body: &Value| -> Vec<String> {
        body["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["status"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, completed) = get(&sim, "/api/jobs?status=completed").await;
    assert_eq!(statuses(&completed), ["completed"; 3]);
    let (_, failed) = get(&sim, "/api/jobs?status=failed").await;
    assert_eq!(
        statuses(&failed),
        ["failed"; 2],
        "interrupted and errored alike"
    );
    let (_, queued) = get(&sim, "/api/jobs?status=pending,%20IN_PROGRESS").await;
    assert_eq!(statuses(&queued), ["pending", "in_progress"]);
    assert_eq!(
        shape(&queued),
        shape(&recorded_body("30d-jobs-status-pending-in_progress.json"))
    );
    for name in ["30e-jobs-status-invalid.json", "30h-jobs-limit-zero.json"] {
        let fx = recorded(name);
        let path = fx["request"]["path"].as_str().unwrap();
        assert_eq!(
            get(&sim, path).await,
            (400, fx["response"]["body"].clone()),
            "{name}"
        );
    }
    for (path, error) in [
        ("/api/jobs?limit=x", "limit must be an integer"),
        ("/api/jobs?offset=1.5", "offset must be an integer"),
        (
            "/api/jobs?sort_by=name",
            "sort_by must be 'created_at' or 'execution_duration'",
        ),
        (
            "/api/jobs?sort_order=up",
            "sort_order must be 'asc' or 'desc'",
        ),
    ] {
        assert_eq!(
            get(&sim, path).await,
            (400, json!({"error": error})),
            "{path}"
        );
    }

    // Paging and sorting.
    let (_, page) = get(&sim, "/api/jobs?limit=2&offset=1").await;
    assert_eq!(
        page["pagination"],
        json!({"offset": 1, "limit": 2, "total": 7, "has_more": true})
    );
    assert_eq!(page["jobs"][0]["id"], ids.running.as_str());
    assert_eq!(
        shape(&page["pagination"]),
        shape(&recorded_body("30f-jobs-limit-offset.json")["pagination"])
    );
    let (_, past_the_end) = get(&sim, "/api/jobs?offset=-3&limit=100").await;
    assert_eq!(past_the_end["pagination"]["offset"], 0);
    let (_, by_duration) = get(
        &sim,
        "/api/jobs?status=completed,failed&sort_by=execution_duration&sort_order=asc&limit=3",
    )
    .await;
    let durations: Vec<u64> = by_duration["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            j["execution_end_time"].as_u64().unwrap() - j["execution_start_time"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(durations.len(), 3);
    assert!(durations.windows(2).all(|w| w[0] <= w[1]), "{durations:?}");
    assert_eq!(by_duration["pagination"]["has_more"], true);
}

#[tokio::test]
async fn one_job_has_the_recorded_shape_in_every_state() {
    let sim = sim_0_8().await;
    let mut ws = Ws::ready(&sim, "j").await;
    let ids = jobs_of_every_kind(&sim, &mut ws).await;
    for (id, name) in [
        (&ids.pending, "31-job-pending.json"),
        (&ids.running, "31b-job-running.json"),
        (&ids.success, "31c-job-completed.json"),
        (&ids.failed, "31d-job-failed.json"),
        (&ids.interrupted, "31e-job-interrupted.json"),
        (&ids.cached, "31f-job-cached.json"),
    ] {
        let (status, body) = job(&sim, id).await;
        assert_eq!(status, 200, "{name}");
        assert_eq!(shape(&body), shape(&recorded_body(name)), "{name}");
        assert_eq!(body["id"], id.as_str());
    }
    let (_, interrupted) = job(&sim, &ids.interrupted).await;
    assert_eq!(interrupted["status"], "failed");
    assert!(interrupted.get("execution_error").is_none());
    let (_, cached) = job(&sim, &ids.cached).await;
    assert_eq!(cached["outputs_count"], 1);
    assert_eq!(
        cached["execution_status"]["messages"][1][1]["nodes"],
        json!(["1", "2", "3"])
    );
    let (_, savews) = job(&sim, &ids.savews).await;
    assert_eq!(savews["outputs_count"], 0);
    assert!(savews.get("preview_output").is_none());

    // Unknown, and deleted from the history: the recorded 404.
    let unknown = recorded("31g-job-unknown.json");
    let response = http()
        .get(format!(
            "{}{}",
            sim.url(),
            unknown["request"]["path"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        unknown["response"]["headers"]["content-type"]
            .as_str()
            .unwrap()
    );
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        unknown["response"]["body"]
    );
    post(&sim, "/history", &json!({"delete": [ids.cached]})).await;
    assert_eq!(
        job(&sim, &ids.cached).await,
        (404, recorded_body("31h-job-after-history-delete.json"))
    );
}

#[tokio::test]
async fn workflow_ids_are_kept_and_filtered_on() {
    let sim = sim_0_8().await;
    let mut ws = Ws::ready(&sim, "w").await;
    let fx = recorded("16d-prompt-post-extra_pnginfo-workflow-id.json");
    let mut body = fx["request"]["body"].clone();
    body["client_id"] = json!("w");
    let (status, answer) = post(&sim, "/prompt", &body).await;
    assert_eq!(status, 200);
    let id = answer["prompt_id"].as_str().unwrap().to_owned();
    ws.run(&id).await;
    let other = support::submit(&sim, &support::trivial(1), "w").await;
    ws.run(&other).await;
    let (_, found) = get(&sim, "/api/jobs?workflow_id=peer-fixture-workflow").await;
    let recorded = recorded_body("30j-jobs-workflow_id.json");
    assert_eq!(shape(&found), shape(&recorded));
    assert_eq!(found["jobs"][0]["id"], id.as_str());
    assert_eq!(found["pagination"]["total"], 1);
    // The history keeps extra_data as posted, with client_id and create_time added.
    let (_, history) = get(&sim, &format!("/history/{id}")).await;
    let extra_data = &history[&id]["prompt"][3];
    assert_eq!(
        keys(extra_data),
        keys(
            &recorded_body("05-history-max2.json")
                [fx["response"]["body"]["prompt_id"].as_str().unwrap()]["prompt"][3]
        )
    );
    assert_eq!(extra_data["create_time"], found["jobs"][0]["create_time"]);
}

#[tokio::test]
async fn queue_items_and_history_entries_carry_create_time() {
    let sim = sim_0_8().await;
    let mut ws = Ws::ready(&sim, "q").await;
    let slow = recorded_prompt("ws-05-interrupted.json");
    let running = support::submit_until_node(&sim, &mut ws, &slow, "q", "2").await;
    support::submit(&sim, &support::invert_save(1), "q").await;
    let (_, queue) = get(&sim, "/queue").await;
    let recorded_queue = recorded_body("15b-queue-running-and-pending.json");
    for list in ["queue_running", "queue_pending"] {
        assert_eq!(
            shape(&queue[list][0][3]),
            shape(&recorded_queue[list][0][3]),
            "{list}"
        );
    }
    post(&sim, "/interrupt", &json!({})).await;
    ws.run(&running).await;
    let (_, history) = get(&sim, &format!("/history/{running}")).await;
    let recorded_entry = recorded_body("06-history-by-id.json");
    let recorded_entry = recorded_entry.as_object().unwrap().values().next().unwrap();
    assert_eq!(
        shape(&history[&running]["prompt"][3]),
        shape(&recorded_entry["prompt"][3])
    );
    assert!(
        history[&running]["prompt"][3]["create_time"]
            .as_u64()
            .unwrap()
            > 1_700_000_000_000
    );
}

#[tokio::test]
async fn info_routes_answer_as_0_8_does() {
    let sim = sim_0_8().await;
    let (_, stats) = get(&sim, "/system_stats").await;
    let recorded_stats = recorded_body("01-system_stats.json");
    assert_eq!(shape(&stats), shape(&recorded_stats));
    for field in [
        "os",
        "comfyui_version",
        "required_frontend_version",
        "installed_templates_version",
    ] {
        assert_eq!(
            stats["system"][field], recorded_stats["system"][field],
            "{field}"
        );
    }
    assert_eq!(
        get(&sim, "/api/features").await.1,
        recorded_body("04b-features.json")
    );
    assert_eq!(
        get(&sim, "/global_subgraphs").await,
        (200, recorded_body("32-global_subgraphs.json"))
    );
    assert_eq!(
        get(&sim, "/api/global_subgraphs/abc").await,
        (200, Value::Null)
    );
    let diff = recorded("03c-object_info-diff-summary.json");
    assert_eq!(
        get(&sim, "/object_info/GetImageSize").await.1["GetImageSize"],
        diff["fixture_nodes"]["GetImageSize"]["0.8.0"]
    );
    let (_, blur) = get(&sim, "/object_info/ImageBlur").await;
    assert_eq!(blur["ImageBlur"]["output_matchtypes"], Value::Null);
    assert!(
        blur["ImageBlur"]
            .as_object()
            .unwrap()
            .contains_key("output_matchtypes")
    );

    // The websocket answers feature flags with the extension flag too.
    let mut ws = Ws::ready(&sim, "f").await;
    ws.send_json(json!({"type": "feature_flags", "data": {"supports_preview_metadata": true}}))
        .await;
    let flags = ws.next().await;
    assert_eq!(
        flags.json(),
        &recorded("ws-04-savews-feature-flags.json")["ws"][1]
    );

    // The Jobs API is not served without /api.
    let response = http()
        .get(format!("{}/jobs", sim.url()))
        .send()
        .await
        .unwrap();
    let fx = recorded("30i-jobs-without-api-prefix.json");
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        fx["response"]["headers"]["content-type"].as_str().unwrap()
    );
    assert!(response.text().await.unwrap().is_empty());
}

#[tokio::test]
async fn version_0_3_64_has_no_jobs_api_and_no_create_time() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    for name in [
        "30a-jobs-empty.json",
        "31g-job-unknown.json",
        "32-global_subgraphs.json",
    ] {
        let fx = recorded(&format!("baseline-0.3.64/{name}"));
        let response = http()
            .get(format!(
                "{}{}",
                sim.url(),
                fx["request"]["path"].as_str().unwrap()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{name}");
        assert_eq!(
            response.headers()["content-type"],
            fx["response"]["headers"]["content-type"].as_str().unwrap()
        );
        assert!(response.bytes().await.unwrap().is_empty());
    }
    let mut ws = Ws::ready(&sim, "o").await;
    let id = support::submit(&sim, &support::trivial(1), "o").await;
    ws.run(&id).await;
    let (_, history) = get(&sim, &format!("/history/{id}")).await;
    assert_eq!(history[&id]["prompt"][3], json!({"client_id": "o"}));
    let (_, stats) = get(&sim, "/system_stats").await;
    assert_eq!(stats["system"]["comfyui_version"], "0.3.64");
    assert_eq!(stats["system"]["os"], "posix");
}
