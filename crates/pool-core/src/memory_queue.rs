//! [`InMemoryQueue`]: the default [`JobQueue`], indexed so that one dispatch looks only at
//! jobs the freed server could run.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use pool_failover::ServerId;
use rustc_hash::FxHashMap;
use workflow_hash::WorkflowHash;

use crate::{Constraint, JobKey, JobQueue, QueueEntry, ServerView};

type TenantKey = Option<Arc<str>>;

/// The default in-memory [`JobQueue`].
///
/// Jobs are indexed by priority, then tenant (served round-robin), then constraint class,
/// then workflow hash. Finding a job for a freed server visits only the constraint classes
/// that admit it and, inside one, skips only hashes that are blocked on that server: the cost
/// does not grow with the number of queued jobs (beyond a logarithm).
#[derive(Debug, Default)]
pub struct InMemoryQueue {
    levels: BTreeMap<Reverse<i32>, Level>,
    entries: FxHashMap<JobKey, QueueEntry>,
    servers: Vec<(ServerId, Vec<String>)>,
}

#[derive(Debug, Default)]
struct Level {
    tenants: HashMap<TenantKey, TenantQueue>,
    order: Vec<TenantKey>,
    cursor: usize,
    len: usize,
}

#[derive(Debug, Default)]
struct TenantQueue {
    buckets: HashMap<Arc<Constraint>, Bucket>,
}

#[derive(Debug, Default)]
struct Bucket {
    width: usize,
    by_hash: FxHashMap<WorkflowHash, VecDeque<JobKey>>,
    heads: BTreeSet<(JobKey, WorkflowHash)>,
}

impl Bucket {
    fn insert(&mut self, key: JobKey, hash: WorkflowHash) {
        let keys = self.by_hash.entry(hash).or_default();
        let old_head = keys.front().copied();
        let at = keys.partition_point(|k| *k < key);
        keys.insert(at, key);
        if old_head != keys.front().copied() {
            if let Some(old) = old_head {
                self.heads.remove(&(old, hash));
            }
            self.heads.insert((key, hash));
        }
    }

    fn remove(&mut self, key: JobKey, hash: WorkflowHash) {
        let Some(keys) = self.by_hash.get_mut(&hash) else {
            return;
        };
        let Ok(at) = keys.binary_search(&key) else {
            return;
        };
        keys.remove(at);
        if at == 0 {
            self.heads.remove(&(key, hash));
            match keys.front() {
                Some(next) => {
                    self.heads.insert((*next, hash));
                }
                None => {
                    self.by_hash.remove(&hash);
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }
}

impl InMemoryQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    fn width(&self, constraint: &Constraint) -> usize {
        self.servers
            .iter()
            .filter(|(id, tags)| constraint.admits(&ServerView { id, tags }))
            .count()
    }
}

impl JobQueue for InMemoryQueue {
    fn push(&mut self, entry: QueueEntry) {
        if let Some(old) = self.remove(entry.key) {
            debug_assert_eq!(old.key, entry.key);
        }
        let width = self.width(&entry.constraint);
        let level = self.levels.entry(Reverse(entry.priority)).or_default();
        let tenant = match level.tenants.get_mut(&entry.tenant) {
            Some(tenant) => tenant,
            None => {
                level.order.push(entry.tenant.clone());
                level.tenants.entry(entry.tenant.clone()).or_default()
            }
        };
        let bucket = tenant
            .buckets
            .entry(Arc::clone(&entry.constraint))
            .or_insert_with(|| Bucket {
                width,
                ..Bucket::default()
            });
        bucket.insert(entry.key, entry.hash);
        level.len += 1;
        self.entries.insert(entry.key, entry);
    }

    fn remove(&mut self, key: JobKey) -> Option<QueueEntry> {
        let entry = self.entries.remove(&key)?;
        let prio = Reverse(entry.priority);
        let Some(level) = self.levels.get_mut(&prio) else {
            return Some(entry);
        };
        level.len = level.len.saturating_sub(1);
        if let Some(tenant) = level.tenants.get_mut(&entry.tenant) {
            if let Some(bucket) = tenant.buckets.get_mut(&entry.constraint) {
                bucket.remove(key, entry.hash);
                if bucket.is_empty() {
                    tenant.buckets.remove(&entry.constraint);
                }
            }
            if tenant.buckets.is_empty() {
                level.tenants.remove(&entry.tenant);
                if let Some(at) = level.order.iter().position(|t| *t == entry.tenant) {
                    level.order.remove(at);
                    if level.cursor > at {
                        level.cursor -= 1;
                    }
                }
                if level.cursor >= level.order.len() {
                    level.cursor = 0;
                }
            }
        }
        if level.len == 0 {
            self.levels.remove(&prio);
        }
        Some(entry)
    }

    fn pop_for(
        &mut self,
        server: ServerView<'_>,
        allowed: &mut dyn FnMut(&WorkflowHash) -> bool,
    ) -> Option<QueueEntry> {
        let mut found = None;
        'levels: for (prio, level) in &self.levels {
            let n = level.order.len();
            for i in 0..n {
                let at = (level.cursor + i) % n;
                let Some(tenant) = level.order.get(at).and_then(|t| level.tenants.get(t)) else {
                    continue;
                };
                let mut best: Option<(usize, JobKey)> = None;
                for (constraint, bucket) in &tenant.buckets {
                    if !constraint.admits(&server) {
                        continue;
                    }
                    if let Some(b) = best {
                        // A wider bucket, or an equally wide one whose oldest job is younger,
                        // cannot win.
                        let oldest = bucket.heads.first().map(|(k, _)| *k);
                        if bucket.width > b.0 || (bucket.width == b.0 && oldest > Some(b.1)) {
                            continue;
                        }
                    }
                    if let Some((key, _)) = bucket.heads.iter().find(|(_, hash)| allowed(hash)) {
                        let candidate = (bucket.width, *key);
                        if best.is_none_or(|b| candidate < b) {
                            best = Some(candidate);
                        }
                    }
                }
                if let Some((_, key)) = best {
                    found = Some((*prio, at, key));
                    break 'levels;
                }
            }
        }
        let (prio, at, key) = found?;
        if let Some(level) = self.levels.get_mut(&prio) {
            level.cursor = at + 1;
        }
        self.remove(key)
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn depth_by_priority(&self) -> Vec<(i32, usize)> {
        self.levels
            .iter()
            .map(|(Reverse(p), level)| (*p, level.len))
            .collect()
    }

    fn keys_with_hash(&self, hash: &WorkflowHash) -> Vec<JobKey> {
        let mut keys: Vec<JobKey> = self
            .levels
            .values()
            .flat_map(|level| level.tenants.values())
            .flat_map(|tenant| tenant.buckets.values())
            .filter_map(|bucket| bucket.by_hash.get(hash))
            .flatten()
            .copied()
            .collect();
        keys.sort();
        keys
    }

    fn drain(&mut self) -> Vec<QueueEntry> {
        self.levels.clear();
        let mut all: Vec<QueueEntry> = self.entries.drain().map(|(_, e)| e).collect();
        all.sort_by_key(|e| e.key);
        all
    }

    fn set_servers(&mut self, servers: &[ServerView<'_>]) {
        self.servers = servers
            .iter()
            .map(|s| (s.id.clone(), s.tags.to_vec()))
            .collect();
        let servers = &self.servers;
        for level in self.levels.values_mut() {
            for tenant in level.tenants.values_mut() {
                for (constraint, bucket) in &mut tenant.buckets {
                    bucket.width = servers
                        .iter()
                        .filter(|(id, tags)| constraint.admits(&ServerView { id, tags }))
                        .count();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        key: u64,
        priority: i32,
        tenant: Option<&str>,
        hash: u8,
        c: &Arc<Constraint>,
    ) -> QueueEntry {
        QueueEntry::new(
            JobKey(key),
            priority,
            tenant.map(Arc::from),
            WorkflowHash::from_bytes([hash; 32]),
            Arc::clone(c),
        )
    }

    fn pop(q: &mut InMemoryQueue, id: &ServerId, blocked: &[u8]) -> Option<u64> {
        let view = ServerView { id, tags: &[] };
        q.pop_for(view, &mut |h| !blocked.contains(&h.as_bytes()[0]))
            .map(|e| e.key.0)
    }

    #[test]
    fn priority_then_fifo_and_blocked_hashes_are_skipped() {
        let free = Arc::new(Constraint::default());
        let mut q = InMemoryQueue::new();
        let a = ServerId::from("a");
        q.set_servers(&[ServerView { id: &a, tags: &[] }]);
        q.push(entry(1, 0, None, 1, &free));
        q.push(entry(2, 5, None, 2, &free));
        q.push(entry(3, 5, None, 1, &free));
        q.push(entry(4, 0, None, 3, &free));
        assert_eq!(q.len(), 4);
        assert_eq!(pop(&mut q, &a, &[1]), Some(2));
        assert_eq!(pop(&mut q, &a, &[1]), Some(4));
        assert_eq!(pop(&mut q, &a, &[1]), None);
        assert_eq!(pop(&mut q, &a, &[]), Some(3));
        assert_eq!(pop(&mut q, &a, &[]), Some(1));
        assert!(q.is_empty());
        assert!(q.levels.is_empty());
    }

    #[test]
    fn tenants_take_turns_and_constrained_jobs_go_first() {
        let free = Arc::new(Constraint::default());
        let only_a = Arc::new(Constraint::new(vec![ServerId::from("a")], vec![], vec![]));
        let (a, b) = (ServerId::from("a"), ServerId::from("b"));
        let mut q = InMemoryQueue::new();
        q.set_servers(&[
            ServerView { id: &a, tags: &[] },
            ServerView { id: &b, tags: &[] },
        ]);
        for k in 1..=3 {
            q.push(entry(k, 0, Some("x"), 1, &free));
        }
        q.push(entry(10, 0, Some("y"), 1, &free));
        q.push(entry(11, 0, Some("y"), 1, &free));
        let order: Vec<u64> = std::iter::from_fn(|| pop(&mut q, &b, &[])).collect();
        assert_eq!(order, vec![1, 10, 2, 11, 3]);

        q.push(entry(20, 0, None, 1, &free));
        q.push(entry(21, 0, None, 1, &only_a));
        assert_eq!(
            pop(&mut q, &b, &[]),
            Some(20),
            "b cannot run the job that requires a"
        );
        q.push(entry(22, 0, None, 1, &free));
        assert_eq!(
            pop(&mut q, &a, &[]),
            Some(21),
            "the constrained job goes first on a"
        );
        assert_eq!(
            q.keys_with_hash(&WorkflowHash::from_bytes([1; 32])),
            vec![JobKey(22)]
        );
        assert_eq!(q.remove(JobKey(22)).map(|e| e.key), Some(JobKey(22)));
        assert!(q.is_empty());
    }

    #[test]
    fn retried_old_job_keeps_its_place() {
        let free = Arc::new(Constraint::default());
        let a = ServerId::from("a");
        let mut q = InMemoryQueue::new();
        q.push(entry(5, 0, None, 1, &free));
        q.push(entry(2, 0, None, 1, &free));
        assert_eq!(q.depth_by_priority(), vec![(0, 2)]);
        assert_eq!(pop(&mut q, &a, &[]), Some(2));
        assert_eq!(pop(&mut q, &a, &[]), Some(5));
    }
}
