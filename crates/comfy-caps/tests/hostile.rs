//! Malformed and hostile `/object_info` bodies and workflows: typed errors, never a panic,
//! whatever the nesting or the string sizes.
#![allow(clippy::unwrap_used)]

mod support;

use comfy_caps::synthetic::SyntheticServer;
use comfy_caps::{Capabilities, Error, MAX_NAME_BYTES, Requirements};
use proptest::prelude::*;
use serde_json::json;

fn parse(body: &[u8]) -> Result<Capabilities, Error> {
    Capabilities::from_object_info(body)
}

#[test]
fn malformed_json_is_a_syntax_error() {
    for body in [
        &b""[..],
        b"{",
        b"{\"A\": {\"input\": {\"required\": {\"x\": [[\"a.safetensors\"",
        b"{\"A\": {}} trailing",
        b"{\"A\": {},}",
        b"not json",
        b"{\"A\": {\"description\": \"\xff\xfe\"}",
    ] {
        match parse(body) {
            Err(e @ Error::Json(_)) => assert!(e.is_syntax(), "{e}"),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(body)),
        }
    }
}

#[test]
fn a_top_level_that_is_not_an_object_is_named() {
    for (body, found) in [
        ("[]", "an array"),
        ("\"x\"", "a string"),
        ("null", "null"),
        ("3", "a number"),
        ("-3", "a number"),
        ("1.5", "a number"),
        ("true", "a boolean"),
    ] {
        match parse(body.as_bytes()) {
            Err(e @ Error::NotAnObject { .. }) => {
                assert!(matches!(e, Error::NotAnObject { found: f } if f == found));
                assert!(!e.is_syntax());
                assert_eq!(
                    e.to_string(),
                    format!("object_info must be a json object of node definitions, found {found}")
                );
            }
            other => panic!("{body}: {other:?}"),
        }
    }
}

#[test]
fn odd_shapes_inside_a_definition_are_skipped_not_judged() -> Result<(), Error> {
    let doc = json!({
        "NotAnObject": "text",
        "List": [1, 2, {"input": {}}],
        "Number": 3,
        "Null": null,
        "InputIsList": {"input": [1, 2]},
        "SectionIsString": {"input": {"required": "x", "optional": 5}},
        "SpecIsMap": {"input": {"required": {"ckpt_name": {"a.safetensors": 1}}}},
        "SpecIsString": {"input": {"required": {"ckpt_name": "COMBO"}}},
        "EmptySpec": {"input": {"required": {"ckpt_name": []}}},
        "HeadIsMap": {"input": {"required": {"ckpt_name": [{"options": ["a.safetensors"]}]}}},
        "OptionsNotList": {"input": {"required": {"ckpt_name": ["COMBO", {"options": "a.safetensors"}]}}},
        "ComboNoOptions": {"input": {"required": {"ckpt_name": ["COMBO"]}}},
        "OptionsIsList": {"input": {"required": {"ckpt_name": ["COMBO", ["a.safetensors"]]}}},
        "Good": {"input": {"required": {"ckpt_name": [["a.safetensors"]]}}}
    });
    let caps = parse(doc.to_string().as_bytes())?;
    assert_eq!(caps.class_count(), 14);
    assert_eq!(caps.combo_count(), 1);
    assert_eq!(
        caps.allows("Good", "ckpt_name", "a.safetensors"),
        Some(true)
    );
    for class in [
        "SpecIsMap",
        "SpecIsString",
        "EmptySpec",
        "HeadIsMap",
        "OptionsNotList",
    ] {
        assert_eq!(
            caps.allows(class, "ckpt_name", "a.safetensors"),
            None,
            "{class}"
        );
    }
    Ok(())
}

/// `depth` nested arrays around `inner`.
fn nested(depth: usize, inner: &str) -> String {
    format!("{}{inner}{}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn deep_nesting_is_skipped_or_refused_without_using_the_stack() {
    let depth = 1_000_000;
    // In skipped places (a tooltip, a choice, the rest of a spec) nesting is skipped in place.
    for spec in [
        format!("[\"INT\", {{\"tooltip\": {}}}]", nested(depth, "1")),
        format!(
            "[[\"a.safetensors\", {}]]",
            nested(depth, "\"b.safetensors\"")
        ),
        format!(
            "[\"COMBO\", {{\"options\": [\"a.safetensors\", {}]}}]",
            nested(depth, "")
        ),
        format!("[[\"a.safetensors\"], {{}}, {}]", nested(depth, "")),
    ] {
        let body = format!("{{\"A\": {{\"input\": {{\"required\": {{\"ckpt_name\": {spec}}}}}}}}}");
        let caps = parse(body.as_bytes()).unwrap();
        assert!(caps.has_class("A"));
        assert_ne!(caps.allows("A", "ckpt_name", "b.safetensors"), Some(true));
    }
    // Unclosed, or at the top level: an error.
    assert!(matches!(
        parse("[".repeat(depth).as_bytes()),
        Err(Error::NotAnObject { .. })
    ));
    let unclosed = format!("{{\"A\": {{\"description\": {}", "[".repeat(depth));
    assert!(matches!(parse(unclosed.as_bytes()), Err(Error::Json(_))));
    let objects = format!("{{\"A\": {}", "{\"a\": ".repeat(depth));
    assert!(matches!(parse(objects.as_bytes()), Err(Error::Json(_))));
}

#[test]
fn huge_strings_are_skipped_or_refused_by_length() {
    let huge = "x".repeat(20_000_000);
    // Skipped: a tooltip, a choice that is not a model file.
    let body = format!(
        "{{\"A\": {{\"description\": \"{huge}\", \"input\": {{\"required\": {{\"c\": [[\"{huge}\", \"a.pt\"]]}}}}}}}}"
    );
    let caps = parse(body.as_bytes()).unwrap();
    assert_eq!(caps.allows("A", "c", "a.pt"), Some(true));
    assert!(caps.heap_size() < 4096, "{}", caps.heap_size());

    let long = "y".repeat(MAX_NAME_BYTES + 1);
    let cases = [
        (format!("{{\"{long}\": {{}}}}"), "node class"),
        (
            format!("{{\"A\": {{\"input\": {{\"required\": {{\"{long}\": [[]]}}}}}}}}"),
            "input",
        ),
        (
            format!(
                "{{\"A\": {{\"input\": {{\"required\": {{\"c\": [[\"{long}.safetensors\"]]}}}}}}}}"
            ),
            "choice",
        ),
    ];
    for (body, kind) in cases {
        match parse(body.as_bytes()) {
            Err(Error::NameTooLong { what, len, limit }) => {
                assert_eq!((what, limit), (kind, MAX_NAME_BYTES));
                assert!(len > MAX_NAME_BYTES);
            }
            other => panic!("{kind}: {other:?}"),
        }
    }
    // An over-long input name of an input that is not a combo costs nothing and is fine.
    let body = format!("{{\"A\": {{\"input\": {{\"required\": {{\"{long}\": [\"INT\"]}}}}}}}}");
    assert!(parse(body.as_bytes()).is_ok());
}

#[test]
fn errors_do_not_quote_long_input() {
    let secret = "token=abcdef0123456789";
    let body = format!("{{\"{secret}{}\": {{}}}}", "z".repeat(MAX_NAME_BYTES));
    let e = parse(body.as_bytes()).unwrap_err();
    assert!(!e.to_string().contains(secret), "{e}");
}

#[test]
fn a_workflow_that_is_not_an_object_is_a_typed_error() {
    for (workflow, found) in [
        (json!([]), "an array"),
        (json!("x"), "a string"),
        (json!(null), "null"),
        (json!(1), "a number"),
        (json!(false), "a boolean"),
    ] {
        match Requirements::of(&workflow) {
            Err(Error::WorkflowNotAnObject { found: f }) => assert_eq!(f, found),
            other => panic!("{workflow}: {other:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random bytes never panic.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes);
    }

    /// A real document cut, or with one byte changed, never panics; cut documents are errors.
    #[test]
    fn damaged_documents_never_panic(cut in 0usize..20_000, at in 0usize..20_000, byte in any::<u8>()) {
        let doc = SyntheticServer { classes: 12, checkpoints: 5, loras: 5, vaes: 2 }.object_info();
        let bytes = doc.as_bytes();
        let cut = cut % bytes.len();
        prop_assert!(parse(&bytes[..cut]).is_err());
        let mut changed = bytes.to_vec();
        let at = at % changed.len();
        changed[at] = byte;
        let _ = parse(&changed);
    }
}
