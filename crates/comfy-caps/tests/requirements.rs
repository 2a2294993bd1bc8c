//! Requirements of the recorded and golden workflows.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;

use comfy_caps::{ModelRef, Requirements, Result};
use serde_json::{Value, json};
use support::{golden_workflows, workflow};

#[test]
fn the_recorded_workflows_need_their_classes_and_no_model_file() -> Result<()> {
    for (name, classes) in [
        (
            "emptyimage-scale-preview.json",
            &["EmptyImage", "ImageScale", "PreviewImage"][..],
        ),
        (
            "getimagesize-savews-binary.json",
            &["EmptyImage", "GetImageSize", "SaveImageWebsocket"],
        ),
        (
            "invert-save.json",
            &["EmptyImage", "ImageInvert", "SaveImage"],
        ),
        (
            "loadimage-blur-save.json",
            &["ImageBlur", "LoadImage", "SaveImage"],
        ),
        (
            "runtime-fail-imagescaleby.json",
            &["EmptyImage", "ImageScaleBy", "SaveImage"],
        ),
        (
            "slow-3xblur-2048.json",
            &["EmptyImage", "ImageBlur", "PreviewImage"],
        ),
    ] {
        let reqs = Requirements::of(&workflow(name))?;
        assert_eq!(reqs.classes().collect::<Vec<_>>(), classes, "{name}");
        // `LoadImage`'s "example.png" is an input file, not a model file.
        assert_eq!(reqs.model_files().len(), 0, "{name}");
        assert!(!reqs.is_empty());
    }
    Ok(())
}

#[test]
fn a_golden_txt2img_workflow_needs_its_checkpoint() -> Result<()> {
    let rows = golden_workflows();
    let find = |name: &str| {
        rows.iter()
            .find(|(n, _)| n == name)
            .map(|(_, w)| w)
            .unwrap()
    };
    let reqs = Requirements::of(find("real/T2I-anime-nova-xl.json"))?;
    assert_eq!(
        reqs.classes().collect::<Vec<_>>(),
        [
            "CLIPSetLastLayer",
            "CLIPTextEncode",
            "CheckpointLoaderSimple",
            "EmptySD3LatentImage",
            "KSampler",
            "PreviewImage",
            "PrimitiveStringMultiline",
            "StringConcatenate",
            "VAEDecode",
        ]
    );
    assert_eq!(
        reqs.model_files().collect::<Vec<_>>(),
        [ModelRef {
            class: "CheckpointLoaderSimple",
            input: "ckpt_name",
            file: "novaAnimeXL_ilV125.safetensors",
        }]
    );
    // An empty ckpt_name is no requirement.
    let simple = Requirements::of(find("real/simple-txt2img.json"))?;
    assert_eq!(simple.model_files().len(), 0);
    Ok(())
}

/// The (class, input, file) triples the workflow hash keeps, read back from its canonical
/// text: there a top-level input string survives exactly when it names a model file (other
/// strings become `""`, numbers `"number"`, booleans `"boolean"`).
fn kept_by_the_hash(workflow: &Value) -> BTreeSet<(String, String, String)> {
    let canonical: Value =
        serde_json::from_str(&workflow_hash::canonical_json(workflow).unwrap()).unwrap();
    let mut kept = BTreeSet::new();
    for node in canonical.as_object().unwrap().values() {
        let Some(class) = node["class_type"].as_str() else {
            continue;
        };
        for (input, value) in node["inputs"].as_object().into_iter().flatten() {
            if let Some(file) = value
                .as_str()
                .filter(|s| !matches!(*s, "" | "number" | "boolean"))
            {
                kept.insert((class.to_owned(), input.clone(), file.to_owned()));
            }
        }
    }
    kept
}

#[test]
fn every_golden_workflow_needs_exactly_the_model_files_its_hash_covers() -> Result<()> {
    let rows = golden_workflows();
    assert_eq!(rows.len(), 311);
    let mut with_models = 0;
    for (name, workflow) in &rows {
        let reqs = Requirements::of(workflow)?;
        let mine: BTreeSet<(String, String, String)> = reqs
            .model_files()
            .map(|m| (m.class.to_owned(), m.input.to_owned(), m.file.to_owned()))
            .collect();
        assert_eq!(mine, kept_by_the_hash(workflow), "{name}");
        assert_eq!(mine.len(), reqs.model_files().len(), "{name}: duplicates");
        let classes: Vec<&str> = reqs.classes().collect();
        assert!(
            classes.windows(2).all(|w| w[0] < w[1]),
            "{name}: sorted, once"
        );
        with_models += usize::from(!mine.is_empty());
    }
    assert!(with_models > 100, "{with_models}");
    Ok(())
}

#[test]
fn links_numbers_and_odd_nodes_are_not_requirements() -> Result<()> {
    let workflow = json!({
        "1": {"class_type": "LoraLoader", "inputs": {
            "lora_name": "b.safetensors", "model": ["a.safetensors", 0], "strength": 1.0,
            "clip": ["2", 1], "note": "see notes.txt"}},
        "2": {"class_type": "LoraLoader", "inputs": {"lora_name": "a.safetensors"}},
        "3": {"class_type": "LoraLoader", "inputs": {"lora_name": "a.safetensors"}},
        "4": {"inputs": {"ckpt_name": "orphan.safetensors"}},
        "5": {"class_type": 7, "inputs": {"ckpt_name": "numbered.safetensors"}},
        "6": "not a node",
        "7": {"class_type": "SaveImage", "inputs": ["x.safetensors"]},
        "8": {"class_type": "Nested", "inputs": {"cfg": {"ckpt_name": "deep.safetensors"}}}
    });
    let reqs = Requirements::of(&workflow)?;
    assert_eq!(
        reqs.classes().collect::<Vec<_>>(),
        ["LoraLoader", "Nested", "SaveImage"]
    );
    let files: Vec<(&str, &str)> = reqs.model_files().map(|m| (m.input, m.file)).collect();
    assert_eq!(
        files,
        [
            ("lora_name", "a.safetensors"),
            ("lora_name", "b.safetensors")
        ]
    );
    assert!(reqs.heap_size() > 0);
    assert!(format!("{reqs:?}").contains("b.safetensors"));

    let nothing = Requirements::of(&json!({}))?;
    assert!(nothing.is_empty());
    assert_eq!(nothing, Requirements::default());
    Ok(())
}
