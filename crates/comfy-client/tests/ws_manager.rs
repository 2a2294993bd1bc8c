//! The managed websocket against a scripted server: handshake (client id, auth headers,
//! feature flags first), typed events in order with binary attribution, stall detection,
//! repeated outages, giving up, oversized frames.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::extract::ws::Message;
use base64::Engine;
use comfy_client::{Client, ConnectionState, Event};
use common::wsserver::{Script, WsServer, status};
use serde_json::Value;

fn recorded(name: &str) -> Vec<Message> {
    let path = common::fixtures_dir().join("transcripts").join(name);
    let b64 = base64::engine::general_purpose::STANDARD;
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["dir"] == "in")
        .map(|v| match v["frame"].as_str().unwrap() {
            "text" => Message::Text(v["raw"].as_str().unwrap().to_owned().into()),
            _ => Message::Binary(b64.decode(v["b64"].as_str().unwrap()).unwrap().into()),
        })
        .collect()
}

async fn next(stream: &mut comfy_client::EventStream) -> Event {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("no event within 10 s")
        .expect("stream ended")
}

/// Expects a connection with its `status`, its loss, the first reconnect attempt and a
/// new connection; returns why the first one was lost.
async fn dropped_and_reopened(events: &mut comfy_client::EventStream) -> String {
    assert_eq!(next(events).await, Event::Connected);
    assert!(matches!(next(events).await, Event::Status(_)));
    let reason = match next(events).await {
        Event::Disconnected { reason } => reason,
        other => panic!("expected a disconnect, got {other:?}"),
    };
    assert!(matches!(
        next(events).await,
        Event::Reconnecting { attempt: 1, .. }
    ));
    assert_eq!(next(events).await, Event::Connected);
    reason
}

#[tokio::test]
async fn recorded_session_arrives_typed_in_order_and_previews_are_attributed() {
    let frames = recorded("ws-03-progress-binary.jsonl");
    let count = frames.len();
    let mut server = WsServer::start(vec![Script::Send(frames)]).await;
    let client = Client::builder(&server.url)
        .bearer_auth("s3cret-token")
        .header("x-api-key", "k-123")
        .user_agent("test-agent")
        .build()
        .unwrap();
    let mut events = client.subscribe();

    let (query, headers) = server.next_connect().await;
    assert_eq!(query, format!("clientId={}", client.client_id()));
    assert_eq!(headers["authorization"], "Bearer s3cret-token");
    assert_eq!(headers["x-api-key"], "k-123");
    assert_eq!(headers["user-agent"], "test-agent");
    let first: Value = serde_json::from_str(&server.next_text().await).unwrap();
    assert_eq!(
        first,
        serde_json::json!({"type": "feature_flags", "data": {"supports_preview_metadata": true}})
    );

    assert_eq!(next(&mut events).await, Event::Connected);
    let mut got = Vec::new();
    while got.len() < count {
        got.push(next(&mut events).await);
    }
    assert!(matches!(&got[0], Event::Status(s) if s.sid.as_deref().is_some()));
    assert!(matches!(got.last().unwrap(), Event::Executing(e) if e.node.is_none()));
    let prompt = "c490e119-91e9-4fa1-b8a8-7c3f285a911f";
    let previews: Vec<_> = got
        .iter()
        .filter_map(|e| match e {
            Event::Preview(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(previews.len(), 2);
    for p in previews {
        assert_eq!(p.prompt_id.as_deref(), Some(prompt));
        assert_eq!(p.node_id.as_deref(), Some("4"));
    }
    let text = got
        .iter()
        .find_map(|e| match e {
            Event::Text(t) => Some(t),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (text.node_id.as_str(), text.prompt_id.as_deref()),
        ("2", Some(prompt))
    );
    assert_eq!(client.connection_state(), ConnectionState::Connected);
    let debug = format!("{client:?}");
    assert!(
        !debug.contains("s3cret") && !debug.contains("k-123"),
        "{debug}"
    );
}

#[tokio::test]
async fn a_stalled_socket_is_detected_by_ping_and_reopened() {
    let mut server = WsServer::start(vec![
        Script::Silent(vec![status()]),
        Script::Send(vec![status()]),
    ])
    .await;
    let client = Client::builder(&server.url)
        .ping_interval(Duration::from_millis(100))
        .pong_timeout(Duration::from_millis(150))
        .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(20))
        .build()
        .unwrap();
    let mut events = client.subscribe();
    let reason = dropped_and_reopened(&mut events).await;
    assert!(reason.contains("stalled"), "{reason}");
    server.next_connect().await;
    server.next_connect().await;
}

#[tokio::test]
async fn every_outage_is_handled_like_the_first() {
    let outages = 4;
    let mut scripts = vec![Script::SendThenClose(vec![status()]); outages];
    scripts.push(Script::Send(vec![status()]));
    let server = WsServer::start(scripts).await;
    let client = Client::builder(&server.url)
        .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(20))
        .build()
        .unwrap();
    let mut events = client.subscribe();
    for _ in 0..outages {
        assert_eq!(next(&mut events).await, Event::Connected);
        assert!(matches!(next(&mut events).await, Event::Status(_)));
        assert!(matches!(
            next(&mut events).await,
            Event::Disconnected { .. }
        ));
        // The backoff restarts after each successful connection.
        assert!(matches!(
            next(&mut events).await,
            Event::Reconnecting { attempt: 1, .. }
        ));
    }
    assert_eq!(next(&mut events).await, Event::Connected);
}

#[tokio::test]
async fn gives_up_after_the_attempt_limit_and_the_stream_ends() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let client = Client::builder(url)
        .reconnect_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .max_reconnect_attempts(Some(2))
        .build()
        .unwrap();
    let mut events = client.subscribe();
    for want in 1..=2 {
        match next(&mut events).await {
            Event::Reconnecting {
                attempt, reason, ..
            } => {
                assert_eq!(attempt, want);
                assert!(reason.contains("websocket"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
    let end = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap();
    assert_eq!(end, None);
    assert_eq!(client.connection_state(), ConnectionState::Closed);
}

#[tokio::test]
async fn oversized_frames_are_refused_not_buffered() {
    let huge = Message::Binary(vec![0u8; 64 * 1024].into());
    let ok = Message::Text(
        r#"{"type":"status","data":{"status":{"exec_info":{"queue_remaining":7}}}}"#.into(),
    );
    let server = WsServer::start(vec![
        Script::Send(vec![status(), huge]),
        Script::Send(vec![status(), ok]),
    ])
    .await;
    let client = Client::builder(&server.url)
        .max_message_size(16 * 1024)
        .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(20))
        .build()
        .unwrap();
    let mut events = client.subscribe();
    let reason = dropped_and_reopened(&mut events).await;
    assert!(reason.to_lowercase().contains("size"), "{reason}");
    assert!(matches!(next(&mut events).await, Event::Status(_)));
    match next(&mut events).await {
        Event::Status(s) => assert_eq!(s.queue_remaining(), Some(7)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn dropping_the_last_client_closes_the_socket_and_ends_streams() {
    let server = WsServer::start(vec![]).await;
    let client = Client::new(&server.url).unwrap();
    let mut events = client.subscribe();
    assert_eq!(next(&mut events).await, Event::Connected);
    assert!(matches!(next(&mut events).await, Event::Status(_)));
    let clone = client.clone();
    drop(client);
    assert_eq!(clone.connection_state(), ConnectionState::Connected);
    drop(clone);
    let end = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap();
    assert_eq!(end, None);
}
