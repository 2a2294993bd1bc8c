//! The simulated disk: input uploads and output images, kept in memory.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use bytes::Bytes;

/// One stored file.
#[derive(Clone, Debug)]
pub(crate) struct StoredFile {
    pub(crate) bytes: Bytes,
    pub(crate) etag: String,
}

impl StoredFile {
    pub(crate) fn new(bytes: Bytes) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut hasher);
        let etag = format!("\"{:x}-{:x}\"", hasher.finish(), bytes.len());
        Self { bytes, etag }
    }
}

/// Files by `(type, subfolder, filename)`, with `type` one of `input`, `output`, `temp`.
/// Survives crashes, like a disk.
#[derive(Default)]
pub(crate) struct FileStore {
    files: HashMap<(String, String, String), StoredFile>,
    counters: HashMap<(String, String), u32>,
}

impl FileStore {
    pub(crate) fn get(&self, kind: &str, subfolder: &str, name: &str) -> Option<StoredFile> {
        self.files
            .get(&(kind.to_owned(), subfolder.to_owned(), name.to_owned()))
            .cloned()
    }

    pub(crate) fn put(&mut self, kind: &str, subfolder: &str, name: &str, file: StoredFile) {
        self.files.insert(
            (kind.to_owned(), subfolder.to_owned(), name.to_owned()),
            file,
        );
    }

    /// True when an `input` file of that (possibly `sub/name`) path exists.
    pub(crate) fn has_input(&self, path: &str) -> bool {
        let (subfolder, name) = split_path(path);
        self.files
            .contains_key(&("input".to_owned(), subfolder.to_owned(), name.to_owned()))
    }

    /// Names of all `input` files, as `LoadImage` lists them (`sub/name` inside subfolders).
    pub(crate) fn input_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .files
            .keys()
            .filter(|(kind, _, _)| kind == "input")
            .map(|(_, sub, name)| {
                if sub.is_empty() {
                    name.clone()
                } else {
                    format!("{sub}/{name}")
                }
            })
            .collect();
        names.sort_unstable();
        names
    }

    /// Next free counter of `prefix` in `kind`/`subfolder` (ComfyUI's `_00001_` numbering).
    pub(crate) fn next_counter(&mut self, kind: &str, prefix: &str) -> u32 {
        let counter = self
            .counters
            .entry((kind.to_owned(), prefix.to_owned()))
            .or_insert(0);
        *counter += 1;
        *counter
    }
}

/// Splits `sub/dir/name.png` into (`sub/dir`, `name.png`).
pub(crate) fn split_path(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}
