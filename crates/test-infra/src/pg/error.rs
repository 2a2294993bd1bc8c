//! The errors of starting clusters and creating databases.

use std::path::PathBuf;

/// Why a PostgreSQL cluster or database could not be had.
///
/// No variant holds a password: URLs are never quoted, and commands are shown without their
/// environment (where a password travels).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// No PostgreSQL server programs on this machine.
    #[error(
        "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin nor on PATH): \
         run the tests with `cargo xtask test`, which installs it when run as root, or install \
         it: apt-get install -y --no-install-recommends postgresql"
    )]
    NotInstalled,
    /// A PostgreSQL client program (such as `createdb`) is missing.
    #[error(
        "PostgreSQL's `{program}` is not installed: run the tests with `cargo xtask test`, or \
         install it: apt-get install -y --no-install-recommends postgresql-client"
    )]
    ClientMissing {
        /// The program's name.
        program: &'static str,
    },
    /// A file-system or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A program (initdb, pg_ctl, createdb, ...) exited unsuccessfully.
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        /// The command line, without environment.
        command: String,
        /// How it ended.
        status: String,
        /// The end of what it printed.
        output: String,
    },
    /// The server did not come up; the end of its log says why.
    #[error("the PostgreSQL server did not start; its log ends with: {log}")]
    Start {
        /// The end of the server's log.
        log: String,
    },
    /// The cluster's directory was still there after stopping it.
    #[error("the PostgreSQL cluster in {} was not removed", dir.display())]
    Stop {
        /// The cluster's directory.
        dir: PathBuf,
    },
    /// A URL that is not `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`.
    #[error(
        "not a PostgreSQL URL of the form postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE: {reason}"
    )]
    BadUrl {
        /// What is wrong with it (never the URL itself, which may hold a password).
        reason: &'static str,
    },
}

impl PgError {
    /// An [`PgError::Io`] saying what was being done.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PgError {
        let what = what.into();
        move |source| PgError::Io { what, source }
    }
}

#[cfg(test)]
mod tests {
    use super::PgError;

    #[test]
    fn missing_postgresql_names_the_command_that_installs_it() {
        let message = PgError::NotInstalled.to_string();
        assert!(message.contains("cargo xtask test"), "{message}");
        assert!(message.contains("apt-get install"), "{message}");
    }
}
