//! Job events across the processes of a fleet. The process running a job it took up from the
//! store (accepted elsewhere, or taken over) tells the others the job's events as
//! [`FleetNotice::Event`]s, thinned out; a process that holds a copy of the job (it accepted
//! it, and its handles and subscribers follow it) adds them to that copy's stream under the
//! same numbers, so a subscriber sees the run wherever it is connected and can resume by
//! `seq` at any process. What is left out: progress and previews closer together than
//! [`RELAY_EVERY`] (a node's last step always goes), previews' bytes, outputs (the record has
//! them) and the end (told as a change of the record, which the copy then ends with).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::fleet_link::FleetLink;
use crate::{FleetNotice, JobEvent, JobEventKind, RunEvent};

/// The least time between two thinned-out events (progress, previews) of one job told to the
/// others.
pub(crate) const RELAY_EVERY: Duration = Duration::from_millis(250);

/// The relay of one job's events to the other processes (kept with the job's copy that
/// runs it).
#[derive(Debug)]
pub(crate) struct Relay {
    link: Arc<FleetLink>,
    /// When the last thinned-out event was told.
    last_thinned: Option<Instant>,
}

impl Relay {
    pub(crate) fn new(link: Arc<FleetLink>) -> Self {
        Self {
            link,
            last_thinned: None,
        }
    }

    /// Tells the others `event`, unless the relay leaves it out.
    pub(crate) fn pass(&mut self, event: &JobEvent) {
        match &event.kind {
            kind if kind.is_terminal() => return,
            JobEventKind::Lagged { .. } | JobEventKind::Run(RunEvent::Output { .. }) => return,
            JobEventKind::Run(run) if run.is_expendable() => {
                let now = Instant::now();
                let last_step =
                    matches!(run, RunEvent::Progress { value, max, .. } if value >= max);
                let soon = self
                    .last_thinned
                    .is_some_and(|t| now.saturating_duration_since(t) < RELAY_EVERY);
                if soon && !last_step {
                    return;
                }
                self.last_thinned = Some(now);
            }
            _ => {}
        }
        self.link.tell(FleetNotice::Event {
            event: Box::new(crate::job::for_pool(event.clone())),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::fleet::recording::Recording;
    use crate::{Error, Fleet, PreviewFormat, Timestamp};

    fn progress(value: u64) -> JobEventKind {
        JobEventKind::Run(RunEvent::Progress {
            node: Some("3".into()),
            value,
            max: 20,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn progress_and_previews_are_thinned_and_outputs_and_ends_stay_home() {
        let told = Arc::new(Recording::default());
        let link = Arc::new(FleetLink::spawn(
            Arc::clone(&told) as Arc<dyn Fleet>,
            Duration::from_secs(3),
        ));
        let mut relay = Relay::new(link);
        let mut seq = 0;
        let mut pass = |relay: &mut Relay, kind: JobEventKind| {
            seq += 1;
            relay.pass(&JobEvent::new("j".into(), seq, Timestamp::now(), kind));
        };
        pass(
            &mut relay,
            JobEventKind::Run(RunEvent::Node { node: "3".into() }),
        );
        // 20 steps 50 ms apart (1 s): one every 250 ms, and the last.
        for value in 1..=20 {
            pass(&mut relay, progress(value));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(RELAY_EVERY).await;
        let preview = JobEventKind::Run(RunEvent::Preview {
            node: None,
            format: PreviewFormat::Png,
            image: bytes::Bytes::from_static(b"image bytes"),
            metadata: None,
        });
        pass(&mut relay, preview);

        pass(
            &mut relay,
            JobEventKind::Run(RunEvent::Output {
                node: "9".into(),
                data: serde_json::json!({"images": []}),
            }),
        );
        let error = Error::Cancelled;
        pass(
            &mut relay,
            JobEventKind::Failed {
                error,
                will_retry: false,
            },
        );
        pass(&mut relay, JobEventKind::Cancelled);
        tokio::task::yield_now().await;

        let told: Vec<(u64, JobEventKind)> = told
            .notices()
            .iter()
            .map(|n| match n {
                FleetNotice::Event { event } => (event.seq, event.kind.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        let seqs: Vec<u64> = told.iter().map(|(s, _)| *s).collect();
        // Node, steps 1, 6, 11, 16 (250 ms apart), the last step 20, then the preview
        // (its turn 250 ms after the last step was told; without its bytes).
        assert_eq!(seqs, [1, 2, 7, 12, 17, 21, 22]);
        assert!(matches!(
            &told[6].1,
            JobEventKind::Run(RunEvent::Preview { image, .. }) if image.is_empty()
        ));
    }
}
