//! `pool-failover`: work in progress.
