//! `WorkflowHash` as a value: hex text, parsing errors, serde, ordering.

use std::collections::HashSet;

use workflow_hash::{Error, WorkflowHash};

fn sample() -> WorkflowHash {
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(5);
    }
    WorkflowHash::from_bytes(bytes)
}

#[test]
fn display_is_lowercase_hex_of_the_bytes_and_parses_back() {
    let hash = sample();
    let hex = hash.to_string();
    let expected: String = hash.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, expected);
    assert_eq!(hex.parse::<WorkflowHash>().expect("parse"), hash);
    assert_eq!(
        hex.to_uppercase()
            .parse::<WorkflowHash>()
            .expect("uppercase"),
        hash
    );
    assert_eq!(format!("{hash:?}"), format!("WorkflowHash({hex})"));
    assert_eq!(hash.short().to_string(), hex[..12]);
}

#[test]
fn parse_errors_are_typed() {
    let err = "abc".parse::<WorkflowHash>().expect_err("short");
    assert!(matches!(err, Error::HexLength { found: 3 }), "{err:?}");
    assert!(err.is_hex());
    let mut bad = sample().to_string();
    bad.replace_range(10..11, "g");
    let err = bad.parse::<WorkflowHash>().expect_err("bad digit");
    assert!(matches!(err, Error::HexDigit { position: 10 }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "workflow hash has a non-hex character at position 10"
    );
    // Multi-byte characters never panic on slicing.
    let err = "é"
        .repeat(32)
        .parse::<WorkflowHash>()
        .expect_err("non ascii");
    assert!(matches!(err, Error::HexDigit { position: 0 }), "{err:?}");
    let err = "é"
        .repeat(40)
        .parse::<WorkflowHash>()
        .expect_err("non ascii");
    assert!(matches!(err, Error::HexLength { found: 40 }), "{err:?}");
}

#[test]
fn serde_uses_the_hex_string() {
    let hash = sample();
    let json = serde_json::to_string(&hash).expect("serialize");
    assert_eq!(json, format!("\"{hash}\""));
    assert_eq!(
        serde_json::from_str::<WorkflowHash>(&json).expect("deserialize"),
        hash
    );
    let err = serde_json::from_str::<WorkflowHash>("\"zz\"").expect_err("bad");
    assert!(err.to_string().contains("64 hex characters"), "{err}");
    assert!(serde_json::from_str::<WorkflowHash>("42").is_err());
}

#[test]
fn ordering_and_hashing_follow_the_bytes() {
    let low = WorkflowHash::from_bytes([0; 32]);
    let mut high_bytes = [0; 32];
    high_bytes[0] = 1;
    let high = WorkflowHash::from(high_bytes);
    assert!(low < high);
    assert!(low.to_string() < high.to_string());
    let set: HashSet<WorkflowHash> = [low, high, low].into_iter().collect();
    assert_eq!(set.len(), 2);
    assert_eq!(high.as_ref(), &high_bytes[..]);
}

#[test]
fn text_inputs_of_every_kind_agree() {
    let text = r#"{"1": {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}}}"#;
    let owned = String::from(text);
    let from_str = WorkflowHash::of_json(text).expect("str");
    assert_eq!(
        WorkflowHash::of_json(text.as_bytes()).expect("bytes"),
        from_str
    );
    assert_eq!(WorkflowHash::of_json(owned).expect("string"), from_str);
    assert_eq!(
        WorkflowHash::of_reader(text.as_bytes()).expect("reader"),
        from_str
    );
    let value: serde_json::Value = serde_json::from_str(text).expect("json");
    assert_eq!(WorkflowHash::of(&value).expect("value"), from_str);
}
