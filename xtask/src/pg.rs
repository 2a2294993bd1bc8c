//! `cargo xtask pg`: a throwaway PostgreSQL for development, until Ctrl-C.

use crate::command::Result;
use crate::deps;
use std::time::Instant;
use test_infra::pg::{Cluster, PG_URL_VAR};

/// Starts a cluster, prints its URL, and waits. Ctrl-C (or any other end of this process)
/// stops it and removes its directory: the cluster's watchdog process does that as soon as
/// this process is gone, so nothing here needs to catch the signal.
pub fn run() -> Result {
    deps::ensure(&[deps::POSTGRESQL])?;
    let started = Instant::now();
    let cluster = start()?;
    println!(
        "PostgreSQL is running (started in {:.1} s), data in {}",
        started.elapsed().as_secs_f64(),
        cluster.dir().display()
    );
    println!("{}", cluster.url());
    println!(
        "Tests use it with: {PG_URL_VAR}={} cargo test -p CRATE",
        cluster.url()
    );
    println!("Ctrl-C stops it and removes its directory.");
    loop {
        std::thread::park();
    }
}

/// Starts a cluster, the error in xtask's words.
pub fn start() -> std::result::Result<Cluster, String> {
    Cluster::start().map_err(|e| format!("could not start PostgreSQL: {e}"))
}
