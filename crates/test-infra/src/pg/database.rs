//! The test-facing calls: the URL of this run's cluster, and a fresh database per test.

use super::url::PgUrl;
use super::{Cluster, PgError, bin, run::run};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable holding the URL of the cluster the tests use; `cargo xtask test`
/// sets it to the cluster it started for the run.
pub const PG_URL_VAR: &str = "COMFY_POOL_TEST_PG_URL";

/// How long a client program waits for the server before giving up, in seconds.
const CONNECT_TIMEOUT_SECS: &str = "10";

/// The URL of a PostgreSQL database for tests: `$COMFY_POOL_TEST_PG_URL` when set (as
/// `cargo xtask test` does); otherwise this process starts a [`Cluster`] of its own on first
/// use, shared by every test in the process and stopped (directory removed) when the process
/// exits. Pass it to [`fresh_database`] for a database of the test's own.
///
/// # Panics
///
/// When PostgreSQL is not installed (the message names `cargo xtask test`, which installs it)
/// or the cluster cannot start: tests that need PostgreSQL fail, they never silently skip.
pub fn pg_url() -> String {
    if let Some(url) = std::env::var(PG_URL_VAR).ok().filter(|url| !url.is_empty()) {
        return url;
    }
    static PROCESS_CLUSTER: OnceLock<Result<Cluster, PgError>> = OnceLock::new();
    match PROCESS_CLUSTER.get_or_init(Cluster::start) {
        Ok(cluster) => cluster.url(),
        Err(e) => panic!("no PostgreSQL for the tests ({PG_URL_VAR} is not set): {e}"),
    }
}

/// A new, empty database on the server of `url` (same user and options), named uniquely for
/// this test, so tests run in parallel without seeing each other's tables. Returns its URL.
///
/// # Panics
///
/// When [`try_fresh_database`] fails; the message holds no password.
pub fn fresh_database(url: &str) -> String {
    try_fresh_database(url).unwrap_or_else(|e| panic!("could not create a test database: {e}"))
}

/// A new database on [`pg_url`]'s server ([`fresh_database`]), from async code: the blocking
/// work (starting this process's cluster on first use, `createdb`) runs off the runtime's
/// threads. Returns its URL.
///
/// # Panics
///
/// As [`pg_url`] and [`fresh_database`].
#[cfg(feature = "async")]
pub async fn new_pg_database() -> String {
    tokio::task::spawn_blocking(|| fresh_database(&pg_url()))
        .await
        .unwrap_or_else(|e| panic!("could not create a test database: {e}"))
}

/// [`fresh_database`] with its failure as a value: created with the `createdb` program
/// (password, if any, passed in its environment), named `test_PID_N_NANOS`.
///
/// # Errors
///
/// [`PgError::BadUrl`], [`PgError::ClientMissing`], or the failed `createdb`.
pub fn try_fresh_database(url: &str) -> Result<String, PgError> {
    let url = PgUrl::parse(url)?;
    let name = unique_name();
    let mut cmd = Command::new(bin::client("createdb")?);
    cmd.args([
        "--host",
        &url.host,
        "--username",
        &url.user,
        "--no-password",
    ])
    .env("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT_SECS);
    if let Some(port) = url.port {
        cmd.args(["--port", &port.to_string()]);
    }
    if let Some(password) = &url.password {
        cmd.env("PGPASSWORD", password);
    }
    run(cmd.arg(&name))?;
    Ok(url.with_database(&name))
}

/// `test_PID_N_NANOS`: unique among processes running at once (pid), within a process
/// (counter), and across runs against a long-lived server (time).
fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "test_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::unique_name;

    #[test]
    fn names_are_unique_and_valid_identifiers() {
        let (a, b) = (unique_name(), unique_name());
        assert_ne!(a, b);
        for name in [a, b] {
            assert!(name.len() <= 63, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            );
        }
    }
}
