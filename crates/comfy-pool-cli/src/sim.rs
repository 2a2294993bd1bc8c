//! `comfy-pool sim`: simulated ComfyUI servers in this process, until SIGINT or SIGTERM.

use std::future::Future;
use std::io::Write;

use comfy_pool::sim::SimArgs;

use crate::error::{Error, Result};

/// Starts the servers `args` describe, writes `url: URL` to `out` for each (in port order,
/// flushed, once every one listens), then serves until `stop` completes and shuts them down.
///
/// Another process can start `comfy-pool sim --listen 127.0.0.1:0 --count N` and read the
/// `url: ` lines from its standard output to find the servers.
///
/// # Errors
///
/// [`Error::Sim`] when a port cannot be bound; [`Error::Io`] when writing fails.
pub async fn serve(
    args: &SimArgs,
    out: &mut dyn Write,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let cluster = args.start().await?;
    for url in cluster.urls() {
        writeln!(out, "url: {url}").map_err(Error::output)?;
    }
    out.flush().map_err(Error::output)?;
    stop.await;
    drop(cluster);
    Ok(())
}
