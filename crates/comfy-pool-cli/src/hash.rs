//! `comfy-pool hash FILE...`: the structural hash of each workflow file, like `sha256sum`.

use std::io::Write;
use std::path::{Path, PathBuf};

use comfy_pool::WorkflowHash;
use comfy_pool::hash::Error as HashError;

use crate::error::{Error, Result};
use crate::workflow::{self, STDIN};

/// The arguments of `comfy-pool hash`.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct HashArgs {
    /// API-format workflow JSON files (`-` or none: standard input).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// The structural hash of one workflow file (`-`: standard input).
///
/// # Errors
///
/// [`Error::Read`] when the file cannot be read, [`Error::Workflow`] when it is not JSON or
/// not an API-format workflow; both name the file.
pub fn hash_file(file: &Path) -> Result<WorkflowHash> {
    let reader = workflow::open(file)?;
    let name = || file.display().to_string();
    WorkflowHash::of_reader(reader).map_err(|source| match source {
        HashError::Io(source) => Error::Read {
            file: name(),
            source,
        },
        source => Error::Workflow {
            file: name(),
            source,
        },
    })
}

/// Writes `HASH  FILE` to `out` for each file, in order, and one line per failed file to
/// `errors`, then carries on. Returns how many files failed.
///
/// # Errors
///
/// [`Error::Io`] only when writing to `out` or `errors` fails.
pub fn hash_files(args: &HashArgs, out: &mut dyn Write, errors: &mut dyn Write) -> Result<usize> {
    let stdin = [PathBuf::from(STDIN)];
    let files = if args.files.is_empty() {
        &stdin[..]
    } else {
        &args.files[..]
    };
    let mut failed = 0;
    for file in files {
        match hash_file(file) {
            Ok(hash) => writeln!(out, "{hash}  {}", file.display()).map_err(Error::output)?,
            Err(error) => {
                failed += 1;
                writeln!(errors, "comfy-pool hash: {}", error.chain()).map_err(Error::output)?;
            }
        }
    }
    out.flush().map_err(Error::output)?;
    Ok(failed)
}
