//! Static-ish information routes: system stats, features, models, embeddings, object info.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::json;
use crate::config::MODEL_FOLDERS;
use crate::shared::Shared;

pub(super) async fn system_stats(State(shared): State<Arc<Shared>>) -> Response {
    let version = shared.version;
    let (os, frontend, templates) = version.system_fields();
    json(
        StatusCode::OK,
        &json!({
            "system": {
                "os": os,
                "ram_total": 25_276_502_016_u64,
                "ram_free": 24_224_309_248_u64,
                "comfyui_version": version.comfyui_version(),
                "required_frontend_version": frontend,
                "installed_templates_version": templates,
                "required_templates_version": templates,
                "python_version": "3.11.7 (main, May  9 2026, 07:35:25) [GCC 12.2.0]",
                "pytorch_version": "2.9.0+cu128",
                "embedded_python": false,
                "argv": ["main.py", "--cpu", "--comfy-sim"],
            },
            "devices": [{
                "name": "cpu",
                "type": "cpu",
                "index": null,
                "vram_total": 25_276_502_016_u64,
                "vram_free": 24_224_309_248_u64,
                "torch_vram_total": 25_276_502_016_u64,
                "torch_vram_free": 24_224_309_248_u64,
            }],
        }),
    )
}

pub(super) async fn features(State(shared): State<Arc<Shared>>) -> Response {
    json(StatusCode::OK, &shared.version.features())
}

/// `GET /global_subgraphs` (0.8): no custom node ships subgraphs here.
pub(super) async fn global_subgraphs() -> Response {
    json(StatusCode::OK, &json!({}))
}

/// `GET /global_subgraphs/{id}` (0.8): ComfyUI answers `null` for an unknown id.
pub(super) async fn global_subgraph() -> Response {
    json(StatusCode::OK, &Value::Null)
}

pub(super) async fn models() -> Response {
    json(StatusCode::OK, &json!(MODEL_FOLDERS))
}

pub(super) async fn model_folder(
    State(shared): State<Arc<Shared>>,
    Path(folder): Path<String>,
) -> Response {
    match shared.model_files(&folder) {
        Some(files) => json(StatusCode::OK, &json!(files)),
        None if MODEL_FOLDERS.contains(&folder.as_str()) => json(StatusCode::OK, &json!([])),
        None => super::empty(StatusCode::NOT_FOUND),
    }
}

pub(super) async fn embeddings(State(shared): State<Arc<Shared>>) -> Response {
    let files = shared.model_files("embeddings").unwrap_or_default();
    json(StatusCode::OK, &json!(files))
}

pub(super) async fn object_info(State(shared): State<Arc<Shared>>) -> Response {
    let mut all = Map::new();
    for class in shared.catalog.classes() {
        if let Some(def) = definition(&shared, class) {
            all.insert(class.to_owned(), def);
        }
    }
    json(StatusCode::OK, &Value::Object(all))
}

pub(super) async fn object_info_one(
    State(shared): State<Arc<Shared>>,
    Path(class): Path<String>,
) -> Response {
    let mut one = Map::new();
    if let Some(def) = definition(&shared, &class) {
        one.insert(class, def);
    }
    json(StatusCode::OK, &Value::Object(one))
}

/// One definition with the live file lists (installed models, uploaded inputs) filled in.
fn definition(shared: &Shared, class: &str) -> Option<Value> {
    if !shared.has_class(class) {
        return None;
    }
    let mut def = shared.catalog.get(class)?.clone();
    let Some(required) = def
        .get_mut("input")
        .and_then(|i| i.get_mut("required"))
        .and_then(Value::as_object_mut)
    else {
        return Some(def);
    };
    for (name, spec) in required.iter_mut() {
        let files = if matches!(class, "LoadImage" | "LoadImageMask") && name == "image" {
            Some(shared.files.lock().input_names())
        } else {
            shared
                .model_folder(class, name)
                .and_then(|folder| shared.model_files(folder))
        };
        let Some(files) = files else { continue };
        if let Some(Value::Array(options)) = spec.get_mut(0) {
            for file in files {
                let file = Value::from(file);
                if !options.contains(&file) {
                    options.push(file);
                }
            }
        }
    }
    Some(def)
}
