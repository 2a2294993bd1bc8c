//! API keys: making one (shown once), and the SHA-256 that is all the service keeps of it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pool_core::Timestamp;
use pool_store::{ApiKey, ServiceStore, StoreError};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The prefix of every key this service makes (`cpk_<id>_<secret>`).
pub const KEY_PREFIX: &str = "cpk_";

/// The SHA-256 of a key, as stored.
pub fn key_digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The SHA-256 of a key in lower-case hex (the form configurations and stores hold).
pub fn key_hash(key: &str) -> String {
    hex(&key_digest(key))
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Reads 64 hex digits.
pub(crate) fn parse_digest(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A key just made: the secret to show once, and what is stored of it.
#[derive(Clone)]
pub struct NewKey {
    /// The whole key, to give to the tenant (shown once, never stored).
    pub secret: String,
    /// The stored record: public id, tenant, hash.
    pub record: ApiKey,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("secret", &"[redacted]")
            .field("record", &self.record)
            .finish()
    }
}

impl NewKey {
    /// A random key for `tenant`: `cpk_` + an 8-digit public id + `_` + 256 random bits.
    pub fn generate(tenant: &str) -> Self {
        let mut rng = rand::rng();
        let mut id = [0u8; 4];
        rng.fill_bytes(&mut id);
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        let id = hex(&id);
        let key = format!("{KEY_PREFIX}{id}_{}", URL_SAFE_NO_PAD.encode(secret));
        let record = ApiKey::new(id, tenant, key_hash(&key), Timestamp::now());
        Self {
            secret: key,
            record,
        }
    }
}

/// Makes a key for `tenant` and stores its hash; returns the key (to show once).
///
/// # Errors
///
/// The store's error.
pub async fn issue_key(store: &dyn ServiceStore, tenant: &str) -> Result<NewKey, StoreError> {
    let key = NewKey::generate(tenant);
    store.put_key(&key.record).await?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_only_their_hash_is_kept() {
        let a = NewKey::generate("team-a");
        let b = NewKey::generate("team-a");
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(KEY_PREFIX) && a.secret.len() > 50);
        assert_eq!(a.record.hash, key_hash(&a.secret));
        assert_eq!(parse_digest(&a.record.hash), Some(key_digest(&a.secret)));
        assert!(a.secret.contains(&a.record.id));
        let shown = format!("{a:?}");
        assert!(!shown.contains(&a.secret), "{shown}");
    }

    #[test]
    fn digests_parse_only_from_64_hex_digits() {
        assert_eq!(parse_digest("zz"), None);
        assert_eq!(parse_digest(&"g".repeat(64)), None);
        assert_eq!(parse_digest(&"0".repeat(64)), Some([0; 32]));
    }
}
