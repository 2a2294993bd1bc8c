//! Credentials sent with every HTTP request and the websocket handshake, never printed.

use std::fmt;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

use crate::error::{Error, Result};

/// How the client authenticates to the server (or to a proxy in front of it).
///
/// `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        /// The user name.
        user: String,
        /// The password, if any.
        password: Option<String>,
    },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Self::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

impl Auth {
    /// The `Authorization` header value, marked sensitive.
    pub(crate) fn header_value(&self) -> Result<HeaderValue> {
        let raw = match self {
            Self::Bearer(token) => format!("Bearer {token}"),
            Self::Basic { user, password } => {
                let plain = format!("{user}:{}", password.as_deref().unwrap_or(""));
                format!("Basic {}", base64_encode(plain.as_bytes()))
            }
        };
        let mut value = HeaderValue::from_str(&raw).map_err(|_| {
            Error::InvalidInput("credentials contain invalid header characters".into())
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// Builds the headers sent with every request: auth first, then custom headers.
pub(crate) fn build_headers(auth: Option<&Auth>, custom: &[(String, String)]) -> Result<HeaderMap> {
    let mut map = HeaderMap::new();
    if let Some(auth) = auth {
        map.insert(AUTHORIZATION, auth.header_value()?);
    }
    for (name, value) in custom {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::InvalidInput(format!("invalid header name `{name}`")))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| Error::InvalidInput(format!("invalid value for header `{name}`")))?;
        value.set_sensitive(true);
        map.append(name, value);
    }
    Ok(map)
}

/// Standard base64 with padding (RFC 4648), enough for a Basic credential.
fn base64_encode(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                let idx = ((n >> shift) & 63) as usize;
                out.push(char::from(TABLE.get(idx).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
        }
    }

    #[test]
    fn debug_redacts_secrets() {
        let text = format!(
            "{:?} {:?}",
            Auth::Bearer("tok-123".into()),
            Auth::Basic {
                user: "me".into(),
                password: Some("pw-456".into())
            }
        );
        assert!(
            !text.contains("tok-123") && !text.contains("pw-456"),
            "{text}"
        );
        assert!(text.contains("me"));
    }
}
