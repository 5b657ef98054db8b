//! Logs to stderr, as text or as one JSON object per line.
//!
//! In JSON, a span's fields are formatted by [`JsonSpanFields`] rather than
//! `tracing_subscriber`'s `JsonFields`: every request opens a span whose
//! fields are formatted when it opens, logged or not, and `JsonFields`
//! builds a map of `serde_json::Value`s for that (callgrind: 14% of a
//! cached list request's instructions). The text is the same JSON object.

use std::fmt;

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing_subscriber::{
    EnvFilter,
    field::RecordFields,
    fmt::{FormatFields, FormattedFields, format::Writer},
};

use crate::config::{Config, LogFormat};

/// Logs go to stderr, so `--json` output on stdout stays clean.
pub fn init(config: &Config) {
    // `RUST_LOG` is read, and checked, with the rest of the configuration.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(&config.log_filter))
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().fmt_fields(JsonSpanFields).init(),
    }
}

/// A span's fields as one JSON object, written field by field.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonSpanFields;

impl<'writer> FormatFields<'writer> for JsonSpanFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut object = JsonObject::default();
        fields.record(&mut object);
        writer.write_str(&object.finish())
    }

    /// A field recorded later is appended; when its name is already there
    /// the later entry wins, as a JSON parser reads duplicate keys.
    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut object = JsonObject::default();
        if let Some(open) = current.fields.strip_suffix('}') {
            object.json = open.as_bytes().to_vec();
        }
        fields.record(&mut object);
        current.fields = object.finish();
        Ok(())
    }
}

/// The object being written: `{` and the entries so far, unclosed.
#[derive(Default)]
struct JsonObject {
    json: Vec<u8>,
}

impl JsonObject {
    fn entry<T: Serialize + ?Sized>(&mut self, field: &Field, value: &T) {
        // A comma only after an entry: not after `{` alone (a span opened
        // with no field yet, appended to).
        match self.json.as_slice() {
            [] => self.json.push(b'{'),
            [b'{'] => {}
            _ => self.json.push(b','),
        }
        // Writing JSON into a `Vec` fails only for a value serde cannot
        // represent (a map with non-string keys), which fields never are.
        let _ = serde_json::to_writer(&mut self.json, field.name());
        self.json.push(b':');
        let _ = serde_json::to_writer(&mut self.json, value);
    }

    fn finish(mut self) -> String {
        if self.json.is_empty() {
            self.json.push(b'{');
        }
        self.json.push(b'}');
        // serde_json writes UTF-8 only, and the prefix came from a `String`.
        String::from_utf8(self.json).unwrap_or_default()
    }
}

impl Visit for JsonObject {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, &format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, &value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, &value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.entry(field, &value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, &value);
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io,
        sync::{Arc, Mutex},
    };

    use serde_json::{Value, json};
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Self;

        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    /// The `span` object of the one line logged inside the span `open`
    /// makes, with fields formatted by `fields`.
    fn logged_span<N>(fields: N, open: fn() -> tracing::Span) -> Value
    where
        N: for<'w> FormatFields<'w> + Send + Sync + 'static,
    {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .fmt_fields(fields)
            .with_writer(out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            open().in_scope(|| tracing::info!("inside"));
        });
        let line = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let logged: Value = serde_json::from_str(line.trim()).unwrap();
        logged["span"].clone()
    }

    /// Awkward field values, and fields recorded after the span opened.
    fn awkward_span() -> tracing::Span {
        let span = tracing::info_span!(
            "request",
            method = %"GET",
            route = "/api/\"quoted\"\\path\n\u{1}é",
            attempt = 3u64,
            delta = -2i64,
            ratio = 0.5f64,
            cached = true,
            late = tracing::field::Empty,
            replaced = "first",
        );
        span.record("late", "recorded later");
        span.record("replaced", "second");
        span
    }

    /// A span whose only field has no value until recorded.
    fn recorded_later_span() -> tracing::Span {
        let span = tracing::info_span!("request", route = tracing::field::Empty);
        span.record("route", "/health");
        span
    }

    #[test]
    fn span_fields_log_as_the_json_fields_formatter_logs_them() {
        let theirs = tracing_subscriber::fmt::format::JsonFields::new;
        let ours = logged_span(JsonSpanFields, awkward_span);
        assert_eq!(ours, logged_span(theirs(), awkward_span));
        assert_eq!(
            ours,
            json!({
                "name": "request",
                "method": "GET",
                "route": "/api/\"quoted\"\\path\n\u{1}é",
                "attempt": 3,
                "delta": -2,
                "ratio": 0.5,
                "cached": true,
                "late": "recorded later",
                "replaced": "second",
            })
        );
        let ours = logged_span(JsonSpanFields, recorded_later_span);
        assert_eq!(ours, logged_span(theirs(), recorded_later_span));
        assert_eq!(ours, json!({"name": "request", "route": "/health"}));
    }
}
