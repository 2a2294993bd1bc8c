//! Every recorded HTTP exchange of a real ComfyUI server (0.3.64 and 0.8), replayed to the
//! client: the client must send the recorded request line and decode the recorded answer
//! into its typed struct without losing a field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use comfy_client::{
    Client, Error, FreeRequest, ImageRef, JobSort, JobStatus, JobsQuery, PromptRequest, SortOrder,
    Upload,
};
use serde_json::{Value, json};

type Fixtures = Arc<HashMap<String, Value>>;

/// Which recordings to replay.
#[derive(Clone, Copy)]
enum Recorded {
    /// ComfyUI 0.3.64: `tests/fixtures/transcripts`.
    V0_3_64,
    /// ComfyUI 0.8.0: `tests/fixtures/comfyui-0.8` (HTTP exchanges; not the `ws-*` sessions
    /// nor the derived object_info summary).
    V0_8,
}

fn load(recorded: Recorded) -> Fixtures {
    let files = match recorded {
        Recorded::V0_3_64 => common::transcripts("json"),
        Recorded::V0_8 => {
            let dir = common::fixtures_dir().join("comfyui-0.8");
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
                .filter(|(name, _)| !name.starts_with("ws-"))
                .collect();
            files.sort();
            files
        }
    };
    let mut map = HashMap::new();
    for (name, path) in files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        if v.get("request").is_some() {
            map.insert(name, v);
        }
    }
    Arc::new(map)
}

/// Answers with the fixture named by the `x-fixture` header, after checking that the
/// request line matches the recording.
async fn replay(
    State(fixtures): State<Fixtures>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let name = headers
        .get("x-fixture")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(fx) = fixtures.get(name) else {
        return (StatusCode::IM_A_TEAPOT, format!("no fixture {name}")).into_response();
    };
    let req = &fx["request"];
    let want_path = req["path"].as_str().unwrap();
    let got = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
    let same_path = split_query(want_path) == split_query(got);
    if req["method"].as_str() != Some(method.as_str()) || !same_path {
        return (
            StatusCode::IM_A_TEAPOT,
            format!("expected {} {want_path}, got {method} {got}", req["method"]),
        )
            .into_response();
    }
    if let Some(want) = req.get("body")
        && want.get("prompt").is_none()
        && want.get("client_id").is_none()
    {
        let got: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if &got != want {
            return (
                StatusCode::IM_A_TEAPOT,
                format!("expected body {want}, got {got}"),
            )
                .into_response();
        }
    }
    let resp = &fx["response"];
    let status = StatusCode::from_u16(resp["status"].as_u64().unwrap() as u16).unwrap();
    // 0.3.64 keeps the exact text in `body_raw`; 0.8 keeps non-JSON text as a string `body`
    // and an empty body as `null`.
    let body: Vec<u8> = match (resp.get("body_raw"), resp.get("body_len"), &resp["body"]) {
        (Some(Value::String(raw)), _, _) => raw.clone().into_bytes(),
        (_, Some(len), _) => {
            let mut bytes = hex(resp["body_first_bytes_hex"].as_str().unwrap_or(""));
            bytes.resize(len.as_u64().unwrap() as usize, 0);
            bytes
        }
        (_, _, Value::String(text)) => text.clone().into_bytes(),
        (_, _, Value::Null) => Vec::new(),
        (_, _, json) => serde_json::to_vec(json).unwrap(),
    };
    let mut out = (status, body).into_response();
    let content_type = resp["headers"]
        .get("Content-Type")
        .or_else(|| resp["headers"].get("content-type"));
    if let Some(ct) = content_type.and_then(Value::as_str) {
        out.headers_mut()
            .insert(header::CONTENT_TYPE, ct.parse().unwrap());
    }
    out
}

fn split_query(p: &str) -> (String, Vec<String>) {
    let (path, q) = p.split_once('?').unwrap_or((p, ""));
    let mut q: Vec<String> = q
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|s| s.replace("%2C", ","))
        .collect();
    q.sort();
    (path.trim_start_matches("/api").to_owned(), q)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

async fn start(recorded: Recorded) -> (String, Fixtures) {
    let fixtures = load(recorded);
    let app = Router::new()
        .fallback(replay)
        .with_state(Arc::clone(&fixtures));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/"), fixtures)
}

fn client(base: &str, name: &str) -> Client {
    Client::builder(base)
        .header("x-fixture", name)
        .build()
        .unwrap()
}

fn body(fx: &Value) -> &Value {
    &fx["response"]["body"]
}

fn check_lossless<T: serde::Serialize>(name: &str, original: &Value, typed: &T) {
    let ours = serde_json::to_value(typed).unwrap();
    if let Err(diff) = common::lossless(original, &ours, "$") {
        panic!("{name}: typed answer lost data: {diff}");
    }
}

#[tokio::test]
async fn every_recorded_exchange_decodes_through_the_client() {
    let checked = replay_all(Recorded::V0_3_64).await;
    assert!(checked >= 50, "only {checked} fixtures checked");
}

#[tokio::test]
async fn every_0_8_exchange_decodes_through_the_client() {
    let checked = replay_all(Recorded::V0_8).await;
    assert!(checked >= 55, "only {checked} fixtures checked");
}

/// The [`JobsQuery`] of a recorded `GET /api/jobs` query string.
fn jobs_query(query: &str) -> JobsQuery {
    let mut q = JobsQuery::new();
    let mut sort_by = JobSort::CreatedAt;
    let mut order = SortOrder::Desc;
    for (key, value) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        match key {
            "status" => {
                for status in value.split(',') {
                    q = q.status(JobStatus::parse(status));
                }
            }
            "workflow_id" => q = q.workflow_id(value),
            "limit" => q = q.limit(value.parse().unwrap()),
            "offset" => q = q.offset(value.parse().unwrap()),
            "sort_by" if value == "execution_duration" => sort_by = JobSort::ExecutionDuration,
            "sort_order" if value == "asc" => order = SortOrder::Asc,
            other => panic!("unknown jobs query {other}={value}"),
        }
    }
    q.sort(sort_by, order)
}

/// Replays every exchange of `recorded` through the matching client call; the number checked.
async fn replay_all(recorded: Recorded) -> usize {
    let (base, fixtures) = start(recorded).await;
    let mut names: Vec<&String> = fixtures.keys().collect();
    names.sort();
    let mut checked = 0;
    for name in names {
        let fx = &fixtures[name];
        let method = fx["request"]["method"].as_str().unwrap();
        let path = fx["request"]["path"].as_str().unwrap();
        let status = fx["response"]["status"].as_u64().unwrap();
        let c = client(&base, name);
        let (route, query) = path.split_once('?').unwrap_or((path, ""));
        let segs: Vec<&str> = route.split('/').filter(|s| !s.is_empty()).collect();
        match (method, segs.as_slice()) {
            ("HEAD", _) => continue,
            ("GET", ["system_stats"]) => {
                check_lossless(name, body(fx), &c.system_stats().await.unwrap());
            }
            ("GET", ["api", "system_stats"]) => {
                let api = Client::builder(format!("{base}api"))
                    .header("x-fixture", name.as_str())
                    .build()
                    .unwrap();
                let stats = api.system_stats().await.unwrap();
                assert_eq!(stats.devices[0].kind, "cpu");
                check_lossless(name, body(fx), &stats);
            }
            ("GET", ["queue"]) => {
                let q = c.queue().await.unwrap();
                for item in q.queue_running.iter().chain(&q.queue_pending) {
                    assert!(item.client_id().is_some() || item.extra_data.is_object());
                }
                check_lossless(name, body(fx), &q);
            }
            ("GET", ["object_info"]) => {
                let all = c.object_info().await.unwrap();
                assert!(all.len() > 400, "{}", all.len());
                check_lossless(name, body(fx), &all);
            }
            ("GET", ["object_info", class]) => match c.node_info(class).await.unwrap() {
                Some(info) => {
                    assert_eq!(info.name, *class);
                    check_lossless(name, &body(fx)[*class], &info);
                }
                None => assert_eq!(body(fx), &json!({})),
            },
            ("GET", ["prompt"]) => {
                let info = c.prompt_info().await.unwrap();
                assert!(info.exec_info.queue_remaining.is_some());
                check_lossless(name, body(fx), &info);
            }
            ("GET", ["features"]) => {
                let f = c.features().await.unwrap();
                assert_eq!(f.supports_preview_metadata, Some(true));
                check_lossless(name, body(fx), &f);
            }
            ("GET", ["models"]) => {
                check_lossless(name, body(fx), &c.model_folders().await.unwrap());
            }
            ("GET", ["embeddings"]) => {
                check_lossless(name, body(fx), &c.embeddings().await.unwrap());
            }
            ("GET", ["history"]) => {
                let n: Option<u32> = query.strip_prefix("max_items=").map(|n| n.parse().unwrap());
                let h = c.history_list(n).await.unwrap();
                assert_eq!(h.entries.len(), body(fx).as_object().unwrap().len());
                for e in &h.entries {
                    check_lossless(name, &body(fx)[&e.prompt_id], e);
                }
            }
            ("GET", ["api", "jobs"]) => match c.jobs(&jobs_query(query)).await {
                Ok(list) => {
                    assert_eq!(status, 200, "{name}");
                    assert_eq!(list.pagination.total, body(fx)["pagination"]["total"]);
                    for job in &list.jobs {
                        if job.status == JobStatus::Failed {
                            assert_eq!(job.is_interrupted(), job.execution_error.is_none());
                        }
                    }
                    check_lossless(name, body(fx), &list);
                }
                // A zero limit is refused before it is sent.
                Err(Error::InvalidInput(_)) => assert!(query.contains("limit=0"), "{name}"),
                Err(e) => {
                    assert_eq!(e.status(), Some(status as u16), "{name}: {e}");
                    let message = body(fx)["error"].as_str().unwrap();
                    assert!(e.to_string().contains(message), "{name}: {e}");
                }
            },
            ("GET", ["api", "jobs", id]) => match c.job(id).await.unwrap() {
                Some(job) => {
                    assert_eq!(job.id, *id);
                    if job.status.is_finished() {
                        assert!(job.execution_status.is_some() && job.workflow.is_some());
                    }
                    check_lossless(name, body(fx), &job);
                }
                None => assert_eq!(body(fx), &json!({"error": "Job not found"})),
            },
            ("GET", ["jobs"] | ["global_subgraphs"]) => match c.get_raw(route).await {
                Ok(v) => assert_eq!(&v, body(fx), "{name}"),
                Err(e) => assert_eq!(e.status(), Some(status as u16), "{name}: {e}"),
            },
            ("GET", ["history", id]) => match c.history(id).await.unwrap() {
                Some(entry) => {
                    assert_eq!(entry.prompt_id, *id);
                    let status = entry.status.clone().unwrap();
                    match status.status_str.as_str() {
                        "success" => assert!(entry.is_success()),
                        _ => {
                            assert!(!entry.is_success());
                            assert!(
                                status.execution_error().is_some()
                                    || status.interrupted().is_some()
                            );
                        }
                    }
                    check_lossless(name, &body(fx)[*id], &entry);
                }
                None => assert_eq!(body(fx), &json!({})),
            },
            ("GET", ["view"]) => {
                let params: HashMap<&str, &str> = query
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .collect();
                let image = ImageRef {
                    filename: params["filename"].to_owned(),
                    subfolder: params["subfolder"].to_owned(),
                    kind: params["type"].to_owned(),
                };
                match c.download(&image).await {
                    Ok(bytes) => {
                        assert_eq!(status, 200);
                        let len = fx["response"]["body_len"].as_u64().unwrap();
                        assert_eq!(bytes.len() as u64, len);
                        assert!(bytes.starts_with(b"\x89PNG"));
                    }
                    Err(e) => assert_eq!(e.status(), Some(status as u16), "{name}: {e}"),
                }
            }
            ("POST", ["interrupt"]) => {
                let id = fx["request"]["body"]["prompt_id"].as_str();
                c.interrupt(id).await.unwrap();
            }
            ("POST", ["free"]) => c
                .free(FreeRequest {
                    unload_models: true,
                    free_memory: true,
                })
                .await
                .unwrap(),
            ("POST", ["queue"]) => {
                let b = &fx["request"]["body"];
                if b["clear"] == json!(true) {
                    c.clear_queue().await.unwrap();
                } else {
                    let ids: Vec<&str> = b["delete"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap())
                        .collect();
                    c.delete_from_queue(&ids).await.unwrap();
                }
            }
            ("POST", ["history"]) => {
                let ids: Vec<&str> = fx["request"]["body"]["delete"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                c.delete_history(&ids).await.unwrap();
            }
            ("POST", ["upload", "image"]) => {
                let up = Upload::new("a.png", &b"\x89PNG\r\n\x1a\n"[..]);
                match c.upload_image(up).await {
                    Ok(r) => {
                        assert!(r.name.ends_with(".png"));
                        check_lossless(name, body(fx), &r);
                    }
                    Err(e) => assert_eq!(e.status(), Some(status as u16), "{name}: {e}"),
                }
            }
            ("POST", ["prompt"]) => {
                let req_body = &fx["request"]["body"];
                let prompt = req_body.get("prompt").cloned().unwrap_or_else(|| json!({}));
                let mut req = PromptRequest::new(prompt);
                if let Some(id) = req_body.get("prompt_id").and_then(Value::as_str) {
                    req = req.prompt_id(id);
                }
                match c.queue_prompt(&req).await {
                    Ok(resp) => {
                        assert_eq!(status, 200);
                        if let Some(id) = req.prompt_id.as_deref() {
                            assert_eq!(resp.prompt_id, id);
                        }
                        check_lossless(name, body(fx), &resp);
                    }
                    Err(Error::Validation(v)) => {
                        assert_eq!(status, 400, "{name}");
                        assert_eq!(v.error_type(), body(fx)["error"]["type"].as_str().unwrap());
                        check_lossless(name, body(fx), &*v);
                    }
                    Err(e) => {
                        assert_eq!(e.status(), Some(status as u16), "{name}: {e}");
                        assert!(
                            e.to_string().contains("Server got itself in trouble"),
                            "{e}"
                        );
                    }
                }
            }
            other => panic!("{name}: no client call for {other:?}"),
        }
        checked += 1;
    }
    checked
}

#[tokio::test]
async fn validation_errors_carry_what_a_pool_classifies_on() {
    let (base, _) = start(Recorded::V0_3_64).await;
    let submit = |name: &'static str| {
        let c = client(&base, name);
        async move {
            c.queue_prompt(&PromptRequest::new(json!({"1": {}})))
                .await
                .unwrap_err()
        }
    };
    let e = submit("17-prompt-post-unknown-class.json").await;
    assert!(e.is_validation() && !e.is_retryable());
    let v = e.validation().unwrap();
    assert!(v.is_missing_node_class());
    assert!(v.node_errors.is_empty());

    let e = submit("18-prompt-post-bad-value.json").await;
    let v = e.validation().unwrap();
    assert!(!v.is_missing_node_class());
    assert!(v.has_error_type("value_smaller_than_min"));
    let (node, class, err) = v.node_error_list().next().unwrap();
    assert_eq!(
        (node, class, err.input_name()),
        ("1", "EmptyImage", Some("width"))
    );
    assert_eq!(err.received_value(), Some(&json!(-5)));

    let e = submit("19-prompt-post-missing-input.json").await;
    assert!(
        e.validation()
            .unwrap()
            .has_error_type("required_input_missing")
    );
    let e = submit("20-prompt-post-no-outputs.json").await;
    assert_eq!(e.validation().unwrap().error_type(), "prompt_no_outputs");
    assert_eq!(e.status(), Some(400));

    let e = submit("20e-prompt-post-not-json.json").await;
    assert!(!e.is_validation() && e.is_retryable());
    assert_eq!(e.status(), Some(500));
}
