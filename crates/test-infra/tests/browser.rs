//! The browser driver against Debian's headless Chromium and a page served on loopback.

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_infra::browser::{Browser, BrowserError};
use tokio::sync::Notify;

/// A page whose script adds `<p id="late">` once `/late` answers; the test decides when.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>late element</title>
<style>body { font: 28px sans-serif; margin: 40px; background: #f4f1e8; }
#late { color: #06603a; font-weight: bold; }</style></head>
<body><h1 id="title">comfy-pool browser test</h1>
<script>
fetch('/late').then(r => r.text()).then(text => {
  const p = document.createElement('p');
  p.id = 'late';
  p.dataset.n = '42';
  p.textContent = text;
  document.body.appendChild(p);
});
</script></body></html>"#;

/// Serves [`PAGE`] at `/`; `/late` answers once `gate` is notified. Returns the page's URL.
async fn serve(gate: Arc<Notify>) -> String {
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route(
            "/late",
            get(move || async move {
                gate.notified().await;
                "added by JavaScript"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("the listener's address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}

fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("test-infra")
        .join(name)
}

#[tokio::test]
async fn a_page_shows_the_element_its_script_adds_later() {
    let started = Instant::now();
    let gate = Arc::new(Notify::new());
    let url = serve(Arc::clone(&gate)).await;
    let browser = Browser::launch().await.unwrap();
    let launched = started.elapsed();
    let page = browser.new_page().await.unwrap();
    page.goto(&url).await.unwrap();

    assert_eq!(
        page.text("#title").await.unwrap(),
        "comfy-pool browser test"
    );
    // Loaded, but the script's element waits for the gate.
    assert_eq!(
        page.eval("document.querySelector('#late') === null")
            .await
            .unwrap(),
        json!(true)
    );
    gate.notify_one();
    page.wait_for("#late", Duration::from_secs(10))
        .await
        .unwrap();

    assert_eq!(page.text("#late").await.unwrap(), "added by JavaScript");
    assert_eq!(
        page.attribute("#late", "data-n").await.unwrap().as_deref(),
        Some("42")
    );
    assert_eq!(page.attribute("#late", "title").await.unwrap(), None);
    assert_eq!(
        page.eval("({ title: document.title, paragraphs: document.querySelectorAll('p').length })")
            .await
            .unwrap(),
        json!({ "title": "late element", "paragraphs": 1 })
    );

    let path = screenshot_path("late-element.png");
    page.screenshot(&path).await.unwrap();
    let png = std::fs::read(&path).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
    let height = u32::from_be_bytes([png[20], png[21], png[22], png[23]]);
    assert_eq!((width, height), (1280, 800));

    browser.close().await;
    eprintln!(
        "browser launched in {launched:?}; whole test {:?}; screenshot {}",
        started.elapsed(),
        path.display()
    );
}

#[tokio::test]
async fn failures_are_typed_errors() {
    let browser = Browser::launch().await.unwrap();
    let page = browser.new_page().await.unwrap();
    page.goto("about:blank").await.unwrap();

    let waited = page.wait_for("#never", Duration::from_millis(200)).await;
    assert!(
        matches!(waited, Err(BrowserError::Timeout { .. })),
        "{waited:?}"
    );
    let text = page.text("#never").await;
    assert!(
        matches!(text, Err(BrowserError::NoElement { .. })),
        "{text:?}"
    );
    let attribute = page.attribute("#never", "id").await;
    assert!(
        matches!(attribute, Err(BrowserError::NoElement { .. })),
        "{attribute:?}"
    );
    let invalid = page.wait_for("p[", Duration::from_secs(5)).await;
    assert!(
        matches!(invalid, Err(BrowserError::Script { .. })),
        "{invalid:?}"
    );
    let thrown = page.eval("(() => { throw new Error('boom') })()").await;
    assert!(
        matches!(&thrown, Err(BrowserError::Script { message }) if message.contains("boom")),
        "{thrown:?}"
    );

    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = page.goto(&format!("http://127.0.0.1:{port}/")).await;
    assert!(
        matches!(&refused, Err(BrowserError::Navigation { error, .. }) if error.contains("REFUSED")),
        "{refused:?}"
    );
    page.close().await.unwrap();
    browser.close().await;
}
