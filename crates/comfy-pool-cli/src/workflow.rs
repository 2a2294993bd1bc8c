//! [`WorkflowFile`]: an API-format workflow read from a file, with its structural hash.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use comfy_pool::WorkflowHash;
use comfy_pool::hash::Error as HashError;
use serde_json::Value;

use crate::error::{Error, Result};

/// The name that stands for standard input.
pub const STDIN: &str = "-";

/// A workflow read from a file (or standard input), parsed and hashed.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowFile {
    /// The file as given on the command line (`-` for standard input).
    pub file: String,
    /// The workflow.
    pub value: Value,
    /// Its structural hash.
    pub hash: WorkflowHash,
}

impl WorkflowFile {
    /// Reads, parses and hashes `file` (`-`: standard input).
    ///
    /// # Errors
    ///
    /// [`Error::Read`] when the file cannot be read, [`Error::Workflow`] when it is not JSON
    /// or not an API-format workflow; both name the file.
    pub fn read(file: &Path) -> Result<Self> {
        let name = file.display().to_string();
        let text = read_text(&name, file)?;
        let workflow_error = |source| Error::Workflow {
            file: name.clone(),
            source,
        };
        let value: Value =
            serde_json::from_slice(&text).map_err(|e| workflow_error(HashError::Json(e)))?;
        Self::new(name.clone(), value).map_err(workflow_error)
    }

    /// A workflow named `file`, hashed.
    ///
    /// # Errors
    ///
    /// The hash's error when `value` is not an API-format workflow.
    pub fn new(file: impl Into<String>, value: Value) -> Result<Self, HashError> {
        let hash = WorkflowHash::of(&value)?;
        Ok(Self {
            file: file.into(),
            value,
            hash,
        })
    }
}

/// Opens `file` for reading (`-`: standard input).
///
/// # Errors
///
/// [`Error::Read`], naming the file.
pub fn open(file: &Path) -> Result<Box<dyn Read>> {
    if file.as_os_str() == STDIN {
        return Ok(Box::new(io::stdin().lock()));
    }
    File::open(file)
        .map(|f| Box::new(BufReader::new(f)) as Box<dyn Read>)
        .map_err(|source| Error::Read {
            file: file.display().to_string(),
            source,
        })
}

fn read_text(name: &str, file: &Path) -> Result<Vec<u8>> {
    let mut text = Vec::new();
    open(file)?
        .read_to_end(&mut text)
        .map_err(|source| Error::Read {
            file: name.to_owned(),
            source,
        })?;
    Ok(text)
}
