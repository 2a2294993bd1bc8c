//! Finding PostgreSQL's programs: Debian keeps them under `/usr/lib/postgresql/VERSION/bin`,
//! off `PATH`; elsewhere they are usually on `PATH`.

use super::PgError;
use crate::which;
use std::path::{Path, PathBuf};

/// Where Debian installs each PostgreSQL major version.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// The directory holding PostgreSQL's server programs (`initdb`, `pg_ctl`, `postgres`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgBin {
    dir: PathBuf,
}

impl PgBin {
    /// The newest `/usr/lib/postgresql/*/bin` that has `initdb` and `pg_ctl`, else the directory
    /// of `initdb` on `PATH`.
    ///
    /// # Errors
    ///
    /// [`PgError::NotInstalled`] when neither exists.
    pub fn find() -> Result<PgBin, PgError> {
        let has_server = |dir: &Path| {
            which::is_executable(&dir.join("initdb")) && which::is_executable(&dir.join("pg_ctl"))
        };
        debian_bin_dirs()
            .into_iter()
            .find(|dir| has_server(dir))
            .or_else(|| {
                which::on_path("initdb")
                    .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
                    .filter(|dir| has_server(dir))
            })
            .map(|dir| PgBin { dir })
            .ok_or(PgError::NotInstalled)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the program `name` in this directory.
    pub fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// A client program (`createdb`, `psql`): from the newest Debian directory that has it, else
/// from `PATH`. Clients need no server, so they are looked up apart from [`PgBin`].
pub(crate) fn client(name: &'static str) -> Result<PathBuf, PgError> {
    debian_bin_dirs()
        .into_iter()
        .map(|dir| dir.join(name))
        .find(|path| which::is_executable(path))
        .or_else(|| which::on_path(name))
        .ok_or(PgError::ClientMissing { program: name })
}

/// `/usr/lib/postgresql/*/bin`, newest version first.
fn debian_bin_dirs() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(DEBIAN_ROOT) else {
        return Vec::new();
    };
    let names = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect();
    newest_first(names)
        .into_iter()
        .map(|version| Path::new(DEBIAN_ROOT).join(version).join("bin"))
        .collect()
}

/// Version directory names (`9.6`, `15`, `16`), newest first; names that are no version are
/// dropped.
fn newest_first(names: Vec<String>) -> Vec<String> {
    let mut versions: Vec<(Vec<u32>, String)> = names
        .into_iter()
        .filter_map(|name| {
            let parts: Option<Vec<u32>> = name.split('.').map(|p| p.parse().ok()).collect();
            Some((parts?, name))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, name)| name).collect()
}

#[cfg(test)]
mod tests {
    use super::newest_first;

    #[test]
    fn newest_version_comes_first_numerically() {
        let names = ["9.6", "15", "16", "common", "10"]
            .map(String::from)
            .to_vec();
        assert_eq!(newest_first(names), ["16", "15", "10", "9.6"]);
    }
}
