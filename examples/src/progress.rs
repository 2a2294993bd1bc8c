//! Progress bars (indicatif), drawn only when the console is a terminal.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Console;

/// A set of progress bars tied to a console: visible on a terminal, hidden otherwise (CI,
/// pipes, tests). While it lives, the console prints lines above the bars.
#[derive(Debug)]
pub struct Bars {
    multi: MultiProgress,
    console: Console,
}

impl Bars {
    /// Bars for `console`.
    pub fn new(console: &Console) -> Self {
        let target = if console.is_terminal() {
            ProgressDrawTarget::stdout()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        console.set_bars(Some(multi.clone()));
        Self {
            multi,
            console: console.clone(),
        }
    }

    /// Adds a bar of `len` steps with a label.
    pub fn bar(&self, len: u64, label: &str) -> ProgressBar {
        let style = ProgressStyle::with_template("{prefix:>14} [{bar:32}] {pos:>5}/{len:5} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = self.multi.add(ProgressBar::new(len));
        bar.set_style(style);
        bar.set_prefix(label.to_owned());
        bar
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        let _ = self.multi.clear();
        self.console.set_bars(None);
    }
}
