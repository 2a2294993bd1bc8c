//! `test-infra`: a real PostgreSQL server and a real headless Chromium for comfy-pool's tests.
//!
//! A dev-dependency only (`publish = false`). Tests never skip for want of either: the
//! functions here panic with the command that installs what is missing (`cargo xtask test`
//! installs both when run as root, as in CI).
//!
//! # PostgreSQL
//!
//! [`pg::pg_url`] is the URL of the run's server: the cluster `cargo xtask test` started (it
//! sets `COMFY_POOL_TEST_PG_URL`), or, under a plain `cargo test`, a [`pg::Cluster`] the test
//! process starts itself on first use. [`pg::fresh_database`] creates a database per test so
//! tests run in parallel. A cluster lives in a temporary directory, runs as the system user
//! `postgres` when started by root, and a watchdog process stops it and removes the directory
//! when its owner drops it or exits in any way — so nothing is left running after a test
//! process, whose statics are never dropped.
//!
//! # Chromium
//!
//! [`chromium()`] and [`chromedriver()`] find Debian's programs; [`CHROMIUM_FLAGS`] are the flags
//! headless Chromium needs on these machines. With the `browser` feature (default),
//! [`browser::Browser`] is a small driver for tests: open a URL, wait for a CSS selector, read
//! text and attributes or evaluate JavaScript to JSON, save a PNG screenshot.
//!
//! The driver speaks the Chrome DevTools Protocol over one websocket
//! (`--remote-debugging-port`) rather than WebDriver (`fantoccini` through ChromeDriver):
//! - nothing new to build: tokio-tungstenite and serde_json are already the workspace's, while
//!   a WebDriver client brings its own HTTP stack and the `webdriver` crate's dependencies;
//! - one process fewer to start, wait for and clean up (no ChromeDriver between test and
//!   browser), and one less version pairing to keep in step;
//! - the few operations tests need are five DevTools commands (`Target.createTarget`,
//!   `Target.attachToTarget`, `Page.navigate`, `Runtime.evaluate`, `Page.captureScreenshot`).
//!
//! The price is that it drives Chromium only, which is the browser the project tests in.

pub mod chromium;
pub mod pg;
pub mod user;
mod which;

#[cfg(feature = "browser")]
pub mod browser;

pub use chromium::{CHROMIUM_FLAGS, chromedriver, chromium};
#[cfg(feature = "async")]
pub use pg::new_pg_database;
pub use pg::{fresh_database, pg_url};
