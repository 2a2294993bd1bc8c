//! The rules of a configuration that serde cannot check: each failure names its key.

use std::collections::HashSet;

use super::{Config, OutputMode, ServerEntry};

type Checked = Result<(), (String, String)>;

fn bad(key: impl Into<String>, reason: impl Into<String>) -> Checked {
    Err((key.into(), reason.into()))
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Names tenants and servers may have: letters, digits, `-`, `_`, `.`; 1 to 64 of them.
pub(crate) fn is_name(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Config {
    pub(super) fn check(&self) -> Checked {
        self.check_store()?;
        self.check_admin()?;
        let smart = self.strategy.smart_config();
        if let Err(pool_failover::Error::InvalidConfig { field, reason }) = smart.validate() {
            return bad(format!("strategy.{field}"), reason);
        }
        let mut ids = HashSet::new();
        for (i, server) in self.servers.iter().enumerate() {
            check_server(i, server)?;
            if !ids.insert(server.id.as_str()) {
                return bad(format!("servers[{i}].id"), "another server has this id");
            }
        }
        let mut names = HashSet::new();
        for (i, tenant) in self.tenants.iter().enumerate() {
            if !is_name(&tenant.name) {
                return bad(
                    format!("tenants[{i}].name"),
                    "1 to 64 letters, digits, `-`, `_` or `.`",
                );
            }
            if !names.insert(tenant.name.as_str()) {
                return bad(format!("tenants[{i}].name"), "another tenant has this name");
            }
            if let Some(j) = tenant.keys.iter().position(|k| !is_sha256_hex(k)) {
                return bad(
                    format!("tenants[{i}].keys[{j}]"),
                    "not a SHA-256 in hex (64 digits; `comfy-pool keys new` prints one)",
                );
            }
            if tenant.queued == Some(0) {
                return bad(format!("tenants[{i}].queued"), "must be at least 1");
            }
            if let Some(rate) = tenant.submissions_per_second
                && !(rate.is_finite() && rate > 0.0)
            {
                return bad(
                    format!("tenants[{i}].submissions_per_second"),
                    "must be a number greater than 0",
                );
            }
        }
        if self.fleet.lease_ttl < std::time::Duration::from_millis(30) {
            return bad("fleet.lease_ttl", "must be at least 30ms");
        }
        self.check_limits()?;
        self.check_webhooks()?;
        if self.outputs.mode == OutputMode::Copy && self.outputs.dir.is_none() {
            return bad("outputs.dir", "required with mode = \"copy\"");
        }
        Ok(())
    }

    fn check_store(&self) -> Checked {
        let store = self.store.expose();
        let known = ["sqlite:", "postgres://", "postgresql://"];
        if store != "memory:" && !known.iter().any(|p| store.starts_with(p)) {
            return bad(
                "store",
                "must start with sqlite:, postgres://, postgresql:// or memory:",
            );
        }
        Ok(())
    }

    fn check_admin(&self) -> Checked {
        match (&self.admin_key, &self.admin_key_sha256) {
            (Some(_), Some(_)) => bad("admin_key", "give admin_key or admin_key_sha256, not both"),
            (None, None) => bad(
                "admin_key",
                "an admin key is required (admin_key_sha256, admin_key or COMFY_POOL__ADMIN_KEY)",
            ),
            (Some(key), None) if key.expose().len() < 16 => {
                bad("admin_key", "must be at least 16 characters")
            }
            (None, Some(hash)) if !is_sha256_hex(hash) => {
                bad("admin_key_sha256", "not a SHA-256 in hex (64 digits)")
            }
            _ => Ok(()),
        }
    }

    fn check_limits(&self) -> Checked {
        let limits = &self.limits;
        if limits.body_bytes < 1024 {
            return bad("limits.body_bytes", "must be at least 1024");
        }
        if limits.queued_per_tenant == 0 {
            return bad("limits.queued_per_tenant", "must be at least 1");
        }
        if !(limits.submissions_per_second.is_finite() && limits.submissions_per_second > 0.0) {
            return bad(
                "limits.submissions_per_second",
                "must be a number greater than 0",
            );
        }
        if limits.burst == 0 {
            return bad("limits.burst", "must be at least 1");
        }
        Ok(())
    }

    fn check_webhooks(&self) -> Checked {
        let hooks = &self.webhooks;
        if !hooks.allowed_hosts.is_empty() && hooks.secret.is_none() {
            return bad(
                "webhooks.secret",
                "required when webhooks.allowed_hosts is not empty",
            );
        }
        if hooks.secret.as_ref().is_some_and(|s| s.expose().len() < 16) {
            return bad("webhooks.secret", "must be at least 16 characters");
        }
        for (i, host) in hooks.allowed_hosts.iter().enumerate() {
            let name = host.strip_prefix("*.").unwrap_or(host);
            let ok = !name.is_empty() && !name.contains(['/', ':', '*', '@', ' '])
                || name.parse::<std::net::Ipv6Addr>().is_ok();
            if !ok {
                return bad(
                    format!("webhooks.allowed_hosts[{i}]"),
                    "a host name or IP (no scheme, port or path), or *.domain",
                );
            }
        }
        if hooks.max_attempts == 0 {
            return bad("webhooks.max_attempts", "must be at least 1");
        }
        if hooks.backoff.is_zero() || hooks.poll_interval.is_zero() || hooks.timeout.is_zero() {
            return bad(
                "webhooks.backoff",
                "backoff, poll_interval and timeout must be greater than zero",
            );
        }
        Ok(())
    }
}

fn check_server(i: usize, server: &ServerEntry) -> Checked {
    if !is_name(&server.id) {
        return bad(
            format!("servers[{i}].id"),
            "1 to 64 letters, digits, `-`, `_` or `.`",
        );
    }
    match url::Url::parse(&server.url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
        _ => {
            return bad(
                format!("servers[{i}].url"),
                "not an http:// or https:// URL",
            );
        }
    }
    if server.max_concurrent == 0 {
        return bad(format!("servers[{i}].max_concurrent"), "must be at least 1");
    }
    if server.weight == 0 {
        return bad(format!("servers[{i}].weight"), "must be at least 1");
    }
    Ok(())
}
