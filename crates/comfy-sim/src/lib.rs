//! `comfy-sim`: work in progress.
