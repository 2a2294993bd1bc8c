//! A small headless-Chromium driver for tests, over the Chrome DevTools Protocol (see the
//! crate docs for why not WebDriver).
//!
//! ```no_run
//! # async fn demo() -> Result<(), test_infra::browser::BrowserError> {
//! use std::time::Duration;
//! use test_infra::browser::Browser;
//!
//! let browser = Browser::launch().await?;
//! let page = browser.new_page().await?;
//! page.goto("http://127.0.0.1:8080/").await?;
//! page.wait_for("#ready", Duration::from_secs(5)).await?;
//! assert_eq!(page.text("#ready").await?, "ok");
//! page.screenshot(std::path::Path::new("target/page.png")).await?;
//! browser.close().await;
//! # Ok(())
//! # }
//! ```

mod cdp;
mod error;
mod page;
mod process;

pub use error::BrowserError;
pub use page::Page;

use cdp::Cdp;
use process::Process;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Every page's viewport, in CSS pixels (and screenshot pixels: device scale 1).
pub const VIEWPORT: (u32, u32) = (1280, 800);

/// How long [`Browser::close`] waits for Chromium to exit before killing it.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A headless Chromium of its own (fresh profile in a temporary directory, [`crate::CHROMIUM_FLAGS`]),
/// killed and its directory removed when dropped.
#[derive(Debug)]
pub struct Browser {
    cdp: Arc<Cdp>,
    process: Process,
}

impl Browser {
    /// Starts Chromium and connects to it.
    ///
    /// # Errors
    ///
    /// [`BrowserError::NotInstalled`] without Chromium; [`BrowserError::Exited`] (with the end
    /// of its output) when it dies on start.
    pub async fn launch() -> Result<Browser, BrowserError> {
        let (process, url) = Process::start().await?;
        let cdp = Arc::new(Cdp::connect(&url).await?);
        Ok(Browser { cdp, process })
    }

    /// Opens a new tab on `about:blank`, its viewport [`VIEWPORT`].
    ///
    /// # Errors
    ///
    /// When Chromium refuses or is gone.
    pub async fn new_page(&self) -> Result<Page, BrowserError> {
        let method = "Target.createTarget";
        let created = self
            .cdp
            .call(None, method, json!({ "url": "about:blank" }))
            .await?;
        let target = string_field(&created, "targetId", method)?;
        let method = "Target.attachToTarget";
        let attached = self
            .cdp
            .call(None, method, json!({ "targetId": target, "flatten": true }))
            .await?;
        let session = string_field(&attached, "sessionId", method)?;
        // The window's size less Chromium's own frame would be left otherwise.
        self.cdp
            .call(
                Some(&session),
                "Emulation.setDeviceMetricsOverride",
                json!({
                    "width": VIEWPORT.0,
                    "height": VIEWPORT.1,
                    "deviceScaleFactor": 1,
                    "mobile": false,
                }),
            )
            .await?;
        Ok(Page::new(Arc::clone(&self.cdp), target, session))
    }

    /// Asks Chromium to exit and waits for it (killing it after 5 s), then removes its
    /// directory. Dropping the browser kills it at once instead.
    pub async fn close(mut self) {
        // The answer may never come: Chromium closes the socket as it exits.
        let _ = tokio::time::timeout(
            CLOSE_TIMEOUT,
            self.cdp.call(None, "Browser.close", json!({})),
        )
        .await;
        self.process.wait_exit(CLOSE_TIMEOUT).await;
    }
}

fn string_field(result: &Value, field: &str, method: &'static str) -> Result<String, BrowserError> {
    result
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| BrowserError::Unexpected {
            method,
            reason: format!("no `{field}`"),
        })
}
