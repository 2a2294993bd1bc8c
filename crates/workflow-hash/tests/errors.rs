//! Bad input gives typed errors with position or path, never a panic or a stack overflow.

use serde_json::{Value, json};
use workflow_hash::{Error, JsonKind, MAX_DEPTH, WorkflowHash, canonical_json, diff, validate};

/// Drops a value iteratively (serde_json's own drop recurses and would overflow the stack on
/// the 100 000-deep values built here).
fn dismantle(value: Value) {
    let mut stack = vec![value];
    while let Some(mut v) = stack.pop() {
        match &mut v {
            Value::Array(items) => stack.append(items),
            Value::Object(map) => stack.extend(std::mem::take(map).into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// Owns a value and dismantles it iteratively on drop, also when an assertion panics.
struct Guard(Value);

impl Drop for Guard {
    fn drop(&mut self) {
        dismantle(self.0.take());
    }
}

fn deep_array(levels: usize) -> Value {
    let mut v = Value::Null;
    for _ in 0..levels {
        v = Value::Array(vec![v]);
    }
    v
}

fn deep_object(levels: usize) -> Value {
    let mut v = Value::Null;
    for _ in 0..levels {
        let mut map = serde_json::Map::new();
        map.insert("k".to_owned(), v);
        v = Value::Object(map);
    }
    v
}

#[test]
fn invalid_json_reports_line_and_column() {
    let err = WorkflowHash::of_json("{\n  \"1\": {\"class_type\": }\n}").expect_err("invalid");
    assert!(matches!(err, Error::Json(_)), "{err:?}");
    assert!(err.is_syntax());
    assert_eq!(err.line(), Some(2));
    assert_eq!(err.column(), Some(23));
    assert!(
        err.to_string().starts_with("invalid workflow json: "),
        "{err}"
    );
    assert!(err.to_string().contains("line 2 column 23"), "{err}");
}

#[test]
fn top_level_must_be_an_object() {
    for (text, kind) in [
        ("[]", JsonKind::Array),
        ("\"x\"", JsonKind::String),
        ("1.5", JsonKind::Number),
        ("true", JsonKind::Boolean),
        ("null", JsonKind::Null),
    ] {
        let err = WorkflowHash::of_json(text).expect_err(text);
        assert!(
            matches!(err, Error::NotAnObject { found } if found == kind),
            "{text}: {err:?}"
        );
        assert!(err.is_structure());
        assert_eq!(
            err.to_string(),
            format!("workflow must be a json object of nodes, found {kind}")
        );
        let value: Value = serde_json::from_str(text).expect("json");
        assert!(matches!(
            canonical_json(&value),
            Err(Error::NotAnObject { .. })
        ));
        assert!(matches!(
            diff(&value, &json!({})),
            Err(Error::NotAnObject { .. })
        ));
    }
}

#[test]
fn non_object_nodes_are_hashed_like_comfyui_node_but_rejected_by_validate() {
    let workflow = json!({"1": {"class_type": "A", "inputs": {}}, "2": [1, 2], "3": null});
    assert_eq!(
        canonical_json(&workflow).expect("tolerated"),
        r#"{"1":{"class_type":"A","inputs":{}},"2":[1,2],"3":null}"#
    );
    let err = validate(&workflow).expect_err("strict");
    assert!(
        matches!(&err, Error::NodeNotObject { node, found: JsonKind::Array } if node == "2"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "node \"2\" must be a json object, found array"
    );
    validate(&json!({"1": {"class_type": "A"}})).expect("valid workflow");
}

#[test]
fn io_errors_are_typed() {
    struct Broken;
    impl std::io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }
    let err = WorkflowHash::of_reader(Broken).expect_err("io");
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    assert_eq!(err.to_string(), "failed to read workflow: disk on fire");
    assert_eq!(err.line(), None);
}

#[test]
fn deeply_nested_text_is_a_json_error_not_a_crash() {
    let text = format!(
        "{{\"1\":{{\"inputs\":{{\"x\":{}{}}}}}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let err = WorkflowHash::of_json(text).expect_err("too deep");
    assert!(matches!(err, Error::Json(_)), "{err:?}");
    assert!(err.to_string().contains("recursion limit"), "{err}");
}

#[test]
fn hundred_thousand_deep_array_built_in_code_is_rejected_with_its_path() {
    let workflow = json!({"7": {"class_type": "K", "inputs": {"a/b": Value::Null}}});
    let mut workflow = workflow;
    workflow["7"]["inputs"]["a/b"] = deep_array(100_000);
    let err = WorkflowHash::of(&workflow).expect_err("too deep");
    match &err {
        Error::TooDeep {
            node,
            pointer,
            limit,
        } => {
            assert_eq!(node, "7");
            assert_eq!(*limit, MAX_DEPTH);
            // Workflow (1) > node (2) > inputs (3) > array levels 4..=128, then level 129.
            let expected = format!("/7/inputs/a~1b{}", "/0".repeat(MAX_DEPTH - 3));
            assert_eq!(pointer, &expected);
        }
        other => panic!("expected TooDeep, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("workflow nesting exceeds 128 levels in node \"7\" at /7/inputs/a~1b/0/0")
    );
    assert!(matches!(
        canonical_json(&workflow),
        Err(Error::TooDeep { .. })
    ));
    assert!(matches!(validate(&workflow), Err(Error::TooDeep { .. })));
    assert!(matches!(
        diff(&json!({}), &workflow),
        Err(Error::TooDeep { .. })
    ));
    dismantle(workflow);
}

#[test]
fn deep_values_in_inputs_class_type_and_entries_are_rejected() {
    for (node, pointer_prefix) in [
        (json!({"inputs": {"x": Value::Null}}), "/n/inputs/x/k/k"),
        (json!({"class_type": Value::Null}), "/n/class_type/k/k"),
        (Value::Null, "/n/0/0"),
    ] {
        let mut workflow = json!({"n": node});
        match pointer_prefix {
            "/n/inputs/x/k/k" => workflow["n"]["inputs"]["x"] = deep_object(100_000),
            "/n/class_type/k/k" => workflow["n"]["class_type"] = deep_object(100_000),
            // A node entry that is not an object is hashed verbatim, so it is walked too.
            _ => workflow["n"] = deep_array(100_000),
        }
        let workflow = Guard(workflow);
        let err = WorkflowHash::of(&workflow.0).expect_err(pointer_prefix);
        let Error::TooDeep { pointer, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(pointer.starts_with(pointer_prefix), "{pointer}");
        assert_eq!(pointer.matches('/').count(), MAX_DEPTH, "{pointer}");
    }
}

#[test]
fn nesting_up_to_the_limit_is_accepted_and_text_limit_is_within_it() {
    // 127 levels is the most serde_json parses from text; it must hash.
    let levels_in_input = 127 - 3;
    let text = format!(
        "{{\"1\":{{\"inputs\":{{\"x\":{}{}}}}}}}",
        "[".repeat(levels_in_input),
        "]".repeat(levels_in_input)
    );
    WorkflowHash::of_json(&text).expect("127 levels parse and hash");
    let mut workflow = json!({"1": {"inputs": {"x": Value::Null}}});
    workflow["1"]["inputs"]["x"] = deep_array(MAX_DEPTH - 3);
    WorkflowHash::of(&workflow).expect("exactly MAX_DEPTH levels");
    workflow["1"]["inputs"]["x"] = deep_array(MAX_DEPTH - 2);
    assert!(matches!(
        WorkflowHash::of(&workflow),
        Err(Error::TooDeep { .. })
    ));
}

#[test]
fn deep_volatile_parts_are_ignored_without_recursion() {
    let mut workflow = json!({"1": {"class_type": "A", "inputs": {}, "_meta": Value::Null}});
    workflow["1"]["_meta"] = deep_array(100_000);
    let plain = json!({"1": {"class_type": "A", "inputs": {}}});
    assert_eq!(
        WorkflowHash::of(&workflow).expect("meta ignored"),
        WorkflowHash::of(&plain).expect("plain")
    );
    dismantle(workflow);
}
