//! The dashboard in a real headless Chromium (Debian's package): loaded against a running
//! service with simulated servers, it shows a block appear live, with its countdown, the
//! servers and the recent jobs with a thumbnail. The screenshot is kept as a test artifact
//! (`target/tmp/pool-server/dashboard.png`).

#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use comfy_sim::SimConfig;
use serde_json::json;
use support::{ADMIN_KEY, TestService, inverted_workflow, workflow};
use test_infra::browser::Browser;

const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn the_dashboard_shows_a_block_appear_live() {
    let svc = TestService::start(2, SimConfig::default(), |_| {}).await;
    svc.run(&svc.key_a, json!({"workflow": workflow()})).await;

    let browser = Browser::launch().await.unwrap();
    let page = browser.new_page().await.unwrap();
    page.goto(&format!("{}/#key={ADMIN_KEY}", svc.url))
        .await
        .unwrap();
    page.wait_for("body[data-loaded] #servers tr.server", PATIENCE)
        .await
        .unwrap();
    assert_eq!(
        page.eval("location.hash").await.unwrap(),
        json!(""),
        "the key leaves the address bar"
    );
    assert_eq!(
        page.eval("document.querySelectorAll('#servers tr.server').length")
            .await
            .unwrap(),
        json!(2)
    );
    assert_eq!(
        page.attribute("#servers tr.server", "data-state")
            .await
            .unwrap(),
        Some("online".to_owned())
    );
    page.wait_for("#live.on", PATIENCE).await.unwrap();
    assert_eq!(
        page.eval("document.querySelectorAll('#blocks tr.block').length")
            .await
            .unwrap(),
        json!(0)
    );

    // A failure on sim-2 blocks the pair: the page learns it over the event stream.
    svc.sims.servers()[1].faults().fail_class("ImageInvert");
    let failed = svc
        .run(
            &svc.key_b,
            json!({"workflow": inverted_workflow(), "required_servers": ["sim-2"], "max_attempts": 1}),
        )
        .await;
    page.wait_for("#blocks tr.block[data-server='sim-2']", PATIENCE)
        .await
        .unwrap();
    let row = page.text("#blocks tr.block").await.unwrap();
    let hash = failed["hash"].as_str().unwrap();
    assert!(row.contains(&hash[..12]), "{row}");
    assert!(
        row.contains("blocked") && row.contains("execution"),
        "{row}"
    );
    let countdown = page.text("#blocks tr.block .countdown").await.unwrap();
    assert!(
        countdown.ends_with('s') && countdown.chars().any(|c| c.is_ascii_digit()),
        "{countdown:?}"
    );
    page.wait_for(".job[data-state='failed'] .err", PATIENCE)
        .await
        .unwrap();
    assert_eq!(
        page.text(".job[data-state='failed'] .err").await.unwrap(),
        "attempts_exhausted"
    );
    page.wait_for(".job[data-state='completed'] img", PATIENCE)
        .await
        .unwrap();
    assert_eq!(
        page.eval("document.querySelector('.job img').naturalWidth > 0")
            .await
            .unwrap(),
        json!(true),
        "the thumbnail is the job's output, fetched with the key"
    );
    assert_eq!(
        page.text("#total-blocks b").await.unwrap(),
        "1",
        "the totals follow"
    );

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("pool-server")
        .join("dashboard.png");
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    page.screenshot(&shot).await.unwrap();
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    page.close().await.unwrap();
    browser.close().await;
    svc.stop().await;
}
