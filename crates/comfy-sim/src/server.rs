//! The server handle: start, listen, crash, restart, shut down.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::SimConfig;
use crate::error::{Error, Result};
use crate::faults::Faults;
use crate::life::Life;
use crate::shared::Shared;
use crate::stats::Stats;

/// The accept loop of one listening period.
struct Listening {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// A simulated ComfyUI server on loopback.
///
/// Speaks ComfyUI's HTTP and WebSocket protocol as recorded from a real server, runs one
/// prompt at a time, and fails on purpose through [`SimServer::faults`]. Dropping it shuts it
/// down (sockets closed, tasks ended). Needs a tokio runtime.
pub struct SimServer {
    shared: Arc<Shared>,
    app: Router,
    addr: SocketAddr,
    listening: Mutex<Option<Listening>>,
}

impl std::fmt::Debug for SimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServer")
            .field("addr", &self.addr)
            .field("listening", &self.is_listening())
            .finish_non_exhaustive()
    }
}

impl SimServer {
    /// Binds `config`'s address (default `127.0.0.1:0`) and starts serving.
    pub async fn start(config: SimConfig) -> Result<Self> {
        let wanted = config.listen;
        let listener = TcpListener::bind(wanted)
            .await
            .map_err(|source| Error::Bind {
                addr: wanted,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: wanted,
            source,
        })?;
        let shared = Arc::new(Shared::new(config));
        let app = crate::routes::app(Arc::clone(&shared));
        spawn_executor(&shared, &shared.life());
        let server = Self {
            shared,
            app,
            addr,
            listening: Mutex::new(None),
        };
        server.listen(listener);
        Ok(server)
    }

    /// Base URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// WebSocket URL without the client id, `ws://127.0.0.1:PORT/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// The bound address (the same after a restart).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A cheap-clone handle to change faults and timing while running.
    pub fn faults(&self) -> Faults {
        Faults {
            shared: Arc::clone(&self.shared),
        }
    }

    /// A snapshot of the counters (they survive crashes and restarts).
    pub fn stats(&self) -> Stats {
        self.shared.stats.lock().clone()
    }

    /// Zeroes the counters.
    pub fn reset_stats(&self) {
        *self.shared.stats.lock() = Stats::default();
    }

    /// Running plus pending prompts right now.
    pub fn queue_remaining(&self) -> usize {
        self.shared.life().queue_remaining()
    }

    /// Open WebSocket connections right now.
    pub fn open_websockets(&self) -> usize {
        self.shared.life().hub.open()
    }

    /// Messages queued for the open WebSocket connections and not written to them yet. A
    /// socket whose client reads slowly holds a few; floods wait instead of queueing more.
    pub fn ws_backlog(&self) -> usize {
        self.shared.life().hub.backlog()
    }

    /// Closes every WebSocket connection now (same as [`Faults::drop_websockets`]).
    pub fn drop_websockets(&self) {
        self.shared.life().hub.drop_all();
    }

    /// True while the server accepts connections.
    pub fn is_listening(&self) -> bool {
        self.listening.lock().is_some()
    }

    /// Crashes: every connection is dropped, queue, history and cache are lost, and the port
    /// refuses connections until [`SimServer::restart`]. Stored files and counters remain.
    ///
    /// The old life ends completely: its running prompt (even one held by the hang fault or
    /// sleeping in a node) and its queued prompts never go on, never send a message and never
    /// count; a run whose outcome is counted, was counted before the crash.
    pub async fn stop(&self) {
        let listening = self.listening.lock().take();
        if let Some(listening) = listening {
            listening.stop.cancel();
            let _ = listening.task.await;
        }
        let life = self.shared.new_life();
        spawn_executor(&self.shared, &life);
    }

    /// Listens again on the same address after [`SimServer::stop`].
    pub async fn restart(&self) -> Result<()> {
        if self.is_listening() {
            return Err(Error::AlreadyRunning);
        }
        let listener = TcpListener::bind(self.addr)
            .await
            .map_err(|source| Error::Bind {
                addr: self.addr,
                source,
            })?;
        self.listen(listener);
        Ok(())
    }

    /// [`SimServer::stop`] then [`SimServer::restart`]: a process crash and restart.
    pub async fn crash_and_restart(&self) -> Result<()> {
        self.stop().await;
        self.restart().await
    }

    fn listen(&self, listener: TcpListener) {
        let stop = CancellationToken::new();
        let task = tokio::spawn(accept_loop(
            listener,
            Arc::clone(&self.shared),
            self.app.clone(),
            stop.clone(),
        ));
        *self.listening.lock() = Some(Listening { stop, task });
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(listening) = self.listening.lock().take() {
            listening.stop.cancel();
            listening.task.abort();
        }
        self.shared.end_life(&self.shared.life());
    }
}

/// Starts the executor of `life`; it ends with the life.
fn spawn_executor(shared: &Arc<Shared>, life: &Arc<Life>) {
    let task = tokio::spawn(crate::run::executor(Arc::clone(shared), Arc::clone(life)));
    life.adopt_executor(task.abort_handle());
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    app: Router,
    stop: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::debug!(%error, "accept failed");
                    tokio::task::yield_now().await;
                    continue;
                }
            },
            () = stop.cancelled() => return,
        };
        let _ = stream.set_nodelay(true);
        let token = shared.life().token.clone();
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let connection = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                _ = connection => {}
                () = token.cancelled() => {}
            }
        });
    }
}
