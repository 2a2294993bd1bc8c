//! One readable line per pool event, for `--verbose` and the demos' narration.

use comfy_pool::{JobEventKind, PoolEvent, Timestamp, WorkflowEvent, WorkflowHash};

use crate::JobBook;

/// The first 12 hex digits of a hash.
pub fn short(hash: &WorkflowHash) -> String {
    hash.short().to_string()
}

/// Describes a failover event: `blocked 3f2a… on gpu-a for 1.0 s (execution, 1 failure)`.
pub fn failover(event: &WorkflowEvent) -> String {
    match event {
        WorkflowEvent::Blocked {
            server,
            hash,
            class,
            failures,
            blocked_count,
            until,
            ..
        } => {
            let left = until
                .saturating_duration_since(Timestamp::now())
                .as_secs_f64();
            format!(
                "workflow {} BLOCKED on {server} for {left:.1} s ({class}, {failures} failure(s), block #{blocked_count})",
                short(hash)
            )
        }
        WorkflowEvent::Probing { server, hash, .. } => {
            format!(
                "workflow {} PROBING {server} (one job may try it)",
                short(hash)
            )
        }
        WorkflowEvent::Unblocked {
            server,
            hash,
            reason,
            ..
        } => {
            format!("workflow {} UNBLOCKED on {server} ({reason})", short(hash))
        }
        other => format!("{other:?}"),
    }
}

/// Describes a pool event; `None` for the chatty ones (node, progress, preview, output).
pub fn event(event: &PoolEvent, book: &JobBook) -> Option<String> {
    Some(match event {
        PoolEvent::Ready { online, total, .. } => {
            format!("pool ready: {online}/{total} servers online")
        }
        PoolEvent::Server {
            server,
            state,
            last_error,
            ..
        } => match last_error {
            Some(error) => format!("server {server} is {state}: {error}"),
            None => format!("server {server} is {state}"),
        },
        PoolEvent::Workflow(e) => failover(e),
        PoolEvent::Lagged { missed } => format!("(missed {missed} events)"),
        PoolEvent::Job(job) => {
            let name = book.name(&job.job);
            match &job.kind {
                JobEventKind::Queued { priority } => {
                    format!("{name}: queued (priority {priority})")
                }
                JobEventKind::Started {
                    server,
                    attempt,
                    probe,
                } => {
                    let probe = if *probe { " as the PROBE" } else { "" };
                    format!("{name}: attempt {attempt} started on {server}{probe}")
                }
                JobEventKind::Retrying {
                    attempt,
                    delay,
                    cause,
                } => format!(
                    "{name}: retrying (attempt {attempt} in {} ms) after {}: {}",
                    delay.as_millis(),
                    cause.class,
                    first_line(&cause.reason)
                ),
                JobEventKind::Completed { output } => format!(
                    "{name}: completed on {} in {} ms",
                    output.server,
                    output.timings.total.as_millis()
                ),
                JobEventKind::Failed { error, will_retry } => {
                    let then = if *will_retry { "will retry" } else { "final" };
                    format!(
                        "{name}: failed ({then}): {}",
                        first_line(&error.to_string())
                    )
                }
                JobEventKind::Cancelled => format!("{name}: cancelled"),
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// The first line of a message, at most 160 characters.
pub fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() > 160 {
        let cut: String = line.chars().take(157).collect();
        format!("{cut}...")
    } else {
        line.to_owned()
    }
}
