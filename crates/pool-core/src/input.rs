//! [`InputFile`]: a file uploaded to the chosen server before a job runs.

use bytes::Bytes;

/// A file uploaded (`POST /upload/image`, overwrite on) to the chosen server before each
/// attempt, so that a `LoadImage` node can name it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InputFile {
    /// The file name the workflow refers to.
    pub name: String,
    /// The subfolder of the server's input folder ("" for none).
    pub subfolder: String,
    /// The file's bytes.
    pub bytes: Bytes,
}

impl InputFile {
    /// A file named `name` at the top of the input folder.
    pub fn new(name: impl Into<String>, bytes: impl Into<Bytes>) -> Self {
        Self {
            name: name.into(),
            subfolder: String::new(),
            bytes: bytes.into(),
        }
    }

    /// Puts the file in `subfolder`.
    #[must_use]
    pub fn subfolder(mut self, subfolder: impl Into<String>) -> Self {
        self.subfolder = subfolder.into();
        self
    }
}
