//! No credential of a server reaches any output of the pool: not a log line at TRACE level
//! (the HTTP and websocket libraries' records included), not an event (Debug or JSON), not a
//! job record, a result, an error, the stats or the Debug of the pool and its configuration.
//! This binary holds a single test: it installs the global subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use comfy_sim::{SimConfig, SimServer};
use parking_lot::Mutex;
use pool_core::{JobOptions, Pool, ServerConfig, ShutdownMode};
use support::chain;
use tracing::Level;

const USER: &str = "comfy-user";
const PASSWORD: &str = "pw-secret-7";
const TOKEN: &str = "tok-secret-8";
const BAD_URL_PASSWORD: &str = "pw-secret-9";

/// Every line the subscriber writes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_of_a_server_reaches_logs_events_records_or_errors() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let a = SimServer::start(SimConfig::default().seed(1))
        .await
        .unwrap();
    let b = SimServer::start(SimConfig::default().seed(2))
        .await
        .unwrap();
    let with_userinfo = a
        .url()
        .replacen("://", &format!("://{USER}:{PASSWORD}@"), 1);
    let mut printed = Vec::new();

    // A URL that cannot be used is refused without printing its password.
    let refused = Pool::builder()
        .server(ServerConfig::new(format!(
            "{USER}:{BAD_URL_PASSWORD}@host:8188"
        )))
        .build();
    let error = refused.expect_err("a scheme-less URL is refused");
    printed.push(format!("{error} {error:?}"));

    // Basic auth from the URL on one server (its id derived from the URL), a bearer token on
    // the other.
    let configs = [
        ServerConfig::new(with_userinfo.as_str()),
        ServerConfig::new(b.url()).id("b").bearer_token(TOKEN),
    ];
    printed.extend(configs.iter().map(|c| format!("{c:?} {}", c.get_id())));
    let pool = Pool::builder().servers(configs).build().unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;

    // A success on each server, a failure, a cancel.
    a.faults().fail_next(1);
    b.faults().fail_next(1);
    let mut handles = Vec::new();
    for i in 0..6 {
        let options = JobOptions::new().job_id(format!("j{i}")).max_attempts(1);
        handles.push(pool.enqueue(chain(i % 3), options).await.unwrap());
    }
    let slow = pool
        .enqueue(chain(4), JobOptions::new().job_id("cancelled"))
        .await
        .unwrap();
    slow.cancel();
    handles.push(slow);
    let mut servers_used = std::collections::HashSet::new();
    for handle in &handles {
        let result = tokio::time::timeout(Duration::from_secs(60), handle.result())
            .await
            .expect("every job ends");
        match &result {
            Ok(output) => {
                servers_used.insert(output.server.to_string());
            }
            Err(error) => printed.push(format!("{error} {error:?}")),
        }
        printed.push(format!("{result:?}"));
        let record = pool.record(handle.id().as_str()).expect("a record");
        printed.push(serde_json::to_string(&record).unwrap());
        printed.push(format!("{record:?}"));
    }
    assert_eq!(
        servers_used.len(),
        2,
        "both servers ran jobs: {servers_used:?}"
    );
    printed.push(format!("{:?}", pool.stats().await.unwrap()));
    printed.push(format!("{pool:?}"));
    pool.shutdown(ShutdownMode::Drain).await;
    while let Some(event) = events.try_recv() {
        printed.push(format!("{event:?}"));
        printed.push(serde_json::to_string(&event).unwrap());
    }

    let logged = String::from_utf8_lossy(&capture.0.lock()).into_owned();
    assert!(
        logged.contains("reqwest"),
        "no record of the HTTP library was captured: the test proves nothing"
    );
    assert!(
        printed.iter().any(|p| p.contains("\"event\"")),
        "no event was printed: the test proves nothing"
    );
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    for secret in [PASSWORD, TOKEN, BAD_URL_PASSWORD, basic.as_str()] {
        for line in logged.lines() {
            assert!(!line.contains(secret), "logged: {line}");
        }
        for text in &printed {
            assert!(!text.contains(secret), "printed: {text}");
        }
    }
}
