//! The Chromium process and its scratch directory (`profile/`, `chromium.log`), both gone when
//! this is dropped.

use super::BrowserError;
use crate::chromium::{CHROMIUM_FLAGS, try_chromium};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long Chromium may take to open its DevTools socket.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How often to look for the DevTools port file, and for the process's exit.
const POLL: Duration = Duration::from_millis(20);

/// How much of Chromium's output an error keeps.
const LOG_TAIL: usize = 2000;

/// A running headless Chromium.
#[derive(Debug)]
pub(crate) struct Process {
    child: Child,
    dir: PathBuf,
}

impl Process {
    /// Starts Chromium headless with [`CHROMIUM_FLAGS`], a fresh profile and a DevTools port
    /// of its choosing; returns it with the browser's DevTools websocket URL once it listens.
    pub(crate) async fn start() -> Result<(Process, String), BrowserError> {
        let program = try_chromium().ok_or(BrowserError::NotInstalled)?;
        let dir = scratch_dir()?;
        let profile = dir.join("profile");
        let log = dir.join("chromium.log");
        let spawned = File::create(&log)
            .and_then(|out| Ok((out.try_clone()?, out)))
            .and_then(|(out, err)| {
                Command::new(&program)
                    .args(CHROMIUM_FLAGS)
                    .arg(format!("--user-data-dir={}", profile.display()))
                    .args([
                        "--remote-debugging-port=0",
                        "--window-size=1280,800",
                        "--hide-scrollbars",
                        "--mute-audio",
                        "about:blank",
                    ])
                    .stdin(Stdio::null())
                    .stdout(out)
                    .stderr(err)
                    .spawn()
            });
        let child = match spawned {
            Ok(child) => child,
            Err(source) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(BrowserError::Io {
                    what: format!("could not start {}", program.display()),
                    source,
                });
            }
        };
        let mut process = Process { child, dir };
        let url = process.devtools_url(&profile).await?;
        Ok((process, url))
    }

    /// Waits until the process has exited by itself, at most `timeout`; it is killed when
    /// dropped otherwise.
    pub(crate) async fn wait_exit(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Chromium writes its port and browser path to `DevToolsActivePort` in the profile once
    /// it listens; until then, check that it has not died.
    async fn devtools_url(&mut self, profile: &Path) -> Result<String, BrowserError> {
        let file = profile.join("DevToolsActivePort");
        let started = Instant::now();
        loop {
            if let Some(url) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|text| parse_active_port(&text))
            {
                return Ok(url);
            }
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    return Err(BrowserError::Exited {
                        status: status.to_string(),
                        log: self.log_tail(),
                    });
                }
                Ok(None) => {}
                Err(source) => {
                    return Err(BrowserError::Io {
                        what: "could not check on Chromium".into(),
                        source,
                    });
                }
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                return Err(BrowserError::Timeout {
                    what: format!("Chromium's DevTools socket (log: {})", self.log_tail()),
                    after: STARTUP_TIMEOUT,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("chromium.log")).unwrap_or_default();
        let text = text.trim();
        let mut start = text.len().saturating_sub(LOG_TAIL);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].to_owned()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `PORT\n/devtools/browser/ID\n` to `ws://127.0.0.1:PORT/devtools/browser/ID`; `None` while
/// the file is incomplete.
fn parse_active_port(text: &str) -> Option<String> {
    let mut lines = text.lines();
    let port: u16 = lines.next()?.trim().parse().ok()?;
    let path = lines.next()?.trim();
    path.starts_with("/devtools/browser/")
        .then(|| format!("ws://127.0.0.1:{port}{path}"))
}

/// A new directory for one browser: `$TMPDIR/comfy-pool-chromium-PID-N`.
fn scratch_dir() -> Result<PathBuf, BrowserError> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "comfy-pool-chromium-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    // A leftover of an earlier process with the same pid is stale.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|source| BrowserError::Io {
        what: format!("could not create {}", dir.display()),
        source,
    })?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::parse_active_port;

    #[test]
    fn the_port_file_gives_the_browser_socket_once_complete() {
        assert_eq!(
            parse_active_port("40123\n/devtools/browser/ab-cd\n").as_deref(),
            Some("ws://127.0.0.1:40123/devtools/browser/ab-cd")
        );
        assert_eq!(parse_active_port("40123\n"), None);
        assert_eq!(parse_active_port("40123\n/devtools/brow"), None);
        assert_eq!(parse_active_port(""), None);
    }
}
