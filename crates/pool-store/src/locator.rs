//! Where a store lives, from its URL (`sqlite:PATH`, `sqlite::memory:`, `postgres://…`), and
//! keeping the URL's password out of every message.

use std::path::PathBuf;

use pool_core::StoreError;

use crate::Synchronous;

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// An SQLite database file, and when it waits for the disk (`?synchronous=`).
    SqliteFile(PathBuf, Synchronous),
    /// A private in-memory SQLite database (tests).
    SqliteMemory,
    /// A PostgreSQL server (the URL as given).
    Postgres(String),
}

/// What a store URL may look like, for error messages.
const FORMS: &str = "sqlite:PATH, sqlite::memory: or postgres://USER@HOST/DB";

impl Location {
    /// Parses a store URL. An error never quotes the URL's password.
    pub(crate) fn parse(url: &str) -> Result<Self, StoreError> {
        let url = url.trim();
        if url == ":memory:" || url == "sqlite::memory:" || url == "sqlite://:memory:" {
            return Ok(Self::SqliteMemory);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let (path, query) = path.split_once('?').unwrap_or((path, ""));
            if path.is_empty() {
                return Err(StoreError::Config(format!(
                    "an SQLite store URL needs a path ({FORMS})"
                )));
            }
            // `synchronous` is read; other parameters (sqlx's `mode`, ...) are left alone.
            let mut synchronous = Synchronous::Full;
            for pair in query.split('&') {
                if let Some(("synchronous", value)) = pair.split_once('=') {
                    synchronous = Synchronous::parse(value)?;
                }
            }
            return Ok(Self::SqliteFile(PathBuf::from(path), synchronous));
        }
        Err(StoreError::Config(format!(
            "unsupported store URL {}: expected {FORMS}",
            redacted(url)
        )))
    }
}

/// The secrets a URL carries: its password, in the form given and decoded, and a `password`
/// query parameter.
fn secrets(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    if let Ok(parsed) = url::Url::parse(url) {
        if let Some(password) = parsed.password() {
            secrets.push(password.to_owned());
            if let Ok(decoded) = percent_decode(password) {
                secrets.push(decoded);
            }
        }
        for (key, value) in parsed.query_pairs() {
            if key.eq_ignore_ascii_case("password") {
                secrets.push(value.into_owned());
            }
        }
    } else if let Some((_, rest)) = url.split_once("://") {
        // Unparsable: whatever sits between the user's ':' and the last '@' may be secret.
        if let Some((userinfo, _)) = rest.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
        {
            secrets.push(password.to_owned());
        }
    }
    secrets.retain(|s| !s.is_empty());
    secrets
}

fn percent_decode(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
}

/// `text` with every secret of `url` replaced by `***`.
pub(crate) fn scrub(text: &str, url: &str) -> String {
    let mut secrets = secrets(url);
    // Longest first, so a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret.as_str(), "***")
    })
}

/// `url` fit to quote: without its secrets.
pub(crate) fn redacted(url: &str) -> String {
    scrub(url, url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_kinds_of_url_are_recognised() {
        assert_eq!(
            Location::parse("sqlite::memory:"),
            Ok(Location::SqliteMemory)
        );
        assert_eq!(Location::parse(":memory:"), Ok(Location::SqliteMemory));
        assert_eq!(
            Location::parse("sqlite:/var/lib/pool.db"),
            Ok(Location::SqliteFile(
                "/var/lib/pool.db".into(),
                Synchronous::Full
            ))
        );
        assert_eq!(
            Location::parse("sqlite://pool.db?mode=rwc"),
            Ok(Location::SqliteFile("pool.db".into(), Synchronous::Full))
        );
        assert_eq!(
            Location::parse("sqlite:pool.db?mode=rwc&synchronous=NORMAL"),
            Ok(Location::SqliteFile("pool.db".into(), Synchronous::Normal))
        );
        assert_eq!(
            Location::parse("sqlite:pool.db?synchronous=full"),
            Ok(Location::SqliteFile("pool.db".into(), Synchronous::Full))
        );
        assert!(matches!(
            Location::parse("sqlite:pool.db?synchronous=off"),
            Err(StoreError::Config(m)) if m.contains("synchronous=off")
        ));
        assert_eq!(
            Location::parse("postgres://u:p@h/db"),
            Ok(Location::Postgres("postgres://u:p@h/db".into()))
        );
        assert!(matches!(
            Location::parse("sqlite:"),
            Err(StoreError::Config(_))
        ));
    }

    #[test]
    fn no_message_shows_a_password() {
        for url in [
            "mysql://app:s3cret@db/x",
            "mysql://app:s3%63ret@db/x",
            "mysql://db/x?password=s3cret",
            "mysql://app:s3cret@db:notaport/x",
        ] {
            let err = Location::parse(url).unwrap_err().to_string();
            assert!(
                !err.contains("s3cret") && !err.contains("s3%63ret"),
                "{err}"
            );
            assert!(err.contains("***"), "{err}");
        }
        assert_eq!(
            scrub(
                "connect postgres://app:s3%63ret@h failed: s3cret",
                "postgres://app:s3%63ret@h"
            ),
            "connect postgres://app:***@h failed: ***"
        );
    }
}
