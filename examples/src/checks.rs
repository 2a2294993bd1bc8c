//! [`Checks`]: the claims a demo makes, verified and printed as it runs.

use crate::{Console, DemoError, Result};

/// The claims a demo checks. Each is printed at once with its verdict; [`finish`](Self::finish)
/// prints the final line and fails if any claim did not hold.
#[derive(Debug)]
pub struct Checks {
    console: Console,
    passed: usize,
    failed: Vec<String>,
}

impl Checks {
    /// No claims yet.
    pub fn new(console: Console) -> Self {
        Self {
            console,
            passed: 0,
            failed: Vec::new(),
        }
    }

    /// Records `claim` with its verdict and prints it; returns `ok`.
    pub fn check(&mut self, ok: bool, claim: impl Into<String>) -> bool {
        let claim = claim.into();
        if ok {
            self.passed += 1;
            self.console.line(format!("  ✔ {claim}"));
        } else {
            self.console.line(format!("  ✘ FAILED: {claim}"));
            self.failed.push(claim);
        }
        ok
    }

    /// Like [`check`](Self::check), with a detail printed under a failed claim.
    pub fn check_with(
        &mut self,
        ok: bool,
        claim: impl Into<String>,
        detail: impl FnOnce() -> String,
    ) -> bool {
        let ok = self.check(ok, claim);
        if !ok {
            self.console.line(format!("      {}", detail()));
        }
        ok
    }

    /// Claims checked so far.
    pub fn total(&self) -> usize {
        self.passed + self.failed.len()
    }

    /// The claims that failed so far.
    pub fn failures(&self) -> &[String] {
        &self.failed
    }

    /// Prints `all N checks passed`, or the failed claims.
    ///
    /// # Errors
    ///
    /// [`DemoError::ChecksFailed`] if any claim failed (or none was checked).
    pub fn finish(self) -> Result<usize> {
        let total = self.total();
        self.console.blank();
        if self.failed.is_empty() && total > 0 {
            self.console.line(format!("all {total} checks passed"));
            Ok(total)
        } else {
            self.console
                .line(format!("{} of {total} checks FAILED:", self.failed.len()));
            for claim in &self.failed {
                self.console.line(format!("  - {claim}"));
            }
            Err(DemoError::ChecksFailed {
                failed: self.failed.len().max(usize::from(total == 0)),
                total,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Checks;
    use crate::Console;

    #[test]
    fn a_failed_claim_fails_the_demo_and_is_listed() {
        let console = Console::capture();
        let mut checks = Checks::new(console.clone());
        checks.check(true, "one");
        checks.check_with(false, "two", || "because".into());
        let error = checks.finish().unwrap_err();
        assert!(error.is_check_failure());
        let output = console.captured();
        assert!(output.contains("✘ FAILED: two\n      because"), "{output}");
        assert!(output.contains("1 of 2 checks FAILED"), "{output}");
    }

    #[test]
    fn no_claim_is_not_a_pass() {
        assert!(Checks::new(Console::capture()).finish().is_err());
    }
}
