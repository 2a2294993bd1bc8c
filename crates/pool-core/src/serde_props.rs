//! Property tests: every job record, transition and event survives a serde round trip
//! (JSON) unchanged — the contract that stores, SSE and other processes rely on.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pool_failover::{FailureClass, ServerId, UnblockReason};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use workflow_hash::WorkflowHash;

use crate::{
    AttemptError, AttemptOutcome, AttemptRecord, Backoff, Blob, BlockInfo, CleanupOutcome,
    DeadlineKind, Deadlines, Error, Ineligible, InputFile, JobEvent, JobEventKind, JobId,
    JobOptions, JobOutput, JobRecord, JobSpec, JobTimings, NodeTiming, OutputSelection, PoolEvent,
    PreviewFormat, RunEvent, SeedAssignment, ServerState, Timestamp, Transition, Variant,
    WorkflowEvent, WsImage,
};

fn round_trip<T>(value: &T) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let json = serde_json::to_string(value).unwrap_or_default();
    match serde_json::from_str(&json) {
        Ok(back) => back,
        Err(e) => panic!("{e}: {json}"),
    }
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _./:-]{0,12}"
}

fn server() -> impl Strategy<Value = ServerId> {
    "[a-z]{1,4}-[0-9]".prop_map(ServerId::from)
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (0u64..253_402_300_799_999).prop_map(Timestamp::from_millis)
}

fn duration() -> impl Strategy<Value = Duration> {
    (0u64..8_000_000_000_000).prop_map(Duration::from_nanos)
}

fn hash() -> impl Strategy<Value = WorkflowHash> {
    any::<[u8; 32]>().prop_map(WorkflowHash::from_bytes)
}

fn class() -> impl Strategy<Value = FailureClass> {
    prop::sample::select(FailureClass::ALL.to_vec())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,5}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn map() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-z0-9]{1,4}", json_value(), 0..4)
        .prop_map(|m| m.into_iter().collect())
}

fn seeds() -> impl Strategy<Value = Vec<SeedAssignment>> {
    prop::collection::vec(
        ("[0-9]{1,3}", any::<u64>()).prop_map(|(node, value)| SeedAssignment {
            node,
            input: "seed".into(),
            value,
        }),
        0..3,
    )
}

fn outcome() -> impl Strategy<Value = AttemptOutcome> {
    prop_oneof![
        Just(AttemptOutcome::Running),
        Just(AttemptOutcome::Succeeded),
        class().prop_map(AttemptOutcome::Failed),
        Just(AttemptOutcome::Cancelled),
        Just(AttemptOutcome::TimedOut),
        Just(AttemptOutcome::Withdrawn),
    ]
}

fn attempt() -> impl Strategy<Value = AttemptRecord> {
    (
        1u32..20,
        server(),
        text(),
        (any::<bool>(), 0usize..4, prop::option::of(hash())),
        seeds(),
        timestamp(),
        prop::option::of(timestamp()),
        prop::option::of(timestamp()),
        prop::option::of(timestamp()),
        duration(),
        outcome(),
        prop::option::of(text()),
    )
        .prop_map(
            |(
                attempt,
                server,
                prompt_id,
                (probe, variant, hash),
                seeds,
                started_at,
                submitted_at,
                executing_at,
                ended_at,
                duration,
                outcome,
                reason,
            )| {
                AttemptRecord {
                    attempt,
                    server,
                    prompt_id,
                    variant,
                    hash,
                    probe,
                    seeds,
                    started_at,
                    submitted_at,
                    executing_at,
                    ended_at,
                    duration,
                    outcome,
                    reason,
                }
            },
        )
}

fn attempt_error() -> impl Strategy<Value = AttemptError> {
    (1u32..9, server(), class(), text()).prop_map(|(attempt, server, class, reason)| AttemptError {
        attempt,
        server,
        class,
        reason,
    })
}

fn error() -> impl Strategy<Value = Error> {
    let block = (
        server(),
        prop::option::of(class()),
        0u32..9,
        any::<bool>(),
        prop::option::of(timestamp()),
        prop::option::of(duration()),
    )
        .prop_map(
            |(server, class, failures, probing, until, remaining)| BlockInfo {
                server,
                class,
                failures,
                probing,
                until,
                remaining,
            },
        );
    let ineligible = prop_oneof![
        Just(Ineligible::NotRequired),
        Just(Ineligible::Excluded),
        prop::collection::vec(text(), 0..3).prop_map(Ineligible::MissingTags),
        block.prop_map(Ineligible::Blocked),
    ];
    prop_oneof![
        text().prop_map(Error::InvalidWorkflow),
        text().prop_map(Error::Config),
        (server(), text()).prop_map(|(server, reason)| Error::WorkflowRejected { server, reason }),
        prop::collection::vec((server(), ineligible), 0..3)
            .prop_map(|per_server| Error::NoEligibleServer { per_server }),
        prop::collection::vec(attempt_error(), 0..3)
            .prop_map(|attempts| Error::AttemptsExhausted { attempts }),
        attempt_error().prop_map(Error::AttemptFailed),
        Just(Error::Cancelled),
        prop::sample::select(vec![DeadlineKind::Start, DeadlineKind::Total])
            .prop_map(Error::DeadlineExceeded),
        Just(Error::ShuttingDown),
        Just(Error::Detached),
        Just(Error::NoVariants),
        (0usize..4, text()).prop_map(|(index, reason)| Error::InvalidVariant { index, reason }),
        server().prop_map(Error::UnknownServer),
        server().prop_map(Error::DuplicateServer),
    ]
}

fn output() -> impl Strategy<Value = Arc<JobOutput>> {
    (
        text(),
        server(),
        text(),
        map(),
        prop::collection::vec(any::<u8>(), 0..16),
        seeds(),
        prop::option::of(map()),
        duration(),
        duration(),
        (
            prop::collection::vec(attempt(), 0..3),
            0usize..4,
            prop::option::of(hash()),
        ),
    )
        .prop_map(
            |(
                job,
                server,
                prompt_id,
                outputs,
                image,
                seeds,
                metadata,
                queue_wait,
                total,
                (attempts, variant, hash),
            )| {
                let nodes = vec![NodeTiming::new("3", queue_wait, false)];
                Arc::new(JobOutput {
                    job: JobId::from(job),
                    server,
                    prompt_id,
                    variant,
                    hash,
                    outputs,
                    ws_images: vec![WsImage::new("9", PreviewFormat::Png, Blob::new(image))],
                    seeds,
                    metadata: metadata.map(Arc::new),
                    timings: JobTimings {
                        queue_wait,
                        total,
                        attempts,
                        nodes,
                    },
                })
            },
        )
}

fn options() -> impl Strategy<Value = JobOptions> {
    (
        any::<i32>(),
        1u32..10,
        prop::option::of(text()),
        prop::option::of(map()),
        prop::option::of(duration()),
        prop::option::of(duration()),
        prop::option::of(duration()),
        prop::collection::vec(any::<u8>(), 0..8),
        any::<bool>(),
        prop::option::of(server()),
        prop::option::of("[a-z]{1,4}"),
    )
        .prop_map(
            |(
                priority,
                attempts,
                tenant,
                metadata,
                start,
                between,
                total,
                file,
                auto_seed,
                prefer,
                tag,
            )| {
                let mut options = JobOptions::new()
                    .priority(priority)
                    .max_attempts(attempts)
                    .backoff(Backoff::new(
                        Duration::from_millis(150),
                        Duration::from_secs(3),
                    ))
                    .deadlines(Deadlines {
                        start,
                        between_events: between,
                        total,
                    })
                    .auto_seed(auto_seed)
                    .outputs(OutputSelection::Nodes(vec!["9".into()]))
                    .input(InputFile::new("in.png", file).subfolder("x"));
                if let Some(tenant) = tenant {
                    options = options.tenant(tenant);
                }
                for (key, value) in metadata.into_iter().flatten() {
                    options = options.metadata(key, value);
                }
                if let Some(server) = prefer {
                    options = options.prefer_server(server).exclude_server("z-0");
                }
                if let Some(tag) = tag {
                    options = options.require_tag(tag);
                }
                options
            },
        )
}

fn transition() -> impl Strategy<Value = Transition> {
    prop_oneof![
        attempt().prop_map(|attempt| Transition::Dispatched { attempt }),
        (1u32..9).prop_map(|attempt| Transition::PromptSubmitted { attempt }),
        (1u32..9).prop_map(|attempt| Transition::ExecutionStarted { attempt }),
        (1u32..9, outcome(), prop::option::of(text()), duration()).prop_map(
            |(attempt, outcome, reason, duration)| Transition::AttemptEnded {
                attempt,
                outcome,
                reason,
                duration
            }
        ),
        duration().prop_map(|delay| Transition::RetryScheduled { delay }),
        Just(Transition::Requeued),
        Just(Transition::CancelRequested),
        prop::sample::select(vec![DeadlineKind::Start, DeadlineKind::Total])
            .prop_map(|kind| Transition::DeadlineExpired { kind }),
        prop_oneof![output().prop_map(Ok), error().prop_map(Err)]
            .prop_map(|outcome| Transition::Finished { outcome }),
    ]
}

fn record() -> impl Strategy<Value = JobRecord> {
    (
        text(),
        prop::collection::vec((map(), hash()), 1..4),
        options(),
        timestamp(),
        prop::collection::vec((transition(), timestamp()), 0..12),
    )
        .prop_map(|(id, variants, options, created, transitions)| {
            let variants = variants
                .into_iter()
                .map(|(workflow, hash)| Variant::new(Arc::new(Value::Object(workflow)), hash))
                .collect();
            let spec = match JobSpec::with_variants(variants, options) {
                Ok(spec) => Arc::new(spec),
                Err(error) => panic!("{error}"),
            };
            let mut record = JobRecord::new(JobId::from(id), spec, created);
            for (transition, at) in &transitions {
                record.apply(transition, *at);
            }
            record
        })
}

fn run_event() -> impl Strategy<Value = RunEvent> {
    prop_oneof![
        text().prop_map(|prompt_id| RunEvent::Accepted { prompt_id }),
        Just(RunEvent::Executing),
        prop::collection::vec(text(), 0..3).prop_map(|nodes| RunEvent::Cached { nodes }),
        text().prop_map(|node| RunEvent::Node { node }),
        (prop::option::of(text()), any::<u64>(), any::<u64>())
            .prop_map(|(node, value, max)| RunEvent::Progress { node, value, max }),
        (
            prop::option::of(text()),
            prop::collection::vec(any::<u8>(), 0..32),
            prop::option::of(map().prop_map(Value::Object)),
            any::<u32>()
        )
            .prop_map(|(node, image, metadata, code)| RunEvent::Preview {
                node,
                format: if code % 3 == 0 {
                    PreviewFormat::Jpeg
                } else if code % 3 == 1 {
                    PreviewFormat::Png
                } else {
                    PreviewFormat::Other(code)
                },
                image: Bytes::from(image),
                metadata,
            }),
        (text(), json_value()).prop_map(|(node, data)| RunEvent::Output { node, data }),
    ]
}

fn job_event_kind() -> impl Strategy<Value = JobEventKind> {
    prop_oneof![
        any::<i32>().prop_map(|priority| JobEventKind::Queued { priority }),
        (server(), 1u32..9, any::<bool>()).prop_map(|(server, attempt, probe)| {
            JobEventKind::Started {
                server,
                attempt,
                probe,
            }
        }),
        (1u32..9, duration(), attempt_error()).prop_map(|(attempt, delay, cause)| {
            JobEventKind::Retrying {
                attempt,
                delay,
                cause,
            }
        }),
        output().prop_map(|output| JobEventKind::Completed { output }),
        (error(), any::<bool>())
            .prop_map(|(error, will_retry)| JobEventKind::Failed { error, will_retry }),
        Just(JobEventKind::Cancelled),
        any::<u64>().prop_map(|missed| JobEventKind::Lagged { missed }),
        run_event().prop_map(JobEventKind::Run),
    ]
}

fn job_event() -> impl Strategy<Value = JobEvent> {
    (text(), any::<u64>(), timestamp(), job_event_kind())
        .prop_map(|(job, seq, at, kind)| JobEvent::new(JobId::from(job), seq, at, kind))
}

fn workflow_event() -> impl Strategy<Value = WorkflowEvent> {
    prop_oneof![
        (
            server(),
            hash(),
            class(),
            0u32..9,
            0u32..9,
            timestamp(),
            timestamp()
        )
            .prop_map(
                |(server, hash, class, failures, blocked_count, until, at)| {
                    WorkflowEvent::Blocked {
                        server,
                        hash,
                        class,
                        failures,
                        blocked_count,
                        until,
                        at,
                    }
                }
            ),
        (server(), hash(), timestamp()).prop_map(|(server, hash, at)| WorkflowEvent::Probing {
            server,
            hash,
            at
        }),
        (
            server(),
            hash(),
            timestamp(),
            prop::sample::select(vec![
                UnblockReason::Expired,
                UnblockReason::Success,
                UnblockReason::Reset,
                UnblockReason::ForcedProbe
            ])
        )
            .prop_map(|(server, hash, at, reason)| WorkflowEvent::Unblocked {
                server,
                hash,
                reason,
                at
            }),
    ]
}

fn pool_event() -> impl Strategy<Value = PoolEvent> {
    let state = prop::sample::select(vec![
        ServerState::Connecting,
        ServerState::Online,
        ServerState::Offline,
        ServerState::Ejected,
        ServerState::Draining,
        ServerState::Removed,
    ]);
    prop_oneof![
        (0usize..9, 0usize..9, timestamp()).prop_map(|(online, total, at)| PoolEvent::Ready {
            online,
            total,
            at
        }),
        job_event().prop_map(PoolEvent::Job),
        (server(), state, prop::option::of(text()), timestamp()).prop_map(
            |(server, state, last_error, at)| PoolEvent::Server {
                server,
                state,
                last_error,
                at
            }
        ),
        (
            server(),
            text(),
            timestamp(),
            prop::option::of(text()),
            1u32..5
        )
            .prop_map(
                |(server, prompt_id, at, failed, tries)| PoolEvent::Cleanup {
                    server,
                    prompt_id,
                    outcome: match failed {
                        Some(error) => CleanupOutcome::Failed { tries, error },
                        None => CleanupOutcome::Done { tries },
                    },
                    at
                }
            ),
        workflow_event().prop_map(PoolEvent::Workflow),
        any::<u64>().prop_map(|missed| PoolEvent::Lagged { missed }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn records_survive_a_round_trip(record in record()) {
        prop_assert_eq!(round_trip(&record), record);
    }

    #[test]
    fn transitions_survive_a_round_trip(transition in transition()) {
        prop_assert_eq!(round_trip(&transition), transition);
    }

    #[test]
    fn job_events_survive_a_round_trip(event in job_event()) {
        prop_assert_eq!(round_trip(&event), event);
    }

    #[test]
    fn pool_events_survive_a_round_trip(event in pool_event()) {
        prop_assert_eq!(round_trip(&event), event);
    }
}

#[test]
fn events_read_like_their_documentation() {
    let progress = JobEvent::new(
        JobId::from("j1"),
        7,
        Timestamp::from_millis(1_764_691_888_123),
        JobEventKind::Run(RunEvent::Progress {
            node: Some("3".into()),
            value: 2,
            max: 20,
        }),
    );
    assert_eq!(
        serde_json::to_value(&progress).ok(),
        Some(
            json!({"job": "j1", "seq": 7, "at": "2025-12-02T16:11:28.123Z", "type": "progress", "node": "3", "value": 2, "max": 20})
        )
    );
    let failed = JobEventKind::Failed {
        error: Error::DeadlineExceeded(DeadlineKind::Total),
        will_retry: false,
    };
    assert_eq!(
        serde_json::to_value(&failed).ok(),
        Some(
            json!({"type": "failed", "error": {"code": "deadline_exceeded", "detail": "total"}, "will_retry": false})
        )
    );
}

#[test]
fn a_spec_of_one_variant_reads_and_writes_as_before_variants() {
    let workflow = json!({"1": {"class_type": "EmptyImage", "inputs": {"width": 8}}});
    let hash = WorkflowHash::from_bytes([7; 32]);
    let old = json!({"workflow": workflow, "hash": hash.to_string(), "options": JobOptions::new()});
    let spec: JobSpec = serde_json::from_value(old.clone()).unwrap();
    assert_eq!(spec.variants().len(), 1);
    assert_eq!(spec.hash(), hash);
    assert_eq!(
        serde_json::to_value(&spec).unwrap(),
        old,
        "no `alternatives` key"
    );

    let other = json!({"1": {"class_type": "EmptyLatentImage", "inputs": {}}});
    let two = JobSpec::with_variants(
        vec![
            Variant::new(Arc::new(workflow), hash),
            Variant::new(Arc::new(other), WorkflowHash::from_bytes([8; 32])),
        ],
        JobOptions::new(),
    )
    .unwrap();
    let text = serde_json::to_value(&two).unwrap();
    assert_eq!(text["hash"], hash.to_string(), "the first variant leads");
    assert_eq!(
        text["alternatives"][0]["workflow"]["1"]["class_type"],
        "EmptyLatentImage"
    );
    assert_eq!(round_trip(&two), two);
    assert!(matches!(
        JobSpec::with_variants(Vec::new(), JobOptions::new()),
        Err(Error::NoVariants)
    ));
}

#[test]
fn an_attempt_written_before_variants_ran_the_first() {
    let old = json!({
        "attempt": 1, "server": "a", "prompt_id": "p", "started_at": "2025-12-02T16:11:28.123Z",
        "duration_ms": 5, "outcome": {"status": "succeeded"}
    });
    let attempt: AttemptRecord = serde_json::from_value(old).unwrap();
    assert_eq!((attempt.variant, attempt.hash), (0, None));
}
