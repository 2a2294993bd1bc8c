//! The errors of driving the browser.

use std::time::Duration;

/// Why a browser operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrowserError {
    /// Chromium is not installed.
    #[error("Chromium is not installed: {}", crate::chromium::INSTALL_HINT)]
    NotInstalled,
    /// A file-system or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Chromium exited before it was ready to be driven.
    #[error("Chromium exited ({status}) before it was ready; its output ends with: {log}")]
    Exited {
        /// How it ended.
        status: String,
        /// The end of what it printed.
        log: String,
    },
    /// The DevTools websocket could not be opened.
    #[error("could not connect to Chromium's DevTools socket: {reason}")]
    Connect {
        /// Why.
        reason: String,
    },
    /// The DevTools connection is gone (Chromium exited or closed it).
    #[error("the connection to Chromium is closed")]
    Closed,
    /// Chromium answered a DevTools command with an error.
    #[error("Chromium refused {method}: {message}")]
    Protocol {
        /// The DevTools method.
        method: &'static str,
        /// Chromium's message.
        message: String,
    },
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        after: Duration,
    },
    /// A page could not be loaded.
    #[error("could not load {url}: {error}")]
    Navigation {
        /// The URL.
        url: String,
        /// Chromium's reason (`net::ERR_CONNECTION_REFUSED`, ...).
        error: String,
    },
    /// The page's JavaScript threw (also for an invalid CSS selector).
    #[error("the page's JavaScript threw: {message}")]
    Script {
        /// The exception's description.
        message: String,
    },
    /// No element matches the selector.
    #[error("no element matches `{selector}`")]
    NoElement {
        /// The CSS selector.
        selector: String,
    },
    /// Chromium answered with something this driver does not understand.
    #[error("unexpected answer to {method}: {reason}")]
    Unexpected {
        /// The DevTools method.
        method: &'static str,
        /// What was wrong.
        reason: String,
    },
}
