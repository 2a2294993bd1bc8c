//! [`AllowList`]: the hosts webhooks may be sent to.

use url::{Host, Url};

/// Hosts webhooks may go to: exact names or IP addresses, or `*.domain` for every subdomain
/// of `domain`. Empty: no webhooks at all.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    exact: Vec<String>,
    suffixes: Vec<String>,
}

impl AllowList {
    /// From the configuration's `webhooks.allowed_hosts`.
    pub fn new(hosts: &[String]) -> Self {
        let mut list = Self::default();
        for host in hosts {
            let host = host.trim().to_ascii_lowercase();
            match host.strip_prefix("*.") {
                Some(domain) => list.suffixes.push(format!(".{domain}")),
                None => list.exact.push(host.trim_matches(['[', ']']).to_owned()),
            }
        }
        list
    }

    /// The URL, parsed, when it is http(s) without credentials and its host is allowed;
    /// otherwise the host (or what stands for it) to name in the refusal.
    pub fn check(&self, url: &str) -> Result<Url, String> {
        let parsed = Url::parse(url).map_err(|_| "an invalid URL".to_owned())?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("a {} URL", parsed.scheme()));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("a URL with credentials".into());
        }
        let host = match parsed.host() {
            Some(Host::Domain(name)) => name.to_ascii_lowercase(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => ip.to_string(),
            None => return Err("a URL without a host".into()),
        };
        let allowed =
            self.exact.contains(&host) || self.suffixes.iter().any(|s| host.ends_with(s.as_str()));
        if allowed { Ok(parsed) } else { Err(host) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_hosts_and_subdomains_pass() {
        let list = AllowList::new(&[
            "hooks.example.com".into(),
            "*.internal.example".into(),
            "127.0.0.1".into(),
            "[::1]".into(),
        ]);
        for ok in [
            "https://hooks.example.com/x",
            "http://HOOKS.example.com:8080/x?y=1",
            "https://a.b.internal.example/",
            "http://127.0.0.1:9999/hook",
            "http://[::1]:1/",
        ] {
            assert!(list.check(ok).is_ok(), "{ok}");
        }
        for (bad, named) in [
            ("https://evil.example.com/", "evil.example.com"),
            ("https://internal.example/", "internal.example"),
            (
                "https://hooks.example.com.evil.org/",
                "hooks.example.com.evil.org",
            ),
            ("http://127.0.0.2/", "127.0.0.2"),
            ("ftp://hooks.example.com/", "a ftp URL"),
            ("https://u:p@hooks.example.com/", "a URL with credentials"),
            ("not a url", "an invalid URL"),
        ] {
            assert_eq!(list.check(bad).unwrap_err(), named, "{bad}");
        }
        assert!(
            AllowList::default()
                .check("https://hooks.example.com/")
                .is_err()
        );
    }
}
