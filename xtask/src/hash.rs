//! `cargo xtask hash FILE...`: the structural hash of workflow files, like `sha256sum`.

use crate::command::{self, Result, cargo};

/// Runs the `workflow-hash` example binary on `files` (standard input when empty).
pub fn run(files: &[String]) -> Result {
    command::run(
        cargo()
            .args([
                "run",
                "--quiet",
                "--package",
                "workflow-hash",
                "--example",
                "hash",
                "--",
            ])
            .args(files),
    )
}
