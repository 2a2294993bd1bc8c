//! `cargo xtask lint`, `test` and `ci`: the checks CI runs.

use crate::command::{Result, cargo, run};
use crate::{deps, pg};
use std::time::Instant;
use test_infra::pg::PG_URL_VAR;

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

/// The full test suite: unit, integration, example and bench-target tests, then doctests,
/// against a PostgreSQL cluster started for the run (its URL in `COMFY_POOL_TEST_PG_URL`) and
/// stopped afterwards, whatever the tests did. Installs the Debian packages the tests need
/// first (as root).
pub fn test() -> Result {
    deps::ensure(&deps::ALL)?;
    let started = Instant::now();
    let cluster = pg::start()?;
    let url = cluster.url();
    println!(
        "PostgreSQL for the tests at {url} (started in {:.2} s)",
        started.elapsed().as_secs_f64()
    );
    let tests = run(cargo()
        .args(["test", "--workspace", "--all-targets", "--all-features"])
        .env(PG_URL_VAR, &url))
    .and_then(|()| {
        run(cargo()
            .args(["test", "--workspace", "--doc", "--all-features"])
            .env(PG_URL_VAR, &url))
    });
    let stopping = Instant::now();
    let stopped = cluster
        .stop()
        .map_err(|e| format!("could not stop PostgreSQL: {e}"));
    println!(
        "PostgreSQL stopped and removed in {:.2} s",
        stopping.elapsed().as_secs_f64()
    );
    tests.and(stopped)
}
