//! Fixture loading shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use serde_json::Value;

/// A file under `tests/fixtures`, parsed.
pub fn fixture(path: &str) -> Value {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The response body of a recorded exchange, as the bytes a server would send.
pub fn body(path: &str) -> Vec<u8> {
    let exchange = fixture(path);
    serde_json::to_vec(&exchange["response"]["body"]).unwrap()
}

/// A fixture workflow (`tests/fixtures/workflows/<name>`).
pub fn workflow(name: &str) -> Value {
    fixture(&format!("workflows/{name}"))
}

/// The whole 0.3.64 `/object_info` body.
pub fn full_object_info() -> Vec<u8> {
    body("comfyui-0.3.64/03c-object_info-full.json")
}

/// The golden workflows of workflow-hash (name, workflow).
pub fn golden_workflows() -> Vec<(String, Value)> {
    let path = format!(
        "{}/../workflow-hash/tests/data/workflow-hash.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut row: Value = serde_json::from_str(line).unwrap();
            let name = row["name"].as_str().unwrap().to_owned();
            (name, row["workflow"].take())
        })
        .collect()
}
