//! A run ends within its documented limits whatever the server does: polls that fail
//! (garbage, wrong types, endless bodies, no answer) end it whether the socket is down, up
//! and silent, or up and streaming; a run whose subscription lags does not poll per lost
//! event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use comfy_client::{Client, Deadline, Error, Event, RunOptions};
use common::hostile::{Answer, Hostile, Socket, success_end, text};
use futures_util::future::join_all;
use serde_json::json;

/// A guard against a run that never ends; no assertion depends on how long a run took.
const HANG_GUARD: Duration = Duration::from_secs(60);

fn workflow() -> serde_json::Value {
    json!({"9": {"class_type": "SaveImage", "inputs": {}}})
}

/// `progress` of the prompt, forever.
fn progress_forever() -> common::hostile::Frames {
    Arc::new(|id, i| {
        Some(text(
            "progress",
            json!({"value": i, "max": 1_000_000, "prompt_id": id, "node": "9"}),
        ))
    })
}

/// Runs against a server whose polls fail as `answer`; returns how the run ended.
async fn run_with_failing_polls(answer: Answer, socket: Socket) -> (Answer, String, Error) {
    let label = match &socket {
        Socket::Refused => "socket down",
        Socket::Silent => "socket up and silent",
        Socket::Frames { .. } => "socket up and streaming",
    };
    let server = Hostile::start(answer, answer, socket).await;
    let client = Client::builder(&server.url)
        .poll_interval(Duration::from_millis(20))
        .request_timeout(Duration::from_secs(5))
        .max_response_size(1 << 20)
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .unwrap();
    let options = RunOptions::default()
        .unreachable_timeout(Duration::from_secs(1))
        .connect_wait(Duration::from_secs(5));
    let exec = client
        .run(workflow(), options)
        .await
        .unwrap_or_else(|e| panic!("{answer:?} polls, {label}: {e}"));
    let ended = tokio::time::timeout(HANG_GUARD, exec.wait()).await;
    let outcome =
        ended.unwrap_or_else(|_| panic!("{answer:?} polls, {label}: the run never ended"));
    let err = outcome.expect_err("a run with failing polls succeeded");
    (answer, label.to_owned(), err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_polls_end_the_run_whatever_the_socket_says() {
    let mut runs = Vec::new();
    for answer in [
        Answer::Garbage,
        Answer::WrongType,
        Answer::Huge,
        Answer::Frozen,
    ] {
        for socket in [
            Socket::Refused,
            Socket::Silent,
            Socket::Frames {
                frames: progress_forever(),
                pace: Some(Duration::from_millis(10)),
            },
        ] {
            runs.push(run_with_failing_polls(answer, socket));
        }
    }
    for (answer, label, err) in join_all(runs).await {
        let Error::Unreachable { source, .. } = &err else {
            panic!("{answer:?} polls, {label}: {err:?}");
        };
        let fits = match answer {
            Answer::Garbage | Answer::WrongType => matches!(**source, Error::Decode { .. }),
            Answer::Huge => matches!(**source, Error::TooLarge { limit, .. } if limit == 1 << 20),
            _ => source.deadline() == Some(Deadline::Request),
        };
        assert!(fits, "{answer:?} polls, {label}: {source:?}");
        assert!(err.is_retryable(), "{err}");
    }
}

#[tokio::test]
async fn an_endless_answer_is_cut_off_at_the_limit_not_read_whole() {
    let server = Hostile::start(Answer::Huge, Answer::Huge, Socket::Refused).await;
    let client = Client::builder(&server.url)
        .max_response_size(1 << 20)
        .build()
        .unwrap();
    let err = client.queue().await.unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { limit, .. } if limit == 1 << 20),
        "{err:?}"
    );
    // The connection is dropped at the limit: the server could not send more than what
    // fits in the socket buffers on top of it.
    let sent = server.huge_bytes_sent();
    assert!(sent < 32 << 20, "{sent} of 100 MB sent");
}

#[tokio::test]
async fn a_lagging_run_polls_at_most_once_per_poll_interval() {
    const FLOOD: u64 = 20_000;
    let frames: common::hostile::Frames = Arc::new(|id, i| match i {
        0..FLOOD => Some(text(
            "progress",
            json!({"value": i, "max": FLOOD, "prompt_id": id, "node": "9"}),
        )),
        _ => success_end(id)
            .into_iter()
            .nth(usize::try_from(i - FLOOD).ok()?),
    });
    let server = Hostile::start(
        Answer::Running,
        Answer::Finished,
        Socket::Frames { frames, pace: None },
    )
    .await;
    // A subscription of 4 events lags all the time under the flood; an hour between polls
    // leaves room for none but the first.
    let client = Client::builder(&server.url)
        .event_capacity(4)
        .poll_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    assert!(client.wait_connected(Duration::from_secs(10)).await);
    let mut exec = client.run(workflow(), RunOptions::default()).await.unwrap();
    let mut lagged = 0;
    let read = async {
        while let Some(event) = exec.next_event().await {
            if matches!(event, Event::Lagged { .. }) {
                lagged += 1;
            }
        }
        exec.wait().await
    };
    let out = tokio::time::timeout(HANG_GUARD, read)
        .await
        .expect("the run never ended")
        .unwrap();
    assert_eq!(out.images().len(), 1);
    assert!(
        lagged > 0,
        "the subscription never lagged: the test proves nothing"
    );
    assert!(
        server.queue_requests() <= 1,
        "{} polls of /queue after {lagged} lags",
        server.queue_requests()
    );
}
