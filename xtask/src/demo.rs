//! `cargo xtask demo [NAME] [ARGS...]`: run one of the demos of the `examples` package.

use crate::command::{self, Result, cargo};

/// The demos `cargo xtask demo` knows, each an example target of the `examples` package.
pub const DEMOS: [&str; 3] = ["basic", "advanced", "multitenant"];

/// Runs the demo named by the first of `args` (default `basic`: when `args` is empty or starts
/// with an option), passing the rest through (`--hosts`, `--verbose`, ...).
pub fn run(args: &[String]) -> Result {
    let (name, args) = match args.split_first() {
        Some((first, rest)) if !first.starts_with('-') => (first.as_str(), rest),
        _ => ("basic", args),
    };
    if !DEMOS.contains(&name) {
        return Err(format!(
            "unknown demo `{name}`; choose one of: {}",
            DEMOS.join(", ")
        ));
    }
    command::run(
        cargo()
            .args([
                "run",
                "--quiet",
                "--package",
                "examples",
                "--example",
                name,
                "--",
            ])
            .args(args),
    )
}
