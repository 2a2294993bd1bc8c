//! The two-level table: server → (workflow hash → entry), looked up without allocating.

use rustc_hash::FxHashMap;
use workflow_hash::WorkflowHash;

use super::entry::Entry;
use crate::ServerId;

/// The entries of one server, with a lower bound of their wake ticks.
#[derive(Debug, Default)]
pub(super) struct ServerTable {
    pub(super) pairs: FxHashMap<WorkflowHash, Entry>,
    /// No entry of this server wakes before this tick (it may be early, never late).
    pub(super) min_wake: u64,
}

/// Every tracked pair. Lookups borrow the server id as `&str`, so they never clone it.
#[derive(Debug, Default)]
pub(super) struct Table {
    pub(super) servers: FxHashMap<ServerId, ServerTable>,
    len: usize,
}

impl Table {
    /// The number of tracked pairs.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The entry of a pair, if tracked.
    #[inline]
    pub(super) fn get(&self, server: &str, hash: &WorkflowHash) -> Option<&Entry> {
        self.servers.get(server)?.pairs.get(hash)
    }

    /// The entry of a pair, if tracked, for change.
    pub(super) fn get_mut(&mut self, server: &str, hash: &WorkflowHash) -> Option<&mut Entry> {
        self.servers.get_mut(server)?.pairs.get_mut(hash)
    }

    /// The entry of a pair, created by `make` if untracked.
    pub(super) fn get_or_insert(
        &mut self,
        server: &ServerId,
        hash: &WorkflowHash,
        make: impl FnOnce() -> Entry,
    ) -> &mut Entry {
        // Cloning the id is an atomic increment, and this is the (rare) recording path.
        let table = self
            .servers
            .entry(server.clone())
            .or_insert_with(|| ServerTable {
                pairs: FxHashMap::default(),
                min_wake: u64::MAX,
            });
        let len = &mut self.len;
        table.pairs.entry(*hash).or_insert_with(|| {
            *len += 1;
            make()
        })
    }

    /// Lowers the wake bound of `server` to `wake` if needed.
    pub(super) fn note_wake(&mut self, server: &str, wake: u64) {
        if let Some(table) = self.servers.get_mut(server) {
            table.min_wake = table.min_wake.min(wake);
        }
    }

    /// Stops tracking a pair, returning its entry.
    pub(super) fn remove(&mut self, server: &str, hash: &WorkflowHash) -> Option<Entry> {
        let table = self.servers.get_mut(server)?;
        let entry = table.pairs.remove(hash)?;
        self.len -= 1;
        if table.pairs.is_empty() {
            self.servers.remove(server);
        }
        Some(entry)
    }

    /// Stops tracking every pair of `server`, returning them.
    pub(super) fn remove_server(&mut self, server: &str) -> Option<ServerTable> {
        let table = self.servers.remove(server)?;
        self.len -= table.pairs.len();
        Some(table)
    }

    /// Stops tracking everything, returning every server's entries.
    pub(super) fn clear(&mut self) -> FxHashMap<ServerId, ServerTable> {
        self.len = 0;
        std::mem::take(&mut self.servers)
    }

    /// The earliest wake bound over all servers.
    pub(super) fn next_wake(&self) -> Option<u64> {
        self.servers.values().map(|table| table.min_wake).min()
    }

    /// Runs `visit` on every entry of every server whose wake bound is due at `now`; entries
    /// for which it returns `false` are dropped. Bounds of visited servers are recomputed.
    pub(super) fn sweep(
        &mut self,
        now: u64,
        window: u64,
        mut visit: impl FnMut(&ServerId, &WorkflowHash, &mut Entry) -> bool,
    ) {
        let mut removed = 0;
        self.servers.retain(|server, table| {
            if table.min_wake > now {
                return true;
            }
            let before = table.pairs.len();
            table.pairs.retain(|hash, entry| visit(server, hash, entry));
            removed += before - table.pairs.len();
            table.min_wake = table
                .pairs
                .values()
                .map(|entry| entry.wake(window))
                .min()
                .unwrap_or(u64::MAX);
            !table.pairs.is_empty()
        });
        self.len -= removed;
    }
}
