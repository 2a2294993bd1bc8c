//! `impl FailoverStrategy for SmartStrategy`.

use std::sync::atomic::Ordering;

use tokio::time::Instant;
use workflow_hash::WorkflowHash;

use super::SmartStrategy;
use super::ops::Ctx;
use super::table::hash_key;
use crate::{
    AllBlocked, Claim, FailoverEvent, FailoverStrategy, FailureClass, PairStatus, ServerId,
};

impl FailoverStrategy for SmartStrategy {
    #[inline]
    fn is_allowed(&self, server: &ServerId, hash: &WorkflowHash, now: Instant) -> bool {
        if self.tracked.load(Ordering::Acquire) == 0 {
            return true;
        }
        let inner = self.inner.read();
        inner
            .table
            .get(server, hash)
            .is_none_or(|entry| entry.allows(now))
    }

    fn first_allowed(
        &self,
        candidates: &[ServerId],
        hash: &WorkflowHash,
        now: Instant,
    ) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        if self.tracked.load(Ordering::Acquire) == 0 {
            return Some(0);
        }
        let key = hash_key(hash);
        let inner = self.inner.read();
        candidates.iter().position(|server| {
            inner
                .table
                .get_keyed(server, hash, key)
                .is_none_or(|entry| entry.allows(now))
        })
    }

    fn claim(&self, server: &ServerId, hash: &WorkflowHash, now: Instant) -> Claim {
        if self.tracked.load(Ordering::Acquire) == 0 {
            return Claim::granted();
        }
        {
            let inner = self.inner.read();
            match inner.table.get(server, hash) {
                None => return Claim::granted(),
                Some(entry) if !Ctx::claim_mutates(entry, now) => {
                    return if entry.allows(now) {
                        Claim::granted()
                    } else {
                        Claim::denied()
                    };
                }
                Some(_) => {}
            }
        }
        let now = self.clock.moment(now);
        self.write(|ctx, inner| ctx.claim(inner, server, hash, now))
    }

    fn record_failure(
        &self,
        server: &ServerId,
        hash: &WorkflowHash,
        class: FailureClass,
        now: Instant,
    ) -> Vec<FailoverEvent> {
        let now = self.clock.moment(now);
        self.write(|ctx, inner| ctx.record_failure(inner, server, hash, class, now))
    }

    fn record_success(
        &self,
        server: &ServerId,
        hash: &WorkflowHash,
        now: Instant,
    ) -> Vec<FailoverEvent> {
        if self.tracked.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let now = self.clock.moment(now);
        self.write(|_, inner| Ctx::record_success(inner, server, hash, now))
    }

    fn restore_block(
        &self,
        server: &ServerId,
        hash: &WorkflowHash,
        class: FailureClass,
        failures: u32,
        blocked_count: u32,
        until: Instant,
        now: Instant,
    ) -> Vec<FailoverEvent> {
        let now = self.clock.moment(now);
        self.write(|ctx, inner| {
            ctx.restore(
                inner,
                server,
                hash,
                class,
                failures,
                blocked_count,
                until,
                now,
            )
        })
    }

    fn poll_events(&self, now: Instant) -> Vec<FailoverEvent> {
        let now = self.clock.moment(now);
        if self
            .inner
            .read()
            .table
            .next_wake()
            .is_none_or(|wake| wake > now.tick)
        {
            return Vec::new();
        }
        self.write(|ctx, inner| ctx.poll(inner, now))
    }

    fn next_deadline(&self) -> Option<Instant> {
        let wake = self.inner.read().table.next_wake()?;
        Some(self.clock.instant(wake))
    }

    fn reset_workflow(&self, hash: &WorkflowHash) -> Vec<FailoverEvent> {
        self.write(|_, inner| {
            let mut events = Vec::new();
            let servers: Vec<ServerId> = inner
                .table
                .servers()
                .filter(|table| table.contains(hash))
                .map(|table| table.server.clone())
                .collect();
            for server in servers {
                if let Some(entry) = inner.table.remove(&server, hash) {
                    Ctx::reset_events(&server, [(hash, &entry)], &mut events);
                }
            }
            events
        })
    }

    fn reset_pair(&self, server: &ServerId, hash: &WorkflowHash) -> Vec<FailoverEvent> {
        self.write(|_, inner| {
            let mut events = Vec::new();
            if let Some(entry) = inner.table.remove(server, hash) {
                Ctx::reset_events(server, [(hash, &entry)], &mut events);
            }
            events
        })
    }

    fn reset_server(&self, server: &ServerId) -> Vec<FailoverEvent> {
        self.write(|_, inner| {
            let mut events = Vec::new();
            if let Some(table) = inner.table.remove_server(server) {
                Ctx::reset_events(server, table.entries(), &mut events);
            }
            events
        })
    }

    fn reset_all(&self) -> Vec<FailoverEvent> {
        self.write(|_, inner| {
            let mut events = Vec::new();
            for table in inner.table.clear() {
                Ctx::reset_events(&table.server, table.entries(), &mut events);
            }
            events
        })
    }

    fn snapshot(&self, now: Instant) -> Vec<PairStatus> {
        let inner = self.inner.read();
        let mut out = Vec::with_capacity(inner.table.len());
        for table in inner.table.servers() {
            for (hash, entry) in table.entries() {
                out.push(self.status(&table.server, hash, entry, now));
            }
        }
        out
    }

    fn on_all_blocked(
        &self,
        candidates: &[ServerId],
        hash: &WorkflowHash,
        now: Instant,
    ) -> AllBlocked {
        let now = self.clock.moment(now);
        self.write(|ctx, inner| ctx.on_all_blocked(inner, candidates, hash, now))
    }
}
