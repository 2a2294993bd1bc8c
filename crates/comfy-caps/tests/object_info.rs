//! Reading `/object_info`: the recordings of real servers (both combo forms), a generated
//! multi-megabyte document, per-class updates and the content version.
#![allow(clippy::unwrap_used)]

mod support;

use comfy_caps::synthetic::SyntheticServer;
use comfy_caps::{Capabilities, Result};
use serde_json::{Value, json};
use support::{body, fixture, full_object_info};

/// The combo inputs of a definition, read the slow way from a `Value`: (input, choices), or
/// `None` choices for a V3 combo without an options list.
fn combos_of(definition: &Value) -> Vec<(String, Option<Vec<String>>)> {
    let mut out = Vec::new();
    for section in ["required", "optional"] {
        let Some(inputs) = definition["input"][section].as_object() else {
            continue;
        };
        for (name, spec) in inputs {
            let strings = |v: &Value| -> Vec<String> {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            match &spec[0] {
                Value::Array(_) => out.push((name.clone(), Some(strings(&spec[0])))),
                Value::String(t) if t == "COMBO" => {
                    let options = spec[1].get("options").map(strings);
                    out.push((name.clone(), options));
                }
                _ => {}
            }
        }
    }
    out
}

#[test]
fn the_recorded_0_3_64_object_info_is_read_whole() -> Result<()> {
    let bytes = full_object_info();
    let caps = Capabilities::from_object_info(&bytes)?;
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    let doc = doc.as_object().unwrap();
    assert_eq!(caps.class_count(), 496);
    assert_eq!(doc.len(), 496);

    let mut judged = 0;
    let mut v3_without_options = 0;
    for (class, definition) in doc {
        assert!(caps.has_class(class), "{class}");
        for (input, choices) in combos_of(definition) {
            match choices {
                Some(choices) => {
                    judged += 1;
                    // A model file the server does not list is refused...
                    assert_eq!(
                        caps.allows(class, &input, "not-installed.safetensors"),
                        Some(false),
                        "{class}.{input}"
                    );
                    // ...and every listed model file is offered.
                    for choice in choices.iter().filter(|c| workflow_hash::is_model_file(c)) {
                        assert_eq!(caps.allows(class, &input, choice), Some(true), "{choice}");
                    }
                }
                None => {
                    v3_without_options += 1;
                    assert_eq!(caps.allows(class, &input, "x.safetensors"), None);
                }
            }
        }
    }
    assert_eq!(caps.combo_count(), judged);
    assert!(judged > 300, "{judged}");
    assert!(v3_without_options > 0);

    // Classic combos, installed files (CheckpointLoader's configs) and empty lists (no
    // checkpoint installed on the recording server).
    assert_eq!(
        caps.allows("CheckpointLoader", "config_name", "v1-inference.yaml"),
        Some(true)
    );
    assert_eq!(
        caps.allows("CheckpointLoaderSimple", "ckpt_name", "sdxl.safetensors"),
        Some(false)
    );
    assert_eq!(
        caps.model_choices("CheckpointLoaderSimple", "ckpt_name")
            .map(Iterator::count),
        Some(0)
    );
    // V3 combos (`["COMBO", {"options": [...]}]`) are judged too.
    assert_eq!(
        caps.allows("LatentConcat", "dim", "x.safetensors"),
        Some(false)
    );
    // Not judged: links, numbers, hidden inputs, values that are not model files.
    assert_eq!(caps.allows("KSampler", "model", "x.safetensors"), None);
    assert_eq!(caps.allows("KSampler", "seed", "x.safetensors"), None);
    assert_eq!(caps.allows("SaveImage", "prompt", "x.safetensors"), None);
    assert_eq!(caps.allows("KSampler", "sampler_name", "euler"), None);
    assert_eq!(
        caps.allows("NoSuchNode", "ckpt_name", "x.safetensors"),
        None
    );
    assert!(!caps.has_class("NoSuchNode"));
    assert!(!caps.has_class("ckpt_name"), "input names are not classes");
    Ok(())
}

#[test]
fn the_recorded_0_8_answers_are_read() -> Result<()> {
    let empty_image =
        Capabilities::from_object_info(&body("comfyui-0.8/03-object_info-EmptyImage.json"))?;
    assert_eq!(empty_image.classes().collect::<Vec<_>>(), ["EmptyImage"]);
    assert_eq!(empty_image.combo_count(), 0);

    let save_ws = Capabilities::from_object_info(&body(
        "comfyui-0.8/03d-object_info-SaveImageWebsocket.json",
    ))?;
    assert!(save_ws.has_class("SaveImageWebsocket"));

    let unknown =
        Capabilities::from_object_info(&body("comfyui-0.8/03b-object_info-unknown.json"))?;
    assert!(unknown.is_empty());

    // The same answer from 0.3.64 and 0.8 gives the same capabilities.
    let old =
        Capabilities::from_object_info(&body("comfyui-0.3.64/03-object_info-EmptyImage.json"))?;
    assert_eq!(old.version(), empty_image.version());
    Ok(())
}

#[test]
fn get_image_size_reads_the_same_in_its_v1_and_v3_definitions() -> Result<()> {
    // 0.3.64: `"image": ["IMAGE"]`, hidden `"unique_id": "UNIQUE_ID"`;
    // 0.8: `"image": ["IMAGE", {}]`, hidden `"unique_id": ["UNIQUE_ID"]`, more keys.
    let summary = fixture("comfyui-0.8/03c-object_info-diff-summary.json");
    let node = &summary["fixture_nodes"]["GetImageSize"];
    let read = |version: &str| {
        let doc = json!({ "GetImageSize": node[version] });
        Capabilities::from_object_info(doc.to_string().as_bytes())
    };
    let (old, new) = (read("0.3.64")?, read("0.8.0")?);
    assert!(old.has_class("GetImageSize") && new.has_class("GetImageSize"));
    assert_eq!(new.combo_count(), 0);
    assert_eq!(old.version(), new.version());
    Ok(())
}

#[test]
fn both_combo_forms_keep_model_files_only() -> Result<()> {
    let doc = br#"{
        "Classic": {"input": {"required": {
            "ckpt_name": [["a.safetensors", "sub\\b.ckpt", "none", 7, ["nested.pt"]], {"tooltip": "t"}]
        }}},
        "V3": {"input": {"optional": {
            "lora_name": ["COMBO", {"tooltip": "first", "options": ["c.safetensors", "\u00e9.pt", "off"], "multiselect": false}]
        }, "hidden": {"unique_id": ["UNIQUE_ID"], "ckpt": [["hidden.safetensors"]]}}},
        "Remote": {"input": {"required": {"image": ["COMBO", {"remote": {"route": "/files"}}]}}}
    }"#;
    let caps = Capabilities::from_object_info(doc)?;
    let sorted = |class: &str, input: &str| {
        let mut files: Vec<&str> = caps.model_choices(class, input).unwrap().collect();
        files.sort_unstable();
        files
    };
    // Escaped strings are read unescaped; "none", numbers and nested lists are not files.
    assert_eq!(
        sorted("Classic", "ckpt_name"),
        ["a.safetensors", "sub\\b.ckpt"]
    );
    assert_eq!(sorted("V3", "lora_name"), ["c.safetensors", "é.pt"]);
    assert_eq!(caps.allows("V3", "lora_name", "é.pt"), Some(true));
    assert_eq!(caps.allows("V3", "ckpt", "hidden.safetensors"), None);
    assert_eq!(caps.allows("Remote", "image", "x.safetensors"), None);
    assert_eq!(caps.combo_count(), 2);
    Ok(())
}

#[test]
fn a_generated_five_megabyte_document_is_read() -> Result<()> {
    let server = SyntheticServer::default();
    let doc = server.object_info();
    assert!(
        (4_500_000..6_000_000).contains(&doc.len()),
        "{} bytes",
        doc.len()
    );
    let caps = Capabilities::from_object_info(doc.as_bytes())?;
    assert_eq!(caps.class_count(), server.classes);
    let ckpt = SyntheticServer::checkpoint(17);
    assert_eq!(
        caps.allows("CheckpointLoaderSimple", "ckpt_name", &ckpt),
        Some(true)
    );
    // Generated loaders: k = 0 lists checkpoints (classic form), k = 10 LoRAs (V3: 10 % 7 == 3).
    let classic = SyntheticServer::custom_class(0);
    let v3 = SyntheticServer::custom_class(10);
    assert_eq!(caps.allows(&classic, "ckpt_name", &ckpt), Some(true));
    for i in 0..server.loras {
        let lora = SyntheticServer::lora(i);
        assert_eq!(caps.allows(&v3, "lora_name", &lora), Some(true), "{lora}");
    }
    assert_eq!(
        caps.model_choices(&v3, "lora_name").map(Iterator::count),
        Some(server.loras)
    );
    assert_eq!(
        caps.allows(&v3, "lora_name", "other.safetensors"),
        Some(false)
    );
    // The generator is deterministic.
    assert_eq!(
        Capabilities::from_object_info(server.object_info().as_bytes())?.version(),
        caps.version()
    );
    Ok(())
}

#[test]
fn the_version_follows_content_not_text() -> Result<()> {
    let base = json!({
        "A": {"input": {"required": {"ckpt_name": [["x.safetensors", "y.safetensors"], {"tooltip": "one"}]}}},
        "B": {"input": {"required": {"n": ["INT", {"default": 1}]}}, "description": "first"}
    });
    let reordered = json!({
        "B": {"description": "changed", "input": {"required": {"n": ["INT", {"default": 2}]}}},
        "A": {"input": {"required": {"ckpt_name": [["y.safetensors", "x.safetensors", "x.safetensors"], {"tooltip": "two"}]}}}
    });
    let version = |doc: &Value| {
        Capabilities::from_object_info(doc.to_string().as_bytes()).map(|c| c.version())
    };
    assert_eq!(version(&base)?, version(&reordered)?);

    let mut more = base.clone();
    more["A"]["input"]["required"]["ckpt_name"][0] =
        json!(["x.safetensors", "y.safetensors", "z.safetensors"]);
    assert_ne!(version(&base)?, version(&more)?);
    let mut other_class = base.clone();
    other_class["C"] = json!({});
    assert_ne!(version(&base)?, version(&other_class)?);
    // The same file under another input is another capability.
    let mut moved = base.clone();
    moved["A"]["input"]["required"] = json!({"lora_name": [["x.safetensors", "y.safetensors"]]});
    assert_ne!(version(&base)?, version(&moved)?);
    Ok(())
}

#[test]
fn a_class_is_updated_from_its_own_answer() -> Result<()> {
    let mut caps = Capabilities::from_object_info(&full_object_info())?;
    let before = caps.version();

    // The same definition again (from 0.8, identical for EmptyImage): nothing changes.
    caps.update_class(
        "EmptyImage",
        &body("comfyui-0.8/03-object_info-EmptyImage.json"),
    )?;
    assert_eq!(caps.version(), before);

    // A checkpoint was installed.
    let installed = json!({"CheckpointLoaderSimple": {"input": {"required": {
        "ckpt_name": [["new.safetensors"], {"tooltip": "The name of the checkpoint (model) to load."}]
    }}}});
    caps.update_class("CheckpointLoaderSimple", installed.to_string().as_bytes())?;
    assert_eq!(
        caps.allows("CheckpointLoaderSimple", "ckpt_name", "new.safetensors"),
        Some(true)
    );
    assert_ne!(caps.version(), before);
    assert_eq!(caps.class_count(), 496);

    // Removing it again restores the earlier version.
    let removed = json!({"CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [[]]}}}});
    caps.update_class("CheckpointLoaderSimple", removed.to_string().as_bytes())?;
    assert_eq!(caps.version(), before);

    // `{}`: the server no longer has the class; its combos go with it.
    caps.update_class(
        "CheckpointLoaderSimple",
        &body("comfyui-0.8/03b-object_info-unknown.json"),
    )?;
    assert!(!caps.has_class("CheckpointLoaderSimple"));
    assert_eq!(
        caps.allows("CheckpointLoaderSimple", "ckpt_name", "new.safetensors"),
        None
    );
    assert_eq!(caps.class_count(), 495);

    // A bad answer changes nothing.
    let version = caps.version();
    assert!(
        caps.update_class("EmptyImage", b"{\"EmptyImage\": ")
            .is_err()
    );
    assert!(caps.has_class("EmptyImage"));
    assert_eq!(caps.version(), version);
    Ok(())
}

#[test]
fn debug_output_summarises() -> Result<()> {
    let caps = Capabilities::from_object_info(br#"{"A": {}, "B": {}}"#)?;
    let shown = format!("{caps:?}");
    assert!(
        shown.starts_with("Capabilities { classes: 2, combos: 0, names: 2, version: "),
        "{shown}"
    );
    Ok(())
}
