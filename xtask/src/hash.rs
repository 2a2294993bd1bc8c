//! `cargo xtask hash FILE...`: the structural hash of workflow files, like `sha256sum`.

use crate::command::{self, Result, cargo};

/// Runs `comfy-pool hash` (crate `comfy-pool-cli`) on `files` (standard input when empty).
pub fn run(files: &[String]) -> Result {
    command::run(
        cargo()
            .args([
                "run",
                "--quiet",
                "--package",
                "comfy-pool-cli",
                "--",
                "hash",
            ])
            .args(files),
    )
}
