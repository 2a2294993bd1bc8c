//! Finding Debian's Chromium and ChromeDriver, and the flags headless Chromium needs here.

use crate::which;
use std::path::PathBuf;

/// The flags every headless Chromium started for tests gets (the browser driver adds a fresh
/// `--user-data-dir` and `--remote-debugging-port=0`; anyone starting Chromium otherwise must
/// add a fresh `--user-data-dir` too).
///
/// `--no-sandbox` because CI runs as root, where Chromium's sandbox refuses to start; the
/// network flags because this machine reaches no host but package registries, and Chromium's
/// background connections (updates, sync, QUIC probes) would otherwise fail at every start.
pub const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// The shell command that installs what this module looks for, for messages.
pub const INSTALL_HINT: &str = "run the tests with `cargo xtask test` (as root it installs \
     Chromium), or install it: apt-get install -y --no-install-recommends chromium chromium-driver";

/// Where Debian's `chromium` package puts the browser.
const DEBIAN_CHROMIUM: &str = "/usr/bin/chromium";

/// Where Debian's `chromium-driver` package puts ChromeDriver.
const DEBIAN_CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Chromium's executable: Debian's `/usr/bin/chromium`, else `chromium` or `chromium-browser`
/// on `PATH`; `None` when it is not installed.
pub fn try_chromium() -> Option<PathBuf> {
    find(DEBIAN_CHROMIUM, &["chromium", "chromium-browser"])
}

/// ChromeDriver's executable: Debian's `/usr/bin/chromedriver`, else `chromedriver` on `PATH`;
/// `None` when it is not installed.
pub fn try_chromedriver() -> Option<PathBuf> {
    find(DEBIAN_CHROMEDRIVER, &["chromedriver"])
}

/// Chromium's executable, for tests.
///
/// # Panics
///
/// When Chromium is not installed, with the command that installs it: a test that needs a
/// browser fails rather than silently skipping.
pub fn chromium() -> PathBuf {
    try_chromium().unwrap_or_else(|| {
        panic!("Chromium is not installed (no {DEBIAN_CHROMIUM}): {INSTALL_HINT}")
    })
}

/// ChromeDriver's executable, for tests.
///
/// # Panics
///
/// When ChromeDriver is not installed, with the command that installs it.
pub fn chromedriver() -> PathBuf {
    try_chromedriver().unwrap_or_else(|| {
        panic!("ChromeDriver is not installed (no {DEBIAN_CHROMEDRIVER}): {INSTALL_HINT}")
    })
}

fn find(fixed: &str, names: &[&str]) -> Option<PathBuf> {
    let fixed = PathBuf::from(fixed);
    if which::is_executable(&fixed) {
        return Some(fixed);
    }
    names.iter().find_map(|name| which::on_path(name))
}

#[cfg(test)]
mod tests {
    use super::INSTALL_HINT;

    #[test]
    fn missing_chromium_names_the_command_that_installs_it() {
        assert!(INSTALL_HINT.contains("cargo xtask test"));
        assert!(INSTALL_HINT.contains("chromium chromium-driver"));
    }
}
