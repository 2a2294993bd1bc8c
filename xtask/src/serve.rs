//! `cargo xtask serve`: the HTTP service on three in-process simulated servers and a fresh
//! SQLite store, for trying the API and the dashboard without a GPU.

use crate::command::{self, Result, cargo, root};

/// The demo's store, under `target/` (removed at each start: the simulated servers of a
/// previous run are gone, so its jobs could only be lost there).
const DEMO_DB: &str = "target/comfy-pool-demo.db";

/// Runs `comfy-pool serve --demo` with `args` (e.g. `--listen 127.0.0.1:9000`, `--store
/// URL`, `--config FILE`) on a fresh SQLite file unless `--store` is given. Once it listens
/// it prints `url: …`, `admin-key: …` and `tenant-key: NAME KEY` for two demo tenants;
/// Ctrl-C stops it.
pub fn run(args: &[String]) -> Result {
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--quiet",
        "--package",
        "comfy-pool-cli",
        "--",
        "serve",
        "--demo",
    ]);
    if !args
        .iter()
        .any(|a| a == "--store" || a.starts_with("--store="))
    {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(root().join(format!("{DEMO_DB}{suffix}")));
        }
        cmd.args(["--store", &format!("sqlite:{DEMO_DB}")]);
    }
    command::run(cmd.args(args))
}
