//! Workflow variants at dispatch. A job carries one or more workflows in order of preference
//! ([`JobSpec::variants`]); a server is eligible for it if any variant is capable there (the
//! capability verdict) and not blocked by the failover strategy for that variant's hash, and
//! the job runs the first such variant. Outcomes are recorded against the hash of the variant
//! that ran, so blocks stay per (server, variant hash).
//!
//! The queue knows a job by one *routing key*: its workflow's hash for a job of one variant,
//! or a key standing for the set of hashes of a job of several ([`VariantSets`] maps it
//! back), so that a freed server skips a queued job only when every variant is refused there.

use std::sync::Arc;

use pool_failover::{FailoverStrategy, ServerId};
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use workflow_hash::WorkflowHash;

use crate::capability::Verdicts;
use crate::engine::Engine;
use crate::servers::Server;
use crate::{Constraint, Ineligible, JobKey, JobSpec};

/// The key under which the queue holds a job: its workflow's hash for one variant, a digest
/// of the variants' hashes (in order) for several.
pub(crate) fn route_key(spec: &JobSpec) -> WorkflowHash {
    match spec.variants() {
        [one] => one.hash,
        many => {
            let mut digest = Sha256::new();
            digest.update(b"comfy-pool variant set\0");
            for variant in many {
                digest.update(variant.hash.as_bytes());
            }
            WorkflowHash::from_bytes(digest.finalize().into())
        }
    }
}

/// The variant hashes behind the routing keys of live jobs of several variants, with how
/// many jobs share each key.
#[derive(Debug, Default)]
pub(crate) struct VariantSets {
    by_key: FxHashMap<WorkflowHash, (Arc<[WorkflowHash]>, usize)>,
}

impl VariantSets {
    /// Counts one more live job of `spec` (nothing to keep for a job of one variant).
    pub(crate) fn add(&mut self, route: WorkflowHash, spec: &JobSpec) {
        if spec.variants().len() < 2 {
            return;
        }
        self.by_key
            .entry(route)
            .or_insert_with(|| (spec.hashes().collect(), 0))
            .1 += 1;
    }

    /// Counts one live job of `route` less.
    pub(crate) fn remove(&mut self, route: &WorkflowHash) {
        if let Some((_, n)) = self.by_key.get_mut(route) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_key.remove(route);
            }
        }
    }

    /// The variant hashes a routing key stands for (a key no set has is one workflow's
    /// hash).
    pub(crate) fn hashes<'a>(&'a self, route: &'a WorkflowHash) -> &'a [WorkflowHash] {
        self.by_key
            .get(route)
            .map_or(std::slice::from_ref(route), |(hashes, _)| hashes)
    }

    /// The routing keys of queued jobs that may run `hash`: the hash itself and every set
    /// that holds it (one look at each distinct live set, never at the queued jobs).
    pub(crate) fn routes_with(&self, hash: &WorkflowHash) -> Vec<WorkflowHash> {
        let mut routes = vec![*hash];
        routes.extend(
            self.by_key
                .iter()
                .filter(|(_, (hashes, _))| hashes.contains(hash))
                .map(|(route, _)| *route),
        );
        routes
    }
}

/// Where one server stands for a job's variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// It is known to lack something for every variant.
    Lacks,
    /// It may run some variant, but each such variant is blocked there now.
    Blocked,
    /// It may run the variant of this index now (the first such).
    Runs(usize),
}

/// Where `server` stands for the variants of `spec` at `now`.
pub(crate) fn reach(
    verdicts: &mut Verdicts,
    strategy: &dyn FailoverStrategy,
    server: &Server,
    spec: &JobSpec,
    now: Instant,
) -> Reach {
    let mut reach = Reach::Lacks;
    for (index, variant) in spec.variants().iter().enumerate() {
        if !verdicts.admits(server.key, &server.caps, &variant.hash) {
            continue;
        }
        if strategy.is_allowed(&server.id, &variant.hash, now) {
            return Reach::Runs(index);
        }
        reach = Reach::Blocked;
    }
    reach
}

impl Engine {
    /// The variant of a job that `server` may run now, if any.
    pub(crate) fn runnable_variant(
        &mut self,
        key: JobKey,
        server: &ServerId,
        now: Instant,
    ) -> Option<usize> {
        let spec = Arc::clone(&self.jobs.get(&key)?.spec);
        let Self {
            servers,
            verdicts,
            shared,
            ..
        } = self;
        let server = servers.iter().find(|s| s.id == *server)?;
        match reach(verdicts, shared.strategy.as_ref(), server, &spec, now) {
            Reach::Runs(index) => Some(index),
            Reach::Lacks | Reach::Blocked => None,
        }
    }

    /// When every server that may run some variant of a job blocks it: the first variant
    /// that some member server admitted by `constraint` does not lack, and those servers
    /// (the candidates the all-blocked policy decides among for that variant's hash).
    pub(crate) fn blocked_variant(
        &mut self,
        spec: &JobSpec,
        constraint: &Constraint,
    ) -> Option<(usize, WorkflowHash, Vec<ServerId>)> {
        let Self {
            servers, verdicts, ..
        } = self;
        spec.variants().iter().enumerate().find_map(|(index, v)| {
            let capable: Vec<ServerId> = servers
                .iter()
                .filter(|s| s.is_member() && constraint.admits(&s.view()))
                .filter(|s| verdicts.admits(s.key, &s.caps, &v.hash))
                .map(|s| s.id.clone())
                .collect();
            (!capable.is_empty()).then_some((index, v.hash, capable))
        })
    }

    /// Why `server` cannot run any variant of `spec`, if it is known to lack something for
    /// each: what it lacks (per variant, for a job of several).
    pub(crate) fn lack_reason(&mut self, server: &ServerId, spec: &JobSpec) -> Option<Ineligible> {
        let Self {
            servers, verdicts, ..
        } = self;
        let server = servers.iter().find(|s| s.id == *server)?;
        let several = spec.variants().len() > 1;
        let mut missing = Vec::new();
        for (index, variant) in spec.variants().iter().enumerate() {
            let verdict = verdicts.lacks(server.key, &server.caps, &variant.hash)?;
            missing.extend(verdict.missing().iter().map(|m| {
                if several {
                    format!("variant {index}: {m}")
                } else {
                    m.to_string()
                }
            }));
        }
        Some(Ineligible::Lacks { missing })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{JobOptions, Variant};

    fn variant(class: &str) -> Variant {
        let workflow = json!({"1": {"class_type": class, "inputs": {}}});
        let hash = WorkflowHash::of(&workflow).unwrap_or_else(|e| panic!("{e}"));
        Variant::new(Arc::new(workflow), hash)
    }

    fn spec(classes: &[&str]) -> JobSpec {
        let variants = classes.iter().map(|c| variant(c)).collect();
        JobSpec::with_variants(variants, JobOptions::new()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn one_variant_routes_by_its_hash_and_several_by_their_set() {
        let one = spec(&["A"]);
        assert_eq!(route_key(&one), one.hash());
        let ab = spec(&["A", "B"]);
        let ba = spec(&["B", "A"]);
        assert_ne!(route_key(&ab), ab.hash());
        assert_ne!(
            route_key(&ab),
            route_key(&ba),
            "the order is part of the set"
        );
        assert_eq!(route_key(&ab), route_key(&spec(&["A", "B"])));
    }

    #[test]
    fn sets_map_keys_back_to_their_hashes_while_a_job_holds_them() {
        let (one, ab) = (spec(&["A"]), spec(&["A", "B"]));
        let (r1, rab) = (route_key(&one), route_key(&ab));
        let mut sets = VariantSets::default();
        sets.add(r1, &one);
        sets.add(rab, &ab);
        sets.add(rab, &ab);
        assert_eq!(sets.hashes(&r1), &[one.hash()]);
        let hashes: Vec<WorkflowHash> = ab.hashes().collect();
        assert_eq!(sets.hashes(&rab), hashes.as_slice());
        let b = hashes[1];
        assert_eq!(sets.routes_with(&b), vec![b, rab]);
        assert_eq!(sets.routes_with(&one.hash()), vec![one.hash(), rab]);
        sets.remove(&rab);
        assert_eq!(
            sets.hashes(&rab),
            hashes.as_slice(),
            "one job still holds it"
        );
        sets.remove(&rab);
        assert_eq!(sets.hashes(&rab), &[rab]);
        assert!(sets.by_key.is_empty());
    }
}
