//! The directories clusters live in: `$TMPDIR/comfy-pool-pg-PID-N-NANOS`, named for the process
//! that owns them, so that a start can sweep away what an owner that died without its
//! watchdog (a machine restart, a killed process group) left behind.

use super::PgError;
use super::account::Account;
use super::bin::PgBin;
use super::run::run;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The start of every cluster directory's name.
const PREFIX: &str = "comfy-pool-pg-";

/// Creates a new, empty cluster directory that `account` owns.
pub(crate) fn create(account: &Account) -> Result<PathBuf, PgError> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "{PREFIX}{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir(&dir).map_err(PgError::io(format!(
        "could not create the cluster directory {}",
        dir.display()
    )))?;
    account.give(&dir)?;
    Ok(dir)
}

/// Stops the servers of and removes cluster directories whose owner process is gone.
/// Best effort: what cannot be removed (another user's) is left alone.
pub(crate) fn sweep_stale(bin: &PgBin, account: &Account) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner) else {
            continue;
        };
        if pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let dir = entry.path();
        let data = dir.join("data");
        if data.join("postmaster.pid").exists() {
            // A failure leaves a server whose directory is removed next: it stops by itself
            // when it notices its pid file is gone (within about a minute).
            let _ = run(account
                .command(&bin.program("pg_ctl"))
                .args(["-m", "immediate", "-w", "stop", "-D"])
                .arg(&data));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The owner's process id, from a cluster directory's name.
fn owner(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::owner;

    #[test]
    fn owner_is_read_from_the_directory_name() {
        assert_eq!(owner("comfy-pool-pg-4242-0-123"), Some(4242));
        assert_eq!(owner("comfy-pool-pg-x-0-123"), None);
        assert_eq!(owner("other-4242-0-123"), None);
    }
}
