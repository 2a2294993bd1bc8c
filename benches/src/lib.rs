//! Shared support for the criterion benchmarks of comfy-pool (see `benches/` and
//! `cargo xtask bench`).
//!
//! Criterion records times; figures that are not times (bytes per tracked pair, bytes per
//! queued job, the pool/direct throughput ratio) are written by the benches themselves with
//! [`record_figure`], for `cargo xtask bench` to put in its table.

use std::path::PathBuf;

pub mod cpu;
pub mod workflow;

/// The environment variable naming the directory that [`record_figure`] writes into
/// (`cargo xtask bench` sets it).
pub const FIGURES_ENV: &str = "COMFY_BENCH_FIGURES";

/// The runtime every bench runs its async work on: two worker threads, as many as the
/// machine the figures are measured on has cores.
///
/// # Panics
///
/// If the runtime cannot be built.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}

/// Prints a measured figure and, when [`FIGURES_ENV`] names a directory, writes it there as
/// `<name>.json` = `{"figure": ..., "value": ..., "unit": ...}`.
///
/// Failing to write is reported on standard error and otherwise ignored: a bench run is not
/// spoiled by a read-only directory.
pub fn record_figure(name: &str, figure: &str, value: f64, unit: &str) {
    if unit.is_empty() {
        // A ratio: its third decimal tells 0.975 from 0.984.
        println!("{figure}: {value:.3}");
    } else {
        println!("{figure}: {value:.1} {unit}");
    }
    let Some(dir) = std::env::var_os(FIGURES_ENV).map(PathBuf::from) else {
        return;
    };
    let body = serde_json::json!({ "figure": figure, "value": value, "unit": unit });
    let path = dir.join(format!("{name}.json"));
    if let Err(e) =
        std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, body.to_string()))
    {
        eprintln!("cannot write {}: {e}", path.display());
    }
}
