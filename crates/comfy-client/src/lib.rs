//! `comfy-client`: work in progress.
