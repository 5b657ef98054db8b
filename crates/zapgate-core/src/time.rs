//! Wall-clock helpers: the database stores Unix milliseconds, the API shows RFC 3339.

use chrono::{DateTime, SecondsFormat, Utc};

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub fn now_secs() -> i64 {
    Utc::now().timestamp()
}

/// `2026-04-20T10:15:30Z`.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Unix seconds of an RFC 3339 / ISO 8601 date and time with a zone
/// (`2026-05-01T19:00:00-03:00`); `None` without a zone or when malformed.
pub fn parse_rfc3339_secs(raw: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_zoned_times_only() {
        assert_eq!(
            super::parse_rfc3339_secs("2026-04-20T07:15:30-03:00"),
            Some(1_776_680_130)
        );
        assert_eq!(super::parse_rfc3339_secs("2026-04-20T10:15:30"), None);
        assert_eq!(super::parse_rfc3339_secs("tomorrow"), None);
    }

    #[test]
    fn formats_utc_seconds() {
        assert_eq!(super::rfc3339(1_776_680_130_000), "2026-04-20T10:15:30Z");
    }
}
