//! `workflow-hash`: work in progress.
