//! The HTTP service (`pool-server`): the overhead from an HTTP submission to the job's
//! dispatch, and the memory of 1,000 Server-Sent-Events subscribers held at once.
//!
//! Both run the real service on loopback over a pool whose one server finishes every
//! workflow at once (so what is measured is the service and the pool, not ComfyUI):
//! - submit → dispatch: `POST /v1/jobs` on a kept-alive connection, until the pool reports
//!   the job `started` (to an in-process subscriber); 2,000 sequential submissions after a
//!   warm-up; p50 and p99;
//! - 1,000 subscribers: raw sockets open `GET /v1/events` (the pool-wide stream), every one
//!   receives an event the pool then emits; the process's resident memory (service and the
//!   1,000 client sockets together, an upper bound for the service) is read from
//!   `/proc/self/status`.

#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use benches::record_figure;
use pool_core::{
    AttemptFailure, AttemptOutput, AttemptRequest, EventSink, InputFile, JobEventKind, Pool,
    PoolEvent, ServerBackend, ServerConfig,
};
use pool_server::{Config, MemoryServiceStore, Service, ServiceStore};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN: &str = "bench-admin-key-0123456789";
const SUBMISSIONS: usize = 2_000;
const WARM_UP: usize = 200;
const SUBSCRIBERS: usize = 1_000;

/// A server that finishes every workflow at once.
struct Instantly;

#[async_trait]
impl ServerBackend for Instantly {
    async fn run(&self, _: AttemptRequest, _: EventSink) -> Result<AttemptOutput, AttemptFailure> {
        Ok(AttemptOutput::default())
    }
    async fn health(&self) -> Result<(), AttemptFailure> {
        Ok(())
    }
    async fn upload(&self, _: &InputFile) -> Result<(), AttemptFailure> {
        Ok(())
    }
    async fn cancel(&self, _: &str) -> Result<(), AttemptFailure> {
        Ok(())
    }
}

/// The service on a loopback port; returns its base URL and pool.
async fn service() -> (String, Pool) {
    let store: Arc<dyn ServiceStore> = Arc::new(MemoryServiceStore::default());
    let job_store: Arc<dyn pool_core::JobStore> = Arc::clone(&store) as _;
    let pool = Pool::builder()
        .server(ServerConfig::with_backend("instant", Arc::new(Instantly)).max_concurrent(64))
        .store(job_store)
        .build()
        .unwrap();
    let service = Service::with_parts(Config::for_embedding(ADMIN), pool.clone(), store)
        .await
        .unwrap();
    pool.ready().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(service.serve(listener, std::future::pending()));
    (url, pool)
}

fn workflow() -> serde_json::Value {
    json!({"workflow": {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "b"}}
    }})
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

async fn submit_to_dispatch() {
    let (url, pool) = service().await;
    let client = reqwest::Client::new();
    let body = serde_json::to_vec(&workflow()).unwrap();
    let mut events = pool.subscribe();
    let mut samples = Vec::with_capacity(SUBMISSIONS);
    for i in 0..WARM_UP + SUBMISSIONS {
        let started = Instant::now();
        let response = client
            .post(format!("{url}/v1/jobs"))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let answer: serde_json::Value = response.json().await.unwrap();
        let id = answer["id"].as_str().unwrap().to_owned();
        let dispatched = loop {
            match events.recv().await {
                Some(PoolEvent::Job(event))
                    if event.job.as_str() == id
                        && matches!(event.kind, JobEventKind::Started { .. }) =>
                {
                    break Instant::now();
                }
                Some(_) => {}
                None => panic!("the pool stopped"),
            }
        };
        if i >= WARM_UP {
            samples.push(dispatched - started);
        }
    }
    samples.sort();
    let p50 = percentile(&samples, 0.5);
    let p99 = percentile(&samples, 0.99);
    println!("HTTP submit -> dispatch: p50 {p50:?}, p99 {p99:?} ({SUBMISSIONS} submissions)");
    record_figure(
        "server_submit_dispatch_p50_us",
        "HTTP submit -> dispatch, p50",
        p50.as_secs_f64() * 1e6,
        "µs",
    );
    record_figure(
        "server_submit_dispatch_p99_us",
        "HTTP submit -> dispatch, p99",
        p99.as_secs_f64() * 1e6,
        "µs",
    );
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

async fn sse_subscribers() {
    let (url, pool) = service().await;
    let before = rss_mib();
    let addr = url.trim_start_matches("http://").to_owned();
    let mut sockets = Vec::with_capacity(SUBSCRIBERS);
    for _ in 0..SUBSCRIBERS {
        let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let request = format!(
            "GET /v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut head = [0u8; 512];
        let n = socket.read(&mut head).await.unwrap();
        assert!(head[..n].starts_with(b"HTTP/1.1 200"), "subscribed");
        sockets.push(socket);
    }
    // One job: every subscriber gets its events.
    let job = pool
        .enqueue(workflow()["workflow"].clone(), pool.default_options())
        .await
        .unwrap();
    job.result().await.unwrap();
    let held = rss_mib();
    let mut buf = vec![0u8; 4096];
    for socket in &mut sockets {
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains("event: job") {
            let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "the stream stays open");
            seen.extend_from_slice(&buf[..n]);
        }
    }
    println!(
        "{SUBSCRIBERS} SSE subscribers: process RSS {held:.1} MiB ({:.1} MiB more than before they connected)",
        held - before
    );
    record_figure(
        "server_sse_1000_rss_mib",
        "RSS with 1,000 SSE subscribers (service and clients)",
        held,
        "MiB",
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(sse_subscribers());
    runtime.block_on(submit_to_dispatch());
}
