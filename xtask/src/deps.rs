//! `cargo xtask deps`: the Debian packages the tests need (PostgreSQL's server, Chromium and
//! ChromeDriver), installed with apt-get when missing. `test`, `ci` and `pg` start here.
//!
//! Idempotent and instant when everything is there: a package counts as installed when the
//! tests find its programs (the same look-ups `test-infra` uses). Installing needs root; as
//! anyone else the error says what to run.

use crate::command::{Result, run};
use std::process::Command;
use std::time::Instant;

/// A Debian package the tests need, and how to tell it is installed.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    /// The package's name.
    name: &'static str,
    /// Whether its programs are where the tests look.
    installed: fn() -> bool,
}

/// The PostgreSQL server (`initdb`, `pg_ctl`; its dependencies bring `createdb` and `psql`).
pub const POSTGRESQL: Package = Package {
    name: "postgresql",
    installed: || test_infra::pg::PgBin::find().is_ok(),
};

/// Everything the full test suite needs.
pub const ALL: [Package; 3] = [
    POSTGRESQL,
    Package {
        name: "chromium",
        installed: || test_infra::chromium::try_chromium().is_some(),
    },
    Package {
        name: "chromium-driver",
        installed: || test_infra::chromium::try_chromedriver().is_some(),
    },
];

/// What [`ensure`] has to do.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// Everything is installed.
    Nothing,
    /// Install these packages.
    Install(Vec<&'static str>),
    /// These are missing and this process may not install them: the message says how.
    Refuse(String),
}

/// The plan for the `missing` packages, by a process that is root or not.
fn plan(missing: Vec<&'static str>, root: bool) -> Plan {
    if missing.is_empty() {
        return Plan::Nothing;
    }
    if root {
        return Plan::Install(missing);
    }
    let list = missing.join(" ");
    Plan::Refuse(format!(
        "the tests need Debian packages that are missing: {list}.\n\
         Install them as root: sudo sh -c 'apt-get update && \
         apt-get install -y --no-install-recommends {list}' (or run this command as root)"
    ))
}

/// Those of `packages` whose programs the tests do not find.
fn missing(packages: &[Package]) -> Vec<&'static str> {
    packages
        .iter()
        .filter(|p| !(p.installed)())
        .map(|p| p.name)
        .collect()
}

/// Installs those of `packages` that are missing: `apt-get update` once, then one
/// `apt-get install -y --no-install-recommends`. Only as root; otherwise an error saying how.
pub fn ensure(packages: &[Package]) -> Result {
    let root = test_infra::user::is_root().unwrap_or(false);
    let install = match plan(missing(packages), root) {
        Plan::Nothing => return Ok(()),
        Plan::Refuse(how) => return Err(how),
        Plan::Install(install) => install,
    };
    let list = install.join(" ");
    if Command::new("apt-get").arg("--version").output().is_err() {
        return Err(format!(
            "the tests need {list}, and this machine has no apt-get: install them by other means"
        ));
    }
    println!("deps: installing {list}");
    let started = Instant::now();
    run(apt_get().arg("update"))?;
    run(apt_get()
        .args(["install", "-y", "--no-install-recommends"])
        .args(&install))?;
    let still = missing(packages);
    if !still.is_empty() {
        return Err(format!(
            "apt-get installed {list}, but the tests still do not find the programs of: {}",
            still.join(" ")
        ));
    }
    println!(
        "deps: installed {list} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `apt-get` that asks no questions (CI has no standard input).
fn apt_get() -> Command {
    let mut cmd = Command::new("apt-get");
    cmd.env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

#[cfg(test)]
mod tests {
    use super::{Plan, plan};

    #[test]
    fn nothing_missing_means_nothing_to_do_for_anyone() {
        assert_eq!(plan(vec![], true), Plan::Nothing);
        assert_eq!(plan(vec![], false), Plan::Nothing);
    }

    #[test]
    fn root_installs_exactly_what_is_missing() {
        assert_eq!(
            plan(vec!["chromium", "chromium-driver"], true),
            Plan::Install(vec!["chromium", "chromium-driver"])
        );
    }

    #[test]
    fn anyone_else_is_told_the_command() {
        let Plan::Refuse(how) = plan(vec!["postgresql"], false) else {
            panic!("a non-root process cannot install");
        };
        assert!(
            how.contains("apt-get update && apt-get install -y --no-install-recommends postgresql"),
            "{how}"
        );
    }
}
