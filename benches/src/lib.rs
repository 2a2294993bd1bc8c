//! Criterion benchmarks for comfy-pool; see `benches/` and `cargo xtask bench`.
