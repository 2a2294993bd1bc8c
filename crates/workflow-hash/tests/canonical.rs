//! The canonical text follows comfyui-node's JavaScript semantics; expected strings are worked
//! out by hand from `structuralJson` + `JSON.stringify`.

use serde_json::json;
use workflow_hash::{WorkflowHash, canonical_json};

fn canonical(text: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(text).expect("json");
    canonical_json(&value).expect("canonical")
}

#[test]
fn volatile_values_become_type_tokens_and_structure_stays() {
    let text = r#"{"3": {"class_type": "KSampler", "_meta": {"title": "K"}, "extra": 1,
        "inputs": {"seed": 5, "denoise": 1.0, "sampler_name": "euler", "add_noise": true,
                   "mask": null, "model": ["4", 0], "ckpt": "dir/X.SafeTensors", "img": "cat.png",
                   "opts": {"b": "text", "a": 2, "lora": "l.pt", "list": [1.0, {"z": 1, "a": 2}]}}}}"#;
    assert_eq!(
        canonical(text),
        r#"{"3":{"class_type":"KSampler","inputs":{"add_noise":"boolean","ckpt":"dir/X.SafeTensors","denoise":"number","img":"","mask":null,"model":["4",0],"opts":{"a":"number","b":"","list":[1,{"z":1,"a":2}],"lora":"l.pt"},"sampler_name":"","seed":"number"}}}"#
    );
}

#[test]
fn array_index_keys_come_first_numerically_everywhere() {
    // Ids and input keys the algorithm re-inserts: indices first, then UTF-16 order.
    let text = r#"{"b": null, "10": null, "9": null, "a": null, "01": null, "4294967295": null, "4294967294": null}"#;
    assert_eq!(
        canonical(text),
        r#"{"9":null,"10":null,"4294967294":null,"01":null,"4294967295":null,"a":null,"b":null}"#
    );
    // Objects kept verbatim inside arrays: indices first, then document order.
    assert_eq!(
        canonical(r#"{"1": [{"b": 1, "2": 2, "a": 3, "1": 4}]}"#),
        r#"{"1":[{"1":4,"2":2,"b":1,"a":3}]}"#
    );
}

#[test]
fn keys_sort_by_utf16_code_units() {
    // U+FF5A (fullwidth z) sorts after U+1F600 (a surrogate pair, 0xD83D…) in UTF-16, although
    // its code point is smaller.
    assert_eq!(
        canonical(r#"{"ｚ": null, "😀": null, "é": null, "Z": null}"#),
        r#"{"Z":null,"é":null,"😀":null,"ｚ":null}"#
    );
}

#[test]
fn inputs_array_becomes_an_index_keyed_object_and_other_inputs_become_empty() {
    assert_eq!(
        canonical(
            r#"{"1": {"inputs": ["a", 1, ["2", 0]]}, "2": {"inputs": "x", "class_type": 7}}"#
        ),
        r#"{"1":{"class_type":null,"inputs":{"0":"","1":"number","2":["2",0]}},"2":{"class_type":7,"inputs":{}}}"#
    );
}

#[test]
fn proto_keys_are_dropped_where_javascript_assignment_would_set_the_prototype() {
    assert_eq!(
        canonical(
            r#"{"__proto__": {"class_type": "A"}, "1": {"inputs": {"__proto__": 1, "x": [{"__proto__": 2}]}}}"#
        ),
        r#"{"1":{"class_type":null,"inputs":{"x":[{"__proto__":2}]}}}"#
    );
}

#[test]
fn strings_and_numbers_use_javascript_spelling() {
    assert_eq!(
        canonical(
            r#"{"1": [1.0, 1e21, 0.000001, 1e-7, -0.0, "tab\there\u0001\u2028"], "2": 12345678901234567890}"#
        ),
        r#"{"1":[1,1e+21,0.000001,1e-7,0,"tab\there\u0001"#.to_owned()
            + "\u{2028}"
            + r#""],"2":12345678901234567000}"#
    );
}

#[test]
fn duplicate_keys_keep_the_last_value_like_json_parse() {
    let a = WorkflowHash::of_json(r#"{"1": {"class_type": "A", "class_type": "B"}}"#).expect("dup");
    let b = WorkflowHash::of_json(r#"{"1": {"class_type": "B"}}"#).expect("plain");
    assert_eq!(a, b);
}

#[test]
fn json_macro_and_text_agree() {
    let value =
        json!({"2": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}}});
    assert_eq!(
        canonical_json(&value).expect("canonical"),
        r#"{"2":{"class_type":"VAEDecode","inputs":{"samples":["3",0],"vae":["4",2]}}}"#
    );
}
