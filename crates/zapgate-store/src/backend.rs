//! Which database a URL names. One code path serves both through sqlx's
//! `Any` driver; this enum covers the few places where the dialects differ
//! (connection setup, migrations, row locking), and redacts URLs for logs.

use zapgate_core::{Error, Result, error::Cause};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend of a database URL: `sqlite:...`, `postgres://...` or
    /// `postgresql://...`. Anything else is an error naming the scheme (never
    /// the whole URL, which may hold a password).
    pub fn from_url(url: &str) -> Result<Self> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" if url[scheme.len()..].starts_with("://") => {
                Ok(Self::Postgres)
            }
            _ => Err(Error::internal(Cause(format!(
                "unsupported database URL scheme `{scheme}`: use `sqlite:` or `postgres://`"
            )))),
        }
    }

    /// `sqlite` or `postgres`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The URL with any password replaced by `***`, fit for logs and `Debug`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = redact_query_password(tail);
    format!("{scheme}://{authority}{tail}")
}

/// PostgreSQL also accepts `?password=...`.
fn redact_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_from_scheme() {
        assert_eq!(
            Backend::from_url("sqlite:data/z.db").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("sqlite://data/z.db?mode=rwc").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("postgres://u:p@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::from_url("postgresql://h/db").unwrap(),
            Backend::Postgres
        );
        let err = Backend::from_url("mysql://root:hunter2@h/db").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`mysql`"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(Backend::from_url("no-scheme").is_err());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/zg"),
            "postgres://app:***@db:5432/zg"
        );
        assert_eq!(
            redact_url("postgres://app@db/zg?password=hunter2&sslmode=require"),
            "postgres://app@db/zg?password=***&sslmode=require"
        );
        assert_eq!(redact_url("sqlite:data/z.db"), "sqlite:data/z.db");
        assert_eq!(
            redact_url("postgres://db/zg?password=x"),
            "postgres://db/zg?password=***"
        );
    }
}
