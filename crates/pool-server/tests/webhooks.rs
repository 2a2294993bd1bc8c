//! Webhooks over real HTTP: signed, retried with backoff, one delivery per job (its id as
//! idempotency key), resumed from the store by a new service.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use comfy_sim::SimConfig;
use pool_core::{JobId, Timestamp};
use pool_server::Secret;
use pool_server::webhook::sign;
use pool_store::{WebhookDelivery, WebhookState};
use serde_json::{Value, json};
use support::{TestService, workflow};
use tokio::sync::mpsc;

const SECRET: &str = "the-webhook-signing-secret";

#[derive(Debug)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

/// A receiver on loopback that fails its first `failures` requests with 500.
async fn receiver(failures: u32) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let seen = Arc::new(AtomicU32::new(0));
    let app = Router::new()
        .route(
            "/hook",
            post(
                move |State((tx, seen)): State<(
                    mpsc::UnboundedSender<Received>,
                    Arc<AtomicU32>,
                )>,
                      headers: HeaderMap,
                      body: Bytes| async move {
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    let _ = tx.send(Received { headers, body });
                    if n < failures {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                },
            ),
        )
        .with_state((tx, seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

fn allow_loopback(config: &mut pool_server::Config) {
    config.webhooks.secret = Some(Secret::new(SECRET));
    config.webhooks.allowed_hosts = vec!["127.0.0.1".into()];
    config.webhooks.backoff = Duration::from_millis(50);
    config.webhooks.poll_interval = Duration::from_millis(20);
}

fn verify(received: &Received) -> Value {
    let header = |name: &str| received.headers[name].to_str().unwrap().to_owned();
    let timestamp: u64 = header(sign::TIMESTAMP_HEADER).parse().unwrap();
    let signature = header(sign::SIGNATURE_HEADER);
    assert!(
        sign::verify(SECRET, timestamp, &received.body, &signature),
        "the signature covers timestamp and body"
    );
    assert!(!sign::verify(
        "another-secret-entirely",
        timestamp,
        &received.body,
        &signature
    ));
    let now = Timestamp::now().as_millis() / 1000;
    assert!(now.abs_diff(timestamp) < 60);
    serde_json::from_slice(&received.body).unwrap()
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("a delivery")
        .unwrap()
}

/// The delivery of `job` once its last try was recorded (the try's answer reached the
/// receiver before the store heard of it).
async fn settled(svc: &TestService, job: &str) -> WebhookDelivery {
    let wait = async {
        loop {
            let delivery = svc.store.webhook(job).await.unwrap().unwrap();
            if delivery.state != WebhookState::Pending {
                return delivery;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("the try is recorded")
}

#[tokio::test]
async fn a_finished_jobs_summary_is_signed_and_retried_until_delivered() {
    let (url, mut rx) = receiver(1).await;
    let svc = TestService::start(1, SimConfig::default(), allow_loopback).await;
    let job = svc
        .run(&svc.key_a, json!({"workflow": workflow(), "webhook": url}))
        .await;
    let id = job["id"].as_str().unwrap();
    assert_eq!(job["webhook"], url.as_str());
    assert_eq!(
        job["metadata"],
        Value::Null,
        "the webhook is not shown as metadata"
    );

    let first = next(&mut rx).await;
    let second = next(&mut rx).await;
    for received in [&first, &second] {
        assert_eq!(received.headers[sign::ID_HEADER], id);
        assert_eq!(received.headers["idempotency-key"], id);
        let payload = verify(received);
        assert_eq!(payload["type"], "job.completed");
        assert_eq!(payload["job"]["id"], id);
        assert_eq!(payload["job"]["state"], "completed");
        assert!(payload["job"]["outputs"][0]["url"].is_string());
    }
    assert_eq!(first.body, second.body, "a retry sends the same summary");
    // The outcome is in the store; nothing more is sent.
    let delivery = settled(&svc, id).await;
    assert!(matches!(delivery.state, WebhookState::Delivered { .. }));
    assert_eq!(delivery.attempts, 2);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "delivered once"
    );
    svc.stop().await;
}

#[tokio::test]
async fn a_pending_delivery_in_the_store_is_sent_by_the_next_service() {
    let (url, mut rx) = receiver(0).await;
    let svc = TestService::start(1, SimConfig::default(), allow_loopback).await;
    // As a service that stopped before delivering would have left it.
    let mut pending = WebhookDelivery::new(
        JobId::from("left-behind"),
        url,
        json!({"type": "job.failed", "job": {"id": "left-behind"}}),
        Timestamp::now(),
    );
    pending.attempts = 3;
    svc.store.enqueue_webhook(&pending).await.unwrap();
    let received = next(&mut rx).await;
    assert_eq!(received.headers[sign::ID_HEADER], "left-behind");
    assert_eq!(verify(&received)["type"], "job.failed");
    svc.stop().await;
}

#[tokio::test]
async fn a_receiver_that_never_answers_2xx_is_given_up_after_max_attempts() {
    let (url, mut rx) = receiver(u32::MAX).await;
    let svc = TestService::start(1, SimConfig::default(), |c| {
        allow_loopback(c);
        c.webhooks.max_attempts = 3;
    })
    .await;
    let job = svc
        .run(&svc.key_a, json!({"workflow": workflow(), "webhook": url}))
        .await;
    let id = job["id"].as_str().unwrap();
    for _ in 0..3 {
        next(&mut rx).await;
    }
    let delivery = settled(&svc, id).await;
    assert_eq!(
        delivery.state,
        WebhookState::Failed {
            error: "answered 500 Internal Server Error".into()
        }
    );
    assert_eq!(delivery.attempts, 3);
    svc.stop().await;
}
