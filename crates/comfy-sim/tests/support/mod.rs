//! Raw HTTP and WebSocket helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::Duration;

use comfy_sim::{SimConfig, SimServer};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Safety net against a hung test, not a wait for work: every awaited frame comes earlier.
const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// One frame received on the socket.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Json(Value),
    Binary(Vec<u8>),
}

impl Frame {
    /// `"status"`, `"execution_start"`, ... for text frames, `"bin1"`, `"bin3"`, `"bin4"` for
    /// binary frames (by their big-endian event type).
    pub fn kind(&self) -> String {
        match self {
            Frame::Json(v) => v["type"].as_str().unwrap_or("?").to_owned(),
            Frame::Binary(b) => {
                let head: [u8; 4] = b[..4].try_into().unwrap();
                format!("bin{}", u32::from_be_bytes(head))
            }
        }
    }

    pub fn json(&self) -> &Value {
        match self {
            Frame::Json(v) => v,
            Frame::Binary(_) => panic!("expected a text frame, got {self:?}"),
        }
    }

    pub fn data(&self) -> &Value {
        &self.json()["data"]
    }
}

pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn connect(sim: &SimServer, client_id: &str) -> Ws {
        Self::connect_url(&format!("{}?clientId={client_id}", sim.ws_url())).await
    }

    pub async fn connect_url(url: &str) -> Ws {
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        Ws { stream }
    }

    /// Connects and consumes the initial `status` frame.
    pub async fn ready(sim: &SimServer, client_id: &str) -> Ws {
        let mut ws = Self::connect(sim, client_id).await;
        let hello = ws.next().await;
        assert_eq!(hello.kind(), "status");
        assert_eq!(hello.data()["sid"], client_id);
        ws
    }

    pub async fn send_json(&mut self, value: Value) {
        self.stream
            .send(Message::Text(value.to_string().into()))
            .await
            .unwrap();
    }

    /// The next text or binary frame (pings skipped). Panics when the socket closes.
    pub async fn next(&mut self) -> Frame {
        self.try_next().await.expect("socket closed")
    }

    /// The next frame, or `None` once the socket is closed or dropped.
    pub async fn try_next(&mut self) -> Option<Frame> {
        loop {
            let message = tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .expect("no frame within the timeout");
            match message {
                Some(Ok(Message::Text(t))) => {
                    return Some(Frame::Json(serde_json::from_str(t.as_str()).unwrap()));
                }
                Some(Ok(Message::Binary(b))) => return Some(Frame::Binary(b.to_vec())),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Frames up to and including the first one `stop` accepts.
    pub async fn until(&mut self, stop: impl Fn(&Frame) -> bool) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            let frame = self.next().await;
            let done = stop(&frame);
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }

    /// Frames up to and including the final `executing {node: null}` of `prompt_id`.
    pub async fn run(&mut self, prompt_id: &str) -> Vec<Frame> {
        self.until(|f| is_run_end(f, prompt_id)).await
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

pub fn is_run_end(frame: &Frame, prompt_id: &str) -> bool {
    matches!(frame, Frame::Json(v)
        if v["type"] == "executing" && v["data"]["node"].is_null() && v["data"]["prompt_id"] == prompt_id)
}

pub fn kinds(frames: &[Frame]) -> Vec<String> {
    frames.iter().map(Frame::kind).collect()
}

/// Frames of one type.
pub fn of_kind<'a>(frames: &'a [Frame], kind: &str) -> Vec<&'a Frame> {
    frames.iter().filter(|f| f.kind() == kind).collect()
}

/// One shared client: building a rustls client per request is slow.
pub fn http() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new).clone()
}

/// A shared client that opens a new connection for every request. Use it around crashes: a
/// pooled keep-alive connection may be one the crashed server is about to drop.
pub fn http_unpooled() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap()
        })
        .clone()
}

/// Sends `request`; the status and the JSON body (`Null` when the body is not JSON).
pub async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn get(sim: &SimServer, path: &str) -> (u16, Value) {
    send(http().get(format!("{}{path}", sim.url()))).await
}

pub async fn post(sim: &SimServer, path: &str, body: &Value) -> (u16, Value) {
    send(http().post(format!("{}{path}", sim.url())).json(body)).await
}

/// Posts `{prompt, client_id}` and returns the accepted prompt id.
pub async fn submit(sim: &SimServer, prompt: &Value, client_id: &str) -> String {
    let (status, body) = post(
        sim,
        "/prompt",
        &json!({"prompt": prompt, "client_id": client_id}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["prompt_id"].as_str().unwrap().to_owned()
}

/// EmptyImage -> ImageInvert -> SaveImage, as in the recordings.
pub fn invert_save(color: u32) -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": color}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "peer_fixture"}}
    })
}

/// The smallest prompt: EmptyImage -> PreviewImage.
pub fn trivial(color: u32) -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": color}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    })
}

/// EmptyImage -> ImageBlur -> PreviewImage. With a long `ImageBlur` time (see
/// [`blur_server`]) its run holds the queue in node "2".
pub fn blur(blur_radius: u32, sigma: f64) -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 1}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": blur_radius, "sigma": sigma}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}
    })
}

/// A server whose `ImageBlur` nodes take `time`, and a ready socket of `client` on it.
pub async fn blur_server(time: Duration, client: &str) -> (SimServer, Ws) {
    let config = SimConfig::default().node_exec_time("ImageBlur", time);
    let sim = SimServer::start(config).await.unwrap();
    let ws = Ws::ready(&sim, client).await;
    (sim, ws)
}

/// Submits `prompt` for `client` and waits on its socket until the run executes `node`.
pub async fn submit_until_node(
    sim: &SimServer,
    ws: &mut Ws,
    prompt: &Value,
    client: &str,
    node: &str,
) -> String {
    let id = submit(sim, prompt, client).await;
    ws.until(|f| f.kind() == "executing" && f.data()["node"] == node)
        .await;
    id
}

/// Checkpoint -> KSampler -> VAEDecode -> SaveImage.
pub fn txt2img(ckpt: &str) -> Value {
    json!({
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0],
            "seed": 1, "steps": 4, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "txt2img"}}
    })
}

/// A recorded HTTP exchange from `tests/fixtures`.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The one entry of a recorded `GET /history/{id}` answer.
pub fn recorded_history_entry(name: &str) -> Value {
    let body = fixture(name)["response"]["body"].take();
    body.as_object()
        .and_then(|entries| entries.values().next())
        .cloned()
        .unwrap_or_else(|| panic!("{name} holds no history entry"))
}

/// The kinds of the frames a recorded WebSocket session received, in order.
pub fn recorded_kinds(name: &str) -> Vec<String> {
    recorded_frames(name)
        .iter()
        .map(|e| {
            if e["frame"] == "text" {
                e["json"]["type"].as_str().unwrap().to_owned()
            } else {
                format!("bin{}", e["event_type"])
            }
        })
        .collect()
}

/// The received-frame events of a recorded WebSocket session.
pub fn recorded_frames(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["dir"] == "in")
        .collect()
}

/// The first recorded text frame of `kind`.
pub fn recorded_message(name: &str, kind: &str) -> Value {
    recorded_frames(name)
        .into_iter()
        .find(|e| e["frame"] == "text" && e["json"]["type"] == kind)
        .map(|e| e["json"].clone())
        .unwrap_or_else(|| panic!("{name} has no {kind}"))
}

/// The key set of an object.
pub fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// A structural summary of a value: key sets and JSON types, recursively; arrays by their
/// first element; volatile scalars reduced to their type. Numbers are just "number".
pub fn shape(value: &Value) -> Value {
    match value {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(items) => json!([items.first().map(shape)]),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
    }
}
