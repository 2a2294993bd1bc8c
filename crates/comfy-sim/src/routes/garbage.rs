//! Broken answers of `GET /history` and `GET /queue` (the garbage faults).

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::json;
use crate::faults::Garbage;
use crate::shared::Shared;

/// The chunk a huge answer is streamed in.
const CHUNK: usize = 64 * 1024;
static PADDING: [u8; CHUNK] = [b'x'; CHUNK];

/// The broken answer of `route` (`/queue`, `/history` or `/history/{prompt_id}`; `path` is
/// the request's path, for the id).
pub(super) async fn answer(shared: &Shared, route: &str, path: &str, garbage: Garbage) -> Response {
    let history = route.starts_with("/history");
    match garbage {
        Garbage::Freeze => std::future::pending().await,
        Garbage::MalformedJson => {
            let cut = if history {
                format!("{{\"{}\": {{\"prompt\": [0, \"", last_segment(path))
            } else {
                "{\"queue_running\": [[0, \"".to_owned()
            };
            with_json_type(Response::new(Body::from(cut)))
        }
        Garbage::WrongTypes => {
            let body = match (history, route) {
                (false, _) => json!({"queue_running": "x", "queue_pending": 7}),
                (true, "/history") => {
                    let mut ids = shared.life().history_ids();
                    if ids.is_empty() {
                        ids.push("sim-garbage".to_owned());
                    }
                    Value::Object(ids.into_iter().map(|id| (id, json!(5))).collect())
                }
                (true, _) => {
                    let mut one = Map::new();
                    one.insert(last_segment(path).to_owned(), json!(5));
                    Value::Object(one)
                }
            };
            json(StatusCode::OK, &body)
        }
        Garbage::Huge(bytes) => huge(bytes),
    }
}

fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

fn with_json_type(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// Where a huge answer's stream stands.
enum Part {
    Head,
    Padding(u64),
    Tail,
    Done,
}

/// `{"sim_padding":"xx…"}` of exactly `total` bytes (just `x`s when that is too short to be
/// JSON), produced chunk by chunk as the client reads.
fn huge(total: u64) -> Response {
    const HEAD: &[u8] = b"{\"sim_padding\":\"";
    const TAIL: &[u8] = b"\"}";
    let frame = (HEAD.len() + TAIL.len()) as u64;
    let (head, tail, padding) = if total >= frame {
        (HEAD, TAIL, total - frame)
    } else {
        (&b""[..], &b""[..], total)
    };
    let chunks = futures_util::stream::unfold(Part::Head, move |mut part| async move {
        loop {
            let (chunk, next) = match part {
                Part::Head => (head, Part::Padding(padding)),
                Part::Padding(0) => (&[][..], Part::Tail),
                Part::Padding(left) => {
                    let n = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
                    (&PADDING[..n], Part::Padding(left - n as u64))
                }
                Part::Tail => (tail, Part::Done),
                Part::Done => return None,
            };
            part = next;
            if !chunk.is_empty() {
                return Some((Ok::<_, Infallible>(Bytes::from_static(chunk)), part));
            }
        }
    });
    with_json_type(Response::new(Body::from_stream(chunks)))
}
