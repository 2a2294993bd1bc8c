//! [`Page`]: one tab.

use super::BrowserError;
use super::cdp::Cdp;
use base64::Engine;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often [`Page::wait_for`] looks again.
const POLL: Duration = Duration::from_millis(50);

/// How long [`Page::goto`] waits for the page to finish loading.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// One tab of a [`super::Browser`] ([`super::VIEWPORT`]), driven over the browser's DevTools socket.
#[derive(Debug)]
pub struct Page {
    cdp: Arc<Cdp>,
    target: String,
    session: String,
}

impl Page {
    pub(crate) fn new(cdp: Arc<Cdp>, target: String, session: String) -> Page {
        Page {
            cdp,
            target,
            session,
        }
    }

    /// Loads `url` and waits until it has loaded (`document.readyState` is `complete`).
    ///
    /// # Errors
    ///
    /// [`BrowserError::Navigation`] when it cannot be loaded (refused, not found, ...),
    /// [`BrowserError::Timeout`] when it does not finish loading within 30 s.
    pub async fn goto(&self, url: &str) -> Result<(), BrowserError> {
        let result = self.call("Page.navigate", json!({ "url": url })).await?;
        if let Some(error) = result
            .get("errorText")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
        {
            return Err(BrowserError::Navigation {
                url: url.to_owned(),
                error: error.to_owned(),
            });
        }
        self.wait_until(
            "document.readyState === 'complete'",
            LOAD_TIMEOUT,
            &format!("{url} to load"),
        )
        .await
    }

    /// Evaluates the JavaScript expression `expression` in the page (awaiting it if it is a
    /// promise) and returns its value as JSON (`null` for `undefined`).
    ///
    /// # Errors
    ///
    /// [`BrowserError::Script`] when it throws.
    pub async fn eval(&self, expression: &str) -> Result<Value, BrowserError> {
        let method = "Runtime.evaluate";
        let result = self
            .call(
                method,
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await?;
        if let Some(details) = result.get("exceptionDetails") {
            let message = details
                .pointer("/exception/description")
                .or_else(|| details.get("text"))
                .and_then(Value::as_str)
                .unwrap_or("an exception")
                .to_owned();
            return Err(BrowserError::Script { message });
        }
        Ok(result
            .pointer("/result/value")
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// Waits until an element matches the CSS `selector`, looking every 50 ms, at most
    /// `timeout`.
    ///
    /// # Errors
    ///
    /// [`BrowserError::Timeout`] when none does in time; [`BrowserError::Script`] for an
    /// invalid selector.
    pub async fn wait_for(&self, selector: &str, timeout: Duration) -> Result<(), BrowserError> {
        self.wait_until(
            &format!("document.querySelector({}) !== null", js_string(selector)),
            timeout,
            &format!("an element matching `{selector}`"),
        )
        .await
    }

    /// The text content of the first element matching `selector`.
    ///
    /// # Errors
    ///
    /// [`BrowserError::NoElement`] when none matches.
    pub async fn text(&self, selector: &str) -> Result<String, BrowserError> {
        let value = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({}); \
                 return e === null ? null : e.textContent; }})()",
                js_string(selector)
            ))
            .await?;
        match value {
            Value::String(text) => Ok(text),
            _ => Err(BrowserError::NoElement {
                selector: selector.to_owned(),
            }),
        }
    }

    /// The attribute `name` of the first element matching `selector` (`None` when it has no
    /// such attribute).
    ///
    /// # Errors
    ///
    /// [`BrowserError::NoElement`] when no element matches.
    pub async fn attribute(
        &self,
        selector: &str,
        name: &str,
    ) -> Result<Option<String>, BrowserError> {
        let value = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({}); \
                 return e === null ? [] : [e.getAttribute({})]; }})()",
                js_string(selector),
                js_string(name)
            ))
            .await?;
        match value.as_array().map(Vec::as_slice) {
            Some([Value::String(attribute)]) => Ok(Some(attribute.clone())),
            Some([_]) => Ok(None),
            _ => Err(BrowserError::NoElement {
                selector: selector.to_owned(),
            }),
        }
    }

    /// Saves a PNG screenshot of the visible page at `path` (creating its directory).
    ///
    /// # Errors
    ///
    /// [`BrowserError::Io`] when the file cannot be written.
    pub async fn screenshot(&self, path: &Path) -> Result<(), BrowserError> {
        let method = "Page.captureScreenshot";
        let result = self.call(method, json!({ "format": "png" })).await?;
        let png = result
            .get("data")
            .and_then(Value::as_str)
            .and_then(|data| base64::engine::general_purpose::STANDARD.decode(data).ok())
            .ok_or(BrowserError::Unexpected {
                method,
                reason: "no base64 `data`".into(),
            })?;
        let write = |path: &Path| {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, &png)
        };
        write(path).map_err(|source| BrowserError::Io {
            what: format!("could not write {}", path.display()),
            source,
        })
    }

    /// Closes the tab.
    ///
    /// # Errors
    ///
    /// When Chromium refuses or is gone.
    pub async fn close(self) -> Result<(), BrowserError> {
        self.cdp
            .call(
                None,
                "Target.closeTarget",
                json!({ "targetId": self.target }),
            )
            .await
            .map(drop)
    }

    /// Polls `expression` until it is `true`. Errors of the protocol (such as a context
    /// destroyed by a navigation) count as "not yet"; an exception in the expression ends it.
    async fn wait_until(
        &self,
        expression: &str,
        timeout: Duration,
        what: &str,
    ) -> Result<(), BrowserError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.eval(expression).await {
                Ok(Value::Bool(true)) => return Ok(()),
                Ok(_) | Err(BrowserError::Protocol { .. }) => {}
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                return Err(BrowserError::Timeout {
                    what: what.to_owned(),
                    after: timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn call(&self, method: &'static str, params: Value) -> Result<Value, BrowserError> {
        self.cdp.call(Some(&self.session), method, params).await
    }
}

/// `text` as a JavaScript string literal (JSON's string syntax is a subset of JavaScript's).
fn js_string(text: &str) -> String {
    Value::from(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::js_string;

    #[test]
    fn selectors_are_quoted_as_js_strings() {
        assert_eq!(js_string("#a"), r##""#a""##);
        assert_eq!(js_string(r#"a[x="1"]\"#), r#""a[x=\"1\"]\\""#);
    }
}
