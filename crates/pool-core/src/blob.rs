//! [`Blob`]: bytes kept by reference in records (input files, websocket-only outputs), so a
//! record stays small and a store keeps each distinct content once.

use std::fmt;

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// Some bytes and their content address (SHA-256 and size). Records serialize only the
/// address (`{"sha256": "…", "size": n}`); the bytes travel beside them (a store keeps them
/// once per content) and are attached again with [`Blob::attach`]. Two blobs are equal when
/// their addresses are.
///
/// ```
/// use pool_core::Blob;
///
/// let blob = Blob::new(b"png bytes".to_vec());
/// assert_eq!(blob.size(), 9);
/// let json = serde_json::to_string(&blob).unwrap();
/// let reference: Blob = serde_json::from_str(&json).unwrap();
/// assert_eq!(reference, blob);
/// assert!(reference.bytes().is_none());
/// assert!(reference.attach(b"other".to_vec().into()).is_none());
/// ```
#[derive(Clone)]
pub struct Blob {
    sha256: [u8; 32],
    size: u64,
    bytes: Option<Bytes>,
}

impl Blob {
    /// A blob of these bytes.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self {
            sha256: Sha256::digest(&bytes).into(),
            size: bytes.len() as u64,
            bytes: Some(bytes),
        }
    }

    /// The bytes, when attached.
    pub fn bytes(&self) -> Option<&Bytes> {
        self.bytes.as_ref()
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The SHA-256 of the bytes.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// The SHA-256 in lower-case hex (the blob's key in a store).
    pub fn key(&self) -> String {
        hex(&self.sha256)
    }

    /// This reference with its bytes attached, if `bytes` are the referenced content.
    pub fn attach(&self, bytes: Bytes) -> Option<Self> {
        let blob = Self::new(bytes);
        (blob == *self).then_some(blob)
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

impl PartialEq for Blob {
    fn eq(&self, other: &Self) -> bool {
        self.sha256 == other.sha256 && self.size == other.size
    }
}

impl Eq for Blob {}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blob")
            .field("sha256", &self.key())
            .field("size", &self.size)
            .field("attached", &self.bytes.is_some())
            .finish()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Address {
    sha256: String,
    size: u64,
}

impl serde::Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Address {
            sha256: self.key(),
            size: self.size,
        }
        .serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let address = Address::deserialize(deserializer)?;
        let mut sha256 = [0u8; 32];
        let digits = address.sha256.as_bytes();
        if digits.len() != 64 {
            return Err(serde::de::Error::custom("sha256 must be 64 hex digits"));
        }
        for (byte, pair) in sha256.iter_mut().zip(digits.chunks_exact(2)) {
            let text = std::str::from_utf8(pair).map_err(serde::de::Error::custom)?;
            *byte = u8::from_str_radix(text, 16).map_err(serde::de::Error::custom)?;
        }
        Ok(Self {
            sha256,
            size: address.size,
            bytes: None,
        })
    }
}
