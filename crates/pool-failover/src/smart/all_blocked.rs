//! The smart strategy's answer when every candidate server is blocked for a workflow.

use tokio::time::Instant;
use workflow_hash::WorkflowHash;

use super::clock::Moment;
use super::entry::State;
use super::ops::{Ctx, Inner};
use crate::{AllBlocked, AllBlockedDecision, AllBlockedPolicy, Error, ServerBlock, ServerId};

impl Ctx<'_> {
    pub(super) fn on_all_blocked(
        &self,
        inner: &mut Inner,
        candidates: &[ServerId],
        hash: &WorkflowHash,
        now: Moment,
    ) -> AllBlocked {
        if candidates.is_empty() {
            return AllBlocked::new(AllBlockedDecision::Fail(Error::NoCandidates {
                hash: *hash,
            }));
        }
        let table = &inner.table;
        let entry_of = |server: &ServerId| table.get(server, hash);
        if let Some(server) = candidates
            .iter()
            .find(|server| entry_of(server).is_none_or(|entry| entry.allows(now.at)))
        {
            return AllBlocked::new(AllBlockedDecision::Proceed {
                server: server.clone(),
            });
        }
        // From here every candidate has an entry that refuses work until its `until`.
        let earliest = candidates
            .iter()
            .filter_map(|server| entry_of(server).map(|entry| (server, entry.until)))
            .min_by_key(|(_, until)| *until);
        let wait = |(server, until): (&ServerId, Instant)| AllBlockedDecision::Wait {
            server: server.clone(),
            until,
        };
        match self.config.all_blocked {
            AllBlockedPolicy::FailFast => {
                let servers = candidates
                    .iter()
                    .map(|server| match entry_of(server) {
                        Some(entry) => ServerBlock::new(
                            server.clone(),
                            Some(entry.class()),
                            entry.failures,
                            entry.state == State::Probing,
                            Some(entry.until),
                            now.at,
                        ),
                        None => ServerBlock::unknown(server.clone()),
                    })
                    .collect();
                AllBlocked::new(AllBlockedDecision::Fail(Error::AllServersBlocked {
                    hash: *hash,
                    servers,
                }))
            }
            AllBlockedPolicy::ProbeLeastRecentlyFailed => {
                let victim = candidates
                    .iter()
                    .filter_map(|server| entry_of(server).map(|entry| (server, entry)))
                    .filter(|(_, entry)| entry.blocked_at(now.at))
                    .min_by_key(|(_, entry)| entry.last_failure)
                    .map(|(server, _)| server.clone());
                match (victim, earliest) {
                    (Some(server), _) => {
                        let events = self.force_probe(inner, &server, hash, now);
                        AllBlocked::with_events(AllBlockedDecision::Probe { server }, events)
                    }
                    (None, Some(first)) => AllBlocked::new(wait(first)),
                    (None, None) => {
                        AllBlocked::new(AllBlockedDecision::Fail(Error::NoCandidates {
                            hash: *hash,
                        }))
                    }
                }
            }
            AllBlockedPolicy::WaitForEarliest => match earliest {
                Some(first) => AllBlocked::new(wait(first)),
                None => AllBlocked::new(AllBlockedDecision::Fail(Error::NoCandidates {
                    hash: *hash,
                })),
            },
        }
    }
}
