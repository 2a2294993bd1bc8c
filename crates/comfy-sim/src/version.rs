//! Which ComfyUI release a simulated server answers as.

use serde_json::{Value, json};

/// The ComfyUI release whose answers a [`SimServer`](crate::SimServer) reproduces.
///
/// Both are recorded from real servers; the differences are those listed in the 0.8
/// recordings' README: the Jobs API (`GET /api/jobs`, `GET /api/jobs/{id}`, only under
/// `/api`), `GET /global_subgraphs`, `extra_data.create_time` on queue items and history
/// entries, the `/system_stats` versions and `os`, the `extension` feature flag, the V3
/// definition of `GetImageSize`, `output_matchtypes` on `ImageBlur`, and traceback line
/// numbers. The websocket messages and every 400 body are the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ComfyVersion {
    /// ComfyUI 0.3.64 (the default).
    #[default]
    V0_3_64,
    /// ComfyUI 0.8.0.
    V0_8,
}

impl ComfyVersion {
    /// Whether this release serves the Jobs API.
    pub fn has_jobs_api(self) -> bool {
        self == Self::V0_8
    }

    /// `system.comfyui_version` of `/system_stats`.
    pub fn comfyui_version(self) -> &'static str {
        match self {
            Self::V0_3_64 => "0.3.64",
            Self::V0_8 => "0.8.0",
        }
    }

    /// The `system` fields of `/system_stats` that differ: os, frontend and template versions.
    pub(crate) fn system_fields(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::V0_3_64 => ("posix", "1.27.10", "0.1.95"),
            Self::V0_8 => ("linux", "1.35.9", "0.7.67"),
        }
    }

    /// The server's feature flags (`/features` and the websocket `feature_flags` answer).
    pub(crate) fn features(self) -> Value {
        match self {
            Self::V0_3_64 => {
                json!({"supports_preview_metadata": true, "max_upload_size": 104_857_600})
            }
            Self::V0_8 => json!({
                "supports_preview_metadata": true,
                "max_upload_size": 104_857_600,
                "extension": {"manager": {"supports_v4": true}},
            }),
        }
    }

    /// The first frames of an `execution_error` traceback (ComfyUI's own code).
    pub(crate) fn execution_traceback(self) -> [&'static str; 2] {
        match self {
            Self::V0_3_64 => [
                "  File \"/opt/ComfyUI/execution.py\", line 496, in execute\n    output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, obj, input_data_all, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, hidden_inputs=hidden_inputs)\n",
                "  File \"/opt/ComfyUI/execution.py\", line 277, in process_inputs\n    result = f(**inputs)\n             ^^^^^^^^^^^\n",
            ],
            Self::V0_8 => [
                "  File \"/opt/ComfyUI/execution.py\", line 518, in execute\n    output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, obj, input_data_all, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, v3_data=v3_data)\n",
                "  File \"/opt/ComfyUI/execution.py\", line 291, in process_inputs\n    result = f(**inputs)\n             ^^^^^^^^^^^\n",
            ],
        }
    }

    /// The traceback frame of a link to a missing node, in validation.
    pub(crate) fn missing_link_traceback(self) -> &'static str {
        match self {
            Self::V0_3_64 => {
                "  File \"/opt/ComfyUI/execution.py\", line 788, in validate_inputs\n    o_class_type = prompt[o_id]['class_type']\n                   ~~~~~~^^^^^^\n"
            }
            Self::V0_8 => {
                "  File \"/opt/ComfyUI/execution.py\", line 818, in validate_inputs\n    o_class_type = prompt[o_id]['class_type']\n                   ~~~~~~^^^^^^\n"
            }
        }
    }
}
