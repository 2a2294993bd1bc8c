//! Who is calling: [`Caller`] from `Authorization: Bearer KEY`, checked against the admin key
//! and the tenants' keys (configured hashes and the store), in constant time.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use pool_core::JobRecord;
use pool_store::ServiceStore;
use subtle::ConstantTimeEq;

use crate::api_error::ApiError;
use crate::keys::{key_digest, parse_digest};
use crate::state::AppState;
use crate::{Config, ConfigError};

/// The caller of a request, by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The admin key: every route, every tenant's jobs.
    Admin,
    /// A tenant's key: its own jobs only.
    Tenant(Arc<str>),
}

impl Caller {
    /// The tenant, for a tenant's key.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Self::Admin => None,
            Self::Tenant(name) => Some(name),
        }
    }

    /// Whether the caller may see this job: the admin sees every job, a tenant only its own.
    pub fn can_see(&self, record: &JobRecord) -> bool {
        match self {
            Self::Admin => true,
            Self::Tenant(name) => record.tenant() == Some(&**name),
        }
    }
}

/// The keys the service accepts.
pub(crate) struct Keyring {
    admin: [u8; 32],
    /// Configured tenant keys: hash → tenant.
    configured: HashMap<[u8; 32], Arc<str>>,
    store: Arc<dyn ServiceStore>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("configured", &self.configured.len())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    pub(crate) fn new(config: &Config, store: Arc<dyn ServiceStore>) -> Result<Self, ConfigError> {
        let invalid = |key: &str, reason: &str| ConfigError::Invalid {
            origin: "configuration".into(),
            key: key.into(),
            reason: reason.into(),
        };
        let admin = match (&config.admin_key, &config.admin_key_sha256) {
            (Some(key), _) => key_digest(key.expose()),
            (None, Some(hash)) => parse_digest(hash)
                .ok_or_else(|| invalid("admin_key_sha256", "not a SHA-256 in hex"))?,
            (None, None) => return Err(invalid("admin_key", "an admin key is required")),
        };
        let mut configured = HashMap::new();
        for (i, tenant) in config.tenants.iter().enumerate() {
            let name: Arc<str> = Arc::from(tenant.name.as_str());
            for (j, hash) in tenant.keys.iter().enumerate() {
                let digest = parse_digest(hash).ok_or_else(|| {
                    invalid(&format!("tenants[{i}].keys[{j}]"), "not a SHA-256 in hex")
                })?;
                configured.insert(digest, Arc::clone(&name));
            }
        }
        Ok(Self {
            admin,
            configured,
            store,
        })
    }

    /// The caller presenting `key`.
    pub(crate) async fn check(&self, key: &str) -> Result<Caller, ApiError> {
        let digest = key_digest(key);
        if bool::from(digest.ct_eq(&self.admin)) {
            return Ok(Caller::Admin);
        }
        if let Some((stored, tenant)) = self.configured.get_key_value(&digest)
            && bool::from(stored.ct_eq(&digest))
        {
            return Ok(Caller::Tenant(Arc::clone(tenant)));
        }
        let hash = crate::keys::hex(&digest);
        match self.store.key_by_hash(&hash).await? {
            Some(record)
                if !record.revoked
                    && parse_digest(&record.hash)
                        .is_some_and(|stored| bool::from(stored.ct_eq(&digest))) =>
            {
                Ok(Caller::Tenant(Arc::from(record.tenant.as_str())))
            }
            _ => Err(ApiError::Unauthorized),
        }
    }
}

/// The bearer token of a request, if it has one.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let key = bearer(parts).ok_or(ApiError::Unauthorized)?;
        state.keyring.check(key).await
    }
}

/// A caller with the admin key (the extractor of admin routes: no key 401, a tenant's key
/// 403).
#[derive(Debug, Clone, Copy)]
pub struct AdminCaller;

impl FromRequestParts<Arc<AppState>> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Admin => Ok(Self),
            Caller::Tenant(_) => Err(ApiError::Forbidden),
        }
    }
}
