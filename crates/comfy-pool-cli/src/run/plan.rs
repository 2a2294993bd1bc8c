//! [`Plan`]: the jobs of a run — every workflow file × every repeat, each with a stable id
//! and, with `--vary-seed`, its own seeds.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use comfy_pool::WorkflowHash;
use comfy_pool::hash::validate;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::workflow::WorkflowFile;

/// The inputs `--vary-seed` changes (the same names the pool auto-seeds when they are `-1`).
pub const SEED_INPUTS: [&str; 2] = ["seed", "noise_seed"];

/// One job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// Its id: `<file stem>-<repeat>`, repeats counted from 1 (see [`Plan::new`]).
    pub id: String,
    /// The workflow file, as given.
    pub file: String,
    /// The workflow to send (shared by the repeats unless seeds vary).
    pub workflow: Arc<Value>,
    /// Its structural hash (seeds do not change it).
    pub hash: WorkflowHash,
}

/// The jobs of one run, in enqueue order: every repeat of the first file, then of the next.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// The jobs.
    pub jobs: Vec<JobSpec>,
}

impl Plan {
    /// Reads and strictly validates every file (all before any job is made, so a bad file
    /// stops the run before a server is used) and makes `repeat` jobs of each.
    ///
    /// Job ids are `<file stem>-<n>` for repeat `n` = 1..=`repeat`, so the same command line
    /// gives the same ids every time. When two files share a stem, the later one is named
    /// `<stem>~2` (then `~3`, ...), in command-line order.
    ///
    /// With `vary_seed`, repeat `n` adds `n - 1` to every `seed` / `noise_seed` input that is
    /// a non-negative integer ([`vary_seeds`]): repeat 1 sends the file as it is, and a
    /// re-run of the command sends the same seeds again. A seed of `-1` is left to the pool's
    /// auto-seed (a fresh random seed per attempt), with or without `vary_seed`.
    ///
    /// # Errors
    ///
    /// [`Error::Read`](crate::Error::Read) or [`Error::Workflow`](crate::Error::Workflow),
    /// naming the first file that cannot be used.
    pub fn new(files: &[PathBuf], repeat: u32, vary_seed: bool) -> Result<Self> {
        let workflows = files
            .iter()
            .map(|file| {
                let workflow = WorkflowFile::read(file)?;
                validate(&workflow.value).map_err(|source| Error::Workflow {
                    file: workflow.file.clone(),
                    source,
                })?;
                Ok(workflow)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut stems = HashSet::new();
        let mut jobs = Vec::new();
        for (workflow, path) in workflows.into_iter().zip(files) {
            let stem = unique_stem(path, &mut stems);
            let shared = Arc::new(workflow.value);
            for n in 1..=repeat {
                let value = if vary_seed && n > 1 {
                    Arc::new(vary_seeds(&shared, u64::from(n - 1)))
                } else {
                    Arc::clone(&shared)
                };
                jobs.push(JobSpec {
                    id: format!("{stem}-{n}"),
                    file: workflow.file.clone(),
                    workflow: value,
                    hash: workflow.hash,
                });
            }
        }
        Ok(Self { jobs })
    }

    /// The file names that have this hash, in plan order, without repeats.
    pub fn files_with(&self, hash: &WorkflowHash) -> Vec<&str> {
        let mut files: Vec<&str> = Vec::new();
        for job in self.jobs.iter().filter(|job| job.hash == *hash) {
            if !files.contains(&job.file.as_str()) {
                files.push(&job.file);
            }
        }
        files
    }
}

/// The file's stem, made unique among `taken` by a `~k` suffix.
fn unique_stem(path: &Path, taken: &mut HashSet<String>) -> String {
    let stem = path.file_stem().map_or_else(
        || "workflow".to_owned(),
        |s| s.to_string_lossy().into_owned(),
    );
    let mut candidate = stem.clone();
    let mut k = 2u32;
    while !taken.insert(candidate.clone()) {
        candidate = format!("{stem}~{k}");
        k += 1;
    }
    candidate
}

/// A copy of `workflow` with `offset` added (wrapping) to every `seed` / `noise_seed` input
/// that is a non-negative integer; other values (`-1`, floats, links) are left alone.
pub fn vary_seeds(workflow: &Value, offset: u64) -> Value {
    let mut copy = workflow.clone();
    let nodes = copy
        .as_object_mut()
        .into_iter()
        .flat_map(|n| n.values_mut());
    for node in nodes {
        let Some(inputs) = node.get_mut("inputs").and_then(Value::as_object_mut) else {
            continue;
        };
        for name in SEED_INPUTS {
            if let Some(slot) = inputs.get_mut(name)
                && let Some(seed) = slot.as_u64()
            {
                *slot = Value::from(seed.wrapping_add(offset));
            }
        }
    }
    copy
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use serde_json::json;

    use super::{unique_stem, vary_seeds};

    #[test]
    fn stems_are_made_unique_in_order() {
        let mut taken = HashSet::new();
        let names: Vec<String> = ["a/x.json", "b/x.json", "x~2.json", "x.json", "y"]
            .iter()
            .map(|p| unique_stem(Path::new(p), &mut taken))
            .collect();
        assert_eq!(names, ["x", "x~2", "x~2~2", "x~3", "y"]);
    }

    #[test]
    fn seeds_move_by_the_offset_and_minus_one_stays() {
        let workflow = json!({
            "1": {"class_type": "KSampler", "inputs": {"seed": 41, "steps": 20, "model": ["4", 0]}},
            "2": {"class_type": "KSamplerAdvanced", "inputs": {"noise_seed": -1}},
            "3": {"class_type": "RandomNoise", "inputs": {"noise_seed": u64::MAX}},
            "4": {"class_type": "X", "inputs": {"seed": 1.5}}
        });
        let varied = vary_seeds(&workflow, 2);
        assert_eq!(varied["1"]["inputs"]["seed"], json!(43));
        assert_eq!(varied["1"]["inputs"]["steps"], json!(20));
        assert_eq!(varied["2"]["inputs"]["noise_seed"], json!(-1));
        assert_eq!(varied["3"]["inputs"]["noise_seed"], json!(1));
        assert_eq!(varied["4"]["inputs"]["seed"], json!(1.5));
        assert_eq!(vary_seeds(&workflow, 0), workflow);
    }
}
