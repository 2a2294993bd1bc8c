//! `cargo xtask sim`: start simulated ComfyUI servers for development without a GPU.

use crate::command::{self, Result, cargo};

/// Runs the `comfy-sim` binary with `count` servers from `listen` upward, plus extra arguments.
pub fn run(count: u16, listen: &str, extra: &[String]) -> Result {
    let count = count.to_string();
    command::run(
        cargo()
            .args([
                "run",
                "--quiet",
                "--release",
                "--package",
                "comfy-sim",
                "--",
            ])
            .args(["--listen", listen, "--count", &count])
            .args(extra),
    )
}
