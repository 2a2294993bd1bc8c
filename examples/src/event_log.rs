//! [`EventLog`]: every pool event, recorded in order (and printed with `--verbose`).

use std::sync::Arc;
use std::time::Duration;

use comfy_pool::{Pool, PoolEvent};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{Console, DemoError, JobBook, Result, describe};

/// One recorded event.
#[derive(Debug, Clone)]
pub struct Logged {
    /// Its position in the log, from 0: the order the pool published events in.
    pub seq: usize,
    /// When it was received, from the start of the log.
    pub at: Duration,
    /// When it was received, on the clock the pool uses (tokio's).
    pub instant: Instant,
    /// The event.
    pub event: PoolEvent,
}

#[derive(Debug)]
struct Shared {
    events: Mutex<Vec<Logged>>,
    count: watch::Sender<usize>,
}

/// Records every event of a pool from the moment it is started, in publication order.
/// With a console, prints each event (the `--verbose` view). Stops when dropped.
#[derive(Debug)]
pub struct EventLog {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EventLog {
    /// Subscribes to `pool`; prints events on `verbose` if given.
    pub fn start(pool: &Pool, book: JobBook, verbose: Option<Console>) -> Self {
        let (count, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            events: Mutex::new(Vec::new()),
            count,
        });
        let mut events = pool.subscribe();
        let started = Instant::now();
        let recorder = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let instant = Instant::now();
                let at = instant.duration_since(started);
                if let Some(console) = &verbose
                    && let Some(line) = describe::event(&event, &book)
                {
                    console.line(format!("    [{:>6.3}s] {line}", at.as_secs_f64()));
                }
                let mut log = recorder.events.lock();
                let seq = log.len();
                log.push(Logged {
                    seq,
                    at,
                    instant,
                    event,
                });
                drop(log);
                recorder.count.send_replace(seq + 1);
            }
        });
        Self { shared, task }
    }

    /// Events recorded so far.
    pub fn len(&self) -> usize {
        self.shared.events.lock().len()
    }

    /// Whether nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of every event recorded so far.
    pub fn snapshot(&self) -> Vec<Logged> {
        self.shared.events.lock().clone()
    }

    /// Waits (at most `timeout`) for the first event at position `from` or later that
    /// matches `want`, and returns it.
    ///
    /// # Errors
    ///
    /// [`DemoError::Timeout`] naming `what`.
    pub async fn wait_for(
        &self,
        from: usize,
        timeout: Duration,
        what: &str,
        want: impl Fn(&PoolEvent) -> bool,
    ) -> Result<Logged> {
        let mut count = self.shared.count.subscribe();
        let search = async {
            let mut next = from;
            loop {
                {
                    let log = self.shared.events.lock();
                    if let Some(found) = log.iter().skip(next).find(|l| want(&l.event)) {
                        return found.clone();
                    }
                    next = log.len().max(from);
                }
                if count.changed().await.is_err() {
                    // The recorder stopped; nothing more will come.
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, search)
            .await
            .map_err(|_| DemoError::Timeout(what.to_owned()))
    }
}
