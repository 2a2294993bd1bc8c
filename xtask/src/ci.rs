//! `cargo xtask lint`, `test` and `ci`: the checks CI runs.

use crate::command::{Result, cargo, run};

/// Formatting, clippy with warnings denied, and docs with warnings denied.
pub fn lint() -> Result {
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo()
        .args(["doc", "--workspace", "--no-deps", "--all-features"])
        .env("RUSTDOCFLAGS", "-D warnings"))
}

/// The full test suite: unit, integration, example and bench-target tests, then doctests.
pub fn test() -> Result {
    run(cargo().args(["test", "--workspace", "--all-targets", "--all-features"]))?;
    run(cargo().args(["test", "--workspace", "--doc", "--all-features"]))
}
