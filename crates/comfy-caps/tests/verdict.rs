//! Verdicts (missing class, missing checkpoint, everything present) and explaining 400s.
#![allow(clippy::unwrap_used)]

mod support;

use comfy_caps::synthetic::SyntheticServer;
use comfy_caps::{
    Capabilities, Missing, Rejection, Requirements, Result, Verdict, check, explain_rejection,
    explains_rejection,
};
use serde_json::{Value, json};
use support::{fixture, full_object_info, workflow};

fn synthetic() -> Capabilities {
    let server = SyntheticServer {
        classes: 200,
        ..SyntheticServer::default()
    };
    Capabilities::from_object_info(server.object_info().as_bytes()).unwrap()
}

fn txt2img(ckpt: &str) -> Value {
    json!({
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat.safetensors", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "sampler_name": "euler",
              "model": ["4", 0], "positive": ["6", 0], "negative": ["6", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "x"}},
    })
}

#[test]
fn everything_present_is_capable() -> Result<()> {
    let caps = synthetic();
    let reqs = Requirements::of(&txt2img(&SyntheticServer::checkpoint(3)))?;
    let verdict = check(&caps, &reqs);
    // The prompt text looks like a file but CLIPTextEncode.text is no combo: not judged.
    assert_eq!(verdict, Verdict::Capable);
    assert!(verdict.is_capable());
    assert!(verdict.missing().is_empty());

    // Every recorded workflow runs on the server it was recorded on.
    let recorded = Capabilities::from_object_info(&full_object_info())?;
    for name in [
        "emptyimage-scale-preview.json",
        "getimagesize-savews-binary.json",
        "invert-save.json",
        "loadimage-blur-save.json",
        "runtime-fail-imagescaleby.json",
        "slow-3xblur-2048.json",
    ] {
        let reqs = Requirements::of(&workflow(name))?;
        assert_eq!(check(&recorded, &reqs), Verdict::Capable, "{name}");
    }
    Ok(())
}

#[test]
fn a_missing_checkpoint_is_named_with_its_input_and_class() -> Result<()> {
    let caps = synthetic();
    let reqs = Requirements::of(&txt2img("flux/not-installed.safetensors"))?;
    let verdict = check(&caps, &reqs);
    assert_eq!(
        verdict.missing(),
        [Missing::ModelFile {
            file: "flux/not-installed.safetensors".into(),
            input: "ckpt_name".into(),
            class: "CheckpointLoaderSimple".into(),
        }]
    );
    assert_eq!(
        verdict.to_string(),
        "lacks model file flux/not-installed.safetensors (ckpt_name of CheckpointLoaderSimple)"
    );

    // The recording server has no checkpoint at all: its empty list refuses every file.
    let recorded = Capabilities::from_object_info(&full_object_info())?;
    let reqs = Requirements::of(&txt2img(&SyntheticServer::checkpoint(3)))?;
    assert_eq!(check(&recorded, &reqs).missing().len(), 1);
    Ok(())
}

#[test]
fn a_missing_class_is_named_once_with_its_files_not_judged() -> Result<()> {
    let caps = synthetic();
    let mut wf = txt2img(&SyntheticServer::checkpoint(3));
    wf["20"] = json!({"class_type": "UpscaleModelLoader", "inputs": {"model_name": "4x.pth"}});
    wf["21"] = json!({"class_type": "Evil\nClass", "inputs": {}});
    let verdict = check(&caps, &Requirements::of(&wf)?);
    assert_eq!(
        verdict.missing(),
        [
            Missing::NodeClass("Evil\nClass".into()),
            Missing::NodeClass("UpscaleModelLoader".into()),
        ]
    );
    assert_eq!(
        verdict.to_string(),
        "lacks node class Evil\\nClass; lacks node class UpscaleModelLoader"
    );

    // The golden anime workflow on the synthetic server: four classes and the checkpoint.
    let rows = support::golden_workflows();
    let nova = &rows
        .iter()
        .find(|(n, _)| n == "real/T2I-anime-nova-xl.json")
        .unwrap()
        .1;
    assert_eq!(
        check(&caps, &Requirements::of(nova)?).to_string(),
        "lacks node class CLIPSetLastLayer; lacks node class EmptySD3LatentImage; \
         lacks node class PrimitiveStringMultiline; lacks node class StringConcatenate; \
         lacks model file novaAnimeXL_ilV125.safetensors (ckpt_name of CheckpointLoaderSimple)"
    );
    Ok(())
}

#[test]
fn an_empty_capabilities_lacks_every_class() -> Result<()> {
    let reqs = Requirements::of(&workflow("invert-save.json"))?;
    assert_eq!(check(&Capabilities::default(), &reqs).missing().len(), 3);
    Ok(())
}

#[test]
fn the_recorded_unknown_class_400_is_explained_by_its_text() -> Result<()> {
    let caps = Capabilities::from_object_info(&full_object_info())?;
    let mut wf = workflow("invert-save.json");
    wf["2"]["class_type"] = "NoSuchNodeClass".into();
    let reqs = Requirements::of(&wf)?;
    for recording in [
        "comfyui-0.3.64/17-prompt-post-unknown-class.json",
        "comfyui-0.8/17-prompt-post-unknown-class.json",
    ] {
        let answer = fixture(recording);
        let message = answer["response"]["body"]["error"]["message"]
            .as_str()
            .unwrap();
        let rejection = Rejection::new().text(message);
        assert_eq!(
            explain_rejection(&caps, &reqs, &rejection),
            Some(Missing::NodeClass("NoSuchNodeClass".into())),
            "{recording}"
        );
    }
    // Any wording that names the class will do; the class alone does too.
    let reworded = Rejection::new().text("node type 'NoSuchNodeClass' is not installed");
    assert!(explains_rejection(&caps, &reqs, &reworded));
    let named = Rejection::new().class("NoSuchNodeClass");
    assert!(explains_rejection(&caps, &reqs, &named));
    // A class the server has explains nothing.
    assert!(!explains_rejection(
        &caps,
        &reqs,
        &Rejection::new().class("ImageInvert")
    ));
    Ok(())
}

#[test]
fn a_value_not_in_list_for_a_missing_file_is_explained() -> Result<()> {
    let caps = synthetic();
    let file = "flux/not-installed.safetensors";
    let reqs = Requirements::of(&txt2img(file))?;
    let lacks = Some(Missing::ModelFile {
        file: file.into(),
        input: "ckpt_name".into(),
        class: "CheckpointLoaderSimple".into(),
    });
    // As ComfyUI reports it: class_type, extra_info.input_name, extra_info.received_value.
    let full = Rejection::new()
        .class("CheckpointLoaderSimple")
        .input("ckpt_name")
        .value(file);
    assert_eq!(explain_rejection(&caps, &reqs, &full), lacks);
    // The value alone, found in the workflow's references.
    assert_eq!(
        explain_rejection(&caps, &reqs, &Rejection::new().value(file)),
        lacks
    );
    // Only the text, in some wording.
    let text = format!("Value not in list: ckpt_name: '{file}' not in (list of length 120)");
    assert_eq!(
        explain_rejection(&caps, &reqs, &Rejection::new().text(&text)),
        lacks
    );

    // An installed file, a value that is no model file, an unrelated error: not explained.
    let installed = SyntheticServer::checkpoint(3);
    let ok = Rejection::new()
        .class("CheckpointLoaderSimple")
        .input("ckpt_name")
        .value(&installed);
    assert_eq!(explain_rejection(&caps, &reqs, &ok), None);
    let sampler = Rejection::new()
        .class("KSampler")
        .input("sampler_name")
        .value("bogus");
    assert_eq!(explain_rejection(&caps, &reqs, &sampler), None);
    let capable = Requirements::of(&txt2img(&installed))?;
    let below_min = fixture("comfyui-0.8/18-prompt-post-bad-value.json");
    let error = &below_min["response"]["body"]["node_errors"]["1"];
    let unrelated = Rejection::new()
        .class(error["class_type"].as_str().unwrap())
        .input(
            error["errors"][0]["extra_info"]["input_name"]
                .as_str()
                .unwrap(),
        )
        .text(error["errors"][0]["message"].as_str().unwrap());
    // EmptyImage is not on the synthetic server, so use the recorded one.
    let recorded = Capabilities::from_object_info(&full_object_info())?;
    assert_eq!(explain_rejection(&recorded, &capable, &unrelated), None);
    // A file mentioned inside a longer path is not the missing file.
    let other_path = Rejection::new().text("'sub/flux/not-installed.safetensors' not found");
    assert_eq!(explain_rejection(&caps, &reqs, &other_path), None);
    Ok(())
}
