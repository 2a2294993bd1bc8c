//! The process that stops a cluster and removes its directory when the cluster's owner lets go
//! of it — by dropping it, or by exiting in any way at all (a test process that returns from
//! `main`, panics, or is killed; statics are never dropped, so nothing in-process could do it).
//!
//! The watchdog is a `sh` whose standard input is a pipe from the owner. Only the owner holds
//! the pipe's write end (std opens pipes close-on-exec, so no other child inherits it); when
//! the owner closes it or exits, the kernel closes it, `cat` sees the end of input, and the
//! shell stops the server and removes the directory. The watchdog has its own process group,
//! so the Ctrl-C that ends the owner in a terminal does not end the watchdog with it.

use super::PgError;
use super::run::describe;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

/// `$1` is the directory; the rest is the command that stops the server, run only when the
/// server's pid file exists (it has not been stopped yet).
const SCRIPT: &str = r#"cat >/dev/null
dir=$1; shift
if [ -e "$dir/data/postmaster.pid" ]; then "$@" >/dev/null 2>&1; fi
rm -rf "$dir""#;

/// A running watchdog; dropping it stops the cluster and waits for that.
#[derive(Debug)]
pub(crate) struct Watchdog {
    child: Child,
    pipe: Option<ChildStdin>,
}

impl Watchdog {
    /// Starts a watchdog that runs `stop` and then removes `dir`.
    pub(crate) fn spawn(dir: &Path, stop: &Command) -> Result<Watchdog, PgError> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("comfy-pool-pg-watchdog")
            .arg(dir)
            .arg(stop.get_program())
            .args(stop.get_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .current_dir("/")
            .process_group(0)
            .spawn()
            .map_err(PgError::io(format!(
                "could not start the watchdog for `{}`",
                describe(stop)
            )))?;
        let pipe = child.stdin.take();
        Ok(Watchdog { child, pipe })
    }

    /// Lets go: the watchdog stops the server and removes the directory; returns once it has.
    pub(crate) fn finish(&mut self) -> Result<(), PgError> {
        drop(self.pipe.take());
        self.child
            .wait()
            .map(drop)
            .map_err(PgError::io("could not wait for the cluster's watchdog"))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Errors have nowhere to go from a drop; `Cluster::stop` reports them.
        let _ = self.finish();
    }
}
