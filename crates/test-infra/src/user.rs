//! Who this process runs as.

use std::os::unix::fs::MetadataExt;

/// Whether this process runs as root (`/proc/self` belongs to the effective user).
///
/// # Errors
///
/// When `/proc/self` cannot be read (no procfs).
pub fn is_root() -> std::io::Result<bool> {
    Ok(std::fs::metadata("/proc/self")?.uid() == 0)
}
