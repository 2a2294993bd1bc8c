//! [`Shutdown`]: waiting for SIGINT or SIGTERM (Ctrl-C where there are no Unix signals).

use std::io;

/// The signals that stop a long-running command, listened for from the moment it is
/// installed (so a signal that arrives before anyone waits is not lost, and does not kill
/// the process).
#[derive(Debug)]
pub struct Shutdown {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Shutdown {
    /// Starts listening. Call it inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// When the signal handlers cannot be installed.
    pub fn install() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// Waits for the next SIGINT or SIGTERM.
    pub async fn wait(&mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => {}
                _ = self.terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}
