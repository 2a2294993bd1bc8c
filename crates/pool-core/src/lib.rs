//! `pool-core`: work in progress.
