//! Start-up configuration of a simulated server.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use crate::catalog::{ModelInput, NodeCatalog, core_model_inputs};
use crate::faults::{FaultSettings, RejectionStyle};
use crate::version::ComfyVersion;

/// How a [`SimServer`](crate::SimServer) looks and behaves when it starts.
///
/// Built with chained setters from [`SimConfig::default`]: loopback on an ephemeral port, the
/// core node catalog, `checkpoints/sd15.safetensors` installed, zero execution time, no faults.
///
/// ```
/// use std::time::Duration;
/// let config = comfy_sim::SimConfig::default()
///     .model("loras", "detail.safetensors")
///     .exec_time(Duration::from_millis(5))
///     .node_steps("KSampler", 4)
///     .seed(7);
/// # let _ = config;
/// ```
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub(crate) listen: SocketAddr,
    pub(crate) catalog: NodeCatalog,
    pub(crate) models: BTreeMap<String, Vec<String>>,
    pub(crate) input_files: Vec<String>,
    pub(crate) model_inputs: Vec<ModelInput>,
    pub(crate) exec_time: Duration,
    pub(crate) node_exec_times: HashMap<String, Duration>,
    pub(crate) steps: u32,
    pub(crate) node_steps: HashMap<String, u32>,
    pub(crate) seed: u64,
    pub(crate) faults: FaultSettings,
    pub(crate) body_limit: usize,
    pub(crate) version: ComfyVersion,
}

impl Default for SimConfig {
    fn default() -> Self {
        let mut models = BTreeMap::new();
        for folder in MODEL_FOLDERS {
            models.insert((*folder).to_owned(), Vec::new());
        }
        models.insert(
            "checkpoints".to_owned(),
            vec!["sd15.safetensors".to_owned()],
        );
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            catalog: NodeCatalog::core(),
            models,
            input_files: vec!["example.png".to_owned()],
            model_inputs: core_model_inputs(),
            exec_time: Duration::ZERO,
            node_exec_times: HashMap::new(),
            steps: 0,
            node_steps: HashMap::new(),
            seed: 0,
            faults: FaultSettings::default(),
            body_limit: 8 * 1024 * 1024,
            version: ComfyVersion::default(),
        }
    }
}

/// The model folder names a real server lists in `GET /models`.
pub(crate) const MODEL_FOLDERS: &[&str] = &[
    "checkpoints",
    "configs",
    "loras",
    "vae",
    "text_encoders",
    "diffusion_models",
    "clip_vision",
    "style_models",
    "embeddings",
    "diffusers",
    "vae_approx",
    "controlnet",
    "gligen",
    "upscale_models",
    "custom_nodes",
    "hypernetworks",
    "photomaker",
    "classifiers",
    "model_patches",
    "audio_encoders",
];

impl SimConfig {
    /// The address to listen on (default `127.0.0.1:0`, an ephemeral port).
    #[must_use]
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Replaces the node catalog.
    #[must_use]
    pub fn catalog(mut self, catalog: NodeCatalog) -> Self {
        self.catalog = catalog;
        self
    }

    /// Removes one node class from the catalog (the server then rejects prompts using it).
    #[must_use]
    pub fn without_node(mut self, class: &str) -> Self {
        self.catalog = self.catalog.without_node(class);
        self
    }

    /// Installs one model file in `folder` (`checkpoints`, `loras`, `vae`, ...).
    #[must_use]
    pub fn model(mut self, folder: &str, file: &str) -> Self {
        let files = self.models.entry(folder.to_owned()).or_default();
        if !files.iter().any(|f| f == file) {
            files.push(file.to_owned());
        }
        self
    }

    /// Sets the complete list of files of one model folder (an empty list uninstalls all).
    #[must_use]
    pub fn models(mut self, folder: &str, files: &[&str]) -> Self {
        self.models.insert(
            folder.to_owned(),
            files.iter().map(|f| (*f).to_owned()).collect(),
        );
        self
    }

    /// Declares that input `input` of node `class` names a file of model folder `folder`, so it
    /// is validated against the installed files (the core loaders are declared already).
    #[must_use]
    pub fn model_input(mut self, class: &str, input: &str, folder: &str) -> Self {
        self.model_inputs.push(ModelInput {
            class: class.to_owned(),
            input: input.to_owned(),
            folder: folder.to_owned(),
        });
        self
    }

    /// Adds a file to the server's `input` folder, loadable by `LoadImage` and `/view`.
    #[must_use]
    pub fn input_file(mut self, name: &str) -> Self {
        self.input_files.push(name.to_owned());
        self
    }

    /// Execution time of every node (default zero: a trivial prompt runs in microseconds).
    #[must_use]
    pub fn exec_time(mut self, time: Duration) -> Self {
        self.exec_time = time;
        self
    }

    /// Execution time of one node class, overriding [`SimConfig::exec_time`].
    #[must_use]
    pub fn node_exec_time(mut self, class: &str, time: Duration) -> Self {
        self.node_exec_times.insert(class.to_owned(), time);
        self
    }

    /// Number of `progress` steps every node reports (default 0: none).
    #[must_use]
    pub fn steps(mut self, steps: u32) -> Self {
        self.steps = steps;
        self
    }

    /// Number of `progress` steps of one node class, overriding [`SimConfig::steps`].
    #[must_use]
    pub fn node_steps(mut self, class: &str, steps: u32) -> Self {
        self.node_steps.insert(class.to_owned(), steps);
        self
    }

    /// Seed of the server's random choices (chaos faults, temp file names): same seed, same run.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Faults active from the start (change them later through [`Faults`](crate::Faults)).
    #[must_use]
    pub fn faults(mut self, faults: FaultSettings) -> Self {
        self.faults = faults;
        self
    }

    /// How prompts with an unknown node class are rejected (default
    /// [`RejectionStyle::Legacy`]); the same as setting
    /// [`FaultSettings::rejection_style`](crate::FaultSettings::rejection_style) (so call it
    /// after [`SimConfig::faults`], which replaces every fault setting).
    #[must_use]
    pub fn rejection_style(mut self, style: RejectionStyle) -> Self {
        self.faults.rejection_style = style;
        self
    }

    /// The ComfyUI release to answer as (default [`ComfyVersion::V0_3_64`]); see
    /// [`ComfyVersion`] for what changes. The core catalog's nodes that changed are served
    /// in that release's definition.
    #[must_use]
    pub fn version(mut self, version: ComfyVersion) -> Self {
        self.version = version;
        self
    }

    /// Largest accepted request body in bytes (default 8 MiB); bigger bodies get 413.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }
}
