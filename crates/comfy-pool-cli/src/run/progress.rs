//! [`Progress`]: the progress bar of a text-mode run, on standard error when it is a terminal.

use std::io::Write;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::{Error, Result};

/// A bar of finished jobs on standard error (hidden when that is not a terminal), with the
/// job lines written above it.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar of `jobs` steps.
    pub(crate) fn new(jobs: usize) -> Self {
        let bar = ProgressBar::with_draw_target(
            Some(u64::try_from(jobs).unwrap_or(u64::MAX)),
            ProgressDrawTarget::stderr(),
        );
        let style = ProgressStyle::with_template("[{bar:32}] {pos}/{len} jobs  {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        Self { bar }
    }

    /// Writes one finished job's line (the bar steps aside) and advances the bar.
    pub(crate) fn line(&self, out: &mut (dyn Write + Send), text: &str) -> Result<()> {
        self.bar
            .suspend(|| writeln!(out, "{text}").and_then(|()| out.flush()))
            .map_err(Error::output)?;
        self.bar.inc(1);
        Ok(())
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
