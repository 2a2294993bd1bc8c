//! Throughput of one `comfy-sim` server: trivial prompts end to end (`POST /prompt` until the
//! submitting client's socket delivers `execution_success`) from 16 concurrent clients, each
//! with its own WebSocket client id.

use std::sync::Arc;
use std::time::{Duration, Instant};

use comfy_sim::{SimConfig, SimServer};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const CLIENTS: usize = 16;
const PROMPTS: usize = 2_000;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One benchmark client: its HTTP client, socket and id.
struct Client {
    http: reqwest::Client,
    ws: Socket,
    id: String,
}

fn trivial(color: usize) -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": color}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    })
}

async fn connect(sim: &SimServer, index: usize) -> Client {
    let id = format!("bench-{index}");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}?clientId={id}", sim.ws_url()))
        .await
        .expect("ws connect");
    // The initial status frame.
    let _ = ws.next().await;
    Client {
        http: reqwest::Client::new(),
        ws,
        id,
    }
}

/// Submits `count` prompts one after another, each awaited until `execution_success`.
async fn drive(mut client: Client, url: Arc<String>, count: usize, offset: usize) -> Client {
    for n in 0..count {
        let body = json!({"prompt": trivial(offset + n), "client_id": client.id});
        let answer: Value = client
            .http
            .post(format!("{url}/prompt"))
            .json(&body)
            .send()
            .await
            .expect("post")
            .json()
            .await
            .expect("answer");
        let prompt_id = answer["prompt_id"].as_str().expect("prompt id").to_owned();
        loop {
            let Some(Ok(Message::Text(text))) = client.ws.next().await else {
                continue;
            };
            // Every socket also hears every status broadcast; parse only what matters.
            if !text.as_str().contains("\"execution_success\"") {
                continue;
            }
            let v: Value = serde_json::from_str(text.as_str()).expect("json");
            if v["type"] == "execution_success" && v["data"]["prompt_id"] == prompt_id.as_str() {
                break;
            }
        }
    }
    client
}

fn sim_throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sim = runtime
        .block_on(SimServer::start(SimConfig::default()))
        .expect("sim");
    let url = Arc::new(sim.url());
    let mut clients: Vec<Client> = runtime.block_on(async {
        let mut clients = Vec::new();
        for i in 0..CLIENTS {
            clients.push(connect(&sim, i).await);
        }
        clients
    });
    let mut round = 0;
    let mut group = c.benchmark_group("sim");
    group.throughput(Throughput::Elements(PROMPTS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("trivial_prompts_16_clients", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                round += 1;
                let taken = std::mem::take(&mut clients);
                let start = Instant::now();
                clients = runtime.block_on(async {
                    let tasks: Vec<_> = taken
                        .into_iter()
                        .enumerate()
                        .map(|(i, client)| {
                            let offset = round * PROMPTS + i * (PROMPTS / CLIENTS);
                            tokio::spawn(drive(client, Arc::clone(&url), PROMPTS / CLIENTS, offset))
                        })
                        .collect();
                    let mut back = Vec::new();
                    for task in tasks {
                        back.push(task.await.expect("client task"));
                    }
                    back
                });
                total += start.elapsed();
            }
            total
        });
    });
    group.finish();
    drop(sim);
}

criterion_group!(benches, sim_throughput);
criterion_main!(benches);
