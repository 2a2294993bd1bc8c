//! `POST /upload/image` and `POST /upload/mask` (multipart).

use std::sync::Arc;

use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde_json::json;

use super::{empty, json};
use crate::files::StoredFile;
use crate::shared::Shared;

/// ComfyUI's `image_upload`: dedup by content, rename on a clash unless `overwrite`.
pub(super) async fn image(State(shared): State<Arc<Shared>>, mut multipart: Multipart) -> Response {
    let mut image: Option<(String, Bytes)> = None;
    let mut kind = "input".to_owned();
    let mut subfolder = String::new();
    let mut overwrite = false;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(_) => return empty(StatusCode::BAD_REQUEST),
        };
        let name = field.name().unwrap_or("").to_owned();
        let filename = field.file_name().map(str::to_owned);
        let Ok(data) = field.bytes().await else {
            return empty(StatusCode::BAD_REQUEST);
        };
        let text = || String::from_utf8_lossy(&data).into_owned();
        match name.as_str() {
            "image" => image = Some((filename.unwrap_or_default(), data.clone())),
            "type" => kind = text(),
            "subfolder" => subfolder = text(),
            "overwrite" => overwrite = matches!(text().as_str(), "true" | "1"),
            _ => {}
        }
    }
    let Some((mut filename, data)) = image else {
        return empty(StatusCode::BAD_REQUEST);
    };
    if !matches!(kind.as_str(), "input" | "temp" | "output") {
        kind = "input".to_owned();
    }
    if filename.is_empty()
        || filename.contains('/')
        || filename.contains("..")
        || subfolder.contains("..")
    {
        return empty(StatusCode::BAD_REQUEST);
    }
    let subfolder = subfolder.trim_matches('/').to_owned();
    let mut files = shared.files.lock();
    let mut duplicate = false;
    if !overwrite {
        let (stem, ext) = match filename.rsplit_once('.') {
            Some((s, e)) => (s.to_owned(), format!(".{e}")),
            None => (filename.clone(), String::new()),
        };
        let mut i = 1;
        while let Some(existing) = files.get(&kind, &subfolder, &filename) {
            if existing.bytes == data {
                duplicate = true;
                break;
            }
            filename = format!("{stem} ({i}){ext}");
            i += 1;
        }
    }
    if !duplicate {
        files.put(&kind, &subfolder, &filename, StoredFile::new(data));
    }
    drop(files);
    json(
        StatusCode::OK,
        &json!({"name": filename, "subfolder": subfolder, "type": kind}),
    )
}
