//! Explaining a rejected prompt (a 400 from `POST /prompt`) by what the server lacks, whatever
//! the wording of the ComfyUI version that sent it.

use workflow_hash::is_model_file;

use crate::capabilities::Capabilities;
use crate::requirements::Requirements;
use crate::verdict::{Missing, check};

/// What a rejection names, as far as the caller could read it. Every part is optional; fill
/// in what the answer has:
///
/// - an unknown class (`invalid_prompt`, "Cannot execute because node X does not exist."):
///   [`class`](Self::class) if the caller extracts it, or just [`text`](Self::text);
/// - a value not offered (`value_not_in_list`): `node_errors[id].class_type`,
///   `extra_info.input_name` and `extra_info.received_value` as class, input and value;
/// - anything else: the message and details as [`text`](Self::text).
///
/// ```
/// use comfy_caps::Rejection;
///
/// let named = Rejection::new()
///     .class("CheckpointLoaderSimple")
///     .input("ckpt_name")
///     .value("sdxl.safetensors");
/// assert_eq!(named.input, Some("ckpt_name"));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rejection<'a> {
    /// A node class the rejection names.
    pub class: Option<&'a str>,
    /// The input it names.
    pub input: Option<&'a str>,
    /// The value it names (the received value).
    pub value: Option<&'a str>,
    /// Free text (message, details): searched for a name the server lacks.
    pub text: Option<&'a str>,
}

impl<'a> Rejection<'a> {
    /// Names nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// With the node class it names.
    #[must_use]
    pub fn class(self, class: &'a str) -> Self {
        Self {
            class: Some(class),
            ..self
        }
    }

    /// With the input it names.
    #[must_use]
    pub fn input(self, input: &'a str) -> Self {
        Self {
            input: Some(input),
            ..self
        }
    }

    /// With the value it names.
    #[must_use]
    pub fn value(self, value: &'a str) -> Self {
        Self {
            value: Some(value),
            ..self
        }
    }

    /// With its free text.
    #[must_use]
    pub fn text(self, text: &'a str) -> Self {
        Self {
            text: Some(text),
            ..self
        }
    }
}

/// What the server (`caps`) lacks that `rejection` names, for a workflow needing `reqs`; `None`
/// when the rejection is not explained by a missing class or model file (a bad value, a bad
/// link, or something the capabilities cannot judge).
///
/// In order:
/// 1. a named class the server does not have;
/// 2. a named model-file value the server does not offer: for the named class and input if
///    both are given, else for each of the workflow's references to that file (matching the
///    class or input when one is given);
/// 3. anything [`check`] finds missing whose name (class or file) the text mentions as a
///    whole name (not inside a longer name or path).
///
/// A wording change in ComfyUI does not change the answer as long as the answer still names
/// the class or the file.
pub fn explain_rejection(
    caps: &Capabilities,
    reqs: &Requirements,
    rejection: &Rejection<'_>,
) -> Option<Missing> {
    if let Some(class) = rejection.class
        && !caps.has_class(class)
    {
        return Some(Missing::NodeClass(class.into()));
    }
    if let Some(value) = rejection.value.filter(|v| is_model_file(v))
        && let Some(missing) = missing_value(caps, reqs, rejection, value)
    {
        return Some(missing);
    }
    let text = rejection.text?;
    check(caps, reqs)
        .missing()
        .iter()
        .find(|m| mentions(text, m.name()))
        .cloned()
}

/// Whether [`explain_rejection`] finds what the server lacks.
pub fn explains_rejection(
    caps: &Capabilities,
    reqs: &Requirements,
    rejection: &Rejection<'_>,
) -> bool {
    explain_rejection(caps, reqs, rejection).is_some()
}

/// Rule 2 of [`explain_rejection`].
fn missing_value(
    caps: &Capabilities,
    reqs: &Requirements,
    rejection: &Rejection<'_>,
    value: &str,
) -> Option<Missing> {
    let lacks = |class: &str, input: &str| {
        (caps.allows(class, input, value) == Some(false)).then(|| Missing::ModelFile {
            file: value.into(),
            input: input.into(),
            class: class.into(),
        })
    };
    if let (Some(class), Some(input)) = (rejection.class, rejection.input) {
        return lacks(class, input);
    }
    reqs.model_files()
        .filter(|m| m.file == value)
        .filter(|m| rejection.class.is_none_or(|c| c == m.class))
        .filter(|m| rejection.input.is_none_or(|i| i == m.input))
        .find_map(|m| lacks(m.class, m.input))
}

/// Whether `text` mentions `name` as a whole name: not preceded by a character that could
/// continue a name or a path (letter, digit, `_`, `-`, `.`, `/`, `\`), not followed by one
/// (letter, digit, `_`, `-`, or a `.` that starts another extension).
fn mentions(text: &str, name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    let continues = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    text.match_indices(name).any(|(at, _)| {
        let before = text.get(..at).and_then(|t| t.chars().next_back());
        let mut after = text.get(at + name.len()..).unwrap_or_default().chars();
        let open_before = before.is_none_or(|c| !(continues(c) || matches!(c, '.' | '/' | '\\')));
        let open_after = match after.next() {
            None => true,
            Some('.') => !after.next().is_some_and(continues),
            Some(c) => !continues(c),
        };
        open_before && open_after
    })
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn names_are_mentioned_only_whole() {
        let text = "Cannot execute because node NoSuchNodeClass does not exist.";
        assert!(mentions(text, "NoSuchNodeClass"));
        assert!(!mentions(text, "NoSuchNode"));
        assert!(!mentions(text, "SuchNodeClass"));
        assert!(mentions("node 'Foo'.", "Foo"));
        assert!(mentions("Foo", "Foo"));
        assert!(!mentions("", "Foo"));
        assert!(!mentions("anything", ""));

        let value = "ckpt_name: 'x.safetensors' not in ['a.safetensors']";
        assert!(mentions(value, "x.safetensors"));
        assert!(mentions("missing x.safetensors.", "x.safetensors"));
        assert!(!mentions("sd/x.safetensors", "x.safetensors"));
        assert!(!mentions("x.safetensors.bak", "x.safetensors"));
        assert!(!mentions("ax.safetensors", "x.safetensors"));
        assert!(mentions("é x.safetensors é", "x.safetensors"));
    }
}
