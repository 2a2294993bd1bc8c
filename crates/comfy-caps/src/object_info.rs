//! Reading `GET /object_info` bytes into a [`Capabilities`]: a chain of serde seeds that
//! follows only the path routing needs,
//!
//! ```text
//! { class: { "input": { "required" | "optional": { input: spec } } } }
//! spec = [[choice, ...], {...}]          (classic combo)
//!      | ["COMBO", {"options": [choice, ...], ...}]   (V3 combo)
//!      | [anything else, ...]            (not a combo)
//! ```
//!
//! and hands everything else to serde's `IgnoredAny`, which serde_json skips in place
//! (iteratively, so deep nesting in a tooltip costs no stack). No `serde_json::Value` is
//! built; names go straight from the input (or serde_json's scratch buffer, for escaped
//! strings) into the interner. Inside a definition every unexpected shape is skipped rather
//! than rejected: what the server does not describe is not judged.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use workflow_hash::is_model_file;

use crate::capabilities::Capabilities;
use crate::error::{Error, Result};
use crate::intern::Sym;

/// Parses `body` into `caps` (classes and combos are added; the version is the caller's).
pub(crate) fn parse(body: &[u8], caps: &mut Capabilities) -> Result<()> {
    let mut state = State {
        caps,
        input: String::new(),
        choices: Vec::new(),
        error: None,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let outcome = Document(&mut state)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match outcome {
        Ok(()) => Ok(()),
        Err(e) => Err(state.error.take().unwrap_or(Error::Json(e))),
    }
}

/// What the seeds share while reading.
struct State<'c> {
    caps: &'c mut Capabilities,
    /// The current input's name (reused buffer).
    input: String,
    /// The current combo's model-file choices (reused buffer).
    choices: Vec<Sym>,
    /// The typed error behind a serde error raised by a seed.
    error: Option<Error>,
}

impl State<'_> {
    /// Keeps `error` and returns the serde error that stops the parse.
    fn fail<E: de::Error>(&mut self, error: Error) -> E {
        self.error = Some(error);
        E::custom("object_info rejected")
    }
}

/// Skips the rest of a sequence.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Skips the rest of a map.
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Implements the visits of JSON scalars as "ignore, answer `$value`".
macro_rules! skip_scalars {
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// Implements `DeserializeSeed` as `deserialize_any` with the seed as its own visitor.
macro_rules! any_seed {
    ($seed:ident) => {
        impl<'de> DeserializeSeed<'de> for $seed<'_, '_> {
            type Value = <Self as Visitor<'de>>::Value;
            fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
        }
    };
}

/// The whole body: an object of class name → definition.
struct Document<'s, 'c>(&'s mut State<'c>);
any_seed!(Document);

impl Document<'_, '_> {
    fn not_an_object<E: de::Error>(self, found: &'static str) -> Result<(), E> {
        Err(self.0.fail(Error::NotAnObject { found }))
    }
}

impl<'de> Visitor<'de> for Document<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of node definitions")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(class) = map.next_key_seed(ClassName(&mut *self.0))? {
            map.next_value_seed(Definition(&mut *self.0, class))?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.not_an_object("an array")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.not_an_object("a string")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.not_an_object("a boolean")
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.not_an_object("a number")
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.not_an_object("a number")
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.not_an_object("a number")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.not_an_object("null")
    }
}

/// A top-level key: a class, recorded as soon as it is read.
struct ClassName<'s, 'c>(&'s mut State<'c>);

impl<'de> DeserializeSeed<'de> for ClassName<'_, '_> {
    type Value = Sym;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Sym, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for ClassName<'_, '_> {
    type Value = Sym;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a node class name")
    }

    fn visit_str<E: de::Error>(self, class: &str) -> Result<Sym, E> {
        self.0.caps.add_class(class).map_err(|e| self.0.fail(e))
    }
}

/// The keys the path goes through; every other key is skipped.
enum Field {
    Input,
    Required,
    Optional,
    Options,
    Other,
}

impl<'de> de::Deserialize<'de> for Field {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(FieldVisitor)
    }
}

/// Names a [`Field`] without allocating.
struct FieldVisitor;

impl Visitor<'_> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Field, E> {
        Ok(match key {
            "input" => Field::Input,
            "required" => Field::Required,
            "optional" => Field::Optional,
            "options" => Field::Options,
            _ => Field::Other,
        })
    }
}

/// One class definition: only `input` is read.
struct Definition<'s, 'c>(&'s mut State<'c>, Sym);
any_seed!(Definition);

impl<'de> Visitor<'de> for Definition<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a node definition")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Input => map.next_value_seed(Inputs(&mut *self.0, self.1))?,
                _ => map.next_value::<IgnoredAny>().map(drop)?,
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        drain_seq(seq)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    skip_scalars!(());
}

/// `input`: only `required` and `optional` are read (`hidden` inputs are the server's).
struct Inputs<'s, 'c>(&'s mut State<'c>, Sym);
any_seed!(Inputs);

impl<'de> Visitor<'de> for Inputs<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the inputs of a node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Required | Field::Optional => {
                    map.next_value_seed(Section(&mut *self.0, self.1))?;
                }
                _ => map.next_value::<IgnoredAny>().map(drop)?,
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        drain_seq(seq)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    skip_scalars!(());
}

/// `required` or `optional`: input name → spec; combos are recorded.
struct Section<'s, 'c>(&'s mut State<'c>, Sym);
any_seed!(Section);

impl<'de> Visitor<'de> for Section<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("input specifications")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let state = self.0;
        while map.next_key_seed(InputName(&mut state.input))?.is_some() {
            state.choices.clear();
            if map.next_value_seed(Spec(&mut *state))? {
                let State {
                    caps,
                    input,
                    choices,
                    ..
                } = &mut *state;
                if let Err(e) = caps.set_combo(self.1, input, choices) {
                    return Err(state.fail(e));
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        drain_seq(seq)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    skip_scalars!(());
}

/// An input's name, copied into a reused buffer (it is interned only if the input is a combo).
struct InputName<'s>(&'s mut String);

impl<'de> DeserializeSeed<'de> for InputName<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for InputName<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an input name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<(), E> {
        self.0.clear();
        self.0.push_str(name);
        Ok(())
    }
}

/// One input's spec; answers whether it is a judged combo (its model files are then in
/// `State::choices`).
struct Spec<'s, 'c>(&'s mut State<'c>);
any_seed!(Spec);

impl<'de> Visitor<'de> for Spec<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an input specification")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let combo = match seq.next_element_seed(Head(&mut *self.0))? {
            Some(Kind::Choices) => true,
            Some(Kind::ComboType) => seq
                .next_element_seed(ComboOptions(&mut *self.0))?
                .unwrap_or(false),
            Some(Kind::Other) | None => false,
        };
        drain_seq(seq)?;
        Ok(combo)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        drain_map(map).map(|()| false)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    skip_scalars!(false);
}

/// What the first element of a spec says.
enum Kind {
    /// A list: the choices themselves (classic combo).
    Choices,
    /// The type name `"COMBO"`: the choices are the `options` of the next element (V3).
    ComboType,
    /// Any other type (`"INT"`, `"MODEL"`, ...): not a combo.
    Other,
}

/// The first element of a spec.
struct Head<'s, 'c>(&'s mut State<'c>);
any_seed!(Head);

impl<'de> Visitor<'de> for Head<'_, '_> {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a type name or a list of choices")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        while seq.next_element_seed(Choice(&mut *self.0))?.is_some() {}
        Ok(Kind::Choices)
    }

    fn visit_str<E: de::Error>(self, kind: &str) -> Result<Kind, E> {
        Ok(if kind == "COMBO" {
            Kind::ComboType
        } else {
            Kind::Other
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Kind, A::Error> {
        drain_map(map).map(|()| Kind::Other)
    }
    skip_scalars!(Kind::Other);
}

/// The options object of a V3 combo; answers whether it had an `options` list.
struct ComboOptions<'s, 'c>(&'s mut State<'c>);
any_seed!(ComboOptions);

impl<'de> Visitor<'de> for ComboOptions<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("combo options")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut listed = false;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Options => listed |= map.next_value_seed(ChoiceList(&mut *self.0))?,
                _ => map.next_value::<IgnoredAny>().map(drop)?,
            }
        }
        Ok(listed)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        drain_seq(seq).map(|()| false)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    skip_scalars!(false);
}

/// A V3 `options` value; answers whether it was a list.
struct ChoiceList<'s, 'c>(&'s mut State<'c>);
any_seed!(ChoiceList);

impl<'de> Visitor<'de> for ChoiceList<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of choices")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element_seed(Choice(&mut *self.0))?.is_some() {}
        Ok(true)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        drain_map(map).map(|()| false)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    skip_scalars!(false);
}

/// One choice: kept if it is a model file.
struct Choice<'s, 'c>(&'s mut State<'c>);
any_seed!(Choice);

impl<'de> Visitor<'de> for Choice<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a choice")
    }

    fn visit_str<E: de::Error>(self, choice: &str) -> Result<(), E> {
        if is_model_file(choice) {
            match self.0.caps.intern_choice(choice) {
                Ok(sym) => self.0.choices.push(sym),
                Err(e) => return Err(self.0.fail(e)),
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        drain_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        drain_map(map)
    }
    skip_scalars!(());
}
