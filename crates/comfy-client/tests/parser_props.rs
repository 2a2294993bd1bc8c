//! Property tests of the frame parser: hostile bytes never panic; valid frames round-trip.
#![allow(clippy::unwrap_used)]

use comfy_client::{
    Event, Executing, ExecutionStart, ImageFormat, NodeText, Preview, PreviewMetadata, Progress,
    UnknownBinary, UnknownMessage,
};
use proptest::prelude::*;
use serde_json::json;

fn opt_id() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-z0-9-]{1,12}")
}

fn text_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (opt_id(), opt_id(), opt_id()).prop_map(|(node, display_node, prompt_id)| {
            Event::Executing(Executing {
                node,
                display_node,
                prompt_id,
                extra: Default::default(),
            })
        }),
        ("[a-z0-9-]{1,12}", proptest::option::of(any::<u64>())).prop_map(|(prompt_id, ts)| {
            Event::ExecutionStart(ExecutionStart {
                prompt_id,
                timestamp: ts,
                extra: Default::default(),
            })
        }),
        (0u32..10_000, 1u32..10_000, opt_id(), opt_id(), "[a-z]{0,6}").prop_map(
            |(value, max, prompt_id, node, extra_key)| {
                let mut extra = serde_json::Map::new();
                if !extra_key.is_empty() {
                    extra.insert(format!("x_{extra_key}"), json!(value));
                }
                Event::Progress(Progress {
                    value: f64::from(value),
                    max: f64::from(max),
                    prompt_id,
                    node,
                    extra,
                })
            }
        ),
        ("[a-z_]{1,16}", any::<i64>()).prop_filter_map("known type", |(kind, n)| {
            let known = [
                "status",
                "executing",
                "progress",
                "executed",
                "notification",
                "execution_start",
                "execution_cached",
                "execution_success",
                "execution_error",
                "execution_interrupted",
                "progress_state",
                "feature_flags",
            ];
            (!known.contains(&kind.as_str())).then(|| {
                Event::Unknown(UnknownMessage {
                    kind,
                    data: json!({ "n": n }),
                })
            })
        }),
    ]
}

fn binary_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (
            prop_oneof![Just(1u32), Just(2), Just(3), 4u32..100],
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(code, image)| {
                let format = match code {
                    1 => ImageFormat::Jpeg,
                    2 => ImageFormat::Png,
                    3 => ImageFormat::Webp,
                    c => ImageFormat::Code(c),
                };
                Event::Preview(Preview {
                    format,
                    metadata: None,
                    image: image.into(),
                    prompt_id: None,
                    node_id: None,
                })
            }),
        (
            opt_id(),
            opt_id(),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(node_id, prompt_id, image)| {
                let metadata = PreviewMetadata {
                    node_id: node_id.clone(),
                    prompt_id: prompt_id.clone(),
                    image_type: Some("image/jpeg".into()),
                    ..Default::default()
                };
                Event::Preview(Preview {
                    format: ImageFormat::Jpeg,
                    metadata: Some(metadata),
                    image: image.into(),
                    prompt_id,
                    node_id,
                })
            }),
        ("[0-9a-z:.]{0,10}", "\\PC{0,40}").prop_map(|(node_id, text)| Event::Text(NodeText {
            node_id,
            text,
            prompt_id: None,
        })),
        (5u32.., proptest::collection::vec(any::<u8>(), 0..32)).prop_map(|(event_type, p)| {
            Event::UnknownBinary(UnknownBinary {
                event_type,
                payload: p.into(),
            })
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_binary_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Event::parse_binary(bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = Event::parse_text(&text);
    }

    #[test]
    fn near_valid_text_never_panics(kind in "[a-z_]{1,24}", data in any::<i64>(), wrap in 0..4u8) {
        let data = match wrap {
            0 => json!(data),
            1 => json!({ "prompt_id": data, "node": [data] }),
            2 => json!({ "nodes": { "1": data } }),
            _ => json!(null),
        };
        let text = json!({ "type": kind, "data": data }).to_string();
        let _ = Event::parse_text(&text);
    }

    #[test]
    fn truncated_valid_binary_frames_give_errors_not_panics(event in binary_event(), cut in 0usize..80) {
        let frame = event.to_binary().unwrap();
        let cut = cut.min(frame.len());
        let _ = Event::parse_binary(frame[..cut].to_vec());
    }

    #[test]
    fn valid_text_frames_round_trip(event in text_event()) {
        let text = event.to_text().unwrap();
        prop_assert_eq!(Event::parse_text(&text).unwrap(), event);
    }

    #[test]
    fn valid_binary_frames_round_trip(event in binary_event()) {
        let frame = event.to_binary().unwrap();
        prop_assert_eq!(Event::parse_binary(frame).unwrap(), event);
    }
}

#[test]
fn malformed_known_frames_are_decode_errors() {
    for bad in [
        r#"{"type":"executing","data":{"node":5}}"#,
        r#"{"type":"progress","data":{"value":"x","max":1}}"#,
        r#"{"type":"execution_start","data":{}}"#,
        r#"{"data":{}}"#,
        "not json",
    ] {
        let err = Event::parse_text(bad).unwrap_err();
        assert!(
            matches!(err, comfy_client::Error::Decode { .. }),
            "{bad}: {err}"
        );
    }
    for bad in [
        &[0u8, 0, 0][..],
        &[0, 0, 0, 1, 0, 0][..],
        &[0, 0, 0, 3, 0, 0, 0, 9, b'a'][..],
        &[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff][..],
        &[0, 0, 0, 4, 0, 0, 0, 2, b'{', b'x'][..],
        &[0, 0, 0, 3, 0, 0, 0, 1, 0xff][..],
    ] {
        assert!(Event::parse_binary(bad.to_vec()).is_err(), "{bad:?}");
    }
}

#[test]
fn frames_parse_whatever_the_order_escapes_or_missing_data() {
    // `data` before `type`, and an escaped `type`: the same event as the plain frame.
    let plain = Event::parse_text(r#"{"type":"executing","data":{"node":"5","prompt_id":"p"}}"#)
        .unwrap_or_else(|e| panic!("plain: {e}"));
    for frame in [
        r#"{"data":{"node":"5","prompt_id":"p"},"type":"executing"}"#,
        r#"{"type":"exec\u0075ting","data":{"node":"5","prompt_id":"p"}}"#,
    ] {
        let event = Event::parse_text(frame).unwrap_or_else(|e| panic!("{frame}: {e}"));
        assert_eq!(event, plain, "{frame}");
    }
    // An unknown type keeps its (escaped) name and data; without data, null.
    let Event::Unknown(unknown) = Event::parse_text(r#"{"type":"cr\u00e8me","data":[1,{"a":2}]}"#)
        .unwrap_or_else(|e| panic!("unknown: {e}"))
    else {
        panic!("not an unknown message");
    };
    assert_eq!(unknown.kind, "crème");
    assert_eq!(unknown.data, serde_json::json!([1, {"a": 2}]));
    let Event::Unknown(bare) =
        Event::parse_text(r#"{"type":"bare"}"#).unwrap_or_else(|e| panic!("bare: {e}"))
    else {
        panic!("not an unknown message");
    };
    assert_eq!(bare.data, serde_json::Value::Null);
    // A known type without data is malformed, as before.
    assert!(Event::parse_text(r#"{"type":"executing"}"#).is_err());
}
