//! Placeholder replaced by the workflow-hash benchmark.
fn main() {}
