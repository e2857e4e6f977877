//! Secrets never reach text: the one redaction of configured URLs ([`url`]) and of free text
//! that may quote one ([`text`]).
//!
//! Configured URLs carry secrets in three places: the password of the user-info
//! (`postgres://me:PASSWORD@db/x`), query parameters (`?password=…`, also percent-encoded as
//! `?p%61ssword=…`, which tokio-postgres decodes to `password`; `?secret_arn=…`), and, for a
//! Slack-compatible webhook, the path (`https://hooks.slack.com/services/T…/B…/TOKEN`).
//! Every message that names a configured URL (errors, log lines, reports, `status`, alerts)
//! shows it through [`url`]; messages from drivers and services, which may quote a URL or a
//! secret ARN back, go through [`text`] before they are printed or stored.
//!
//! The rules are deliberately wider than any one driver's parser: when in doubt, hide.
//!
//! ```
//! use glueless_jobs::redact;
//!
//! assert_eq!(redact::url("postgres://me:s3cret@db:5432/x"), "postgres://me@db:5432/x");
//! assert_eq!(redact::url("postgres://db/x?p%61ssword=s3cret"), "postgres://db/x?p%61ssword=…");
//! assert_eq!(redact::url("https://hooks.slack.com/services/T0/B0/XyZ"), "https://hooks.slack.com/…");
//! assert_eq!(redact::url("postgress://me:s3cret@db/x"), "postgress://me@db/…");
//! let t = redact::text("cannot connect to postgres://me:s3cret@db/x: refused");
//! assert_eq!(t, "cannot connect to postgres://me@db/x: refused");
//! ```

use std::borrow::Cow;

/// What replaces a hidden value.
const HIDDEN: &str = "…";

/// Schemes whose path (a database, a table, a file) is shown; any other URL (a webhook, a
/// mistyped scheme) is shown only up to its host.
const PATH_SHOWN: [&str; 5] = ["postgres", "postgresql", "redshift-data", "sqlite", "dynamodb"];

/// A query or connection-string parameter whose value is (or may be) a secret, judged on its
/// name after percent-decoding and in lower case.
fn is_secret_name(raw: &str) -> bool {
    let decoded: String = url::form_urlencoded::parse(format!("{raw}=").as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_else(|| raw.to_string());
    [raw, decoded.as_str()].iter().any(|k| {
        let k = k.to_ascii_lowercase();
        ["pass", "pwd", "secret", "token", "sig", "credential", "auth", "key"].iter().any(|w| k.contains(w))
    })
}

/// `u` without its secrets: the user-info password, the values of secret-looking query
/// parameters and the fragment are hidden; for schemes other than the warehouses' and state
/// stores' (webhooks, mistyped schemes) the path and query too. A libpq key-value connection string (`host=db password=…`) has its secret values
/// hidden. Text that is neither is returned as it is, unless it has an `@` (it may then be a
/// URL with a password that could not be read), in which case it is hidden whole.
pub fn url(u: &str) -> String {
    let Some((scheme, rest)) = u.split_once("://") else {
        if u.contains('=') {
            return key_values(u);
        }
        if u.contains('@') {
            return "(a URL that could not be read, hidden because it may hold a password)".into();
        }
        // A URL without its scheme (`hooks.slack.com/services/…`) keeps its secrets in the
        // path; a local path (`data/state.db`, `./x`, `/x`) shows whole.
        if let Some((host, _)) = u.split_once('/')
            && host.contains('.')
            && !host.starts_with('.')
        {
            return format!("{host}/{HIDDEN}");
        }
        return u.to_string();
    };
    if ["s3", "file", "memory"].iter().any(|s| scheme.eq_ignore_ascii_case(s)) {
        // Object URLs: no credentials go there, and a key may hold `:` and `@`.
        return u.to_string();
    }
    // Drivers disagree on where the user-info ends: tokio-postgres takes the first `@`, the
    // WHATWG parser the last one before the path. Hide up to the later of the two. Without a
    // `:` before it, an `@` holds no password (`?db_user=a@b`).
    let first_at = rest.find('@');
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let last_at_in_authority = rest[..authority_end].rfind('@');
    let (userinfo, after) = match first_at.max(last_at_in_authority) {
        Some(at) if rest[..at].contains(':') || at < authority_end => (Some(&rest[..at]), &rest[at + 1..]),
        _ => (None, rest),
    };
    let mut out = format!("{scheme}://");
    if let Some(ui) = userinfo {
        // The user name is shown (it helps to diagnose); anything after its `:` is the password.
        out.push_str(ui.split_once(':').map_or(ui, |(user, _)| user));
        out.push('@');
    }
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (host, tail) = after.split_at(end);
    out.push_str(host);
    if !PATH_SHOWN.iter().any(|s| scheme.eq_ignore_ascii_case(s)) {
        // A webhook's path is its secret (Slack's token), and who knows what another scheme
        // keeps there: nothing after the host is shown.
        if !tail.is_empty() {
            out.push('/');
            out.push_str(HIDDEN);
        }
        return out;
    }
    let (tail, fragment) = match tail.split_once('#') {
        Some((t, _)) => (t, true),
        None => (tail, false),
    };
    match tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let params: Vec<String> = query
                .split(['&', ';'])
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if is_secret_name(k) => format!("{k}={HIDDEN}"),
                    None if is_secret_name(p) => HIDDEN.to_string(),
                    _ => p.to_string(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(tail),
    }
    if fragment {
        out.push('#');
        out.push_str(HIDDEN);
    }
    out
}

/// A libpq key-value connection string (`host=db user=me password='s 3cret'`) with the values
/// of secret keys hidden; one that cannot be read is hidden whole.
fn key_values(s: &str) -> String {
    let unreadable =
        || "(a connection string that could not be read, hidden because it may hold a password)".to_string();
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') || key.is_empty() {
            return unreadable();
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            value.push('\'');
            loop {
                match chars.next() {
                    None => return unreadable(),
                    Some('\\') => {
                        value.push('\\');
                        match chars.next() {
                            Some(c) => value.push(c),
                            None => return unreadable(),
                        }
                    }
                    Some('\'') => {
                        value.push('\'');
                        break;
                    }
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
                if c == '\\'
                    && let Some(e) = chars.next()
                {
                    value.push(e);
                }
            }
        }
        out.push(if is_secret_name(&key) { format!("{key}={HIDDEN}") } else { format!("{key}={value}") });
    }
    out.join(" ")
}

/// `s` with every URL in it shown as [`url`] shows it, and every AWS Secrets Manager ARN
/// hidden: for messages from drivers and services, which may quote what they were given.
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.contains("://") && !s.contains(":secretsmanager:") && !s.contains("password") {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    // A token ends at white space or at a character that quotes it in a message.
    let is_end = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>' | '|');
    while !rest.is_empty() {
        let start = rest.find(|c: char| !is_end(c)).unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(is_end).unwrap_or(rest.len());
        let token = &rest[..end];
        out.push_str(&token_redacted(token));
        rest = &rest[end..];
    }
    Cow::Owned(out)
}

/// One white-space-free token of a message, redacted.
fn token_redacted(token: &str) -> Cow<'_, str> {
    if let Some(i) = token.find(":secretsmanager:") {
        return Cow::Owned(format!("{}:secretsmanager:{HIDDEN}", &token[..i]));
    }
    if let Some(i) = token.find("://") {
        // The scheme is the run of URL scheme characters before `://`.
        let scheme_start = token[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |j| j + 1);
        // Trailing punctuation of the sentence is not part of the URL.
        let body = token[scheme_start..].trim_end_matches([',', ';', '.', ')', ']']);
        let tail = &token[scheme_start + body.len()..];
        return Cow::Owned(format!("{}{}{tail}", &token[..scheme_start], url(body)));
    }
    // `password=…` as a driver may echo a key-value connection string.
    if let Some((k, _)) = token.split_once('=')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && is_secret_name(k)
        && k.to_ascii_lowercase().contains("pass")
    {
        return Cow::Owned(format!("{k}={HIDDEN}"));
    }
    Cow::Borrowed(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cret";

    #[test]
    fn user_info_passwords_are_hidden_however_the_url_is_written() {
        for (u, shown) in [
            ("postgres://db/x", "postgres://db/x"),
            ("postgres://me:s3cret@db:5432/x", "postgres://me@db:5432/x"),
            ("postgresql://me:p%40s3cret@h1,h2/x", "postgresql://me@h1,h2/x"),
            ("postgres://me:p@s3cret@db/x", "postgres://me@db/x"),
            ("postgres://me:pa/s3cret@db/x", "postgres://me@db/x"),
            ("postgres://me:pa?s3cret@db/x", "postgres://me@db/x"),
            ("mysql+tls://me:s3cret@db/x", "mysql+tls://me@db/…"),
            ("sqlite://warehouse.db", "sqlite://warehouse.db"),
            ("s3://bucket/prefix", "s3://bucket/prefix"),
            ("s3://bucket/landing/a:b@c.csv", "s3://bucket/landing/a:b@c.csv"),
            ("redshift-data://cluster/c1/dev?db_user=a@b", "redshift-data://cluster/c1/dev?db_user=a@b"),
        ] {
            let r = url(u);
            assert_eq!(r, shown, "{u}");
            assert!(!r.contains(SECRET), "{u} -> {r}");
        }
    }

    #[test]
    fn secret_parameters_are_hidden_also_when_percent_encoded() {
        for u in [
            "postgres://db/x?password=s3cret&sslmode=disable",
            "postgres://db/x?pass%77ord=s3cret",
            "postgres://db/x?p%61ssword=s3cret",
            "postgres://db/x?PASSWORD=s3cret",
            "postgres://db/x?sslmode=disable;password=s3cret",
            "postgres://db/x?sslpassword=s3cret#frag",
            "redshift-data://cluster/c1/dev?secret_arn=arn:aws:secretsmanager:eu-west-1:1:secret:s3cret",
            "postgres://db/x#password=s3cret",
            "postgres://db/x?password=s3cret&user=a@b",
        ] {
            let r = url(u);
            assert!(!r.contains(SECRET), "{u} -> {r}");
        }
        assert_eq!(
            url("postgres://db/x?sslmode=disable&p%61ssword=s3cret"),
            "postgres://db/x?sslmode=disable&p%61ssword=…"
        );
    }

    #[test]
    fn webhook_paths_and_queries_are_hidden() {
        assert_eq!(url("https://hooks.slack.com/services/T0/B0/s3cret"), "https://hooks.slack.com/…");
        assert_eq!(url("http://127.0.0.1:9/hook?token=s3cret"), "http://127.0.0.1:9/…");
        assert_eq!(url("https://example.com"), "https://example.com");
    }

    #[test]
    fn key_value_strings_and_unreadable_urls() {
        assert_eq!(url("host=db user=me password=s3cret dbname=x"), "host=db user=me password=… dbname=x");
        let r = url("host=db password='s 3cret \\' s3cret' port=5");
        assert_eq!(r, "host=db password=… port=5");
        assert!(!url("host=db password='s3cret").contains(SECRET));
        assert!(!url("me:s3cret@db").contains(SECRET));
        assert_eq!(url("warehouse.db"), "warehouse.db");
        assert_eq!(url("data/state.db"), "data/state.db");
        assert_eq!(url("../lake/state.db"), "../lake/state.db");
        assert_eq!(url("hooks.slack.com/services/T/B/s3cret"), "hooks.slack.com/…");
    }

    #[test]
    fn text_redacts_every_url_and_secret_arn_it_quotes() {
        let t = text(
            "[warehouse] url = \"postgress://me:s3cret@db/x?p%61ssword=s3cret\": unknown; \
             see https://hooks.slack.com/services/T/B/s3cret, arn:aws:secretsmanager:eu-west-1:1:secret:s3cret \
             (url=postgres://u:s3cret@h/x).",
        );
        assert!(!t.contains(SECRET), "{t}");
        assert!(t.contains("postgress://me@db/…\""), "{t}");
        assert!(t.contains("https://hooks.slack.com/…,"), "{t}");
        assert!(t.contains("(url=postgres://u@h/x)."), "{t}");
        assert!(!text("host=db password=s3cret").contains(SECRET));
        assert_eq!(text("s3://b/landing/password=1.csv: gone"), "s3://b/landing/password=1.csv: gone");
        assert_eq!(text("/lake/password=1.csv is empty"), "/lake/password=1.csv is empty");
        assert_eq!(text("nothing to hide here"), "nothing to hide here");
    }
}
