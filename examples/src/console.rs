//! [`Console`]: where a demo writes, the terminal or a buffer for tests.

use std::fmt::Display;
use std::io::Write;
use std::sync::Arc;

use indicatif::MultiProgress;
use parking_lot::Mutex;

#[derive(Debug)]
enum Sink {
    Stdout,
    Capture(String),
}

#[derive(Debug)]
struct Inner {
    sink: Sink,
    bars: Option<MultiProgress>,
}

/// The output of a demo: standard output, or a buffer that tests read back.
///
/// Cheap to clone (an `Arc` inside); every clone writes to the same place, one whole line at
/// a time, so a background event printer never splits a line of the demo. While progress
/// bars are shown, lines are printed above them.
#[derive(Debug, Clone)]
pub struct Console {
    inner: Arc<Mutex<Inner>>,
}

impl Console {
    /// Writes to standard output.
    pub fn stdout() -> Self {
        Self::new(Sink::Stdout)
    }

    /// Writes to a buffer, read back with [`captured`](Self::captured).
    pub fn capture() -> Self {
        Self::new(Sink::Capture(String::new()))
    }

    fn new(sink: Sink) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner { sink, bars: None })),
        }
    }

    /// Whether this console is a terminal (so progress bars can be drawn).
    pub fn is_terminal(&self) -> bool {
        use std::io::IsTerminal;
        matches!(self.inner.lock().sink, Sink::Stdout) && std::io::stdout().is_terminal()
    }

    /// Prints one line.
    pub fn line(&self, text: impl Display) {
        let text = text.to_string();
        let mut inner = self.inner.lock();
        if let Some(bars) = &inner.bars
            && !bars.is_hidden()
        {
            let _ = bars.println(&text);
            return;
        }
        match &mut inner.sink {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
            }
            Sink::Capture(buffer) => {
                buffer.push_str(&text);
                buffer.push('\n');
            }
        }
    }

    /// Prints an empty line.
    pub fn blank(&self) {
        self.line("");
    }

    /// Prints a section heading.
    pub fn heading(&self, text: impl Display) {
        let text = text.to_string();
        self.blank();
        self.line(&text);
        self.line("─".repeat(text.chars().count()));
    }

    /// Routes lines above these progress bars while they are shown (`None` to stop).
    pub fn set_bars(&self, bars: Option<MultiProgress>) {
        self.inner.lock().bars = bars;
    }

    /// Everything written so far, for a capturing console (empty for standard output).
    pub fn captured(&self) -> String {
        match &self.inner.lock().sink {
            Sink::Stdout => String::new(),
            Sink::Capture(buffer) => buffer.clone(),
        }
    }
}
