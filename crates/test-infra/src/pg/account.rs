//! Who runs the server. PostgreSQL refuses to run as root, so when the tests run as root (as
//! in CI) the server runs as the system user `postgres` (created by Debian's package; created
//! here when missing), through `runuser`. Anyone else runs it as themselves.

use super::PgError;
use super::run::run;
use std::path::Path;
use std::process::Command;

/// The system user that runs servers started by root.
const SERVER_USER: &str = "postgres";

/// The account that runs the server's programs.
#[derive(Debug, Clone)]
pub(crate) enum Account {
    /// This process's own user (not root).
    Current,
    /// Root hands the server to this system user.
    System {
        /// Its user id.
        uid: u32,
        /// Its group id.
        gid: u32,
    },
}

impl Account {
    /// The account for a server started by this process: [`Account::Current`] unless this
    /// process is root, then `postgres` (created when missing).
    pub(crate) fn for_server() -> Result<Account, PgError> {
        if !is_root()? {
            return Ok(Account::Current);
        }
        if id(&["-u", SERVER_USER]).is_err() {
            run(Command::new("useradd").args([
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                SERVER_USER,
            ]))?;
        }
        Ok(Account::System {
            uid: id(&["-u", SERVER_USER])?,
            gid: id(&["-g", SERVER_USER])?,
        })
    }

    /// A command running `program` as this account (arguments to be appended).
    pub(crate) fn command(&self, program: &Path) -> Command {
        match self {
            Account::Current => Command::new(program),
            Account::System { .. } => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", SERVER_USER, "--"]).arg(program);
                cmd
            }
        }
    }

    /// Makes `path` this account's, so that its server may write there.
    pub(crate) fn give(&self, path: &Path) -> Result<(), PgError> {
        match self {
            Account::Current => Ok(()),
            Account::System { uid, gid } => {
                std::os::unix::fs::chown(path, Some(*uid), Some(*gid)).map_err(PgError::io(
                    format!("could not give {} to {SERVER_USER}", path.display()),
                ))
            }
        }
    }
}

/// Whether this process runs as root.
fn is_root() -> Result<bool, PgError> {
    crate::user::is_root().map_err(PgError::io("could not tell whether this process is root"))
}

/// A number printed by `id ARGS`.
fn id(args: &[&str]) -> Result<u32, PgError> {
    let out = run(Command::new("id").args(args))?;
    out.trim().parse().map_err(|_| PgError::Command {
        command: format!("id {}", args.join(" ")),
        status: "exit status: 0".into(),
        output: format!("not a number: {}", out.trim()),
    })
}
