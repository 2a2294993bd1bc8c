//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_json::Value;

/// Live heap bytes of the process, in a test binary whose global allocator is
/// `stats_alloc::INSTRUMENTED_SYSTEM` (zero elsewhere).
pub fn live_heap() -> i64 {
    let s = stats_alloc::INSTRUMENTED_SYSTEM.stats();
    i64::try_from(s.bytes_allocated).unwrap() - i64::try_from(s.bytes_deallocated).unwrap()
}

/// The directory of the recorded real-server fixtures (copied into this crate).
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every transcript file with the given extension, sorted by name.
pub fn transcripts(ext: &str) -> Vec<(String, PathBuf)> {
    let dir = fixtures_dir().join("transcripts");
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    out.sort();
    out
}

/// A fixture workflow by file name.
pub fn workflow(name: &str) -> Value {
    let path = fixtures_dir().join("workflows").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Whether `ours` holds everything `original` holds: same keys and values, numbers
/// compared as numbers, `null` equal to absent. Returns the first difference.
pub fn lossless(original: &Value, ours: &Value, path: &str) -> Result<(), String> {
    match (original, ours) {
        (Value::Null, Value::Null) => Ok(()),
        (Value::Number(a), Value::Number(b)) => {
            if a.as_f64() == b.as_f64() {
                Ok(())
            } else {
                Err(format!("{path}: {a} != {b}"))
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let child = format!("{path}.{k}");
                match b.get(k) {
                    Some(vb) => lossless(va, vb, &child)?,
                    None if va.is_null() => {}
                    None => return Err(format!("{child}: missing")),
                }
            }
            for (k, vb) in b {
                if !a.contains_key(k) && !vb.is_null() && !is_empty(vb) {
                    return Err(format!("{path}.{k}: invented {vb}"));
                }
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Err(format!("{path}: {} items != {}", a.len(), b.len()));
            }
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                lossless(va, vb, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (a, b) if a == b => Ok(()),
        (a, b) => Err(format!("{path}: {a} != {b}")),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        _ => false,
    }
}

/// A short name of an event, for comparing streams: `start`, `executing:3`, …
pub fn event_name(ev: &comfy_client::Event) -> String {
    use comfy_client::Event;
    match ev {
        Event::ExecutionStart(_) => "start".into(),
        Event::ExecutionCached(_) => "cached".into(),
        Event::Executing(e) => format!("executing:{}", e.node.as_deref().unwrap_or("-")),
        Event::Progress(_) => "progress".into(),
        Event::ProgressState(_) => "progress_state".into(),
        Event::Executed(e) => format!("executed:{}", e.node),
        Event::ExecutionSuccess(_) => "success".into(),
        other => format!("{other:?}"),
    }
}

/// Every event is prompt `id`'s, and its run of invert-save is complete and in order:
/// `execution_start`, `execution_cached` (of no node), then `executing` + `executed` of every
/// node (1 → 2 → 3, only 3 has a UI output), then `execution_success`, then
/// `executing(null)`, each once (progress aside).
pub fn assert_complete_invert_save(id: &str, events: &[comfy_client::Event]) {
    for ev in events {
        assert_eq!(ev.prompt_id(), Some(id), "{ev:?}");
    }
    let names: Vec<String> = events
        .iter()
        .map(event_name)
        .filter(|n| n != "progress" && n != "progress_state")
        .collect();
    assert_eq!(
        names,
        [
            "start",
            "cached",
            "executing:1",
            "executing:2",
            "executing:3",
            "executed:3",
            "success",
            "executing:-"
        ],
        "prompt {id}"
    );
}

pub mod fake_comfy;
pub mod hostile;
pub mod wsserver;
