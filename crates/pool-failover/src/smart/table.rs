//! The two-level table: server → (workflow hash → entry), looked up without allocating,
//! without hashing strings and, for a tracked pair, with one cache line of pair data.
//!
//! Both levels are [`HashTable`]s hashed by precomputed digests: a server by
//! [`ServerId::key`], a workflow hash by [`hash_key`] of its bytes. Each pair lives in one
//! 64-byte, cache-line-aligned [`Slot`] holding the full workflow hash (to confirm a match) and
//! its [`Entry`], so a routing check reads the small, usually cached, control bytes and then a
//! single line.

use hashbrown::HashTable;
use hashbrown::hash_table::Entry as Place;
use workflow_hash::WorkflowHash;

use super::entry::Entry;
use crate::ServerId;

/// One tracked pair of a server: the full workflow hash and its entry, in one cache line.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
struct Slot {
    hash: WorkflowHash,
    entry: Entry,
}

/// The table hash of a workflow hash. Digests are uniformly random, but hashes built by hand
/// (`from_bytes`) need not be, so every byte takes part.
#[inline]
pub(super) fn hash_key(hash: &WorkflowHash) -> u64 {
    let (words, _) = hash.as_bytes().as_chunks::<8>();
    let word = |at: usize| words.get(at).copied().map_or(0, u64::from_le_bytes);
    fold(
        word(0) ^ 0x243F_6A88_85A3_08D3,
        word(1) ^ 0x1319_8A2E_0370_7344,
    ) ^ fold(
        word(2) ^ 0xA409_3822_299F_31D0,
        word(3) ^ 0x082E_FA98_EC4E_6C89,
    )
}

/// The two halves of the 128-bit product, xored: every input bit reaches every output bit.
#[inline]
fn fold(x: u64, y: u64) -> u64 {
    let product = u128::from(x) * u128::from(y);
    (product as u64) ^ ((product >> 64) as u64)
}

/// The entries of one server, with a lower bound of their wake ticks.
#[derive(Debug)]
pub(super) struct ServerTable {
    pub(super) server: ServerId,
    pairs: HashTable<Slot>,
    /// No entry of this server wakes before this tick (it may be early, never late).
    min_wake: u64,
}

impl ServerTable {
    /// The entry of `hash`, whose [`hash_key`] is `key`.
    #[inline]
    fn get(&self, hash: &WorkflowHash, key: u64) -> Option<&Entry> {
        self.pairs
            .find(key, |slot| slot.hash == *hash)
            .map(|slot| &slot.entry)
    }

    /// Whether `hash` is tracked on this server.
    pub(super) fn contains(&self, hash: &WorkflowHash) -> bool {
        self.get(hash, hash_key(hash)).is_some()
    }

    /// The tracked pairs of this server.
    pub(super) fn entries(&self) -> impl Iterator<Item = (&WorkflowHash, &Entry)> {
        self.pairs.iter().map(|slot| (&slot.hash, &slot.entry))
    }
}

/// Gives memory back once less than a quarter of the capacity is in use (all of it once
/// empty), keeping room to double so removals and inserts cannot make it resize back and forth.
fn shrink_if_sparse<T>(table: &mut HashTable<T>, hasher: impl Fn(&T) -> u64) {
    if table.len() * 4 < table.capacity() {
        table.shrink_to(table.len() * 2, hasher);
    }
}

fn server_key(table: &ServerTable) -> u64 {
    table.server.key()
}

fn slot_key(slot: &Slot) -> u64 {
    hash_key(&slot.hash)
}

/// Every tracked pair. Lookups borrow the server id, so they never clone it.
#[derive(Debug, Default)]
pub(super) struct Table {
    servers: HashTable<ServerTable>,
    len: usize,
}

impl Table {
    /// The number of tracked pairs.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The number of servers with at least one tracked pair.
    pub(super) fn server_count(&self) -> usize {
        self.servers.len()
    }

    /// Every server with at least one tracked pair.
    pub(super) fn servers(&self) -> impl Iterator<Item = &ServerTable> {
        self.servers.iter()
    }

    /// The pairs of `server`, if it has any.
    #[inline]
    pub(super) fn server(&self, server: &ServerId) -> Option<&ServerTable> {
        self.servers
            .find(server.key(), |table| table.server == *server)
    }

    fn server_mut(&mut self, server: &ServerId) -> Option<&mut ServerTable> {
        self.servers
            .find_mut(server.key(), |table| table.server == *server)
    }

    /// The entry of a pair, if tracked.
    #[inline]
    pub(super) fn get(&self, server: &ServerId, hash: &WorkflowHash) -> Option<&Entry> {
        self.get_keyed(server, hash, hash_key(hash))
    }

    /// [`get`](Self::get) with the [`hash_key`] of `hash` already computed, for checking one
    /// hash on many servers.
    #[inline]
    pub(super) fn get_keyed(
        &self,
        server: &ServerId,
        hash: &WorkflowHash,
        key: u64,
    ) -> Option<&Entry> {
        self.server(server)?.get(hash, key)
    }

    /// The entry of a pair, if tracked, for change.
    pub(super) fn get_mut(&mut self, server: &ServerId, hash: &WorkflowHash) -> Option<&mut Entry> {
        self.server_mut(server)?
            .pairs
            .find_mut(hash_key(hash), |slot| slot.hash == *hash)
            .map(|slot| &mut slot.entry)
    }

    /// The entry of a pair, created by `make` if untracked.
    pub(super) fn get_or_insert(
        &mut self,
        server: &ServerId,
        hash: &WorkflowHash,
        make: impl FnOnce() -> Entry,
    ) -> &mut Entry {
        let table = self
            .servers
            .entry(server.key(), |table| table.server == *server, server_key)
            // Cloning the id is an atomic increment, and this is the (rare) recording path.
            .or_insert_with(|| ServerTable {
                server: server.clone(),
                pairs: HashTable::new(),
                min_wake: u64::MAX,
            })
            .into_mut();
        let place = table
            .pairs
            .entry(hash_key(hash), |slot| slot.hash == *hash, slot_key);
        let slot = match place {
            Place::Occupied(place) => place.into_mut(),
            Place::Vacant(place) => {
                self.len += 1;
                let entry = make();
                place.insert(Slot { hash: *hash, entry }).into_mut()
            }
        };
        &mut slot.entry
    }

    /// Lowers the wake bound of `server` to `wake` if needed.
    pub(super) fn note_wake(&mut self, server: &ServerId, wake: u64) {
        if let Some(table) = self.server_mut(server) {
            table.min_wake = table.min_wake.min(wake);
        }
    }

    /// Stops tracking a pair, returning its entry.
    pub(super) fn remove(&mut self, server: &ServerId, hash: &WorkflowHash) -> Option<Entry> {
        let mut table = self
            .servers
            .find_entry(server.key(), |table| table.server == *server)
            .ok()?;
        let (slot, _) = table
            .get_mut()
            .pairs
            .find_entry(hash_key(hash), |slot| slot.hash == *hash)
            .ok()?
            .remove();
        self.len -= 1;
        if table.get().pairs.is_empty() {
            table.remove();
            shrink_if_sparse(&mut self.servers, server_key);
        } else {
            shrink_if_sparse(&mut table.get_mut().pairs, slot_key);
        }
        Some(slot.entry)
    }

    /// Stops tracking every pair of `server`, returning them.
    pub(super) fn remove_server(&mut self, server: &ServerId) -> Option<ServerTable> {
        let (table, _) = self
            .servers
            .find_entry(server.key(), |table| table.server == *server)
            .ok()?
            .remove();
        self.len -= table.pairs.len();
        shrink_if_sparse(&mut self.servers, server_key);
        Some(table)
    }

    /// Stops tracking everything, returning every server's entries.
    pub(super) fn clear(&mut self) -> impl Iterator<Item = ServerTable> {
        self.len = 0;
        std::mem::take(&mut self.servers).into_iter()
    }

    /// The earliest wake bound over all servers.
    pub(super) fn next_wake(&self) -> Option<u64> {
        self.servers.iter().map(|table| table.min_wake).min()
    }

    /// Runs `visit` on every entry of every server whose wake bound is due at `now`. It returns
    /// the entry's next wake tick, or `None` to drop the entry; the bounds of visited servers
    /// are recomputed from those ticks.
    pub(super) fn sweep(
        &mut self,
        now: u64,
        mut visit: impl FnMut(&ServerId, &WorkflowHash, &mut Entry) -> Option<u64>,
    ) {
        let mut removed = 0;
        self.servers.retain(|table| {
            if table.min_wake > now {
                return true;
            }
            let before = table.pairs.len();
            let server = &table.server;
            let mut min_wake = u64::MAX;
            table.pairs.retain(|slot| {
                let wake = visit(server, &slot.hash, &mut slot.entry);
                min_wake = min_wake.min(wake.unwrap_or(u64::MAX));
                wake.is_some()
            });
            table.min_wake = min_wake;
            removed += before - table.pairs.len();
            shrink_if_sparse(&mut table.pairs, slot_key);
            !table.pairs.is_empty()
        });
        shrink_if_sparse(&mut self.servers, server_key);
        self.len -= removed;
    }
}
