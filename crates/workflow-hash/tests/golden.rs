//! Every row of the comfyui-node golden file must hash identically from the parsed value and
//! from the reshuffled text.

use serde_json::Value;
use workflow_hash::{WorkflowHash, canonical_json};

const GOLDEN: &str = include_str!("data/workflow-hash.jsonl");

struct Row {
    name: String,
    workflow: Value,
    text: String,
    hash: String,
}

fn rows() -> Vec<Row> {
    GOLDEN
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut row: Value = serde_json::from_str(line).expect("golden row is json");
            let take = |row: &mut Value, key: &str| row.get_mut(key).map(Value::take).expect(key);
            Row {
                name: take(&mut row, "name").as_str().expect("name").to_owned(),
                workflow: take(&mut row, "workflow"),
                text: take(&mut row, "workflow_text")
                    .as_str()
                    .expect("text")
                    .to_owned(),
                hash: take(&mut row, "hash").as_str().expect("hash").to_owned(),
            }
        })
        .collect()
}

#[test]
fn golden_file_has_all_rows() {
    assert_eq!(rows().len(), 311);
}

#[test]
fn every_golden_row_matches_from_value_and_from_text() {
    let mut failures = Vec::new();
    for row in rows() {
        let expected: WorkflowHash = row.hash.parse().expect("golden hash is hex");
        match WorkflowHash::of(&row.workflow) {
            Ok(h) if h == expected => {}
            other => failures.push(format!(
                "{} (value): got {other:?}, canonical {:?}",
                row.name,
                canonical_json(&row.workflow)
            )),
        }
        match WorkflowHash::of_json(&row.text) {
            Ok(h) if h == expected => {}
            other => failures.push(format!("{} (text): got {other:?}", row.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn canonical_text_hashes_to_the_same_digest() {
    use sha2::Digest;
    for row in rows().into_iter().take(40) {
        let canonical = canonical_json(&row.workflow).expect("canonical");
        let digest: [u8; 32] = sha2::Sha256::digest(canonical.as_bytes()).into();
        assert_eq!(
            WorkflowHash::from_bytes(digest).to_string(),
            row.hash,
            "{}",
            row.name
        );
    }
}
