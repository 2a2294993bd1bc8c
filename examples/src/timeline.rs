//! Facts derived from an [`EventLog`](crate::EventLog): block spans and dispatches, to check
//! that a blocked (server, workflow) pair received nothing while blocked.

use comfy_pool::{
    FailureClass, JobEventKind, JobId, PoolEvent, UnblockReason, WorkflowEvent, WorkflowHash,
};

use crate::{JobBook, Logged};

/// One block of a (server, workflow) pair, from its `Blocked` event to its `Unblocked` one.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockSpan {
    /// The server.
    pub server: String,
    /// The workflow.
    pub hash: WorkflowHash,
    /// The failure class that caused it.
    pub class: FailureClass,
    /// Its number in a row for this pair (1 for the first).
    pub blocked_count: u32,
    /// Log position of the `Blocked` event.
    pub from: usize,
    /// Log position of the `Unblocked` event, if it came.
    pub to: Option<usize>,
    /// Why it ended, if it did.
    pub reason: Option<UnblockReason>,
    /// The length of the block, from the event's receipt to its `until`, in seconds.
    pub seconds: f64,
}

impl BlockSpan {
    /// Whether log position `seq` falls inside the block.
    pub fn contains(&self, seq: usize) -> bool {
        seq > self.from && self.to.is_none_or(|to| seq < to)
    }
}

/// One dispatch of a job to a server (a `Started` event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    /// Log position of the `Started` event.
    pub seq: usize,
    /// The job.
    pub job: JobId,
    /// The server.
    pub server: String,
    /// The job's workflow, if the demo enqueued it.
    pub hash: Option<WorkflowHash>,
    /// The attempt number.
    pub attempt: u32,
    /// Whether it was a probation probe.
    pub probe: bool,
}

/// Every block in the log, in order.
pub fn blocks(log: &[Logged]) -> Vec<BlockSpan> {
    let mut spans: Vec<BlockSpan> = Vec::new();
    for logged in log {
        let PoolEvent::Workflow(event) = &logged.event else {
            continue;
        };
        match event {
            WorkflowEvent::Blocked {
                server,
                hash,
                class,
                blocked_count,
                until,
                at,
                ..
            } => {
                spans.push(BlockSpan {
                    server: server.to_string(),
                    hash: *hash,
                    class: *class,
                    blocked_count: *blocked_count,
                    from: logged.seq,
                    to: None,
                    reason: None,
                    seconds: until.saturating_duration_since(*at).as_secs_f64(),
                });
            }
            WorkflowEvent::Unblocked {
                server,
                hash,
                reason,
                ..
            } => {
                if let Some(span) = spans
                    .iter_mut()
                    .rev()
                    .find(|s| s.to.is_none() && s.server == server.as_str() && s.hash == *hash)
                {
                    span.to = Some(logged.seq);
                    span.reason = Some(*reason);
                }
            }
            _ => {}
        }
    }
    spans
}

/// Every dispatch in the log, in order.
pub fn dispatches(log: &[Logged], book: &JobBook) -> Vec<Dispatch> {
    log.iter()
        .filter_map(|logged| match &logged.event {
            PoolEvent::Job(job) => match &job.kind {
                JobEventKind::Started {
                    server,
                    attempt,
                    probe,
                } => Some(Dispatch {
                    seq: logged.seq,
                    job: job.job.clone(),
                    server: server.to_string(),
                    hash: book.hash(&job.job),
                    attempt: *attempt,
                    probe: *probe,
                }),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Dispatches of a blocked workflow to the server it was blocked on, during the block:
/// what must never happen.
pub fn dispatches_into_blocks<'a>(
    spans: &[BlockSpan],
    dispatches: &'a [Dispatch],
) -> Vec<&'a Dispatch> {
    dispatches
        .iter()
        .filter(|d| {
            spans
                .iter()
                .any(|s| d.hash == Some(s.hash) && d.server == s.server && s.contains(d.seq))
        })
        .collect()
}

/// Dispatches of *other* workflows to the server during `span`: the server kept working.
pub fn others_served_during<'a>(span: &BlockSpan, dispatches: &'a [Dispatch]) -> Vec<&'a Dispatch> {
    dispatches
        .iter()
        .filter(|d| d.server == span.server && d.hash != Some(span.hash) && span.contains(d.seq))
        .collect()
}
