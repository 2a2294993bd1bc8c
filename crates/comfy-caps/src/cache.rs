//! [`VerdictCache`]: verdicts by (server, capabilities version, workflow hash), bounded.
//!
//! Two generations of at most `capacity / 2` entries each: inserts go to the young one; when
//! it is full it becomes the old one and the previous old one is dropped; a hit in the old
//! generation moves the entry to the young one. So an entry used at least once per
//! `capacity / 2` inserts survives, nothing else outlives two generations, and no list is
//! threaded through the entries (an approximate LRU with O(1) work and no allocation per hit).
//! Both tables are allocated up front and never grow.

use std::fmt;
use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use workflow_hash::WorkflowHash;

use crate::capabilities::Capabilities;
use crate::requirements::Requirements;
use crate::verdict::{Verdict, check};
use crate::version::CapsVersion;

/// Verdicts by (server key, [`CapsVersion`], [`WorkflowHash`]); see the module docs.
///
/// The version in the key is the invalidation: once a server's capabilities change, lookups
/// carry the new version and never see a verdict computed from the old ones (which age out).
/// `K` is the pool's server key (`pool_failover::ServerId`, a name, an index).
pub struct VerdictCache<K> {
    young: HashTable<Slot<K>>,
    old: HashTable<Slot<K>>,
    /// Entries per generation.
    half: usize,
}

/// One cached verdict with its key and the key's hash.
struct Slot<K> {
    hash: u64,
    server: K,
    version: CapsVersion,
    workflow: WorkflowHash,
    verdict: Verdict,
}

/// The hash of a key: the server's hash, the version and the first 8 bytes of the workflow
/// hash (already uniform).
#[inline]
fn key_hash<K: Hash>(server: &K, version: CapsVersion, workflow: &WorkflowHash) -> u64 {
    let head = workflow
        .as_ref()
        .first_chunk::<8>()
        .map_or(0, |b| u64::from_le_bytes(*b));
    FxBuildHasher.hash_one((server, version.as_u64(), head))
}

impl<K: Hash + Eq + Clone> VerdictCache<K> {
    /// A cache of at most `capacity` verdicts (at least 2), allocated now.
    pub fn new(capacity: usize) -> Self {
        let half = (capacity / 2).max(1);
        Self {
            young: HashTable::with_capacity(half),
            old: HashTable::with_capacity(half),
            half,
        }
    }

    /// The cached verdict for `server` at `version` on `workflow`, if any. O(1), no
    /// allocation.
    #[inline]
    pub fn get(
        &mut self,
        server: &K,
        version: CapsVersion,
        workflow: &WorkflowHash,
    ) -> Option<&Verdict> {
        let hash = key_hash(server, version, workflow);
        let eq =
            |s: &Slot<K>| s.version == version && s.workflow == *workflow && s.server == *server;
        match self.young.find_entry(hash, eq) {
            Ok(found) => Some(&found.into_mut().verdict),
            Err(absent) => {
                let young = absent.into_table();
                let slot = self.old.find_entry(hash, eq).ok()?.remove().0;
                Some(&Self::put(young, &mut self.old, self.half, slot).verdict)
            }
        }
    }

    /// The cached verdict without refreshing its age (for `&self` readers).
    pub fn peek(
        &self,
        server: &K,
        version: CapsVersion,
        workflow: &WorkflowHash,
    ) -> Option<&Verdict> {
        let hash = key_hash(server, version, workflow);
        let eq =
            |s: &Slot<K>| s.version == version && s.workflow == *workflow && s.server == *server;
        self.young
            .find(hash, eq)
            .or_else(|| self.old.find(hash, eq))
            .map(|s| &s.verdict)
    }

    /// Caches `verdict` (replacing an entry with the same key) and returns it.
    pub fn insert(
        &mut self,
        server: K,
        version: CapsVersion,
        workflow: WorkflowHash,
        verdict: Verdict,
    ) -> &Verdict {
        let hash = key_hash(&server, version, &workflow);
        let eq = |s: &Slot<K>| s.version == version && s.workflow == workflow && s.server == server;
        let young = match self.young.find_entry(hash, eq) {
            Ok(found) => {
                let slot = found.into_mut();
                slot.verdict = verdict;
                return &slot.verdict;
            }
            Err(absent) => absent.into_table(),
        };
        if let Ok(stale) = self.old.find_entry(hash, eq) {
            stale.remove();
        }
        let slot = Slot {
            hash,
            server,
            version,
            workflow,
            verdict,
        };
        &Self::put(young, &mut self.old, self.half, slot).verdict
    }

    /// The verdict for `server` (whose capabilities are `caps`) on the workflow with hash
    /// `workflow` and requirements `reqs`: cached, or [`check`]ed and cached.
    pub fn get_or_check(
        &mut self,
        server: &K,
        caps: &Capabilities,
        workflow: &WorkflowHash,
        reqs: &Requirements,
    ) -> &Verdict {
        let version = caps.version();
        let hash = key_hash(server, version, workflow);
        let eq =
            |s: &Slot<K>| s.version == version && s.workflow == *workflow && s.server == *server;
        match self.young.find_entry(hash, eq) {
            Ok(found) => &found.into_mut().verdict,
            Err(absent) => {
                let young = absent.into_table();
                let promoted = self.old.find_entry(hash, eq).ok().map(|e| e.remove().0);
                let slot = promoted.unwrap_or_else(|| Slot {
                    hash,
                    server: server.clone(),
                    version,
                    workflow: *workflow,
                    verdict: check(caps, reqs),
                });
                &Self::put(young, &mut self.old, self.half, slot).verdict
            }
        }
    }

    /// Drops every verdict of `server` (a server removed from the pool). O(capacity).
    pub fn forget_server(&mut self, server: &K) {
        self.young.retain(|s| s.server != *server);
        self.old.retain(|s| s.server != *server);
    }

    /// Drops every verdict (keeps the allocation).
    pub fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
    }

    /// How many verdicts are cached.
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most verdicts kept at once.
    pub fn capacity(&self) -> usize {
        2 * self.half
    }

    /// Heap bytes held: both tables, plus what the cached verdicts own.
    pub fn heap_size(&self) -> usize {
        let owned = |t: &HashTable<Slot<K>>| {
            t.iter()
                .map(|s| std::mem::size_of_val::<[crate::Missing]>(s.verdict.missing()))
                .sum::<usize>()
        };
        self.young.allocation_size()
            + self.old.allocation_size()
            + owned(&self.young)
            + owned(&self.old)
    }

    /// Puts `slot` in `young`, turning generations first if `young` is full.
    fn put<'t>(
        young: &'t mut HashTable<Slot<K>>,
        old: &mut HashTable<Slot<K>>,
        half: usize,
        slot: Slot<K>,
    ) -> &'t mut Slot<K> {
        if young.len() >= half {
            std::mem::swap(young, old);
            young.clear();
        }
        young.insert_unique(slot.hash, slot, |s| s.hash).into_mut()
    }
}

impl<K> fmt::Debug for VerdictCache<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerdictCache")
            .field("len", &(self.young.len() + self.old.len()))
            .field("capacity", &(2 * self.half))
            .finish()
    }
}
