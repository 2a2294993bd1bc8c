//! A deterministic, realistic `GET /object_info` document of any size, for tests, benches and
//! simulated servers: the shape of a ComfyUI server with many custom nodes, whose definitions
//! carry long tooltips and descriptions and whose loaders repeat the full model lists.

use serde_json::{Map, Value, json};

/// The server a synthetic `/object_info` describes.
///
/// Its classes: the core ones workflows use (`CheckpointLoaderSimple`, `LoraLoader`,
/// `VAELoader`, `KSampler`, `CLIPTextEncode`, `EmptyLatentImage`, `VAEDecode`, `SaveImage`,
/// `LoadImage`, `PreviewImage`), then generated custom-node classes up to
/// [`classes`](Self::classes): every tenth a loader listing all checkpoints, LoRAs or VAEs,
/// one in seven written in the V3 combo form (`["COMBO", {"options": [...]}]`), the rest a
/// mix of numbers, strings, links and enum combos with tooltips.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntheticServer {
    /// Node classes in total (at least the core ones).
    pub classes: usize,
    /// Checkpoint files (see [`checkpoint`](Self::checkpoint)).
    pub checkpoints: usize,
    /// LoRA files (see [`lora`](Self::lora)).
    pub loras: usize,
    /// VAE files (see [`vae`](Self::vae)).
    pub vaes: usize,
}

impl Default for SyntheticServer {
    /// About 5 MB of `/object_info`: 2,000 classes, 120 checkpoints, 250 LoRAs, 30 VAEs.
    fn default() -> Self {
        Self {
            classes: 2_000,
            checkpoints: 120,
            loras: 250,
            vaes: 30,
        }
    }
}

/// Words the tooltips and descriptions are made of.
const WORDS: [&str; 24] = [
    "the",
    "model",
    "latent",
    "image",
    "applies",
    "strength",
    "of",
    "noise",
    "schedule",
    "conditioning",
    "when",
    "enabled",
    "sampler",
    "uses",
    "this",
    "value",
    "to",
    "control",
    "denoising",
    "steps",
    "output",
    "resolution",
    "guidance",
    "mask",
];

/// Enum choices of the generated combos (not model files).
const SAMPLERS: [&str; 12] = [
    "euler",
    "euler_ancestral",
    "heun",
    "dpm_2",
    "dpm_2_ancestral",
    "lms",
    "dpm_fast",
    "dpmpp_2m",
    "dpmpp_sde",
    "ddim",
    "uni_pc",
    "lcm",
];

/// Link types of generated inputs and outputs.
const TYPES: [&str; 8] = [
    "MODEL",
    "CLIP",
    "VAE",
    "LATENT",
    "IMAGE",
    "MASK",
    "CONDITIONING",
    "CONTROL_NET",
];

/// Which model list a loader offers.
#[derive(Clone, Copy)]
enum Folder {
    Checkpoints,
    Loras,
    Vaes,
}

impl SyntheticServer {
    /// Checkpoint file `i` (`"sdxl/sdxl_vivid_0007.safetensors"`, some `.ckpt`).
    pub fn checkpoint(i: usize) -> String {
        const FAMILIES: [&str; 5] = ["sdxl", "sd15", "flux", "pony", "illustrious"];
        let family = FAMILIES[i % FAMILIES.len()];
        let ext = if i % 9 == 4 { "ckpt" } else { "safetensors" };
        format!("{family}/{family}_{}_{i:04}.{ext}", WORDS[i % WORDS.len()])
    }

    /// LoRA file `i` (`"style/latent_0003.safetensors"`; some with Windows separators or
    /// non-ASCII names, as real servers list them).
    pub fn lora(i: usize) -> String {
        match i % 17 {
            5 => format!("characters\\hero_{i:04}.safetensors"),
            11 => format!("スタイル/線画_{i:04}.safetensors"),
            _ => format!("style/{}_{i:04}.safetensors", WORDS[(i * 7) % WORDS.len()]),
        }
    }

    /// VAE file `i` (`"sdxl_vae_0002.safetensors"`, some `.pt`).
    pub fn vae(i: usize) -> String {
        let ext = if i % 4 == 1 { "pt" } else { "safetensors" };
        format!("sdxl_vae_{i:04}.{ext}")
    }

    /// Generated class `k`'s name (for `k` below [`classes`](Self::classes) minus the core
    /// ones).
    pub fn custom_class(k: usize) -> String {
        match k % 10 {
            0 => format!("Pack{}ModelLoader{k}", k / 40),
            _ => format!("Pack{}Node{k}", k / 40),
        }
    }

    /// The `GET /object_info` body as JSON text.
    pub fn object_info(&self) -> String {
        let files = |n: usize, name: fn(usize) -> String| -> Vec<Value> {
            (0..n).map(|i| Value::from(name(i))).collect()
        };
        let lists = [
            files(self.checkpoints, Self::checkpoint),
            files(self.loras, Self::lora),
            files(self.vaes, Self::vae),
        ];
        let list = |folder: Folder| match folder {
            Folder::Checkpoints => &lists[0],
            Folder::Loras => &lists[1],
            Folder::Vaes => &lists[2],
        };
        let mut all = Map::new();
        for (name, definition) in core_classes(&list) {
            all.insert(name.to_owned(), definition);
        }
        let generated = self.classes.saturating_sub(all.len());
        for k in 0..generated {
            all.insert(Self::custom_class(k), custom_class(k, &list));
        }
        Value::Object(all).to_string()
    }
}

/// `n` words of text starting at word `seed`.
fn text(seed: usize, n: usize) -> String {
    let mut out = String::with_capacity(n * 8);
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(WORDS[(seed + i * 5) % WORDS.len()]);
    }
    out.push('.');
    out
}

/// A combo input in the classic form or the V3 form.
fn combo(choices: &[Value], v3: bool, tooltip: &str) -> Value {
    if v3 {
        json!(["COMBO", {"multiselect": false, "options": choices, "tooltip": tooltip}])
    } else {
        json!([choices, {"tooltip": tooltip}])
    }
}

/// A definition with the usual keys around `required` inputs.
fn definition(name: &str, required: Map<String, Value>, outputs: &[&str], seed: usize) -> Value {
    let order: Vec<&String> = required.keys().collect();
    let mut def = json!({
        "input": {"required": {}, "hidden": {"unique_id": "UNIQUE_ID"}},
        "input_order": {"required": order, "hidden": ["unique_id"]},
        "output": outputs,
        "output_is_list": outputs.iter().map(|_| false).collect::<Vec<_>>(),
        "output_name": outputs,
        "name": name,
        "display_name": name,
        "description": text(seed, 60),
        "python_module": format!("custom_nodes.pack_{}", seed / 40),
        "category": format!("pack/{}", WORDS[seed % WORDS.len()]),
        "output_node": outputs.is_empty(),
        "output_tooltips": outputs.iter().map(|o| format!("The {o} produced.")).collect::<Vec<_>>(),
    });
    def["input"]["required"] = Value::Object(required);
    def
}

/// The core classes the golden workflows use.
fn core_classes<'a>(list: &impl Fn(Folder) -> &'a Vec<Value>) -> Vec<(&'static str, Value)> {
    let link = |t: &str| json!([t, {"tooltip": format!("The {t} input.")}]);
    let int =
        |d: u64| json!(["INT", {"default": d, "min": 0, "max": 16384, "tooltip": text(3, 12)}]);
    let loader = |name: &'static str, input: &str, folder: Folder, outputs: &[&str]| {
        let mut required = Map::new();
        required.insert(input.to_owned(), combo(list(folder), false, &text(1, 10)));
        (name, definition(name, required, outputs, 1))
    };
    let node = |name: &'static str, inputs: Vec<(&str, Value)>, outputs: &[&str]| {
        let required: Map<String, Value> =
            inputs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        (name, definition(name, required, outputs, 2))
    };
    let samplers: Vec<Value> = SAMPLERS.iter().map(|&s| Value::from(s)).collect();
    vec![
        loader(
            "CheckpointLoaderSimple",
            "ckpt_name",
            Folder::Checkpoints,
            &["MODEL", "CLIP", "VAE"],
        ),
        {
            let (name, mut def) =
                loader("LoraLoader", "lora_name", Folder::Loras, &["MODEL", "CLIP"]);
            if let Some(required) = def["input"]["required"].as_object_mut() {
                required.insert("model".into(), link("MODEL"));
                required.insert("clip".into(), link("CLIP"));
            }
            (name, def)
        },
        loader("VAELoader", "vae_name", Folder::Vaes, &["VAE"]),
        node(
            "KSampler",
            vec![
                ("model", link("MODEL")),
                ("seed", int(0)),
                ("steps", int(20)),
                ("sampler_name", combo(&samplers, false, "The sampler.")),
                ("positive", link("CONDITIONING")),
                ("negative", link("CONDITIONING")),
                ("latent_image", link("LATENT")),
            ],
            &["LATENT"],
        ),
        node(
            "CLIPTextEncode",
            vec![
                ("text", json!(["STRING", {"multiline": true}])),
                ("clip", link("CLIP")),
            ],
            &["CONDITIONING"],
        ),
        node(
            "EmptyLatentImage",
            vec![
                ("width", int(512)),
                ("height", int(512)),
                ("batch_size", int(1)),
            ],
            &["LATENT"],
        ),
        node(
            "VAEDecode",
            vec![("samples", link("LATENT")), ("vae", link("VAE"))],
            &["IMAGE"],
        ),
        node(
            "SaveImage",
            vec![
                ("images", link("IMAGE")),
                ("filename_prefix", json!(["STRING", {"default": "ComfyUI"}])),
            ],
            &[],
        ),
        node(
            "LoadImage",
            vec![("image", json!([["example.png"], {"image_upload": true}]))],
            &["IMAGE", "MASK"],
        ),
        node("PreviewImage", vec![("images", link("IMAGE"))], &[]),
    ]
}

/// Generated class `k`.
fn custom_class<'a>(k: usize, list: &impl Fn(Folder) -> &'a Vec<Value>) -> Value {
    let v3 = k % 7 == 3;
    let mut required = Map::new();
    if k.is_multiple_of(10) {
        let (input, folder) = match (k / 10) % 3 {
            0 => ("ckpt_name", Folder::Checkpoints),
            1 => ("lora_name", Folder::Loras),
            _ => ("vae_name", Folder::Vaes),
        };
        required.insert(input.to_owned(), combo(list(folder), v3, &text(k, 14)));
    }
    let samplers: Vec<Value> = SAMPLERS
        .iter()
        .skip(k % 4)
        .map(|&s| Value::from(s))
        .collect();
    for i in 0..(2 + k % 6) {
        let tooltip = text(k + i, 20 + (k + i) % 25);
        let spec = match (k + i) % 5 {
            0 => {
                json!(["INT", {"default": k % 100, "min": 0, "max": 4096, "step": 1, "tooltip": tooltip}])
            }
            1 => {
                json!(["FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01, "round": 0.001, "tooltip": tooltip}])
            }
            2 => {
                json!(["STRING", {"multiline": k.is_multiple_of(2), "default": "", "tooltip": tooltip}])
            }
            3 => combo(&samplers, v3, &tooltip),
            _ => json!([TYPES[(k + i) % TYPES.len()], {"tooltip": tooltip}]),
        };
        required.insert(format!("{}_{i}", WORDS[(k * 3 + i) % WORDS.len()]), spec);
    }
    let outputs: Vec<&str> = (0..k % 3).map(|o| TYPES[(k + o) % TYPES.len()]).collect();
    let mut def = definition(&SyntheticServer::custom_class(k), required, &outputs, k);
    if v3 {
        def["output_matchtypes"] = Value::Null;
        def["api_node"] = false.into();
        def["deprecated"] = false.into();
        def["experimental"] = false.into();
    }
    def
}
