//! No credential is ever printed: not in a log line at TRACE level (the `log` records of
//! the HTTP and websocket libraries included), not in an error's Display or Debug, not in
//! the Debug of a client or its builder. This binary holds a single test: it installs the
//! global subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use comfy_client::{Client, Event};
use comfy_sim::{SimConfig, SimServer};
use parking_lot::Mutex;
use tracing::Level;

const USER: &str = "comfy-user";
const PASSWORD: &str = "pw-secret-1";
const TOKEN: &str = "tok-secret-2";
const SCHEMELESS_PASSWORD: &str = "pw-secret-3";

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

/// The error's Display and Debug, and every cause's.
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = format!("{err} {err:?}");
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(" | {cause} {cause:?}"));
        source = cause.source();
    }
    text
}

/// The first `Reconnecting` event's reason (the socket could not open).
async fn reconnect_reason(client: &Client) -> String {
    let mut events = client.subscribe();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("no event within 10 s")
            .expect("stream ended");
        if let Event::Reconnecting { .. } = &event {
            return format!("{event:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_reach_logs_errors_or_debug_output() {
    let capture = Capture::default();
    let writer = capture.clone();
    // Also installs tracing-log's `LogTracer`: `log` records (reqwest, tungstenite) land here.
    tracing_subscriber::fmt()
        .with_max_level(Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let with_userinfo = |url: &str| url.replacen("://", &format!("://{USER}:{PASSWORD}@"), 1);
    let mut printed = Vec::new();

    // Basic auth from the URL, and a bearer token: one success and one websocket each.
    let basic = Client::builder(with_userinfo(&sim.url()));
    printed.push(format!("{basic:?}"));
    let basic = basic.build().unwrap();
    let bearer = Client::builder(sim.url())
        .bearer_auth(TOKEN)
        .build()
        .unwrap();
    for client in [&basic, &bearer] {
        client.system_stats().await.unwrap();
        assert!(client.wait_connected(Duration::from_secs(10)).await);
        printed.push(format!("{client:?} {}", client.base_url()));
    }

    // Failures to connect, over HTTP and over the websocket.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    for client in [
        Client::builder(with_userinfo(&closed_url))
            .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(10))
            .build()
            .unwrap(),
        Client::builder(&closed_url)
            .bearer_auth(TOKEN)
            .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(10))
            .build()
            .unwrap(),
    ] {
        let err = client.system_stats().await.unwrap_err();
        assert!(err.is_connect(), "{err}");
        printed.push(describe(&err));
        printed.push(reconnect_reason(&client).await);
    }

    // URLs that cannot be used, credentials in them.
    for raw in [
        format!("{USER}:{SCHEMELESS_PASSWORD}@host:8188"),
        format!("{USER}:{SCHEMELESS_PASSWORD}@host:8188/comfy"),
        format!("ftp://{USER}:{SCHEMELESS_PASSWORD}@host/"),
        format!("http://{USER}:{SCHEMELESS_PASSWORD}@host:99999/"),
        format!("http://{USER}:pw/{SCHEMELESS_PASSWORD}@host/"),
    ] {
        let builder = Client::builder(raw.as_str());
        printed.push(format!("{builder:?}"));
        let err = builder.build().unwrap_err();
        printed.push(describe(&err));
    }

    let logged = String::from_utf8_lossy(&capture.0.lock()).into_owned();
    assert!(
        logged.contains("reqwest::connect"),
        "no `log` record was captured: the test proves nothing"
    );
    let basic_credential =
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    for secret in [
        PASSWORD,
        TOKEN,
        SCHEMELESS_PASSWORD,
        basic_credential.as_str(),
    ] {
        for line in logged.lines() {
            assert!(!line.contains(secret), "logged: {line}");
        }
        for text in &printed {
            assert!(!text.contains(secret), "printed: {text}");
        }
    }
}
