//! The parts of a `postgres://` URL that client programs take as options.

use super::PgError;
use std::fmt;

/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?QUERY]`, parts taken literally (no
/// percent-decoding). Its `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PgUrl {
    pub(crate) scheme: String,
    pub(crate) user: String,
    pub(crate) password: Option<String>,
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    pub(crate) database: String,
    pub(crate) query: Option<String>,
}

impl PgUrl {
    /// Parses `url`; errors name what is wrong, never the URL.
    pub(crate) fn parse(url: &str) -> Result<PgUrl, PgError> {
        let bad = |reason| PgError::BadUrl { reason };
        let (scheme, rest) = url.split_once("://").ok_or(bad("no scheme"))?;
        if scheme != "postgres" && scheme != "postgresql" {
            return Err(bad("the scheme is not postgres or postgresql"));
        }
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query.to_owned())),
            None => (rest, None),
        };
        let (authority, database) = rest.split_once('/').ok_or(bad("no database"))?;
        let (userinfo, hostport) = authority.rsplit_once('@').ok_or(bad("no user"))?;
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (user, Some(password.to_owned())),
            None => (userinfo, None),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                let port = port.parse().map_err(|_| bad("the port is not a number"))?;
                (host, Some(port))
            }
            _ => (hostport, None),
        };
        if user.is_empty() || host.is_empty() || database.is_empty() {
            return Err(bad("the user, host or database is empty"));
        }
        Ok(PgUrl {
            scheme: scheme.to_owned(),
            user: user.to_owned(),
            password,
            host: host.to_owned(),
            port,
            database: database.to_owned(),
            query,
        })
    }

    /// The same URL naming another database.
    pub(crate) fn with_database(&self, database: &str) -> String {
        let password = self
            .password
            .as_ref()
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let query = self
            .query
            .as_ref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        format!(
            "{}://{}{password}@{}{port}/{database}{query}",
            self.scheme, self.user, self.host
        )
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgUrl")
            .field("scheme", &self.scheme)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("query", &self.query)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::PgUrl;

    #[test]
    fn a_test_cluster_url_round_trips_with_another_database() {
        let url = PgUrl::parse("postgres://postgres@127.0.0.1:5433/comfy_pool_test").unwrap();
        assert_eq!(url.user, "postgres");
        assert_eq!(url.host, "127.0.0.1");
        assert_eq!(url.port, Some(5433));
        assert_eq!(url.database, "comfy_pool_test");
        assert_eq!(
            url.with_database("t_1"),
            "postgres://postgres@127.0.0.1:5433/t_1"
        );
    }

    #[test]
    fn password_and_query_are_kept_but_never_shown() {
        let url = PgUrl::parse("postgresql://app:s3cret@db.test/main?sslmode=disable").unwrap();
        assert_eq!(url.password.as_deref(), Some("s3cret"));
        assert_eq!(url.port, None);
        assert_eq!(
            url.with_database("other"),
            "postgresql://app:s3cret@db.test/other?sslmode=disable"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
    }

    #[test]
    fn malformed_urls_are_typed_errors_without_the_url() {
        for bad in [
            "mysql://u:s3cret@h/db",
            "postgres://u:s3cret@h:port/db",
            "postgres://h:5432/db",
            "postgres://u:s3cret@h:5432",
            "postgres://u:s3cret@h:5432/",
            "not a url",
        ] {
            let err = PgUrl::parse(bad).unwrap_err();
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
    }
}
