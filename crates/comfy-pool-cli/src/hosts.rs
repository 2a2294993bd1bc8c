//! Host lists: `--hosts URL,URL` or `COMFY_HOSTS`, checked and normalised.

use crate::error::{Error, Result};

/// The command-line option naming real ComfyUI servers (`--hosts`, or `COMFY_HOSTS`).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct HostsArg {
    /// ComfyUI servers to use instead of simulated ones, comma separated
    /// (`http://10.0.0.5:8188,10.0.0.6:8188`).
    #[arg(long, env = "COMFY_HOSTS", value_name = "URL,URL")]
    pub hosts: Option<String>,
}

impl HostsArg {
    /// The servers named, or `None` when no host list was given.
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] for a malformed entry or an empty list.
    pub fn urls(&self) -> Result<Option<Vec<String>>> {
        self.hosts.as_deref().map(parse_hosts).transpose()
    }
}

/// Parses a comma-separated host list. Each entry is a URL (`http://` or `https://`, with
/// `user:password@` if the server wants basic auth) or a bare `host:port` (taken as
/// `http://`); a trailing slash is removed.
///
/// # Errors
///
/// [`Error::Usage`] for an entry with another scheme, no host, or blanks inside, and for a
/// list without any entry. The message shows the entry without its credentials.
pub fn parse_hosts(list: &str) -> Result<Vec<String>> {
    let urls = list
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(normalise)
        .collect::<Result<Vec<_>>>()?;
    if urls.is_empty() {
        return Err(Error::Usage("--hosts names no server".into()));
    }
    Ok(urls)
}

fn normalise(entry: &str) -> Result<String> {
    let bad = |why: &str| Error::Usage(format!("host {:?}: {why}", redact(entry)));
    if entry.chars().any(char::is_whitespace) {
        return Err(bad("contains blanks"));
    }
    let (scheme, rest) = entry.split_once("://").unwrap_or(("http", entry));
    if scheme != "http" && scheme != "https" {
        return Err(bad(&format!("scheme {scheme:?} is not http or https")));
    }
    let rest = rest.trim_end_matches('/');
    let host = server_name(rest);
    if host.is_empty() || host.starts_with(':') {
        return Err(bad("has no host"));
    }
    Ok(format!("{scheme}://{rest}"))
}

/// A short server name for a URL: its `host:port`, never its credentials.
pub fn server_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    host.to_owned()
}

/// `entry` with any `user:password@` replaced by `***@`.
fn redact(entry: &str) -> String {
    let (scheme, rest) = entry
        .split_once("://")
        .map_or(("", entry), |(scheme, rest)| (scheme, rest));
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let Some((_, host)) = authority.rsplit_once('@') else {
        return entry.to_owned();
    };
    let scheme = if scheme.is_empty() {
        String::new()
    } else {
        format!("{scheme}://")
    };
    let path = if rest.contains('/') {
        format!("/{path}")
    } else {
        String::new()
    };
    format!("{scheme}***@{host}{path}")
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
        for bad in [
            "",
            " , ",
            "ftp://x:1",
            "http://",
            "http://:8188",
            "a b:1",
            "http:///x",
        ] {
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

    #[test]
    fn errors_never_show_credentials() {
        for bad in [
            "ftp://user:s3cret@gpu:1",
            "http://user:s3cret@:8188/x",
            "user:s3cret@gpu 1",
        ] {
            let error = parse_hosts(bad).unwrap_err().to_string();
            assert!(!error.contains("s3cret"), "{error}");
            assert!(error.contains("***@"), "{error}");
        }
    }
}
