//! `diff` names the structural changes that make two hashes differ, and nothing else.

use serde_json::{Value, json};
use workflow_hash::{Difference, InputShape, WorkflowHash, diff};

fn base() -> Value {
    json!({
        "3": {"class_type": "KSampler", "_meta": {"title": "KSampler"},
              "inputs": {"seed": 1, "steps": 20, "cfg": 8.0, "sampler_name": "euler",
                         "model": ["4", 0], "positive": ["6", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
    })
}

fn changes(edit: impl FnOnce(&mut Value)) -> Vec<Difference> {
    let old = base();
    let mut new = old.clone();
    edit(&mut new);
    let found = diff(&old, &new).expect("diff");
    let (ha, hb) = (
        WorkflowHash::of(&old).expect("old"),
        WorkflowHash::of(&new).expect("new"),
    );
    assert_eq!(
        found.is_empty(),
        ha == hb,
        "diff and hash disagree: {found:?}"
    );
    found
}

fn strings(list: &[Difference]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

#[test]
fn volatile_edits_produce_no_difference() {
    let found = changes(|w| {
        w["3"]["inputs"]["seed"] = json!(999);
        w["3"]["inputs"]["sampler_name"] = json!("dpmpp_2m");
        w["5"]["inputs"]["width"] = json!(1024);
        w["6"]["inputs"]["text"] = json!("a dog");
        w["3"]["_meta"]["title"] = json!("renamed");
    });
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn node_added_and_removed() {
    let found = changes(|w| {
        let map = w.as_object_mut().expect("object");
        map.remove("5");
        map.insert(
            "9".into(),
            json!({"class_type": "SaveImage", "inputs": {"images": ["3", 0]}}),
        );
    });
    assert_eq!(
        found,
        vec![
            Difference::NodeRemoved {
                node: "5".into(),
                class_type: Some("EmptyLatentImage".into())
            },
            Difference::NodeAdded {
                node: "9".into(),
                class_type: Some("SaveImage".into())
            },
        ]
    );
    assert_eq!(
        strings(&found),
        [
            r#"node "5" removed (class "EmptyLatentImage")"#,
            r#"node "9" added (class "SaveImage")"#
        ]
    );
}

#[test]
fn class_change() {
    let found = changes(|w| w["3"]["class_type"] = json!("KSamplerAdvanced"));
    assert_eq!(
        found,
        vec![Difference::ClassChanged {
            node: "3".into(),
            from: "\"KSampler\"".into(),
            to: "\"KSamplerAdvanced\"".into()
        }]
    );
    assert_eq!(
        found[0].to_string(),
        r#"node "3": class_type changed from "KSampler" to "KSamplerAdvanced""#
    );
}

#[test]
fn edge_change_and_edge_to_value() {
    let found = changes(|w| {
        w["3"]["inputs"]["model"] = json!(["4", 1]);
        w["6"]["inputs"]["clip"] = json!("unwired");
    });
    assert_eq!(
        found,
        vec![
            Difference::EdgeChanged {
                node: "3".into(),
                input: vec!["model".into()],
                from: InputShape::Link(r#"["4",0]"#.into()),
                to: InputShape::Link(r#"["4",1]"#.into()),
            },
            Difference::EdgeChanged {
                node: "6".into(),
                input: vec!["clip".into()],
                from: InputShape::Link(r#"["4",1]"#.into()),
                to: InputShape::Text,
            },
        ]
    );
    assert_eq!(
        strings(&found),
        [
            r#"node "3": input "model" connection changed from ["4",0] to ["4",1]"#,
            r#"node "6": input "clip" connection changed from ["4",1] to a text value"#,
        ]
    );
}

#[test]
fn model_change() {
    let found = changes(|w| w["4"]["inputs"]["ckpt_name"] = json!("sdxl.ckpt"));
    assert_eq!(
        found,
        vec![Difference::ModelChanged {
            node: "4".into(),
            input: vec!["ckpt_name".into()],
            from: InputShape::Model("sd15.safetensors".into()),
            to: InputShape::Model("sdxl.ckpt".into()),
        }]
    );
    assert_eq!(
        found[0].to_string(),
        r#"node "4": input "ckpt_name" model file changed from "sd15.safetensors" to "sdxl.ckpt""#
    );
}

#[test]
fn input_keys_added_removed_and_kind_changed_with_nested_paths() {
    let found = changes(|w| {
        let inputs = w["3"]["inputs"].as_object_mut().expect("inputs");
        inputs.remove("cfg");
        inputs.insert("denoise".into(), json!(0.5));
        inputs.insert("steps".into(), json!("20"));
        w["5"]["inputs"]["batch_size"] = json!({"n": 1, "lora": "x.pt"});
    });
    assert_eq!(
        strings(&found),
        [
            r#"node "3": input "cfg" removed"#,
            r#"node "3": input "denoise" added"#,
            r#"node "3": input "steps" changed from a number to a text value"#,
            r#"node "5": input "batch_size" changed from a number to an object"#,
        ]
    );
    let old = json!({"1": {"inputs": {"opt": {"a": 1, "b": {"c": "m.gguf"}}}}});
    let new = json!({"1": {"inputs": {"opt": {"b": {"c": "n.gguf"}, "d": null}}}});
    assert_eq!(
        strings(&diff(&old, &new).expect("diff")),
        [
            r#"node "1": input "opt.a" removed"#,
            r#"node "1": input "opt.b.c" model file changed from "m.gguf" to "n.gguf""#,
            r#"node "1": input "opt.d" added"#,
        ]
    );
}

#[test]
fn non_object_entries_are_compared_verbatim() {
    let old = json!({"1": [1, 2], "2": {"class_type": "A"}, "3": "same"});
    let new = json!({"1": [1, 3], "2": null, "3": "same"});
    assert_eq!(
        diff(&old, &new).expect("diff"),
        vec![
            Difference::EntryChanged {
                node: "1".into(),
                from: "[1,2]".into(),
                to: "[1,3]".into()
            },
            Difference::EntryChanged {
                node: "2".into(),
                from: r#"{"class_type":"A","inputs":{}}"#.into(),
                to: "null".into(),
            },
        ]
    );
    assert_eq!(diff(&old, &new).expect("diff")[1].node(), "2");
}
