//! [`ServerConfig`]: one server of the pool.

use std::fmt;
use std::sync::Arc;

use pool_failover::ServerId;

use crate::ServerBackend;

/// How the pool reaches a server.
#[derive(Clone)]
pub(crate) enum Transport {
    /// A ComfyUI URL, reached with `comfy-client`.
    Url { url: String, token: Option<String> },
    /// A custom backend.
    Backend(Arc<dyn ServerBackend>),
}

/// One server of the pool: where it is, its name, and how much work it takes.
///
/// ```
/// use pool_core::ServerConfig;
///
/// let server = ServerConfig::new("http://127.0.0.1:8188")
///     .id("gpu-1")
///     .max_concurrent(2)
///     .weight(3)
///     .tag("sdxl");
/// assert_eq!(server.get_id().as_str(), "gpu-1");
/// ```
#[derive(Clone)]
pub struct ServerConfig {
    pub(crate) id: ServerId,
    pub(crate) transport: Transport,
    pub(crate) weight: u32,
    pub(crate) max_concurrent: usize,
    pub(crate) tags: Vec<String>,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match &self.transport {
            Transport::Url { url, .. } => without_credentials(url),
            Transport::Backend(_) => "custom backend".to_owned(),
        };
        f.debug_struct("ServerConfig")
            .field("id", &self.id)
            .field("transport", &transport)
            .field("weight", &self.weight)
            .field("max_concurrent", &self.max_concurrent)
            .field("tags", &self.tags)
            .finish()
    }
}

impl ServerConfig {
    /// A ComfyUI server at `url` (credentials in the URL are used as basic auth). Its id is
    /// the URL without its credentials until [`id`](Self::id) names it: ids appear in
    /// events, errors, outputs and stats, credentials never do.
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        Self::with_transport(
            ServerId::from(without_credentials(&url)),
            Transport::Url { url, token: None },
        )
    }

    /// A server reached through a custom [`ServerBackend`].
    pub fn with_backend(id: impl Into<ServerId>, backend: Arc<dyn ServerBackend>) -> Self {
        Self::with_transport(id.into(), Transport::Backend(backend))
    }

    fn with_transport(id: ServerId, transport: Transport) -> Self {
        Self {
            id,
            transport,
            weight: 1,
            max_concurrent: 1,
            tags: Vec::new(),
        }
    }

    /// Names the server.
    #[must_use]
    pub fn id(mut self, id: impl Into<ServerId>) -> Self {
        self.id = id.into();
        self
    }

    /// Sends `Authorization: Bearer <token>` (URL servers only).
    #[must_use]
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        if let Transport::Url { token: slot, .. } = &mut self.transport {
            *slot = Some(token.into());
        }
        self
    }

    /// The relative capacity used to break ties between free servers (default 1; a server of
    /// weight 2 is filled as if it were twice as fast).
    #[must_use]
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight.max(1);
        self
    }

    /// How many prompts the pool keeps on the server at once (default 1: ComfyUI runs one
    /// prompt at a time; more keeps its queue warm).
    #[must_use]
    pub fn max_concurrent(mut self, prompts: usize) -> Self {
        self.max_concurrent = prompts;
        self
    }

    /// Adds a tag that jobs can require.
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// The server's id.
    pub fn get_id(&self) -> &ServerId {
        &self.id
    }
}

/// `url` without the `user:password@` part of its authority (with or without a scheme).
fn without_credentials(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").map_or(("", url), |(s, r)| (s, r));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if scheme.is_empty() {
        format!("{host}{tail}")
    } else {
        format!("{scheme}://{host}{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_the_id_or_debug() {
        for url in [
            "http://user:s3cret@gpu-1:8188/comfy?x=1",
            "user:s3cret@gpu-1:8188",
            "https://:s3cret@gpu-1",
        ] {
            let config = ServerConfig::new(url).bearer_token("t0ken");
            let shown = format!("{config:?} {}", config.get_id());
            assert!(
                !shown.contains("s3cret") && !shown.contains("t0ken"),
                "{shown}"
            );
            assert!(config.get_id().as_str().contains("gpu-1"), "{shown}");
        }
        assert_eq!(
            ServerConfig::new("http://u:p@h:1/x").get_id().as_str(),
            "http://h:1/x"
        );
        assert_eq!(
            ServerConfig::new("http://h:1").get_id().as_str(),
            "http://h:1"
        );
    }
}
