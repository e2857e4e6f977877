//! The layer that writes each event as one line, text or JSON, every text value redacted and
//! inert.

use super::LogFormat;
use glueless_engine::text::inert;
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Where a finished line (with its newline) goes.
type Sink = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// A [`Layer`] that writes one line per event: `<program>: <message>` as text, or a JSON
/// object with the message, the fields of the spans the event is in, and its own fields.
pub struct Lines {
    format: LogFormat,
    program: &'static str,
    sink: Sink,
}

impl Lines {
    /// Lines to stderr, each written whole (lines of concurrent files do not interleave).
    pub fn stderr(format: LogFormat, program: &'static str) -> Lines {
        Lines::to(format, program, Arc::new(|line| drop(std::io::stderr().lock().write_all(line))))
    }

    /// Lines to `sink` (a test's buffer).
    fn to(format: LogFormat, program: &'static str, sink: Sink) -> Lines {
        Lines { format, program, sink }
    }

    fn render(&self, level: &tracing::Level, target: &str, fields: Fields) -> String {
        let mut message = String::new();
        let mut rest = Vec::new();
        for (name, value) in fields.0 {
            match (name, value) {
                ("message", Value::String(m)) => message = m,
                (name, value) => rest.push((name, value)),
            }
        }
        match self.format {
            LogFormat::Text => {
                let mut line = format!("{}: {message}", self.program);
                // Our messages say everything in words; a library's event also needs its fields.
                if !target.starts_with("glueless") {
                    for (name, value) in rest {
                        let v = match value {
                            Value::String(s) => s,
                            v => v.to_string(),
                        };
                        line.push_str(&format!(" {name}={v}"));
                    }
                }
                line
            }
            LogFormat::Json => {
                // Written in this order (a `serde_json::Map` would sort the keys): the same four
                // first on every line, for a person reading the raw log.
                let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let head = [("timestamp", now.into()), ("level", level.as_str().into()), ("target", target.into())];
                let pairs = head.into_iter().chain([("message", message.into())]).chain(rest);
                let body: Vec<String> =
                    pairs.map(|(name, value)| format!("{}:{value}", Value::String(name.into()))).collect();
                format!("{{{}}}", body.join(","))
            }
        }
    }
}

impl<S> Layer<S> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut fields = Fields::default();
            attrs.record(&mut fields);
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<Fields>() {
                    for (name, value) in &f.0 {
                        fields.set(name, value.clone());
                    }
                }
            }
        }
        event.record(&mut fields);
        let meta = event.metadata();
        let mut line = self.render(meta.level(), meta.target(), fields);
        line.push('\n');
        (self.sink)(line.as_bytes());
    }
}

/// Field values in the order first set; a later value of the same name (an event's own field
/// over its span's) replaces the earlier one. Text is kept redacted and inert.
#[derive(Default)]
struct Fields(Vec<(&'static str, Value)>);

impl Fields {
    fn set(&mut self, name: &'static str, value: Value) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    fn text(&mut self, field: &Field, s: &str) {
        self.set(field.name(), Value::String(inert(&crate::redact::text(s)).into_owned()));
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.text(field, &format!("{value:?}"));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, &value.to_string());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name(), serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tracing_subscriber::layer::SubscriberExt;

    /// The lines written while `f` runs with a [`Lines`] layer of `format`.
    fn capture(format: LogFormat, f: impl FnOnce()) -> Vec<String> {
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let keep = out.clone();
        let sink: Sink = Arc::new(move |line| keep.lock().unwrap().extend_from_slice(line));
        let subscriber = tracing_subscriber::registry().with(Lines::to(format, "glueless", sink));
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(out.lock().unwrap().clone()).expect("UTF-8");
        text.lines().map(str::to_string).collect()
    }

    fn in_a_file_span() {
        let span = tracing::info_span!("file", dataset = "orders", url = "s3://b/landing/a.csv", version = "\"e1\"");
        span.in_scope(|| tracing::info!(state = "LOADED", rows = 3u64, "LOADED s3://b/landing/a.csv: 3 rows"));
    }

    #[test]
    fn text_is_the_message_after_the_program() {
        assert_eq!(capture(LogFormat::Text, in_a_file_span), ["glueless: LOADED s3://b/landing/a.csv: 3 rows"]);
    }

    #[test]
    fn json_has_the_span_fields_then_the_event_fields() {
        let lines = capture(LogFormat::Json, in_a_file_span);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "LOADED s3://b/landing/a.csv: 3 rows");
        assert_eq!(v["dataset"], "orders");
        assert_eq!(v["url"], "s3://b/landing/a.csv");
        assert_eq!(v["version"], "\"e1\"");
        assert_eq!(v["state"], "LOADED");
        assert_eq!(v["rows"], 3, "numbers stay numbers");
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
        let at = |key: &str| lines[0].find(&format!("\"{key}\":")).unwrap();
        assert!(at("timestamp") < at("message") && at("message") < at("dataset") && at("version") < at("state"));
    }

    #[test]
    fn an_event_field_replaces_the_span_field_of_the_same_name() {
        let lines = capture(LogFormat::Json, || {
            tracing::info_span!("batch", dataset = "a").in_scope(|| tracing::warn!(dataset = "b", "x"))
        });
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!((v["dataset"].as_str(), v["level"].as_str()), (Some("b"), Some("WARN")));
    }

    #[test]
    fn every_text_value_is_redacted_and_inert_in_both_formats() {
        let hostile = "postgres://me:s3cret@db/x refused\n\u{1b}[2Jforged";
        let emit = || tracing::warn!(error = hostile, "cannot load: {hostile}");
        let text = capture(LogFormat::Text, emit);
        assert_eq!(text, ["glueless: cannot load: postgres://me@db/x refused\\n\\u{1b}[2Jforged"]);
        let json = capture(LogFormat::Json, emit);
        assert_eq!(json.len(), 1, "one line: {json:?}");
        let v: Value = serde_json::from_str(&json[0]).unwrap();
        for field in ["message", "error"] {
            let s = v[field].as_str().unwrap();
            assert!(!s.contains("s3cret") && !s.contains(['\n', '\u{1b}']), "{field}: {s}");
        }
    }

    #[test]
    fn a_library_event_shows_its_fields_in_text() {
        let lines =
            capture(LogFormat::Text, || tracing::warn!(target: "aws_smithy_runtime", attempt = 2u64, "retrying"));
        assert_eq!(lines, ["glueless: retrying attempt=2"]);
    }
}
