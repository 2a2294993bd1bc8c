//! `comfy-pool`: work in progress.
