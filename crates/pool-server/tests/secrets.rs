//! No key, secret or credential reaches a log line: everything the service logs while it
//! is used and misused (at every level) is captured and searched for them.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use comfy_sim::SimConfig;
use pool_server::Secret;
use pool_server::config::ServerAuth;
use serde_json::json;
use support::{ADMIN_KEY, TestService, workflow};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const SERVER_TOKEN: &str = "server-bearer-t0ken-9f2";
const HOOK_SECRET: &str = "hook-signing-s3cret-77a";
const HOOK_TOKEN: &str = "hook-query-t0ken-31c";

#[tokio::test]
async fn nothing_secret_is_logged() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let svc = TestService::start(1, SimConfig::default(), |config| {
        config.servers[0].auth = Some(ServerAuth::Bearer(Secret::new(SERVER_TOKEN)));
        config.webhooks.secret = Some(Secret::new(HOOK_SECRET));
        config.webhooks.allowed_hosts = vec!["127.0.0.1".into()];
        config.webhooks.backoff = std::time::Duration::from_millis(10);
        config.webhooks.max_attempts = 2;
        tracing::info!(
            ?config,
            "the whole configuration, as a careless embedder logs it"
        );
    })
    .await;
    // A webhook to a closed port, with a token in its query: its tries fail and are logged.
    let hook = format!("http://127.0.0.1:9/hook?token={HOOK_TOKEN}");
    let job = svc
        .run(&svc.key_a, json!({"workflow": workflow(), "webhook": hook}))
        .await;
    assert_eq!(job["state"], "completed");
    for key in ["cpk_00000000_wrong", ADMIN_KEY] {
        let _ = svc.get("/v1/admin/stats", key).send().await.unwrap();
    }
    let _ = svc.get("/v1/jobs", &svc.key_a).send().await.unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
    let settled = async {
        loop {
            let delivery = svc.store.webhook(&id).await.unwrap();
            if delivery.is_some_and(|d| d.state != pool_server::WebhookState::Pending) {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), settled)
        .await
        .unwrap();
    let (key_a, key_b) = (svc.key_a.clone(), svc.key_b.clone());
    svc.stop().await;

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("webhook try failed"),
        "the failures were logged: {logs}"
    );
    for secret in [
        SERVER_TOKEN,
        HOOK_SECRET,
        HOOK_TOKEN,
        ADMIN_KEY,
        &key_a,
        &key_b,
    ] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
}
