//! [`Tracker`]: what the service knows about live jobs beyond the pool — who owns them (for
//! the per-tenant limit and the queue-depth gauges), the latest preview of each running job,
//! and the recently finished jobs the dashboard shows.

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::Bytes;
use parking_lot::Mutex;
use pool_core::PreviewFormat;
use serde::Serialize;
use utoipa::ToSchema;

/// How many finished jobs the dashboard's list keeps.
const RECENT: usize = 50;

/// Where a live job stands, for the gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Queued,
    Running,
}

#[derive(Debug, Clone)]
struct Live {
    tenant: String,
    priority: i32,
    phase: Phase,
}

/// The latest preview image of a running job.
#[derive(Debug, Clone)]
pub(crate) struct Preview {
    pub(crate) seq: u64,
    pub(crate) format: PreviewFormat,
    pub(crate) image: Bytes,
}

/// A finished job, as the dashboard lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecentJob {
    /// The job.
    pub id: String,
    /// Its tenant (empty for the admin's jobs).
    pub tenant: String,
    /// `completed`, `failed` or `cancelled`.
    pub state: String,
    /// The server of its last attempt.
    pub server: Option<String>,
    /// The error code, when it failed.
    pub error: Option<String>,
    /// The error message, when it failed.
    pub message: Option<String>,
    /// The URL of its first image output, for a thumbnail.
    pub thumbnail: Option<String>,
    /// When it ended (RFC 3339).
    pub ended_at: String,
}

#[derive(Debug, Default)]
struct Inner {
    live: HashMap<String, Live>,
    per_tenant: HashMap<String, u32>,
    previews: HashMap<String, Preview>,
    recent: VecDeque<RecentJob>,
}

/// The service's view of live jobs (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    inner: Mutex<Inner>,
}

impl Tracker {
    /// Counts a new job of `tenant` if it has fewer than `limit` unfinished ones.
    pub(crate) fn reserve(&self, tenant: &str, limit: u32) -> bool {
        let mut inner = self.inner.lock();
        let count = inner.per_tenant.entry(tenant.to_owned()).or_default();
        if *count >= limit {
            return false;
        }
        *count += 1;
        true
    }

    /// Gives back a reservation whose job was not made.
    pub(crate) fn release(&self, tenant: &str) {
        let mut inner = self.inner.lock();
        if let Some(count) = inner.per_tenant.get_mut(tenant) {
            *count = count.saturating_sub(1);
        }
    }

    /// Starts tracking a job (already counted by [`reserve`](Self::reserve) when `counted`).
    pub(crate) fn track(&self, id: &str, tenant: &str, priority: i32, counted: bool) {
        let mut inner = self.inner.lock();
        if inner.live.contains_key(id) {
            return;
        }
        if !counted {
            *inner.per_tenant.entry(tenant.to_owned()).or_default() += 1;
        }
        inner.live.insert(
            id.to_owned(),
            Live {
                tenant: tenant.to_owned(),
                priority,
                phase: Phase::Queued,
            },
        );
    }

    /// Whether the job is tracked.
    pub(crate) fn is_tracked(&self, id: &str) -> bool {
        self.inner.lock().live.contains_key(id)
    }

    /// The job moved to `phase`.
    pub(crate) fn set_phase(&self, id: &str, phase: Phase) {
        if let Some(live) = self.inner.lock().live.get_mut(id) {
            live.phase = phase;
        }
    }

    /// Keeps the latest preview of a job.
    pub(crate) fn set_preview(&self, id: &str, preview: Preview) {
        self.inner.lock().previews.insert(id.to_owned(), preview);
    }

    /// The latest preview of a job.
    pub(crate) fn preview(&self, id: &str) -> Option<Preview> {
        self.inner.lock().previews.get(id).cloned()
    }

    /// The job ended (or the service let go of it): forget it, and list it as recent.
    pub(crate) fn finish(&self, id: &str, recent: Option<RecentJob>) {
        let mut inner = self.inner.lock();
        inner.previews.remove(id);
        if let Some(live) = inner.live.remove(id)
            && let Some(count) = inner.per_tenant.get_mut(&live.tenant)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                inner.per_tenant.remove(&live.tenant);
            }
        }
        if let Some(job) = recent {
            if inner.recent.len() == RECENT {
                inner.recent.pop_back();
            }
            inner.recent.push_front(job);
        }
    }

    /// Unfinished jobs of `tenant`.
    #[cfg(test)]
    pub(crate) fn unfinished(&self, tenant: &str) -> u32 {
        self.inner
            .lock()
            .per_tenant
            .get(tenant)
            .copied()
            .unwrap_or(0)
    }

    /// Jobs waiting for a server, per (tenant, priority).
    pub(crate) fn queue_depth(&self) -> BTreeMap<(String, i32), u64> {
        let mut depth = BTreeMap::new();
        for live in self.inner.lock().live.values() {
            if live.phase == Phase::Queued {
                *depth
                    .entry((live.tenant.clone(), live.priority))
                    .or_default() += 1;
            }
        }
        depth
    }

    /// Running jobs per tenant.
    pub(crate) fn running(&self) -> BTreeMap<String, u64> {
        let mut running = BTreeMap::new();
        for live in self.inner.lock().live.values() {
            if live.phase == Phase::Running {
                *running.entry(live.tenant.clone()).or_default() += 1;
            }
        }
        running
    }

    /// The recently finished jobs, newest first.
    pub(crate) fn recent(&self) -> Vec<RecentJob> {
        self.inner.lock().recent.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_hold_the_limit_and_finishing_frees_a_place() {
        let tracker = Tracker::default();
        assert!(tracker.reserve("a", 2));
        tracker.track("j1", "a", 0, true);
        assert!(tracker.reserve("a", 2));
        tracker.track("j2", "a", 5, true);
        assert!(!tracker.reserve("a", 2), "two unfinished: the limit");
        assert!(tracker.reserve("b", 2), "another tenant");
        tracker.release("b");
        tracker.set_phase("j2", Phase::Running);
        assert_eq!(
            tracker.queue_depth().into_iter().collect::<Vec<_>>(),
            [(("a".to_owned(), 0), 1)]
        );
        tracker.finish("j1", None);
        assert_eq!(tracker.unfinished("a"), 1);
        assert!(tracker.reserve("a", 2));
    }
}
