//! `cargo xtask serve`: the HTTP service on three in-process simulated servers, for trying
//! the API and the dashboard without a GPU.

use crate::command::{self, Result, cargo};

/// Runs `comfy-pool serve --demo` with `args` (e.g. `--listen 127.0.0.1:9000`, `--store
/// URL`, `--config FILE`). Once it listens it prints `url: …`, `admin-key: …` and
/// `tenant-key: NAME KEY` for two demo tenants; Ctrl-C stops it.
pub fn run(args: &[String]) -> Result {
    command::run(
        cargo()
            .args([
                "run",
                "--quiet",
                "--package",
                "comfy-pool-cli",
                "--",
                "serve",
                "--demo",
            ])
            .args(args),
    )
}
