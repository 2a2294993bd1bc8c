//! Shared helpers for the comfy-pool demos.
