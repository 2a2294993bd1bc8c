//! [`WorkflowHash`]: the 32-byte structural hash and its hex text form.

use std::fmt;
use std::io::Read;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::canonical::{digest, digest_text};
use crate::error::{Error, Result};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The structural hash of a ComfyUI API-format workflow: SHA-256 of its canonical structural
/// JSON (see [`canonical_json`](crate::canonical_json)), identical to comfyui-node's
/// `hashWorkflow` (1.10 and later) for the same workflow.
///
/// Displays, parses and serializes as 64 lowercase hex characters; `Debug` shows the hex too.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkflowHash([u8; 32]);

impl WorkflowHash {
    /// Hashes a parsed workflow.
    ///
    /// Tolerates what comfyui-node tolerates: node entries that are not objects are hashed
    /// verbatim, missing `class_type`/`inputs` count as `null`/`{}`.
    ///
    /// # Errors
    ///
    /// [`Error::NotAnObject`] if the top level is not an object, [`Error::TooDeep`] if the
    /// value nests deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    pub fn of(workflow: &Value) -> Result<Self> {
        digest(workflow).map(Self)
    }

    /// Hashes JSON text (a `&str`, `String`, `&[u8]`, `Vec<u8>` …) as it is parsed, without
    /// building a [`Value`]: the same hash as [`WorkflowHash::of`] of the parsed value.
    ///
    /// # Errors
    ///
    /// [`Error::Json`] (with line and column) for invalid JSON, exactly as `serde_json` reports
    /// it when parsing a [`Value`]; [`Error::NotAnObject`] if the top level is not an object.
    /// Text never nests deeper than [`MAX_DEPTH`](crate::MAX_DEPTH): serde_json's recursion
    /// limit stops it first.
    pub fn of_json(text: impl AsRef<[u8]>) -> Result<Self> {
        digest_text(text.as_ref()).map(Self)
    }

    /// Reads JSON text to the end and hashes it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if reading fails, otherwise as [`WorkflowHash::of_json`].
    pub fn of_reader(mut reader: impl Read) -> Result<Self> {
        let mut text = Vec::new();
        reader.read_to_end(&mut text).map_err(Error::Io)?;
        Self::of_json(text)
    }

    /// Wraps raw digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A short form for logs: the first 12 hex characters.
    pub const fn short(&self) -> ShortHash {
        ShortHash(*self)
    }

    fn write_hex(&self, out: &mut [u8; 64]) {
        for (pair, byte) in out.chunks_exact_mut(2).zip(self.0) {
            if let [hi, lo] = pair {
                *hi = HEX[usize::from(byte >> 4)];
                *lo = HEX[usize::from(byte & 0xf)];
            }
        }
    }

    fn fmt_hex(&self, f: &mut fmt::Formatter<'_>, chars: usize) -> fmt::Result {
        let mut buf = [0u8; 64];
        self.write_hex(&mut buf);
        let hex = buf
            .get(..chars)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default();
        f.write_str(hex)
    }
}

impl fmt::Display for WorkflowHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_hex(f, 64)
    }
}

impl fmt::Debug for WorkflowHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WorkflowHash(")?;
        self.fmt_hex(f, 64)?;
        f.write_str(")")
    }
}

/// The first 12 hex characters of a [`WorkflowHash`], for logs; see [`WorkflowHash::short`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ShortHash(WorkflowHash);

impl fmt::Display for ShortHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_hex(f, 12)
    }
}

impl FromStr for WorkflowHash {
    type Err = Error;

    /// Parses 64 hex characters (either case).
    fn from_str(s: &str) -> Result<Self> {
        if s.len() != 64 {
            return Err(Error::HexLength {
                found: s.chars().count(),
            });
        }
        let digit = |position: usize, c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(Error::HexDigit { position }),
        };
        let mut bytes = [0u8; 32];
        for (i, (byte, pair)) in bytes
            .iter_mut()
            .zip(s.as_bytes().chunks_exact(2))
            .enumerate()
        {
            if let [hi, lo] = *pair {
                *byte = digit(2 * i, hi)? << 4 | digit(2 * i + 1, lo)?;
            }
        }
        Ok(Self(bytes))
    }
}

impl From<[u8; 32]> for WorkflowHash {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl AsRef<[u8]> for WorkflowHash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for WorkflowHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 64];
        self.write_hex(&mut buf);
        serializer.serialize_str(std::str::from_utf8(&buf).unwrap_or_default())
    }
}

impl<'de> Deserialize<'de> for WorkflowHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HexVisitor;
        impl Visitor<'_> for HexVisitor {
            type Value = WorkflowHash;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a workflow hash as 64 hex characters")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<WorkflowHash, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(HexVisitor)
    }
}
