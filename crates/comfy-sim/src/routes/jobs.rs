//! `GET /api/jobs` and `GET /api/jobs/{id}` (ComfyUI 0.8; errors are `{"error": "..."}`).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::json;
use crate::jobs::{Listing, STATUSES};
use crate::shared::Shared;

pub(super) async fn list(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let pairs = query.map(|Query(pairs)| pairs).unwrap_or_default();
    match listing(&pairs) {
        Ok(listing) => {
            let (jobs, total) = shared.life().jobs().list(&listing);
            let has_more = listing.offset.saturating_add(jobs.len()) < total;
            json(
                StatusCode::OK,
                &json!({
                    "jobs": jobs,
                    "pagination": {
                        "offset": listing.offset,
                        "limit": listing.limit,
                        "total": total,
                        "has_more": has_more,
                    },
                }),
            )
        }
        Err(message) => json(StatusCode::BAD_REQUEST, &json!({"error": message})),
    }
}

pub(super) async fn one(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match shared.life().jobs().one(&id) {
        Some(job) => json(StatusCode::OK, &job),
        None => json(StatusCode::NOT_FOUND, &json!({"error": "Job not found"})),
    }
}

/// The query as ComfyUI checks it, in its order; `Err` is the 400 message.
fn listing(pairs: &[(String, String)]) -> Result<Listing, String> {
    // aiohttp's `query.get` is the first value of a key.
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let statuses = match get("status").filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => {
            let wanted: Vec<String> = raw
                .split(',')
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .collect();
            let invalid: Vec<&str> = wanted
                .iter()
                .map(String::as_str)
                .filter(|s| !STATUSES.contains(s))
                .collect();
            if !invalid.is_empty() {
                return Err(format!(
                    "Invalid status value(s): {}. Valid values: {}",
                    invalid.join(", "),
                    STATUSES.join(", ")
                ));
            }
            Some(wanted)
        }
    };
    let by_duration = match get("sort_by")
        .unwrap_or("created_at")
        .to_lowercase()
        .as_str()
    {
        "created_at" => false,
        "execution_duration" => true,
        _ => return Err("sort_by must be 'created_at' or 'execution_duration'".to_owned()),
    };
    let ascending = match get("sort_order").unwrap_or("desc").to_lowercase().as_str() {
        "desc" => false,
        "asc" => true,
        _ => return Err("sort_order must be 'asc' or 'desc'".to_owned()),
    };
    let limit = match get("limit") {
        None => None,
        Some(raw) => match py_int(raw) {
            None => return Err("limit must be an integer".to_owned()),
            Some(n) if n <= 0 => return Err("limit must be a positive integer".to_owned()),
            Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        },
    };
    let offset = match get("offset") {
        None => 0,
        Some(raw) => match py_int(raw) {
            None => return Err("offset must be an integer".to_owned()),
            Some(n) => usize::try_from(n.max(0)).unwrap_or(usize::MAX),
        },
    };
    Ok(Listing {
        statuses,
        workflow_id: get("workflow_id").map(str::to_owned),
        by_duration,
        ascending,
        limit,
        offset,
    })
}

/// Python's `int(text)`: surrounding whitespace, a sign, digits with single underscores
/// between them; saturated to `i64` where Python's integers would grow.
fn py_int(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let groups: Vec<&str> = digits.split('_').collect();
    if groups
        .iter()
        .any(|g| g.is_empty() || !g.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut value: i64 = 0;
    for digit in groups.concat().bytes() {
        let digit = i64::from(digit - b'0');
        value = value.saturating_mul(10).saturating_add(digit);
    }
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::py_int;

    #[test]
    fn integers_parse_like_python() {
        assert_eq!(py_int(" 12 "), Some(12));
        assert_eq!(py_int("+3"), Some(3));
        assert_eq!(py_int("-0"), Some(0));
        assert_eq!(py_int("1_000"), Some(1000));
        assert_eq!(py_int("99999999999999999999999"), Some(i64::MAX));
        for bad in ["", "-", "1.5", "1__0", "_1", "1_", "abc", "0x10", "١"] {
            assert_eq!(py_int(bad), None, "{bad}");
        }
    }
}
