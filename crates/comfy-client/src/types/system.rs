//! `GET /system_stats` and `GET /features`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The answer of `GET /system_stats`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SystemStats {
    /// Host and version information.
    #[serde(default)]
    pub system: SystemInfo,
    /// Compute devices.
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `system` object of [`SystemStats`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SystemInfo {
    /// `posix`, `nt`, ...
    #[serde(default)]
    pub os: String,
    /// Total RAM in bytes.
    #[serde(default)]
    pub ram_total: Option<u64>,
    /// Free RAM in bytes.
    #[serde(default)]
    pub ram_free: Option<u64>,
    /// The ComfyUI version.
    #[serde(default)]
    pub comfyui_version: Option<String>,
    /// The Python version.
    #[serde(default)]
    pub python_version: Option<String>,
    /// The PyTorch version.
    #[serde(default)]
    pub pytorch_version: Option<String>,
    /// Whether ComfyUI runs on an embedded Python.
    #[serde(default)]
    pub embedded_python: Option<bool>,
    /// The server's command line.
    #[serde(default)]
    pub argv: Vec<String>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A compute device of [`SystemStats`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Device {
    /// The device name.
    #[serde(default)]
    pub name: String,
    /// `cpu`, `cuda`, `mps`, ...
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The device index.
    #[serde(default)]
    pub index: Option<i64>,
    /// Total VRAM in bytes.
    #[serde(default)]
    pub vram_total: Option<u64>,
    /// Free VRAM in bytes.
    #[serde(default)]
    pub vram_free: Option<u64>,
    /// Total VRAM seen by torch.
    #[serde(default)]
    pub torch_vram_total: Option<u64>,
    /// Free VRAM seen by torch.
    #[serde(default)]
    pub torch_vram_free: Option<u64>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Server feature flags (`GET /features`, and the `feature_flags` websocket message).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Features {
    /// Binary previews may carry metadata (frame type 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supports_preview_metadata: Option<bool>,
    /// The largest accepted upload, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_upload_size: Option<u64>,
    /// Flags this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
