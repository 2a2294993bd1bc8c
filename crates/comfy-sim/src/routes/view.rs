//! `GET /view?filename&subfolder&type` (HEAD too): the bytes of a stored image.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::empty;
use crate::shared::Shared;

pub(super) async fn view(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(filename) = query.get("filename") else {
        return empty(StatusCode::NOT_FOUND);
    };
    let kind = query.get("type").map_or("output", String::as_str);
    if !matches!(kind, "input" | "output" | "temp") {
        return empty(StatusCode::BAD_REQUEST);
    }
    if filename.is_empty() || filename.starts_with('/') || filename.contains("..") {
        return empty(StatusCode::BAD_REQUEST);
    }
    let subfolder = query.get("subfolder").map_or("", String::as_str);
    if subfolder.contains("..") {
        return empty(StatusCode::FORBIDDEN);
    }
    let (sub_extra, name) = crate::files::split_path(filename);
    let subfolder = match (subfolder.is_empty(), sub_extra.is_empty()) {
        (_, true) => subfolder.to_owned(),
        (true, false) => sub_extra.to_owned(),
        (false, false) => format!("{subfolder}/{sub_extra}"),
    };
    let Some(file) = shared.files.lock().get(kind, &subfolder, name) else {
        return empty(StatusCode::NOT_FOUND);
    };
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == file.etag);
    let mut response = if not_modified {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Body::from(file.bytes.clone()))
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime(name)));
    if let Ok(v) = HeaderValue::from_str(&format!("filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&file.etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response
}

fn mime(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    match lower.rsplit_once('.').map(|(_, ext)| ext) {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        _ => "application/octet-stream",
    }
}
