//! [`Cluster`]: a throwaway PostgreSQL server in a temporary directory.

use super::PgError;
use super::account::Account;
use super::bin::PgBin;
use super::run::{run, tail};
use super::scratch;
use super::watchdog::Watchdog;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The superuser every cluster is created with (no password: trust on loopback).
pub const SUPERUSER: &str = "postgres";

/// The database every cluster is created with, named in [`Cluster::url`].
pub const DATABASE: &str = "comfy_pool_test";

/// Settings appended to `postgresql.conf`: loopback TCP only (no Unix socket, which would need
/// a shared directory), and no durability (a test cluster is thrown away, so fsync and
/// full-page writes only cost time). Enough connections for many tests' pools at once.
const SETTINGS: &str = "
# comfy-pool test cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
";

/// How many free ports to try when another process takes the chosen one first.
const PORT_ATTEMPTS: usize = 5;

/// How long `pg_ctl` waits for the server to accept connections, in seconds.
const START_TIMEOUT_SECS: &str = "60";

/// A PostgreSQL server of its own, in a temporary directory, listening on a free loopback port,
/// with trust authentication, fsync off, and the database [`DATABASE`] created.
///
/// Built with `initdb` and `pg_ctl` from Debian's packages (see [`PgBin::find`]). As root the
/// server runs as the system user `postgres` (PostgreSQL refuses root). A watchdog process
/// stops the server and removes the directory when the `Cluster` is dropped or stopped — or
/// when this process exits in any way, so a `Cluster` kept in a `static` is cleaned up too.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    port: u16,
    watchdog: Watchdog,
}

impl Cluster {
    /// Creates and starts a cluster.
    ///
    /// # Errors
    ///
    /// [`PgError::NotInstalled`] without PostgreSQL; otherwise the step that failed, with the
    /// end of its output or of the server's log.
    pub fn start() -> Result<Cluster, PgError> {
        let bin = PgBin::find()?;
        let account = Account::for_server()?;
        scratch::sweep_stale(&bin, &account);
        let dir = scratch::create(&account)?;
        let data = dir.join("data");
        let pg_ctl = |args: &[&str]| {
            let mut cmd = account.command(&bin.program("pg_ctl"));
            cmd.args(args).arg("-D").arg(&data).current_dir(&dir);
            cmd
        };
        let watchdog = Watchdog::spawn(&dir, &pg_ctl(&["-m", "immediate", "-w", "stop"]))?;
        // From here on, an early return drops the watchdog, which removes the directory.

        run(account
            .command(&bin.program("initdb"))
            .args([
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
            ])
            .args(["--no-locale", "--no-sync", "--pgdata"])
            .arg(&data)
            .current_dir(&dir))?;
        append(&data.join("postgresql.conf"), SETTINGS)?;

        let log = dir.join("server.log");
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let start = pg_ctl(&["-w", "-t", START_TIMEOUT_SECS, "-o", &format!("-p {port}")])
                .arg("-l")
                .arg(&log)
                .arg("start")
                .output();
            let started = start.as_ref().is_ok_and(|out| out.status.success());
            if started {
                let cluster = Cluster {
                    dir,
                    port,
                    watchdog,
                };
                cluster.create_database()?;
                return Ok(cluster);
            }
            let log_text = std::fs::read_to_string(&log).unwrap_or_default();
            let error = match start {
                Err(source) => PgError::Io {
                    what: "could not run pg_ctl".into(),
                    source,
                },
                Ok(out) => PgError::Start {
                    log: tail(
                        &format!("{log_text}\n{}", String::from_utf8_lossy(&out.stderr)),
                        2000,
                    ),
                },
            };
            if !log_text.contains("could not bind") {
                return Err(error);
            }
            last_error = Some(error);
        }
        Err(last_error.unwrap_or(PgError::Start {
            log: "no free port".into(),
        }))
    }

    /// `postgres://postgres@127.0.0.1:PORT/comfy_pool_test`.
    pub fn url(&self) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's directory: `data/` (the cluster) and `server.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server and removes the directory (as dropping does), reporting failures.
    ///
    /// # Errors
    ///
    /// When the watchdog could not be waited for, or the directory is still there.
    pub fn stop(mut self) -> Result<(), PgError> {
        self.watchdog.finish()?;
        if self.dir.exists() {
            return Err(PgError::Stop {
                dir: self.dir.clone(),
            });
        }
        Ok(())
    }

    fn create_database(&self) -> Result<(), PgError> {
        let createdb = super::bin::client("createdb")?;
        run(Command::new(createdb)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--username", SUPERUSER, "--no-password", DATABASE]))
        .map(drop)
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16, PgError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(PgError::io("could not find a free loopback port"))
}

/// Appends `text` to the file at `path`.
fn append(path: &Path, text: &str) -> Result<(), PgError> {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(PgError::io(format!("could not write {}", path.display())))
}
