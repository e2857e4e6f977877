//! The alerts port: tell a person that a file needs them (REJECTED, DEAD).

use super::FileState;
use glueless_engine::job::ReportError;
use glueless_engine::text::{MAX_MESSAGE_BYTES, bounded, inert, shell_quote};
use serde::Serialize;

/// What a person needs to act on one file.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub dataset: String,
    pub object: String,
    pub state: FileState,
    pub reason: String,
    pub attempts: u32,
    pub rows_read: Option<u64>,
    pub rows_rejected: Option<u64>,
    /// The first few row errors, when there were any. Without `[alerts] include_values` their
    /// `value` is `None` and their `message` (which may quote the cell) is empty.
    pub row_errors: Vec<ReportError>,
    /// Where the rejected rows are, when they were quarantined.
    pub quarantine: Option<String>,
}

impl Alert {
    /// A short subject line (made [`inert`]: no control characters).
    pub fn subject(&self) -> String {
        format!(
            "glueless: {} {} ({})",
            inert(&bounded(&self.dataset, NAME_MAX)),
            self.state,
            inert(&bounded(&self.object, NAME_MAX))
        )
    }

    /// A few lines of plain text: what the log shows. Every part that comes from data (names,
    /// reasons, row errors) is bounded in size and [`inert`]; the replay hint quotes the object
    /// for a POSIX shell, so that pasting it runs nothing else whatever the key holds.
    pub fn text(&self) -> String {
        self.render(false)
    }

    /// [`Alert::text`] for Slack (and AWS Chatbot): `&`, `<` and `>` escaped, so that no
    /// mention (`<!channel>`), link or entity comes from data, and the names in code spans with
    /// their backticks shown as `ˋ`, so that no data ends a code span and formats the rest.
    pub fn slack_text(&self) -> String {
        self.render(true)
    }

    fn render(&self, slack: bool) -> String {
        // Free text (a reason, a message): bounded, inert, and escaped for Slack.
        let free = |s: &str, max: usize| {
            let s = inert(&bounded(s, max)).into_owned();
            if slack { slack_escape(&s) } else { s }
        };
        // A name shown in a code span.
        let name = |s: &str| {
            let s = free(s, NAME_MAX);
            if slack { s.replace('`', "ˋ") } else { s }
        };
        let mut s = format!(
            "*{}* file `{}` of dataset `{}` after {} attempt(s)\nreason: {}",
            self.state,
            name(&self.object),
            name(&self.dataset),
            self.attempts,
            free(&self.reason, MAX_MESSAGE_BYTES)
        );
        if let (Some(read), Some(rej)) = (self.rows_read, self.rows_rejected) {
            s.push_str(&format!("\nrows: {read} read, {rej} rejected"));
        }
        let mut values_left_out = false;
        for e in &self.row_errors {
            s.push_str(&format!(
                "\n  line {}: `{}` {}",
                e.line,
                e.field.as_deref().map(&name).unwrap_or_else(|| "-".into()),
                e.rule,
            ));
            if e.message.is_empty() {
                values_left_out = true;
            } else {
                s.push_str(&format!(": {}", free(&e.message, ROW_MESSAGE_MAX)));
            }
        }
        if values_left_out {
            s.push_str(
                "\n  (cell values are not shown, as they may be personal data: the quarantine has them, \
                 or set [alerts] include_values = true)",
            );
        }
        if let Some(q) = &self.quarantine {
            s.push_str(&format!("\nrejected rows: {}", name(q)));
        }
        let hint = format!("glueless replay --url {}", shell_quote(&bounded(&self.object, OBJECT_HINT_MAX)));
        if slack {
            s.push_str(&format!("\nto retry: `{}`", slack_escape(&hint).replace('`', "ˋ")));
        } else {
            s.push_str(&format!("\nto retry: {hint}"));
        }
        s
    }
}

/// The longest name (object URL, dataset, field, quarantine) an alert shows.
const NAME_MAX: usize = 1024;
/// The longest object URL the replay hint quotes (S3 keys are at most 1,024 bytes).
const OBJECT_HINT_MAX: usize = 4096;
/// The longest row error message an alert shows.
const ROW_MESSAGE_MAX: usize = 512;

/// `s` with Slack's three control characters escaped as its documentation asks.
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// An alert that could not be delivered.
#[derive(Debug, thiserror::Error)]
#[error("cannot deliver the alert through {channel}: {message}")]
pub struct AlertError {
    pub channel: String,
    pub message: String,
}

/// Delivers alerts.
#[async_trait::async_trait]
pub trait Alerts: Send + Sync {
    async fn send(&self, alert: &Alert) -> Result<(), AlertError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "file:///lake/landing/sales/x<!channel>&'; touch pwned '.csv";

    fn alert(message: &str, value: Option<&str>) -> Alert {
        Alert {
            dataset: "sales".into(),
            object: KEY.into(),
            state: FileState::Rejected,
            reason: format!("2 of 3 rows rejected {}", "y".repeat(100_000)),
            attempts: 1,
            rows_read: Some(3),
            rows_rejected: Some(2),
            row_errors: vec![ReportError {
                line: 2,
                row: 1,
                field: Some("q`ty".into()),
                rule: "type-error",
                value: value.map(str::to_string),
                message: message.into(),
            }],
            quarantine: Some("file:///lake/rejected/x.jsonl".into()),
        }
    }

    #[test]
    fn slack_text_has_no_mention_link_or_control_byte_from_data() {
        let a = alert("`\u{1b}[31m<http://evil|click>` in `qty` is not an integer", Some("\u{1b}[31m"));
        let t = a.slack_text();
        assert!(!t.contains(['<', '>', '\u{1b}']), "{t}");
        assert!(t.contains("x&lt;!channel&gt;&amp;'") && t.contains("&lt;http://evil|click&gt;"), "{t}");
        assert!(t.contains("`qˋty`"), "a backtick in a name cannot end the code span: {t}");
        assert!(t.len() < 8 * 1024 && t.contains("more bytes"), "{}", t.len());
        let plain = a.text();
        assert!(plain.contains("<!channel>") && !plain.contains('\u{1b}') && plain.contains("\\u{1b}[31m"), "{plain}");
    }

    #[test]
    fn without_values_the_text_says_where_they_are() {
        let t = alert("", None).text();
        assert!(t.contains("line 2: `q`ty` type-error\n") && t.contains("include_values = true"), "{t}");
    }

    /// Issue 11: pasting the hint must run `glueless replay` on the object and nothing else.
    #[test]
    fn the_replay_hint_pastes_as_one_command_whatever_the_key() {
        let dir = tempfile::tempdir().unwrap();
        for text in [alert("", None).text(), alert("", None).slack_text()] {
            let hint = text.lines().find_map(|l| l.strip_prefix("to retry: ")).expect("a hint").trim_matches('`');
            let hint = hint.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
            let script = format!("glueless() {{ printf '%s\\n' \"$@\"; }}\n{hint}");
            let out = std::process::Command::new("sh").arg("-c").arg(&script).current_dir(dir.path()).output().unwrap();
            assert!(out.status.success(), "{hint}: {}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(String::from_utf8_lossy(&out.stdout), format!("replay\n--url\n{KEY}\n"), "{hint}");
            assert!(!dir.path().join("pwned").exists(), "the key ran a command: {hint}");
        }
    }
}
