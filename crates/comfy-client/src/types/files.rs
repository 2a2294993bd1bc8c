//! Files: output references, uploads, `/free`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A file on the server as `/view` addresses it: `{filename, subfolder, type}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageRef {
    /// The file name.
    pub filename: String,
    /// The subfolder (empty for none).
    #[serde(default)]
    pub subfolder: String,
    /// `output`, `temp` or `input`.
    #[serde(rename = "type", default = "default_kind")]
    pub kind: String,
}

fn default_kind() -> String {
    "output".to_owned()
}

impl ImageRef {
    /// A reference to `filename` in the `output` folder.
    pub fn output(filename: impl Into<String>) -> Self {
        Self {
            filename: filename.into(),
            subfolder: String::new(),
            kind: default_kind(),
        }
    }
}

/// The UI output of one node (`{images: [...], text: [...], ...}`), kept as JSON.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeOutput(pub Map<String, Value>);

impl NodeOutput {
    /// The `images` entries that are file references.
    pub fn images(&self) -> Vec<ImageRef> {
        self.refs_in("images")
    }

    /// Every file reference, under any key (`images`, `gifs`, `audio`, `video`, ...).
    pub fn files(&self) -> Vec<ImageRef> {
        self.0.keys().flat_map(|k| self.refs_in(k)).collect()
    }

    fn refs_in(&self, key: &str) -> Vec<ImageRef> {
        self.0
            .get(key)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| ImageRef::deserialize(v).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the node produced nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A file to send to `POST /upload/image` or `/upload/mask`.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The file name to store it under.
    pub filename: String,
    /// Its bytes.
    pub bytes: bytes::Bytes,
    /// The subfolder (empty for none).
    pub subfolder: String,
    /// `input` (default), `temp` or `output`.
    pub kind: String,
    /// Replace a file of the same name instead of renaming the upload.
    pub overwrite: bool,
    /// The MIME type of the part (default `image/png`).
    pub mime: String,
    /// For a mask: the image it applies to.
    pub original_ref: Option<ImageRef>,
}

impl Upload {
    /// An upload of `bytes` as `filename` into `input`.
    pub fn new(filename: impl Into<String>, bytes: impl Into<bytes::Bytes>) -> Self {
        Self {
            filename: filename.into(),
            bytes: bytes.into(),
            subfolder: String::new(),
            kind: "input".to_owned(),
            overwrite: false,
            mime: "image/png".to_owned(),
            original_ref: None,
        }
    }

    /// Sets the subfolder.
    pub fn subfolder(mut self, subfolder: impl Into<String>) -> Self {
        self.subfolder = subfolder.into();
        self
    }

    /// Sets the folder type (`input`, `temp`, `output`).
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = kind.into();
        self
    }

    /// Overwrites an existing file of the same name.
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// Sets the MIME type of the part.
    pub fn mime(mut self, mime: impl Into<String>) -> Self {
        self.mime = mime.into();
        self
    }

    /// For a mask upload: the image the mask applies to.
    pub fn original_ref(mut self, image: ImageRef) -> Self {
        self.original_ref = Some(image);
        self
    }
}

/// The answer of an upload: where the file was stored.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UploadResponse {
    /// The stored name (may differ from the requested one: `name (1).png`).
    pub name: String,
    /// The subfolder.
    #[serde(default)]
    pub subfolder: String,
    /// The folder type.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl UploadResponse {
    /// The value a `LoadImage` node's `image` input takes (`subfolder/name`).
    pub fn load_image_value(&self) -> String {
        if self.subfolder.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.subfolder, self.name)
        }
    }

    /// A reference for `/view`.
    pub fn to_ref(&self) -> ImageRef {
        ImageRef {
            filename: self.name.clone(),
            subfolder: self.subfolder.clone(),
            kind: self.kind.clone(),
        }
    }
}

/// The body of `POST /free`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FreeRequest {
    /// Unload every model.
    pub unload_models: bool,
    /// Free cached memory.
    pub free_memory: bool,
}
