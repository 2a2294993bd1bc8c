//! [`InputFile`]: a file uploaded to the chosen server before a job runs.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::Blob;

/// A file uploaded (`POST /upload/image`) to the chosen server before each attempt, so that a
/// `LoadImage` node can name it. Its content travels by reference in job records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InputFile {
    /// The file name the workflow refers to.
    pub name: String,
    /// The subfolder of the server's input folder ("" for none).
    #[serde(default)]
    pub subfolder: String,
    /// The file's content.
    pub content: Blob,
}

impl InputFile {
    /// A file named `name` at the top of the input folder.
    pub fn new(name: impl Into<String>, bytes: impl Into<Bytes>) -> Self {
        Self {
            name: name.into(),
            subfolder: String::new(),
            content: Blob::new(bytes),
        }
    }

    /// The file's bytes, when attached (see [`Blob`]).
    pub fn bytes(&self) -> Option<&Bytes> {
        self.content.bytes()
    }

    /// Puts the file in `subfolder`.
    #[must_use]
    pub fn subfolder(mut self, subfolder: impl Into<String>) -> Self {
        self.subfolder = subfolder.into();
        self
    }
}

/// Gives every input file a name derived from its bytes (`photo.png` → `photo-1a2b3c4d5e6f.png`)
/// and points the workflow's references at the new names, so that jobs uploading different
/// bytes under one name to one server never overwrite each other, and equal bytes share one
/// file. A reference is a node input whose value is the file's path in the input folder
/// (`name`, or `subfolder/name`), optionally followed by ComfyUI's ` [input]` annotation.
pub(crate) fn content_addressed(
    files: &[InputFile],
    workflow: &mut serde_json::Value,
) -> Vec<InputFile> {
    let mut renamed = Vec::with_capacity(files.len());
    for file in files {
        let key = file.content.key();
        let tag = key.get(..12).unwrap_or(&key);
        let name = match file.name.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{tag}.{ext}"),
            _ => format!("{}-{tag}", file.name),
        };
        let path = |name: &str| {
            if file.subfolder.is_empty() {
                name.to_owned()
            } else {
                format!("{}/{name}", file.subfolder)
            }
        };
        let (old, new) = (path(&file.name), path(&name));
        for node in workflow
            .as_object_mut()
            .into_iter()
            .flat_map(|n| n.values_mut())
        {
            let Some(inputs) = node
                .get_mut("inputs")
                .and_then(serde_json::Value::as_object_mut)
            else {
                continue;
            };
            for value in inputs.values_mut() {
                let Some(text) = value.as_str() else { continue };
                let replacement = if text == old {
                    new.clone()
                } else if let Some(rest) = text.strip_prefix(old.as_str())
                    && rest == " [input]"
                {
                    format!("{new}{rest}")
                } else {
                    continue;
                };
                *value = serde_json::Value::String(replacement);
            }
        }
        renamed.push(InputFile {
            name,
            subfolder: file.subfolder.clone(),
            content: file.content.clone(),
        });
    }
    renamed
}

/// Drops a workflow without recursion: `serde_json::Value`'s own drop recurses once per
/// level, and a refused workflow can be nested far deeper than any stack.
pub(crate) fn drop_deep(workflow: std::sync::Arc<serde_json::Value>) {
    use serde_json::Value;
    let Ok(root) = std::sync::Arc::try_unwrap(workflow) else {
        return;
    };
    let mut pending = vec![root];
    while let Some(value) = pending.pop() {
        match value {
            Value::Array(items) => pending.extend(items),
            Value::Object(map) => pending.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}
