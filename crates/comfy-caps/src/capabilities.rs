//! [`Capabilities`]: what one server can run, held compactly.
//!
//! Layout: one [`Interner`] (every name once, 4-byte symbols); the set of class symbols; and a
//! map from a (class, input) pair, packed into a `u64`, to the sorted model-file choices of
//! that combo input. Only model files are kept as choices: they are the only values a
//! [`Requirements`](crate::Requirements) holds, so a sampler list costs one map entry and no
//! string.

use std::fmt;

use hashbrown::{HashMap, HashSet};
use rustc_hash::FxBuildHasher;
use workflow_hash::is_model_file;

use crate::error::Result;
use crate::intern::{Interner, Sym, hash_str};
use crate::object_info;
use crate::version::{CHOICE_TAG, CLASS_TAG, COMBO_TAG, CapsVersion, mix};

/// What one ComfyUI server can run: its node classes and, for every combo input of those
/// classes (an input whose value must be one of a list, such as `ckpt_name`), the model files
/// it accepts. Read from the bytes of `GET /object_info` with
/// [`from_object_info`](Self::from_object_info), kept current with
/// [`update_class`](Self::update_class) (`GET /object_info/{class}`).
///
/// Both combo spellings are understood: the list as the first element
/// (`"ckpt_name": [["a.safetensors", ...], {...}]`, ComfyUI's classic nodes) and the V3 form
/// (`"ckpt_name": ["COMBO", {"options": ["a.safetensors", ...], ...}]`). `required` and
/// `optional` inputs are read; `hidden` ones are filled by the server and never judged. A
/// `COMBO` without an `options` list (a remote list the browser fetches) is not judged.
///
/// An empty `Capabilities` (the [`Default`]) has no class and so lacks everything: hold an
/// `Option<Capabilities>` for a server whose `/object_info` has not been read.
#[derive(Clone, Default)]
pub struct Capabilities {
    names: Interner,
    classes: HashSet<Sym, FxBuildHasher>,
    combos: HashMap<u64, Box<[Sym]>, FxBuildHasher>,
    version: CapsVersion,
}

/// Packs a (class, input) pair into one map key.
#[inline]
fn combo_key(class: Sym, input: Sym) -> u64 {
    u64::from(class.index()) << 32 | u64::from(input.index())
}

/// The class half of a packed key.
#[inline]
fn key_class(key: u64) -> u32 {
    (key >> 32) as u32
}

impl Capabilities {
    /// Reads a whole `GET /object_info` body. Streams over the bytes: tooltips, descriptions,
    /// outputs and every other part routing does not need are skipped without being built.
    ///
    /// # Errors
    ///
    /// [`Error::Json`](crate::Error::Json) for malformed JSON (deep nesting is not an error:
    /// it is skipped in place), [`Error::NotAnObject`](crate::Error::NotAnObject) if the top level is not an object,
    /// [`Error::NameTooLong`](crate::Error::NameTooLong) for a class, input or model-file name
    /// over [`MAX_NAME_BYTES`](crate::MAX_NAME_BYTES),
    /// [`Error::TooLarge`](crate::Error::TooLarge) past 4 GiB of names.
    pub fn from_object_info(body: &[u8]) -> Result<Self> {
        let mut caps = Self::default();
        object_info::parse(body, &mut caps)?;
        caps.names.shrink_to_fit();
        caps.classes.shrink_to_fit();
        caps.combos.shrink_to_fit();
        caps.refresh_version();
        Ok(caps)
    }

    /// Applies the answer of `GET /object_info/{class}`: `{}` (ComfyUI's answer for a class it
    /// does not have) removes `class`; an answer holding definitions replaces `class` and each
    /// class it defines. The [`version`](Self::version) follows.
    ///
    /// On error nothing changes. Names are interned for the life of the value, so a server
    /// that keeps renaming things grows it; a periodic [`from_object_info`](Self::from_object_info)
    /// starts afresh.
    ///
    /// # Errors
    ///
    /// As [`from_object_info`](Self::from_object_info).
    pub fn update_class(&mut self, class: &str, body: &[u8]) -> Result<()> {
        let mut delta = Self::default();
        object_info::parse(body, &mut delta)?;
        // Intern everything first, so an error leaves the classes and combos untouched.
        let mut classes = Vec::with_capacity(delta.classes.len());
        for &sym in &delta.classes {
            classes.push(self.names.intern(delta.names.resolve(sym), "node class")?);
        }
        let mut combos = Vec::with_capacity(delta.combos.len());
        for (&key, choices) in &delta.combos {
            let (c, i) = Self::unpack(key);
            let key = combo_key(
                self.names.intern(delta.names.resolve(c), "node class")?,
                self.names.intern(delta.names.resolve(i), "input")?,
            );
            let mut mine = Vec::with_capacity(choices.len());
            for &f in choices {
                mine.push(self.names.intern(delta.names.resolve(f), "choice")?);
            }
            mine.sort_unstable();
            combos.push((key, mine.into_boxed_slice()));
        }
        for sym in self
            .names
            .get(class)
            .into_iter()
            .chain(classes.iter().copied())
        {
            self.remove_class(sym);
        }
        self.classes.extend(classes);
        self.combos.extend(combos);
        self.refresh_version();
        Ok(())
    }

    /// Whether the server has node class `class`.
    #[inline]
    pub fn has_class(&self, class: &str) -> bool {
        self.names
            .get(class)
            .is_some_and(|sym| self.classes.contains(&sym))
    }

    /// Whether the server accepts `value` for combo input `input` of class `class`:
    /// `Some(true)` or `Some(false)` when the server describes that combo and `value` is a
    /// model file ([`is_model_file`]); `None` (not judged) when the class or the input is
    /// unknown, the input is not a combo, or `value` is not a model file.
    #[inline]
    pub fn allows(&self, class: &str, input: &str, value: &str) -> Option<bool> {
        let choices = self.combo(class, input)?;
        if !is_model_file(value) {
            return None;
        }
        Some(
            self.names
                .get(value)
                .is_some_and(|sym| choices.binary_search(&sym).is_ok()),
        )
    }

    /// The model files the server offers for combo input `input` of `class` (in no particular
    /// order), or `None` if it describes no such combo. Choices that are not model files
    /// (`"euler"`, `"none"`) are not kept.
    pub fn model_choices(&self, class: &str, input: &str) -> Option<impl Iterator<Item = &str>> {
        let choices = self.combo(class, input)?;
        Some(choices.iter().map(|&sym| self.names.resolve(sym)))
    }

    /// Every node class, in no particular order.
    pub fn classes(&self) -> impl Iterator<Item = &str> {
        self.classes.iter().map(|&sym| self.names.resolve(sym))
    }

    /// How many node classes the server has.
    pub fn class_count(&self) -> usize {
        self.classes.len()
    }

    /// How many combo inputs (over all classes) are judged.
    pub fn combo_count(&self) -> usize {
        self.combos.len()
    }

    /// Whether no class is known (nothing read yet, or the server listed none).
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// The content fingerprint: changes exactly when a class or a combo's model files change.
    pub fn version(&self) -> CapsVersion {
        self.version
    }

    /// Heap bytes held (names, indexes and choice lists), for memory budgets.
    pub fn heap_size(&self) -> usize {
        self.names.heap_size()
            + self.classes.allocation_size()
            + self.combos.allocation_size()
            + self
                .combos
                .values()
                .map(|c| std::mem::size_of_val::<[Sym]>(c))
                .sum::<usize>()
    }

    /// The sorted choices of a combo.
    #[inline]
    fn combo(&self, class: &str, input: &str) -> Option<&[Sym]> {
        let key = combo_key(self.names.get(class)?, self.names.get(input)?);
        self.combos.get(&key).map(|c| &**c)
    }

    /// The (class, input) symbols of a packed key.
    #[inline]
    fn unpack(key: u64) -> (Sym, Sym) {
        (
            Sym::from_index(key_class(key)),
            Sym::from_index((key & u64::from(u32::MAX)) as u32),
        )
    }

    /// Forgets a class and its combos.
    fn remove_class(&mut self, class: Sym) {
        if self.classes.remove(&class) {
            self.combos
                .retain(|&key, _| key_class(key) != class.index());
        }
    }

    /// Records `class` (the parser's entry point).
    pub(crate) fn add_class(&mut self, class: &str) -> Result<Sym> {
        let sym = self.names.intern(class, "node class")?;
        self.classes.insert(sym);
        Ok(sym)
    }

    /// Interns a model-file choice (the parser's entry point).
    pub(crate) fn intern_choice(&mut self, choice: &str) -> Result<Sym> {
        self.names.intern(choice, "choice")
    }

    /// Records combo `input` of `class` with `choices` (sorted and deduplicated here; the
    /// vector is left empty for reuse). A repeated combo replaces the earlier one.
    pub(crate) fn set_combo(
        &mut self,
        class: Sym,
        input: &str,
        choices: &mut Vec<Sym>,
    ) -> Result<()> {
        let input = self.names.intern(input, "input")?;
        choices.sort_unstable();
        choices.dedup();
        self.combos
            .insert(combo_key(class, input), choices.as_slice().into());
        choices.clear();
        Ok(())
    }

    /// Recomputes [`version`](Self::version) from the content: the wrapping sum of one mixed
    /// hash per class, per combo and per (combo, file).
    fn refresh_version(&mut self) {
        let hashes: Vec<u64> = self
            .names
            .symbols()
            .map(|sym| hash_str(self.names.resolve(sym)))
            .collect();
        let h = |sym: Sym| hashes.get(sym.index() as usize).copied().unwrap_or(0);
        let mut sum = 0u64;
        for &class in &self.classes {
            sum = sum.wrapping_add(mix(h(class) ^ CLASS_TAG));
        }
        for (&key, choices) in &self.combos {
            let (class, input) = Self::unpack(key);
            let combo = mix(mix(h(class) ^ COMBO_TAG) ^ h(input));
            sum = sum.wrapping_add(combo);
            for &file in choices {
                sum = sum.wrapping_add(mix(combo ^ CHOICE_TAG ^ h(file).rotate_left(29)));
            }
        }
        self.version = CapsVersion::from_u64(sum);
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capabilities")
            .field("classes", &self.classes.len())
            .field("combos", &self.combos.len())
            .field("names", &self.names.len())
            .field("version", &self.version)
            .finish()
    }
}
