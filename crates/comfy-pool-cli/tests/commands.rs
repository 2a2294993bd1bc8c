//! `comfy-pool hash`, `diff` and `--help`, run as the real binary.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use serde_json::Value;
use support::{run, run_with_input, scratch_file, text, workflow};

/// A row of the golden file of comfyui-node hashes: the workflow's text and its hash.
fn golden(name: &str) -> (String, String) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../workflow-hash/tests/data/workflow-hash.jsonl"
    );
    let rows = std::fs::read_to_string(path).unwrap();
    let row: Value = rows
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|row| row["name"] == name)
        .unwrap_or_else(|| panic!("no golden row {name}"));
    (
        row["workflow_text"].as_str().unwrap().to_owned(),
        row["hash"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn hash_prints_the_golden_hashes_like_sha256sum() {
    let (text_a, hash_a) = golden("real/simple-txt2img.json");
    let (text_b, hash_b) = golden("real/T2I-anime-nova-xl.json");
    let a = scratch_file("simple-txt2img.json", &text_a);
    let b = scratch_file("T2I-anime-nova-xl.json", &text_b);
    let output = run(&["hash", &a, &b]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout, format!("{hash_a}  {a}\n{hash_b}  {b}\n"));
    assert_eq!(stderr, "");
}

#[test]
fn hash_reads_standard_input_for_a_dash_or_no_file() {
    let (workflow_text, hash) = golden("real/simple-txt2img.json");
    for args in [&["hash"][..], &["hash", "-"][..]] {
        let output = run_with_input(args, &workflow_text);
        assert!(output.status.success(), "{:?}", text(&output));
        assert_eq!(text(&output).0, format!("{hash}  -\n"));
    }
}

#[test]
fn hash_names_every_bad_file_hashes_the_others_and_exits_1() {
    let not_json = scratch_file("not-json.json", "{\"1\": ");
    let not_workflow = scratch_file("not-a-workflow.json", "[1, 2]");
    let missing = scratch_file("gone.json", "{}");
    std::fs::remove_file(&missing).unwrap();
    let good = workflow("invert-save");
    let output = run(&["hash", &not_json, &good, &not_workflow, &missing]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.ends_with(&format!("  {good}\n")), "{stdout}");
    let errors: Vec<&str> = stderr.lines().collect();
    assert_eq!(errors.len(), 3, "{stderr}");
    for (line, file) in errors.iter().zip([&not_json, &not_workflow, &missing]) {
        assert!(
            line.starts_with(&format!("comfy-pool hash: {file}: ")),
            "{line}"
        );
    }
    assert!(errors[0].contains("invalid workflow json"), "{stderr}");
    assert!(errors[1].contains("json object of nodes"), "{stderr}");
}

/// Files of `test`'s own: the golden txt2img workflow (its checkpoint name is empty), the same with a new prompt
/// and seed (same hash), and with a checkpoint file named (another hash).
fn txt2img_variants(test: &str) -> (String, String, String) {
    let (original, _) = golden("real/simple-txt2img.json");
    let mut value: Value = serde_json::from_str(&original).unwrap();
    value["6"]["inputs"]["text"] = "a lighthouse at dusk".into();
    value["3"]["inputs"]["seed"] = 7.into();
    let reprompted = value.to_string();
    value["4"]["inputs"]["ckpt_name"] = "flux1-dev.safetensors".into();
    let remodelled = value.to_string();
    (
        scratch_file(&format!("{test}-original.json"), &original),
        scratch_file(&format!("{test}-reprompted.json"), &reprompted),
        scratch_file(&format!("{test}-remodelled.json"), &remodelled),
    )
}

#[test]
fn diff_exits_0_when_only_prompts_and_seeds_differ() {
    let (original, reprompted, _) = txt2img_variants("diff-equal");
    let (_, hash) = golden("real/simple-txt2img.json");
    let output = run(&["diff", &original, &reprompted]);
    assert_eq!(output.status.code(), Some(0), "{:?}", text(&output));
    assert_eq!(text(&output).0, format!("same structural hash {hash}\n"));

    let output = run(&["diff", "--json", &original, &reprompted]);
    assert_eq!(output.status.code(), Some(0), "{:?}", text(&output));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["equal"], true);
    assert_eq!(json["differences"], serde_json::json!([]));
}

#[test]
fn diff_exits_1_and_names_the_change_when_the_model_differs() {
    let (original, _, remodelled) = txt2img_variants("diff-different");
    let output = run(&["diff", &original, &remodelled]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].ends_with(&format!("  {original}")), "{stdout}");
    assert!(lines[1].ends_with(&format!("  {remodelled}")), "{stdout}");
    assert_eq!(
        lines[2],
        r#"node "4": input "ckpt_name" model file changed from a text value to "flux1-dev.safetensors""#
    );

    let output = run(&["diff", "--json", &original, &remodelled]);
    assert_eq!(output.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["equal"], false);
    assert_ne!(json["old"]["hash"], json["new"]["hash"]);
    let change = &json["differences"][0];
    assert_eq!(change["node"], "4");
    assert_eq!(change["kind"], "model_changed");
    assert_eq!(change["input"], serde_json::json!(["ckpt_name"]));
    assert_eq!(change["to"], "\"flux1-dev.safetensors\"");
    assert_eq!(json["differences"].as_array().unwrap().len(), 1);
}

#[test]
fn diff_exits_2_naming_a_file_it_cannot_use() {
    let good = workflow("invert-save");
    let not_json = scratch_file("diff-not-json.json", "nope");
    let missing = format!("{not_json}.missing");
    for (args, named) in [
        ([good.as_str(), not_json.as_str()], &not_json),
        ([missing.as_str(), good.as_str()], &missing),
    ] {
        let output = run(&["diff", args[0], args[1]]);
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
        assert_eq!(stdout, "");
        assert!(
            stderr.starts_with(&format!("comfy-pool diff: {named}: ")),
            "{stderr}"
        );
    }
}

#[test]
fn help_lists_the_commands() {
    let output = run(&["--help"]);
    assert!(output.status.success());
    let stdout = text(&output).0;
    let commands: Vec<&str> = stdout
        .lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(
        commands,
        ["run", "hash", "diff", "sim", "serve", "keys", "help"],
        "{stdout}"
    );
}
