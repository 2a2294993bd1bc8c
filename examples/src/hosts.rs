//! Host lists: `--hosts URL,URL` or `COMFY_HOSTS`, checked and normalised.

use crate::{DemoError, Result};

/// The command-line option every demo shares: real ComfyUI servers to use instead of
/// simulated ones.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HostsArg {
    /// ComfyUI servers to use instead of simulated ones, comma separated
    /// (`http://10.0.0.5:8188,10.0.0.6:8188`).
    #[arg(long, env = "COMFY_HOSTS", value_name = "URL,URL")]
    pub hosts: Option<String>,
}

impl HostsArg {
    /// The servers named, or `None` to use simulated servers.
    ///
    /// # Errors
    ///
    /// [`DemoError::Usage`] for a malformed entry or an empty list.
    pub fn urls(&self) -> Result<Option<Vec<String>>> {
        self.hosts.as_deref().map(parse_hosts).transpose()
    }
}

/// Parses a comma-separated host list. Each entry is a URL (`http://` or `https://`) or a
/// bare `host:port` (taken as `http://`); a trailing slash is removed.
///
/// # Errors
///
/// [`DemoError::Usage`] for an entry with another scheme, no host, or blanks inside, and for
/// a list without any entry.
pub fn parse_hosts(list: &str) -> Result<Vec<String>> {
    let urls = list
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(normalise)
        .collect::<Result<Vec<_>>>()?;
    if urls.is_empty() {
        return Err(DemoError::Usage("--hosts names no server".into()));
    }
    Ok(urls)
}

fn normalise(entry: &str) -> Result<String> {
    let bad = |why: &str| DemoError::Usage(format!("host {entry:?}: {why}"));
    if entry.chars().any(char::is_whitespace) {
        return Err(bad("contains blanks"));
    }
    let url = match entry.split_once("://") {
        Some(("http" | "https", _)) => entry.to_owned(),
        Some((scheme, _)) => return Err(bad(&format!("scheme {scheme:?} is not http or https"))),
        None => format!("http://{entry}"),
    };
    let url = url.trim_end_matches('/').to_owned();
    let host = url.split_once("://").map_or("", |(_, rest)| rest);
    if host.is_empty() || host.starts_with(':') || host.starts_with('/') {
        return Err(bad("has no host"));
    }
    Ok(url)
}

/// A short server name for a URL: its `host:port`.
pub fn server_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

#[cfg(test)]
mod tests {
    use super::{parse_hosts, server_name};

    #[test]
    fn bare_hosts_get_http_and_slashes_go() {
        let urls = parse_hosts(" 10.0.0.5:8188, https://gpu.example:443/ ,").unwrap();
        assert_eq!(urls, ["http://10.0.0.5:8188", "https://gpu.example:443"]);
    }

    #[test]
    fn malformed_entries_are_refused() {
        for bad in ["", " , ", "ftp://x:1", "http://", "http://:8188", "a b:1"] {
            assert!(parse_hosts(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn names_are_host_and_port() {
        assert_eq!(
            server_name("http://user:pw@10.0.0.5:8188/base"),
            "10.0.0.5:8188"
        );
        assert_eq!(server_name("https://gpu.example"), "gpu.example");
    }
}
