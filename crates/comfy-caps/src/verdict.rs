//! [`check`]: whether a server can run a workflow, as a typed [`Verdict`].

use std::fmt;

use crate::capabilities::Capabilities;
use crate::requirements::Requirements;

/// One thing a server lacks for a workflow.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Missing {
    /// The server has no node class of this name.
    NodeClass(Box<str>),
    /// The server describes combo `input` of `class` but does not offer `file` in it.
    ModelFile {
        /// The file the workflow names.
        file: Box<str>,
        /// The input (`"ckpt_name"`).
        input: Box<str>,
        /// The node class (`"CheckpointLoaderSimple"`).
        class: Box<str>,
    },
}

impl Missing {
    /// The name the server lacks: the class, or the file.
    pub fn name(&self) -> &str {
        match self {
            Self::NodeClass(class) => class,
            Self::ModelFile { file, .. } => file,
        }
    }
}

impl fmt::Display for Missing {
    /// `node class X`, or `model file F (ckpt_name of CheckpointLoaderSimple)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NodeClass(class) => write!(f, "node class {}", Shown(class)),
            Self::ModelFile { file, input, class } => write!(
                f,
                "model file {} ({} of {})",
                Shown(file),
                Shown(input),
                Shown(class)
            ),
        }
    }
}

/// Whether a server can run a workflow.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Verdict {
    /// Nothing the workflow needs is known to be missing.
    #[default]
    Capable,
    /// What the server lacks (never empty): missing classes first, then missing model files,
    /// each group sorted.
    Lacks(Box<[Missing]>),
}

impl Verdict {
    /// Whether nothing is known to be missing.
    pub fn is_capable(&self) -> bool {
        matches!(self, Self::Capable)
    }

    /// What is missing (empty when capable).
    pub fn missing(&self) -> &[Missing] {
        match self {
            Self::Capable => &[],
            Self::Lacks(missing) => missing,
        }
    }
}

impl fmt::Display for Verdict {
    /// `capable`, or `lacks node class X; lacks model file F (ckpt_name of
    /// CheckpointLoaderSimple)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Capable => f.write_str("capable"),
            Self::Lacks(missing) => {
                for (i, m) in missing.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "lacks {m}")?;
                }
                Ok(())
            }
        }
    }
}

/// Whether the server described by `caps` can run the workflow described by `reqs`.
///
/// A class the server does not list is missing. A model file is missing when the server
/// describes that (class, input) combo and does not offer the file; an input the server does
/// not describe as a combo is not judged (unknown is not missing). The model files of a
/// missing class are not listed again.
///
/// Allocates only when something is missing.
pub fn check(caps: &Capabilities, reqs: &Requirements) -> Verdict {
    let mut missing = Vec::new();
    for class in reqs.classes() {
        if !caps.has_class(class) {
            missing.push(Missing::NodeClass(class.into()));
        }
    }
    for m in reqs.model_files() {
        if caps.allows(m.class, m.input, m.file) == Some(false) {
            missing.push(Missing::ModelFile {
                file: m.file.into(),
                input: m.input.into(),
                class: m.class.into(),
            });
        }
    }
    if missing.is_empty() {
        Verdict::Capable
    } else {
        Verdict::Lacks(missing.into_boxed_slice())
    }
}

/// A name as shown in messages: verbatim, but control characters escaped so a name cannot
/// forge log lines.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_documented() {
        let verdict = Verdict::Lacks(
            vec![
                Missing::NodeClass("X".into()),
                Missing::ModelFile {
                    file: "F".into(),
                    input: "ckpt_name".into(),
                    class: "CheckpointLoaderSimple".into(),
                },
            ]
            .into_boxed_slice(),
        );
        assert_eq!(
            verdict.to_string(),
            "lacks node class X; lacks model file F (ckpt_name of CheckpointLoaderSimple)"
        );
        assert_eq!(Verdict::Capable.to_string(), "capable");
        assert_eq!(verdict.missing()[1].name(), "F");
    }

    #[test]
    fn control_characters_in_names_are_escaped() {
        let m = Missing::NodeClass("Evil\nINFO forged line\u{1b}[31m".into());
        assert_eq!(
            m.to_string(),
            "node class Evil\\nINFO forged line\\u{1b}[31m"
        );
    }
}
