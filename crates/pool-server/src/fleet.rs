//! [`Fleet`]: the ComfyUI servers as the service knows them — their configuration (URL,
//! credentials, tags) for the admin API and a client each for downloading outputs — and the
//! translation of a `[[servers]]` entry into the pool's [`ServerConfig`].

use std::collections::BTreeMap;

use comfy_client::Client;
use parking_lot::RwLock;
use pool_core::ServerConfig;

use crate::config::{ServerAuth, ServerEntry};
use crate::outputs::client_for;

/// The pool's configuration of a server entry. Basic credentials go into the URL (the pool
/// sends them as a header and never shows them); a bearer token is set as such.
pub(crate) fn server_config(entry: &ServerEntry) -> ServerConfig {
    let mut url = entry.url.clone();
    if let Some(ServerAuth::Basic { user, password }) = &entry.auth
        && let Ok(mut parsed) = url::Url::parse(&entry.url)
        && parsed.set_username(user).is_ok()
        && parsed.set_password(Some(password.expose())).is_ok()
    {
        url = parsed.to_string();
    }
    let mut config = ServerConfig::new(url)
        .id(entry.id.as_str())
        .max_concurrent(entry.max_concurrent)
        .weight(entry.weight);
    if let Some(ServerAuth::Bearer(token)) = &entry.auth {
        config = config.bearer_token(token.expose());
    }
    for tag in &entry.tags {
        config = config.tag(tag.as_str());
    }
    config
}

/// A server's URL without credentials (for showing).
pub(crate) fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.to_string()
        }
        Err(_) => "(invalid URL)".into(),
    }
}

#[derive(Debug)]
struct Known {
    entry: ServerEntry,
    client: Option<Client>,
}

/// Every server the service was configured with or given, removed ones included (their
/// outputs stay downloadable).
#[derive(Debug, Default)]
pub(crate) struct Fleet {
    servers: RwLock<BTreeMap<String, Known>>,
}

impl Fleet {
    pub(crate) fn new(entries: &[ServerEntry]) -> Self {
        let fleet = Self::default();
        for entry in entries {
            fleet.add(entry);
        }
        fleet
    }

    /// Remembers a server.
    pub(crate) fn add(&self, entry: &ServerEntry) {
        self.servers.write().insert(
            entry.id.clone(),
            Known {
                entry: entry.clone(),
                client: client_for(entry),
            },
        );
    }

    /// The client of a server, for `/view`.
    pub(crate) fn client(&self, id: &str) -> Option<Client> {
        self.servers.read().get(id).and_then(|k| k.client.clone())
    }

    /// A server's URL (without credentials) and tags.
    pub(crate) fn describe(&self, id: &str) -> Option<(String, Vec<String>)> {
        self.servers
            .read()
            .get(id)
            .map(|k| (shown_url(&k.entry.url), k.entry.tags.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    #[test]
    fn credentials_reach_the_pool_but_never_its_id_or_the_shown_url() {
        let mut entry = ServerEntry::new("gpu-1", "http://10.0.0.5:8188/comfy");
        entry.auth = Some(ServerAuth::Basic {
            user: "ops".into(),
            password: Secret::new("pa55word"),
        });
        let config = server_config(&entry);
        let shown = format!("{config:?}");
        assert!(!shown.contains("pa55word"), "{shown}");
        assert_eq!(config.get_id().as_str(), "gpu-1");
        assert_eq!(
            shown_url("http://ops:pa55word@10.0.0.5:8188/comfy?token=x"),
            "http://10.0.0.5:8188/comfy"
        );
    }
}
