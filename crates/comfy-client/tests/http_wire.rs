//! What goes over the wire (auth and custom headers, user agent, proxy prefix) and how
//! hostile or broken HTTP answers become errors, never panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::Router;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use comfy_client::{Client, Deadline, Error};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

type Seen = mpsc::UnboundedSender<(String, HeaderMap)>;

/// Answers by the first path segment: `ok`, `garbage`, `wrongtype`, `huge`, `slow`.
async fn handler(
    State(seen): State<Seen>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let _ = seen.send((uri.path().to_owned(), headers));
    let mode = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    match mode {
        "ok" => (
            StatusCode::OK,
            r#"{"system": {"os": "posix"}, "devices": []}"#,
        )
            .into_response(),
        "garbage" => (StatusCode::OK, "not json {").into_response(),
        "wrongtype" => (StatusCode::OK, r#"{"system": 5, "devices": "x"}"#).into_response(),
        "huge" => (StatusCode::OK, vec![b' '; 2 << 20]).into_response(),
        "busy" => (StatusCode::SERVICE_UNAVAILABLE, "x".repeat(5000)).into_response(),
        "slow" => {
            std::future::pending::<()>().await;
            StatusCode::OK.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn server() -> (String, mpsc::UnboundedReceiver<(String, HeaderMap)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().fallback(handler).with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), rx)
}

#[tokio::test]
async fn auth_custom_headers_and_prefix_are_on_the_wire_and_never_printed() {
    let (base, mut seen) = server().await;
    let c = Client::builder(format!("{base}/ok/comfy"))
        .bearer_auth("tok-secret")
        .header("x-api-key", "key-secret")
        .user_agent("pool/1")
        .build()
        .unwrap();
    c.system_stats().await.unwrap();
    let (path, headers) = seen.recv().await.unwrap();
    assert_eq!(path, "/ok/comfy/system_stats");
    assert_eq!(headers["authorization"], "Bearer tok-secret");
    assert_eq!(headers["x-api-key"], "key-secret");
    assert_eq!(headers["user-agent"], "pool/1");
    assert_eq!(
        c.ws_url(),
        format!(
            "{}/ok/comfy/ws?clientId={}",
            base.replace("http", "ws"),
            c.client_id()
        )
    );
    let printed = format!(
        "{c:?} {:?}",
        Client::builder(&base)
            .bearer_auth("tok-secret")
            .header("x-api-key", "key-secret")
    );
    assert!(!printed.contains("secret"), "{printed}");

    let c = Client::builder(format!("{}/ok/", base.replace("://", "://me:pw%21@")))
        .build()
        .unwrap();
    assert!(!format!("{c:?}").contains("pw"));
    c.system_stats().await.unwrap();
    let (_, headers) = seen.recv().await.unwrap();
    // base64("me:pw!")
    assert_eq!(headers["authorization"], "Basic bWU6cHch");

    let c = Client::builder(format!("{base}/ok/"))
        .basic_auth("u", None)
        .build()
        .unwrap();
    c.system_stats().await.unwrap();
    let (_, headers) = seen.recv().await.unwrap();
    assert_eq!(headers["authorization"], "Basic dTo="); // base64("u:")
}

#[tokio::test]
async fn broken_answers_are_typed_errors() {
    let (base, _seen) = server().await;
    let client = |mode: &str| {
        Client::builder(format!("{base}/{mode}/"))
            .max_response_size(1 << 20)
            .request_timeout(Duration::from_millis(300))
            .build()
            .unwrap()
    };
    let e = client("garbage").system_stats().await.unwrap_err();
    assert!(
        matches!(&e, Error::Decode { context, .. } if context.contains("/garbage/system_stats")),
        "{e}"
    );
    let e = client("wrongtype").system_stats().await.unwrap_err();
    assert!(matches!(e, Error::Decode { .. }), "{e}");
    let e = client("huge").system_stats().await.unwrap_err();
    assert!(
        matches!(e, Error::TooLarge { limit, .. } if limit == 1 << 20),
        "{e}"
    );
    let e = client("busy").system_stats().await.unwrap_err();
    match &e {
        Error::Status { status, body, .. } => {
            assert_eq!(*status, 503);
            assert!(body.chars().count() <= 513, "{}", body.len());
        }
        other => panic!("{other}"),
    }
    assert!(e.is_retryable());
    let e = client("slow").system_stats().await.unwrap_err();
    assert_eq!(e.deadline(), Some(Deadline::Request), "{e}");
    assert!(e.is_timeout() && !e.is_connect());
    let e = client("missing").system_stats().await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn refused_and_truncated_connections_are_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = Client::new(format!("http://{addr}/"))
        .unwrap()
        .queue()
        .await
        .unwrap_err();
    assert!(e.is_connect() && e.is_retryable(), "{e}");

    // A server that promises 100 bytes and hangs up after one.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = tokio::io::AsyncReadExt::read(&mut sock, &mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: application/json\r\n\r\n{")
                .await;
        }
    });
    let e = Client::new(format!("http://{addr}/"))
        .unwrap()
        .queue()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Http(_)), "{e:?}");
}

#[test]
fn the_builder_refuses_bad_options() {
    assert!(matches!(
        Client::new("ftp://x/"),
        Err(Error::InvalidUrl { .. })
    ));
    assert!(
        Client::builder("http://x/")
            .header("bad header", "v")
            .build()
            .is_err()
    );
    assert!(
        Client::builder("http://x/")
            .header("x-k", "bad\nvalue")
            .build()
            .is_err()
    );
    assert!(Client::builder("http://x/").client_id("").build().is_err());
    assert!(
        Client::builder("http://x/")
            .poll_interval(Duration::ZERO)
            .build()
            .is_err()
    );
    let c = Client::builder("wss://host/comfy")
        .client_id("me")
        .build()
        .unwrap();
    assert_eq!(c.base_url(), "https://host/comfy/");
    assert_eq!(c.ws_url(), "wss://host/comfy/ws?clientId=me");
    let a = Client::new("http://x/").unwrap();
    let b = Client::new("http://x/").unwrap();
    assert_ne!(a.client_id(), b.client_id());
    assert_eq!(a.clone().client_id(), a.client_id());
}
