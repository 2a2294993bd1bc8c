//! A running service over simulated ComfyUI servers, an HTTP client for it, and an SSE
//! reader.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use comfy_sim::{SimCluster, SimConfig};
use futures_util::StreamExt;
use pool_server::config::{ServerEntry, TenantConfig};
use pool_server::{Config, MemoryServiceStore, NewKey, Service};
use pool_store::ServiceStore;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_KEY: &str = "admin-key-for-the-tests-0123456789";

/// A workflow every simulated server runs.
pub fn workflow() -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "svc"}}
    })
}

/// Another structure (so another hash), same servers.
pub fn inverted_workflow() -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "inv"}}
    })
}

pub struct TestService {
    pub url: String,
    /// team-a's key lives in the store, team-b's hash in the configuration.
    pub key_a: String,
    pub key_b: String,
    pub sims: SimCluster,
    pub store: Arc<dyn ServiceStore>,
    pub pool: pool_core::Pool,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestService {
    /// `servers` simulated servers (with `sim`), tenants team-a and team-b, `tweak` applied.
    pub async fn start(servers: usize, sim: SimConfig, tweak: impl FnOnce(&mut Config)) -> Self {
        let sims = SimCluster::start(servers, sim).await.unwrap();
        let store: Arc<dyn ServiceStore> = Arc::new(MemoryServiceStore::default());
        let key_a = pool_server::issue_key(store.as_ref(), "team-a")
            .await
            .unwrap();
        let key_b = NewKey::generate("team-b");
        Self::start_on(sims, store, key_a.secret, key_b, tweak).await
    }

    /// Stops this service (as configured: detach by default) and starts another on the same
    /// store and servers.
    pub async fn restart(mut self, tweak: impl FnOnce(&mut Config)) -> Self {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        let key_b = NewKey {
            secret: self.key_b.clone(),
            record: pool_store::ApiKey::new(
                "b",
                "team-b",
                pool_server::key_hash(&self.key_b),
                pool_core::Timestamp::now(),
            ),
        };
        let sims = std::mem::replace(
            &mut self.sims,
            SimCluster::start(0, SimConfig::default()).await.unwrap(),
        );
        Self::start_on(
            sims,
            Arc::clone(&self.store),
            self.key_a.clone(),
            key_b,
            tweak,
        )
        .await
    }

    /// Another service on the same store (the same keys) and no servers, running beside
    /// this one: its pool knows none of this one's jobs.
    pub async fn beside(&self) -> Self {
        let key_b = NewKey {
            secret: self.key_b.clone(),
            record: pool_store::ApiKey::new(
                "b",
                "team-b",
                pool_server::key_hash(&self.key_b),
                pool_core::Timestamp::now(),
            ),
        };
        let sims = SimCluster::start(0, SimConfig::default()).await.unwrap();
        Self::start_on(
            sims,
            Arc::clone(&self.store),
            self.key_a.clone(),
            key_b,
            |_| {},
        )
        .await
    }

    async fn start_on(
        sims: SimCluster,
        store: Arc<dyn ServiceStore>,
        key_a: String,
        key_b: NewKey,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = Config::for_embedding(ADMIN_KEY);
        config.servers = sims
            .urls()
            .into_iter()
            .enumerate()
            .map(|(i, url)| ServerEntry::new(format!("sim-{}", i + 1), url))
            .collect();
        let mut b = TenantConfig::new("team-b");
        b.keys.push(key_b.record.hash.clone());
        config.tenants = vec![TenantConfig::new("team-a"), b];
        config.health_check_interval = Duration::from_secs(1);
        config.limits.submissions_per_second = 1000.0;
        config.limits.burst = 1000;
        tweak(&mut config);
        let service = Service::with_store(config, Arc::clone(&store))
            .await
            .unwrap();
        service.pool().ready().await;
        let pool = service.pool().clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            service
                .serve(listener, async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            url,
            key_a,
            key_b: key_b.secret,
            sims,
            store,
            pool,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    pub fn get(&self, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.url))
            .bearer_auth(key)
    }

    pub fn post(&self, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.url))
            .bearer_auth(key)
    }

    pub fn delete(&self, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.http
            .delete(format!("{}{path}", self.url))
            .bearer_auth(key)
    }

    /// Submits `body` and returns the answer's JSON (asserting the status).
    pub async fn submit(&self, key: &str, body: Value, status: u16) -> Value {
        let response = self.post("/v1/jobs", key).json(&body).send().await.unwrap();
        assert_eq!(
            response.status().as_u16(),
            status,
            "{:?}",
            response.text().await
        );
        response.json().await.unwrap()
    }

    /// Submits and waits for the end (`?wait=`), returning the job's view.
    pub async fn run(&self, key: &str, body: Value) -> Value {
        let response = self
            .post("/v1/jobs?wait=30", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let answer: Value = response.json().await.unwrap();
        answer["job"].clone()
    }

    pub async fn job(&self, id: &str, key: &str) -> Value {
        let response = self
            .get(&format!("/v1/jobs/{id}"), key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.unwrap()
    }

    /// Opens an SSE stream.
    pub async fn sse(&self, path: &str, key: &str, last_event_id: Option<u64>) -> Sse {
        let mut request = self.get(path, key);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Sse::new(response)
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    pub id: Option<u64>,
    pub event: String,
    pub data: Value,
}

/// Reads Server-Sent Events off a response.
pub struct Sse {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

impl Sse {
    fn new(response: reqwest::Response) -> Self {
        Self {
            body: response.bytes_stream().boxed(),
            buf: String::new(),
        }
    }

    /// The next event (comments skipped); `None` when the stream closed.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = SseEvent::default();
                let mut data = String::new();
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        event.id = v.trim().parse().ok();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_owned();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                        any = true;
                    }
                }
                if !any {
                    continue;
                }
                event.data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return Some(event);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.body.next())
                .await
                .expect("an SSE event within 30 s")?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk.ok()?));
        }
    }

    /// Events until one named `name` (included).
    pub async fn until(&mut self, name: &str) -> Vec<SseEvent> {
        let mut seen = Vec::new();
        while let Some(event) = self.next().await {
            let done = event.event == name;
            seen.push(event);
            if done {
                return seen;
            }
        }
        panic!("stream closed before {name}: {seen:?}");
    }
}
