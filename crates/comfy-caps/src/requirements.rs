//! [`Requirements`]: what one workflow needs from a server.

use std::fmt;

use serde_json::Value;
use workflow_hash::is_model_file;

use crate::error::{Error, Result, kind_of};

/// What one API-format workflow (`{node_id: {class_type, inputs, _meta}}`) needs from a server:
/// the node classes it uses and its model-file references, (class, input, file) for every
/// input whose value is a string that [`is_model_file`] accepts. Links (`["4", 0]`), numbers
/// and other strings are not requirements; a node without a string `class_type` contributes
/// nothing (the server rejects such a workflow whatever it has installed).
///
/// Depends only on what the [`WorkflowHash`](workflow_hash::WorkflowHash) covers (classes,
/// input keys, model files), so it can be computed once per hash. Both lists are sorted and
/// free of duplicates; the whole value is one string plus two index arrays.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    text: Box<str>,
    classes: Box<[Span]>,
    models: Box<[[Span; 3]]>,
}

/// One model-file reference of a workflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModelRef<'a> {
    /// The node class (`"CheckpointLoaderSimple"`).
    pub class: &'a str,
    /// The input (`"ckpt_name"`).
    pub input: &'a str,
    /// The file (`"sdxl.safetensors"`).
    pub file: &'a str,
}

/// Where a name lies in `Requirements::text`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Requirements {
    /// The requirements of `workflow`.
    ///
    /// Allocates the result and two scratch lists, never per node.
    ///
    /// # Errors
    ///
    /// [`Error::WorkflowNotAnObject`] if the top level is not an object,
    /// [`Error::TooLarge`] if the names add up to more than 4 GiB.
    pub fn of(workflow: &Value) -> Result<Self> {
        let Value::Object(nodes) = workflow else {
            return Err(Error::WorkflowNotAnObject {
                found: kind_of(workflow),
            });
        };
        let mut classes: Vec<&str> = Vec::with_capacity(nodes.len());
        let mut models: Vec<(&str, &str, &str)> = Vec::new();
        for node in nodes.values() {
            let Some(class) = node.get("class_type").and_then(Value::as_str) else {
                continue;
            };
            classes.push(class);
            let Some(inputs) = node.get("inputs").and_then(Value::as_object) else {
                continue;
            };
            for (input, value) in inputs {
                if let Value::String(file) = value
                    && is_model_file(file)
                {
                    models.push((class, input, file));
                }
            }
        }
        classes.sort_unstable();
        classes.dedup();
        models.sort_unstable();
        models.dedup();

        let mut text = String::with_capacity(
            classes.iter().map(|c| c.len()).sum::<usize>()
                + models.iter().map(|m| m.1.len() + m.2.len()).sum::<usize>(),
        );
        let mut push = |s: &str| -> Result<Span> {
            let start = u32::try_from(text.len()).map_err(|_| Error::TooLarge)?;
            text.push_str(s);
            let end = u32::try_from(text.len()).map_err(|_| Error::TooLarge)?;
            Ok(Span { start, end })
        };
        let class_spans = classes
            .iter()
            .map(|c| push(c))
            .collect::<Result<Box<[Span]>>>()?;
        let mut model_spans = Vec::with_capacity(models.len());
        for (class, input, file) in models {
            // Every model's class is in `classes`: share its text.
            let shared = classes
                .binary_search(&class)
                .ok()
                .and_then(|i| class_spans.get(i).copied());
            let class = match shared {
                Some(span) => span,
                None => push(class)?,
            };
            model_spans.push([class, push(input)?, push(file)?]);
        }
        Ok(Self {
            text: text.into_boxed_str(),
            classes: class_spans,
            models: model_spans.into_boxed_slice(),
        })
    }

    /// The node classes used, sorted, each once.
    pub fn classes(&self) -> impl ExactSizeIterator<Item = &str> {
        self.classes.iter().map(|&span| self.get(span))
    }

    /// The model-file references, sorted by (class, input, file), each once.
    pub fn model_files(&self) -> impl ExactSizeIterator<Item = ModelRef<'_>> {
        self.models.iter().map(|&[class, input, file]| ModelRef {
            class: self.get(class),
            input: self.get(input),
            file: self.get(file),
        })
    }

    /// Whether the workflow uses no node class at all.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// Heap bytes held.
    pub fn heap_size(&self) -> usize {
        self.text.len()
            + std::mem::size_of_val::<[Span]>(&self.classes)
            + std::mem::size_of_val::<[[Span; 3]]>(&self.models)
    }

    fn get(&self, span: Span) -> &str {
        self.text
            .get(span.start as usize..span.end as usize)
            .unwrap_or_default()
    }
}

impl fmt::Debug for Requirements {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Requirements")
            .field("classes", &self.classes().collect::<Vec<_>>())
            .field("model_files", &self.model_files().collect::<Vec<_>>())
            .finish()
    }
}
