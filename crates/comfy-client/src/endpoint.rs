//! The server's base URL and the routes derived from it (HTTP and websocket).

use url::Url;

use crate::auth::Auth;
use crate::error::{Error, Result};

/// A validated base URL, always ending in `/`, without credentials.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    base: Url,
}

impl Endpoint {
    /// Parses `raw`; credentials in the URL are removed and returned as basic auth.
    pub(crate) fn parse(raw: &str) -> Result<(Self, Option<Auth>)> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: redact(raw),
            reason: reason.to_owned(),
        };
        let mut base = Url::parse(raw.trim()).map_err(|e| invalid(&e.to_string()))?;
        match base.scheme() {
            "http" | "https" => {}
            "ws" => base
                .set_scheme("http")
                .map_err(|()| invalid("bad scheme"))?,
            "wss" => base
                .set_scheme("https")
                .map_err(|()| invalid("bad scheme"))?,
            _ => return Err(invalid("the scheme must be http or https")),
        }
        if base.host_str().is_none_or(str::is_empty) {
            return Err(invalid("the url has no host"));
        }
        if base.cannot_be_a_base() {
            return Err(invalid("the url cannot be a base"));
        }
        let auth = if base.username().is_empty() && base.password().is_none() {
            None
        } else {
            let user = percent_decode(base.username());
            let password = base.password().map(percent_decode);
            base.set_username("")
                .map_err(|()| invalid("bad credentials"))?;
            base.set_password(None)
                .map_err(|()| invalid("bad credentials"))?;
            Some(Auth::Basic { user, password })
        };
        base.set_query(None);
        base.set_fragment(None);
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok((Self { base }, auth))
    }

    /// The base URL (ends in `/`).
    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    /// `base` + the given path segments, each percent-encoded as one segment.
    pub(crate) fn http(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        url
    }

    /// `http(s)://host/prefix/ws?clientId=...`: where the websocket handshake is sent.
    pub(crate) fn upgrade(&self, client_id: &str) -> Url {
        let mut url = self.http(&["ws"]);
        url.query_pairs_mut().append_pair("clientId", client_id);
        url
    }

    /// `ws(s)://host/prefix/ws?clientId=...`: the same as [`upgrade`](Self::upgrade) with
    /// the websocket scheme.
    pub(crate) fn websocket(&self, client_id: &str) -> Url {
        let url = self.upgrade(client_id);
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        // `set_scheme` refuses http -> ws for special schemes, so rebuild from the string.
        let rest = url.as_str().split_once(':').map_or("", |(_, rest)| rest);
        Url::parse(&format!("{scheme}:{rest}")).unwrap_or(url)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `raw` as it may be printed: everything between the scheme and the last `@` (where a
/// URL keeps `user:password`) is replaced by `<redacted>`. Works on any string, URL or not
/// (`user:pw@host:8188` has no scheme); redacting an `@` that was part of a path is harmless.
pub(crate) fn redact(raw: &str) -> String {
    let raw = raw.trim();
    let Some(at) = raw.rfind('@') else {
        return raw.to_owned();
    };
    let start = match raw.find("://") {
        Some(i) if i < at => i + 3,
        _ => 0,
    };
    format!("{}<redacted>{}", &raw[..start], &raw[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_behind_proxy_is_kept() {
        let (ep, _) = Endpoint::parse("https://host/comfy/").unwrap();
        assert_eq!(ep.http(&["prompt"]).as_str(), "https://host/comfy/prompt");
        let (ep, _) = Endpoint::parse("https://host/comfy").unwrap();
        assert_eq!(
            ep.http(&["history", "a b"]).as_str(),
            "https://host/comfy/history/a%20b"
        );
        assert_eq!(
            ep.websocket("id1").as_str(),
            "wss://host/comfy/ws?clientId=id1"
        );
        let (ep, _) = Endpoint::parse("http://127.0.0.1:8188").unwrap();
        assert_eq!(
            ep.http(&["prompt"]).as_str(),
            "http://127.0.0.1:8188/prompt"
        );
        assert_eq!(
            ep.websocket("x").as_str(),
            "ws://127.0.0.1:8188/ws?clientId=x"
        );
    }

    #[test]
    fn credentials_move_to_basic_auth() {
        let (ep, auth) = Endpoint::parse("https://me:p%40ss@host/").unwrap();
        assert_eq!(ep.base().as_str(), "https://host/");
        assert_eq!(
            auth,
            Some(Auth::Basic {
                user: "me".into(),
                password: Some("p@ss".into())
            })
        );
    }

    #[test]
    fn bad_urls_are_refused_without_leaking_credentials() {
        for raw in ["ftp://host/", "not a url", "http://", "mailto:me@x"] {
            assert!(
                matches!(Endpoint::parse(raw), Err(Error::InvalidUrl { .. })),
                "{raw}"
            );
        }
        for raw in [
            "ftp://me:secret@host/",
            "me:secret@host:8188",
            "http://me:secret@host:99999/",
            "http://me:pa/secret@host/",
        ] {
            let err = Endpoint::parse(raw).unwrap_err();
            assert!(!format!("{err} {err:?}").contains("secret"), "{err}");
        }
        assert_eq!(
            redact("http://me:secret@host/x"),
            "http://<redacted>@host/x"
        );
        assert_eq!(redact("me:secret@host:8188"), "<redacted>@host:8188");
        assert_eq!(redact("http://host/"), "http://host/");
    }
}
