//! `comfy-pool diff A.json B.json`: why two workflows hash differently.

use std::io::Write;
use std::path::PathBuf;

use comfy_pool::WorkflowHash;
use comfy_pool::hash::{Difference, InputShape, diff};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::workflow::WorkflowFile;

/// The arguments of `comfy-pool diff`.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct DiffArgs {
    /// The old workflow (`-`: standard input).
    #[arg(value_name = "A.json")]
    pub old: PathBuf,
    /// The new workflow (`-`: standard input).
    #[arg(value_name = "B.json")]
    pub new: PathBuf,
    /// Print one JSON object instead of lines of text.
    #[arg(long)]
    pub json: bool,
}

/// Two workflows, their hashes and the structural differences between them.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The old workflow's name and hash.
    pub old: (String, WorkflowHash),
    /// The new workflow's name and hash.
    pub new: (String, WorkflowHash),
    /// What makes the hashes differ, in canonical node order (empty when they are equal).
    pub differences: Vec<Difference>,
}

impl Comparison {
    /// Compares two workflows.
    ///
    /// # Errors
    ///
    /// The hash's error when either is not an API-format workflow.
    pub fn of(old: &WorkflowFile, new: &WorkflowFile) -> Result<Self, comfy_pool::hash::Error> {
        Ok(Self {
            old: (old.file.clone(), old.hash),
            new: (new.file.clone(), new.hash),
            differences: diff(&old.value, &new.value)?,
        })
    }

    /// Whether the two structural hashes are equal.
    pub fn is_equal(&self) -> bool {
        self.old.1 == self.new.1
    }

    /// The text form: one line when the hashes are equal; otherwise `HASH  FILE` for each
    /// workflow, then one line per difference.
    pub fn lines(&self) -> Vec<String> {
        if self.is_equal() {
            return vec![format!("same structural hash {}", self.old.1)];
        }
        let mut lines = vec![
            format!("{}  {}", self.old.1, self.old.0),
            format!("{}  {}", self.new.1, self.new.0),
        ];
        lines.extend(self.differences.iter().map(ToString::to_string));
        lines
    }

    /// The JSON form: `{"equal", "old": {"file", "hash"}, "new": {...}, "differences": [...]}`,
    /// each difference with `node`, `kind`, `text` and, where they apply, `class_type`,
    /// `input` (a key path), `from` and `to`.
    pub fn to_json(&self) -> Value {
        let side =
            |(file, hash): &(String, WorkflowHash)| json!({"file": file, "hash": hash.to_string()});
        json!({
            "equal": self.is_equal(),
            "old": side(&self.old),
            "new": side(&self.new),
            "differences": self.differences.iter().map(difference_json).collect::<Vec<_>>(),
        })
    }
}

fn difference_json(difference: &Difference) -> Value {
    let mut object = serde_json::Map::new();
    object.insert("node".to_owned(), difference.node().into());
    let (kind, fields) = match difference {
        Difference::NodeAdded { class_type, .. } => {
            ("node_added", json!({"class_type": class_type}))
        }
        Difference::NodeRemoved { class_type, .. } => {
            ("node_removed", json!({"class_type": class_type}))
        }
        Difference::ClassChanged { from, to, .. } => {
            ("class_changed", json!({"from": from, "to": to}))
        }
        Difference::InputAdded { input, .. } => ("input_added", json!({"input": input})),
        Difference::InputRemoved { input, .. } => ("input_removed", json!({"input": input})),
        Difference::EdgeChanged {
            input, from, to, ..
        } => ("edge_changed", change(input, from, to)),
        Difference::ModelChanged {
            input, from, to, ..
        } => ("model_changed", change(input, from, to)),
        Difference::InputKindChanged {
            input, from, to, ..
        } => ("input_kind_changed", change(input, from, to)),
        Difference::EntryChanged { from, to, .. } => {
            ("entry_changed", json!({"from": from, "to": to}))
        }
        _ => ("other", json!({})),
    };
    object.insert("kind".to_owned(), kind.into());
    if let Value::Object(fields) = fields {
        object.extend(fields);
    }
    object.insert("text".to_owned(), difference.to_string().into());
    Value::Object(object)
}

fn change(input: &[String], from: &InputShape, to: &InputShape) -> Value {
    json!({"input": input, "from": from.to_string(), "to": to.to_string()})
}

/// Runs `comfy-pool diff`: reads both files, writes the comparison to `out` (text or JSON)
/// and returns it.
///
/// # Errors
///
/// [`Error::Read`] or [`Error::Workflow`] naming the file at fault; [`Error::Io`] when writing
/// fails.
pub fn diff_files(args: &DiffArgs, out: &mut dyn Write) -> Result<Comparison> {
    let old = WorkflowFile::read(&args.old)?;
    let new = WorkflowFile::read(&args.new)?;
    let comparison = Comparison::of(&old, &new).map_err(|source| Error::Workflow {
        file: format!("{} / {}", old.file, new.file),
        source,
    })?;
    if args.json {
        writeln!(out, "{}", comparison.to_json()).map_err(Error::output)?;
    } else {
        for line in comparison.lines() {
            writeln!(out, "{line}").map_err(Error::output)?;
        }
    }
    out.flush().map_err(Error::output)?;
    Ok(comparison)
}
