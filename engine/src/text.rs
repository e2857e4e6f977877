//! Text that is safe to show: bounded in size, and inert on a terminal.
//!
//! Whatever a file holds ends up in messages: a header of a million names, a 60 MB cell, an
//! object key with escape bytes. Every message a person or a store receives (a report field,
//! a stored `last_error`, an alert, a log line) goes through these helpers, so that one input
//! cannot blow up the state store or a webhook, nor repaint a terminal.
//!
//! ```
//! use glueless_engine::text::{bounded, inert, join_bounded};
//!
//! let names = (1..=1_000_000).map(|i| format!("c{i}"));
//! let joined = join_bounded(names, ", ", 60);
//! assert!(joined.len() < 100, "{joined}");
//! assert!(joined.starts_with("c1, c2, ") && joined.ends_with(" more"), "{joined}");
//!
//! let long = "x".repeat(10_000);
//! assert!(bounded(&long, 100).ends_with("… and 9900 more bytes"));
//!
//! assert_eq!(inert("a\u{1b}[31mb\nc"), "a\\u{1b}[31mb\\nc");
//! ```

use std::borrow::Cow;
use std::fmt::Display;

/// The most bytes of one message (a reason, a stored error, a report's problem).
pub const MAX_MESSAGE_BYTES: usize = 2048;

/// The most bytes of one name or value quoted inside a message (a column, a cell).
pub const MAX_QUOTED_BYTES: usize = 128;

/// `s` when it fits in `max_bytes`; else its start, cut on a character boundary, followed by
/// `… and N more bytes` (the result then is at most `max_bytes` plus that suffix).
pub fn bounded(s: &str, max_bytes: usize) -> Cow<'_, str> {
    if s.len() <= max_bytes {
        return Cow::Borrowed(s);
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… and {} more bytes", &s[..end], s.len() - end))
}

/// The items joined by `sep`, as many as fit in `max_bytes`, then `… and N more` (N counted
/// over the rest of the iterator, which is walked but not formatted). Each item is itself
/// [`bounded`] to [`MAX_QUOTED_BYTES`], so one huge item cannot take the whole budget.
pub fn join_bounded<T: Display>(items: impl IntoIterator<Item = T>, sep: &str, max_bytes: usize) -> String {
    let mut out = String::new();
    let mut items = items.into_iter();
    let mut first = true;
    while let Some(item) = items.next() {
        let text = item.to_string();
        let text = bounded(&text, MAX_QUOTED_BYTES);
        // The first item is always shown, so that the message names at least one.
        if !first {
            if out.len() + sep.len() + text.len() > max_bytes {
                let more = 1 + items.count();
                out.push_str(&format!(" … and {more} more"));
                return out;
            }
            out.push_str(sep);
        }
        out.push_str(&text);
        first = false;
    }
    out
}

/// Whether `c` must not reach a terminal or a log as it is: C0 and C1 controls, DEL, and the
/// Unicode line separators and bidirectional overrides that reorder what a reader sees.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every [`is_unsafe_char`] written as an escape (`\n`, `\t`, `\r`, `\u{1b}`), so that
/// an object key or a cell cannot move the cursor, recolour a terminal or forge a log line.
pub fn inert(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `s` quoted for a POSIX shell: inside single quotes nothing is special, and a single quote
/// is written as `'\''` (end the quote, an escaped quote, quote again), so no text can end the
/// quote and run a command. Control characters are made [`inert`] first: a hint with a
/// newline would not paste as one command.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", inert(s).replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_keeps_short_text_and_cuts_on_a_char_boundary() {
        assert_eq!(bounded("abc", 3), "abc");
        let s = "é".repeat(10); // 20 bytes
        let b = bounded(&s, 5);
        assert_eq!(b, "éé… and 16 more bytes");
    }

    #[test]
    fn join_bounded_counts_what_it_leaves_out() {
        let j = join_bounded(["a", "b", "c", "d"], ", ", 4);
        assert_eq!(j, "a, b … and 2 more");
        assert_eq!(join_bounded(["a", "b"], ", ", 100), "a, b");
        assert_eq!(join_bounded(["", "b"], ", ", 100), ", b");
        assert_eq!(join_bounded(Vec::<String>::new(), ", ", 10), "");
        // One huge item is cut, not dropped.
        let j = join_bounded(["x".repeat(10_000)], ", ", 10);
        assert!(j.len() < 200 && j.contains("more bytes"), "{j}");
    }

    #[test]
    fn inert_escapes_controls_and_bidi_overrides() {
        assert_eq!(inert("plain café"), "plain café");
        assert_eq!(inert("a\tb\r\n\0"), "a\\tb\\r\\n\\u{0}");
        assert_eq!(inert("x\u{202E}y\u{7f}\u{9b}"), "x\\u{202e}y\\u{7f}\\u{9b}");
        assert!(!inert("\u{1b}]0;title\u{7}").chars().any(is_unsafe_char));
    }

    #[test]
    fn shell_quote_cannot_be_ended_by_the_text() {
        assert_eq!(shell_quote("a.csv"), "'a.csv'");
        assert_eq!(shell_quote("x'; rm -rf ~ '"), r"'x'\''; rm -rf ~ '\'''");
        assert_eq!(shell_quote("a\nb"), r"'a\nb'");
    }
}
