//! Every websocket frame recorded from a real ComfyUI server parses into a typed event
//! (never "unknown" for a known type), loses no field, and re-encodes to the same event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use comfy_client::{Event, ImageFormat};
use serde_json::Value;

fn frames() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (name, path) in common::transcripts("jsonl") {
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            if v["dir"] == "in" {
                out.push((name.clone(), v));
            }
        }
    }
    out
}

#[test]
fn every_text_frame_is_typed_lossless_and_round_trips() {
    let mut kinds = std::collections::BTreeSet::new();
    let mut n = 0;
    for (name, frame) in frames().into_iter().filter(|(_, f)| f["frame"] == "text") {
        let raw = frame["raw"].as_str().unwrap();
        let event = Event::parse_text(raw).unwrap_or_else(|e| panic!("{name}: {e}: {raw}"));
        assert!(
            !matches!(event, Event::Unknown(_)),
            "{name}: unknown for {raw}"
        );
        let text = event.to_text().unwrap();
        let ours: Value = serde_json::from_str(&text).unwrap();
        if let Err(diff) = common::lossless(&frame["json"], &ours, "$") {
            panic!("{name}: lost data: {diff}");
        }
        assert_eq!(Event::parse_text(&text).unwrap(), event, "{name}");
        kinds.insert(frame["json"]["type"].as_str().unwrap().to_owned());
        n += 1;
    }
    assert!(n > 150, "{n}");
    // Every message type the recordings contain was seen (and typed).
    for kind in [
        "status",
        "execution_start",
        "execution_cached",
        "executing",
        "progress",
        "progress_state",
        "executed",
        "execution_success",
        "execution_error",
        "execution_interrupted",
        "feature_flags",
    ] {
        assert!(kinds.contains(kind), "{kind} missing from the recordings");
    }
}

#[test]
fn every_binary_frame_is_typed_and_round_trips() {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut seen = [0usize; 5];
    for (name, frame) in frames().into_iter().filter(|(_, f)| f["frame"] == "binary") {
        let bytes = b64.decode(frame["b64"].as_str().unwrap()).unwrap();
        assert_eq!(bytes.len() as u64, frame["len"].as_u64().unwrap());
        let decoded = &frame["decoded"];
        let event = Event::parse_binary(bytes.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        match &event {
            Event::Text(t) => {
                assert_eq!(t.node_id, decoded["node_id"].as_str().unwrap());
                assert_eq!(t.text, decoded["text"].as_str().unwrap());
                seen[3] += 1;
            }
            Event::Preview(p) if p.metadata.is_none() => {
                assert_eq!(decoded["name"], "PREVIEW_IMAGE");
                assert_eq!(p.format, ImageFormat::Png);
                assert_eq!(p.image.len() as u64, decoded["image_len"].as_u64().unwrap());
                assert!(p.image.starts_with(b"\x89PNG"));
                seen[1] += 1;
            }
            Event::Preview(p) => {
                let meta = p.metadata.as_ref().unwrap();
                assert_eq!(
                    meta.prompt_id.as_deref(),
                    decoded["metadata"]["prompt_id"].as_str()
                );
                assert_eq!(
                    meta.node_id.as_deref(),
                    decoded["metadata"]["node_id"].as_str()
                );
                assert_eq!(p.prompt_id, meta.prompt_id);
                assert_eq!(p.format.mime(), Some("image/png"));
                assert_eq!(p.image.len() as u64, decoded["image_len"].as_u64().unwrap());
                seen[4] += 1;
            }
            other => panic!("{name}: unexpected {other:?}"),
        }
        let again = Event::parse_binary(event.to_binary().unwrap()).unwrap();
        assert_eq!(again, event, "{name}");
    }
    assert!(seen[1] > 0 && seen[3] > 0 && seen[4] > 0, "{seen:?}");
}

/// The 0.8 websocket sessions (`comfyui-0.8/ws-*.json`): every text message is typed and
/// lossless, and the submission each session made decodes too.
#[test]
fn every_0_8_message_is_typed_and_lossless() {
    let dir = common::fixtures_dir().join("comfyui-0.8");
    let mut sessions: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("ws-") && n.ends_with(".json"))
        })
        .collect();
    sessions.sort();
    assert_eq!(sessions.len(), 7);
    let (mut texts, mut binaries) = (0, 0);
    for path in sessions {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let session: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for message in session["ws"].as_array().unwrap() {
            if message["binary"] == true {
                // Only the head of a binary frame is recorded: its type is what can be checked.
                assert!(
                    matches!(message["event_type"].as_u64(), Some(1 | 3 | 4)),
                    "{name}"
                );
                binaries += 1;
                continue;
            }
            let raw = message.to_string();
            let event = Event::parse_text(&raw).unwrap_or_else(|e| panic!("{name}: {e}: {raw}"));
            assert!(!matches!(event, Event::Unknown(_)), "{name}: unknown {raw}");
            let ours: Value = serde_json::from_str(&event.to_text().unwrap()).unwrap();
            if let Err(diff) = common::lossless(message, &ours, "$") {
                panic!("{name}: lost data: {diff}");
            }
            texts += 1;
        }
        let answer = &session["response"]["body"];
        match session["response"]["status"].as_u64() {
            Some(200) => {
                let accepted: comfy_client::PromptResponse =
                    serde_json::from_value(answer.clone()).unwrap();
                assert!(!accepted.prompt_id.is_empty(), "{name}");
            }
            _ => {
                let rejected: comfy_client::ValidationError =
                    serde_json::from_value(answer.clone()).unwrap();
                assert!(rejected.is_missing_node_class(), "{name}");
            }
        }
    }
    assert!(
        texts > 80 && binaries == 2,
        "{texts} texts, {binaries} binaries"
    );
}
