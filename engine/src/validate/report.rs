//! Row errors: what the quarantine and the report say about a rejected row.

use serde::Serialize;

/// One failed check on one row. `rule` uses the Frictionless error names where one fits.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RowError {
    /// The contract field, or `None` for row-level problems (`blank-row`, `malformed-row`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub rule: &'static str,
    /// For `constraint-error`: which constraint (`required`, `minimum`, `enum`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<&'static str>,
    /// The cell as read (after unquoting), when there is one.
    pub value: Option<String>,
    pub message: String,
    /// For `primary-key` and `unique-error`: the line where the key was first seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_line: Option<u64>,
}

/// A rejected row, as written to the quarantine (one JSON object per line).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RejectedRow {
    /// 1-based physical line where the row starts.
    pub line: u64,
    /// Frictionless row number: the header is row 1 (when there is one).
    pub row: u64,
    /// The row's bytes as they were in the file, without the line terminator (invalid UTF-8
    /// replaced; the exact bytes are then in `raw_base64`).
    pub raw: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_base64: Option<String>,
    pub errors: Vec<RowError>,
}

/// A reason to reject the whole file before or while reading its rows.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileProblem {
    /// A Frictionless-style name: `missing-label`, `extra-label`, `duplicate-label`,
    /// `blank-label`, `empty-file`, `malformed-file`, `rejected-ratio`.
    pub rule: &'static str,
    pub message: String,
}

pub(crate) fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg==")] {
            assert_eq!(super::base64(i.as_bytes()), o);
        }
    }
}
