//! Hashing from text (no `Value`) must agree with hashing the parsed `Value`: the same canonical
//! bytes, or the same error with the same message (line and column included). Generated JSON
//! covers workflow shapes, repeated keys, escapes, odd numbers, deep and wide nesting, and
//! mutated (mostly malformed) text.

use proptest::prelude::*;
use serde_json::Value;
use workflow_hash::{Error, WorkflowHash, canonical_json, canonical_json_from_text};

/// A JSON document as written, so repeated keys and number spellings survive.
#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    Number(String),
    Str(String, bool),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn render(&self, out: &mut String, spaced: bool) {
        let gap = if spaced { " " } else { "" };
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::Number(n) => out.push_str(n),
            Self::Str(s, escaped) => render_string(out, s, *escaped),
            Self::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                        out.push_str(gap);
                    }
                    item.render(out, spaced);
                }
                out.push(']');
            }
            Self::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(gap);
                    // Every third key is spelled with escapes.
                    render_string(out, key, i % 3 == 2);
                    out.push(':');
                    out.push_str(gap);
                    value.render(out, spaced);
                }
                out.push('}');
            }
        }
    }

    fn text(&self, spaced: bool) -> String {
        let mut out = String::new();
        self.render(&mut out, spaced);
        out
    }
}

/// Writes `s` as a JSON string; `escaped` spells ASCII letters and `/` as `\u00xx` and `\/`.
fn render_string(out: &mut String, s: &str, escaped: bool) {
    let plain = serde_json::to_string(s).expect("string");
    if !escaped {
        out.push_str(&plain);
        return;
    }
    for c in plain.chars() {
        match c {
            'a'..='z' | '_' => out.push_str(&format!("\\u{:04x}", c as u32)),
            '/' => out.push_str("\\/"),
            _ => out.push(c),
        }
    }
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "a", "b", "ab", "0", "1", "2", "10", "01", "-1", "4294967294", "4294967295",
            "__proto__", "class_type", "inputs", "_meta", "", "é", "😀", "\u{ff01}", "a\"b",
            "\u{1}", "ckpt_name", "model",
        ])
        .prop_map(str::to_owned),
        1 => "\\PC{0,4}",
        1 => "[0-9]{1,3}",
    ]
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "0",
            "-0",
            "1",
            "-1",
            "1.0",
            "-0.0",
            "1e21",
            "1E+2",
            "1e-7",
            "0.1",
            "2.5e-300",
            "9007199254740992",
            "9007199254740993",
            "-9007199254740993",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775809",
            "123456789012345678901234",
            "1e400",
            "-1e400",
            "1e-400",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
    ]
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z ]{0,12}",
        "[a-z0-9_/]{1,8}\\.(safetensors|ckpt|pt|gguf|YAML|png)",
        "\\PC{0,6}",
        Just("tab\there \"quoted\" back\\slash \u{1f} \u{7f} \u{2028}".to_owned()),
    ]
}

fn scalar() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        number().prop_map(Json::Number),
        (string(), any::<bool>()).prop_map(|(s, e)| Json::Str(s, e)),
    ]
}

/// Any JSON, nested up to `depth` containers, with up to `width` members each.
fn json(depth: u32, width: usize) -> impl Strategy<Value = Json> {
    scalar().prop_recursive(depth, 256, width as u32, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..width).prop_map(Json::Array),
            prop::collection::vec((key(), inner), 0..width).prop_map(Json::Object),
        ]
    })
}

/// An edge `["id", slot]`, the commonest input.
fn edge() -> impl Strategy<Value = Json> {
    ("[0-9]{1,2}", 0u8..12).prop_map(|(id, slot)| {
        Json::Array(vec![Json::Str(id, false), Json::Number(slot.to_string())])
    })
}

fn inputs() -> impl Strategy<Value = Json> {
    let value = prop_oneof![3 => scalar(), 2 => edge(), 1 => json(3, 4)];
    prop_oneof![
        6 => prop::collection::vec((key(), value.clone()), 0..8).prop_map(Json::Object),
        1 => prop::collection::vec(value, 0..4).prop_map(Json::Array),
        1 => scalar(),
    ]
}

fn node() -> impl Strategy<Value = Json> {
    let field = prop_oneof![
        3 => (Just("class_type".to_owned()), prop_oneof![4 => "[A-Z][a-zA-Z]{0,8}".prop_map(|s| Json::Str(s, false)), 1 => json(2, 3)]),
        3 => (Just("inputs".to_owned()), inputs()),
        1 => (Just("_meta".to_owned()), json(2, 3)),
        1 => (key(), json(1, 3)),
    ];
    prop_oneof![
        8 => prop::collection::vec(field, 0..5).prop_map(Json::Object),
        1 => json(2, 3),
    ]
}

fn workflow() -> impl Strategy<Value = Json> {
    prop_oneof![
        12 => prop::collection::vec((key(), node()), 0..8).prop_map(Json::Object),
        1 => json(2, 4),
    ]
}

/// The canonical text, or the error message, through a parsed `Value`.
fn via_value(text: &[u8]) -> Result<String, String> {
    let value: Value = serde_json::from_slice(text).map_err(|e| Error::Json(e).to_string())?;
    canonical_json(&value).map_err(|e| e.to_string())
}

/// The canonical text, or the error message, straight from the text.
fn via_text(text: &[u8]) -> Result<String, String> {
    canonical_json_from_text(text).map_err(|e| e.to_string())
}

fn same_result(text: &[u8]) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        via_text(text),
        via_value(text),
        "{}",
        String::from_utf8_lossy(text)
    );
    let hashed = WorkflowHash::of_json(text).map_err(|e| e.to_string());
    let from_value = serde_json::from_slice::<Value>(text)
        .map_err(|e| Error::Json(e).to_string())
        .and_then(|v| WorkflowHash::of(&v).map_err(|e| e.to_string()));
    prop_assert_eq!(hashed, from_value);
    Ok(())
}

/// Breaks `text`: cut it, or insert or drop a byte.
fn mutate(text: &str, at: usize, how: u8, byte: u8) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    let at = at % (bytes.len() + 1);
    match how % 3 {
        0 => bytes.truncate(at),
        1 => bytes.insert(at, byte),
        _ if at < bytes.len() => {
            bytes.remove(at);
        }
        _ => {}
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn workflows_agree(w in workflow(), spaced in any::<bool>()) {
        same_result(w.text(spaced).as_bytes())?;
    }

    #[test]
    fn any_json_agrees(j in json(6, 6)) {
        same_result(j.text(false).as_bytes())?;
    }

    #[test]
    fn mutated_text_agrees(
        w in workflow(),
        at in any::<usize>(),
        how in any::<u8>(),
        byte in prop::sample::select(b"{}[],:\"\\x0 -.e\x01\xff".to_vec()),
    ) {
        same_result(&mutate(&w.text(true), at, how, byte))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Nesting around serde_json's limit of 128: inside inputs, `class_type`, `_meta` and
    /// non-object nodes, in arrays and objects.
    #[test]
    fn deep_nesting_agrees(levels in 110usize..140, objects in any::<bool>(), place in 0u8..4) {
        let (open, close) = if objects { ("{\"k\":", "}") } else { ("[", "]") };
        let deep = format!("{}1{}", open.repeat(levels), close.repeat(levels));
        let text = match place {
            0 => format!(r#"{{"1":{{"class_type":"A","inputs":{{"x":{deep}}}}}}}"#),
            1 => format!(r#"{{"1":{{"class_type":{deep}}}}}"#),
            2 => format!(r#"{{"1":{{"_meta":{deep},"inputs":{{}}}}}}"#),
            _ => format!(r#"{{"1":{deep}}}"#),
        };
        same_result(text.as_bytes())?;
    }

    /// Objects and arrays with hundreds of members (repeated keys among them).
    #[test]
    fn wide_objects_agree(
        keys in prop_oneof![
            prop::collection::vec(key(), 100..400),
            // No array-index keys: only repeated keys make a verbatim object change order.
            prop::collection::vec("[a-c]{1,2}", 9..60),
            prop::collection::vec("[a-z]{3}", 9..60),
        ],
        inside_array in any::<bool>(),
    ) {
        let members: Vec<(String, Json)> = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, Json::Number(i.to_string())))
            .collect();
        let object = Json::Object(members);
        let value = if inside_array { Json::Array(vec![object]) } else { object };
        let workflow = Json::Object(vec![(
            "1".to_owned(),
            Json::Object(vec![("inputs".to_owned(), Json::Object(vec![("x".to_owned(), value)]))]),
        )]);
        same_result(workflow.text(false).as_bytes())?;
    }
}

#[test]
fn repeated_keys_count_with_their_last_value() {
    let text = r#"{
        "2": {"class_type": "Old", "inputs": {}},
        "1": {"class_type": "A", "class_type": "B", "inputs": {"x": 1, "x": "m.ckpt"}, "inputs": {"y": ["1", 0], "y": true}},
        "2": {"class_type": "New", "inputs": {"list": [{"b": 1, "a": 2, "b": 3, "7": 4}]}}
    }"#;
    let expected = r#"{"1":{"class_type":"B","inputs":{"y":"boolean"}},"2":{"class_type":"New","inputs":{"list":[{"7":4,"b":3,"a":2}]}}}"#;
    assert_eq!(canonical_json_from_text(text).expect("text"), expected);
    assert_eq!(via_value(text.as_bytes()).as_deref(), Ok(expected));
}

#[test]
fn escaped_keys_and_proto_are_handled_like_the_value_path() {
    let text = r#"{"__proto__": {"class_type": "P"}, "\u0031": {"class\u005ftype": "A",
        "inp\u0075ts": {"__proto__": 1, "b\/c": "x", "\u00e9": "m.pt"}}}"#;
    let expected = r#"{"1":{"class_type":"A","inputs":{"b/c":"","é":"m.pt"}}}"#;
    assert_eq!(canonical_json_from_text(text).expect("text"), expected);
    assert_eq!(via_value(text.as_bytes()).as_deref(), Ok(expected));
}

#[test]
fn syntax_errors_match_the_value_path_exactly() {
    for text in [
        "",
        "{",
        "{\"1\": {\"class_type\": }}",
        "{\"1\": 1} x",
        "{\"1\": {\"_meta\": 1e400}}",
        "{\"1\": {\"_meta\": \"\\ud800\"}}",
        "{\"1\": {\"_meta\": \"\\x\"}}",
        "{\"1\": {\"inputs\": [1,]}}",
        "{1: 2}",
        "{\"1\": \"a\u{1}b\"}",
    ] {
        let from_text = WorkflowHash::of_json(text).expect_err(text);
        assert!(matches!(from_text, Error::Json(_)), "{text}: {from_text:?}");
        assert_eq!(
            Err(from_text.to_string()),
            via_value(text.as_bytes()),
            "{text}"
        );
    }
    let bytes = b"{\"1\": {\"class_type\": \"\xff\"}}";
    assert_eq!(via_text(bytes), via_value(bytes));
    assert!(via_text(bytes).is_err());
}

#[test]
fn hundred_thousand_deep_text_fails_like_the_value_path() {
    for (open, close) in [("[", "]"), ("{\"k\":", "}")] {
        let text = format!(
            "{{\"1\":{{\"inputs\":{{\"x\":{}{}}}}}}}",
            open.repeat(100_000),
            close.repeat(100_000)
        );
        let err = WorkflowHash::of_json(&text).expect_err("too deep");
        assert!(err.to_string().contains("recursion limit"), "{err}");
        assert_eq!(Err(err.to_string()), via_value(text.as_bytes()));
    }
}

#[test]
fn non_objects_at_the_top_are_not_workflows() {
    for text in ["[1, {\"a\": 2}]", "\"x\"", "1.5", "true", "null"] {
        let err = WorkflowHash::of_json(text).expect_err(text);
        assert!(matches!(err, Error::NotAnObject { .. }), "{text}: {err:?}");
        assert_eq!(Err(err.to_string()), via_value(text.as_bytes()));
    }
    // Syntax errors come first, as when parsing a `Value`.
    let err = WorkflowHash::of_json("[1, 2").expect_err("eof");
    assert!(matches!(err, Error::Json(_)), "{err:?}");
}

#[test]
fn reader_hashes_like_text() {
    let text = r#"{"1": {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}}}"#;
    assert_eq!(
        WorkflowHash::of_reader(text.as_bytes()).expect("reader"),
        WorkflowHash::of_json(text).expect("text")
    );
}
