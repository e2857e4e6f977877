//! Listing an S3 prefix with plain ListObjectsV2 requests, every key verbatim.
//!
//! object_store's `list` turns each key of a page into a store path and fails the whole page
//! when one key cannot be one (a control character, an empty, `.` or `..` segment): a single
//! odd object would stop every other object of the bucket from being received. Here the keys
//! stay strings, so such an object is listed like any other and refused by name when it is read
//! ([`super::Lake::check_key`]), and the others go on.
//!
//! The request is object_store's own: same bucket URL, same credentials provider, signed by its
//! `AwsAuthorizer` (SigV4). `encoding-type=url` makes S3 percent-encode the keys, so a key with
//! a character XML cannot carry (most control characters) survives the answer. The answer is
//! read up to [`MAX_PAGE_BYTES`] and parsed for the few fields the listing needs; anything
//! malformed is an error of this listing pass, never a panic.

use chrono::{DateTime, Utc};
use glueless_engine::store::S3Bucket;
use object_store::aws::AwsAuthorizer;
use object_store::client::{HttpRequest, HttpRequestBody};

/// The largest answer accepted for one page. A page holds at most 1,000 keys of at most 1,024
/// bytes (3 KiB once percent-encoded): a few MiB at most.
pub const MAX_PAGE_BYTES: usize = 16 << 20;

/// One object of the listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The full key, decoded: exactly the bytes the producer named.
    pub key: String,
    /// As S3 sends it, quotes included.
    pub e_tag: Option<String>,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
}

/// Every object below a prefix, and the keys that could not be decoded to text.
#[derive(Debug, Default)]
pub struct Listed {
    pub entries: Vec<Entry>,
    /// One line per key that is not UTF-8 once decoded (S3 keys are UTF-8: an S3-compatible
    /// store may differ), saying what to do.
    pub problems: Vec<String>,
}

/// Why a listing pass failed (the next pass tries again). The caller names the lake and prefix.
#[derive(Debug, thiserror::Error)]
pub enum S3ListError {
    #[error("no AWS credentials for the listing: {0}")]
    Credentials(#[source] object_store::Error),
    #[error("{0}")]
    Http(#[source] reqwest::Error),
    #[error("S3 answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("S3's answer is larger than {MAX_PAGE_BYTES} bytes")]
    TooLarge,
    #[error("S3's answer is malformed: {0}")]
    Malformed(String),
    #[error("the bucket URL cannot be requested: {0}")]
    Url(String),
}

/// Every object whose key starts with `prefix` (the full key, below no root), page by page.
pub async fn list(bucket: &S3Bucket, http: &reqwest::Client, prefix: &str) -> Result<Listed, S3ListError> {
    let malformed = S3ListError::Malformed;
    let mut listed = Listed::default();
    let mut token: Option<String> = None;
    let mut tokens_seen = std::collections::HashSet::new();
    loop {
        let url = page_url(&bucket.url, prefix, token.as_deref())
            .map_err(|e| S3ListError::Url(format!("{}: {e}", bucket.url)))?;
        let credential = bucket.client.credentials().get_credential().await.map_err(S3ListError::Credentials)?;
        let mut signed = HttpRequest::new(HttpRequestBody::empty());
        match url.as_str().parse() {
            Ok(uri) => *signed.uri_mut() = uri,
            Err(_) => return Err(S3ListError::Url(format!("{url} is not a valid URI"))),
        }
        AwsAuthorizer::new(&credential, "s3", &bucket.region).authorize(&mut signed, None);
        let mut resp = http.get(url).headers(signed.headers().clone()).send().await.map_err(S3ListError::Http)?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(S3ListError::Http)? {
            if body.len() + chunk.len() > MAX_PAGE_BYTES {
                return Err(S3ListError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() {
            let message = match (element(&text, "Code"), element(&text, "Message")) {
                (Some(c), Some(m)) => {
                    format!("{} ({})", unescape(m).unwrap_or_default(), unescape(c).unwrap_or_default())
                }
                _ => text.chars().take(200).collect(),
            };
            return Err(S3ListError::Status { status: status.as_u16(), message });
        }
        let page = parse_page(&text).map_err(malformed)?;
        listed.entries.extend(page.entries);
        listed.problems.extend(page.problems);
        match (page.truncated, page.next) {
            (false, _) => return Ok(listed),
            (true, None) => return Err(malformed("a truncated page without a NextContinuationToken".into())),
            // A store that hands back a token again would be listed forever.
            (true, Some(next)) if !tokens_seen.insert(next.clone()) => {
                return Err(malformed(format!("the continuation token {next:?} came twice")));
            }
            (true, next) => token = next,
        }
    }
}

/// The ListObjectsV2 URL of one page. Every query value is percent-encoded in full (`+` too),
/// so the query the signature covers decodes to exactly what S3 reads.
fn page_url(base: &str, prefix: &str, token: Option<&str>) -> Result<url::Url, url::ParseError> {
    let mut q = format!("list-type=2&encoding-type=url&prefix={}", encode(prefix));
    if let Some(t) = token {
        q.push_str(&format!("&continuation-token={}", encode(t)));
    }
    let mut url = url::Url::parse(base)?;
    url.set_query(Some(&q));
    Ok(url)
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What one page says.
#[derive(Debug, Default)]
struct Page {
    entries: Vec<Entry>,
    problems: Vec<String>,
    truncated: bool,
    next: Option<String>,
}

/// The fields of a `ListBucketResult` the listing needs. S3 sends neither attributes nor nested
/// elements of the same name inside these, so plain tag matching is exact here.
fn parse_page(xml: &str) -> Result<Page, String> {
    if !xml.contains("<ListBucketResult") {
        return Err(format!("not a ListBucketResult: {:?}", xml.chars().take(100).collect::<String>()));
    }
    let url_encoded = element(xml, "EncodingType").is_some_and(|e| e.trim().eq_ignore_ascii_case("url"));
    let mut page = Page {
        truncated: element(xml, "IsTruncated").is_some_and(|t| t.trim() == "true"),
        next: element(xml, "NextContinuationToken").map(unescape).transpose()?,
        ..Page::default()
    };
    let mut rest = xml;
    while let Some(start) = rest.find("<Contents>") {
        let after = &rest[start + "<Contents>".len()..];
        let end = after.find("</Contents>").ok_or("a <Contents> element is not closed")?;
        let c = &after[..end];
        rest = &after[end..];
        let field = |name: &str| element(c, name).ok_or_else(|| format!("an object without <{name}>"));
        let raw = unescape(field("Key")?)?;
        let Some(key) = (if url_encoded { crate::events::decode_key_exact(&raw) } else { Some(raw.clone()) }) else {
            page.problems.push(format!("the key {raw:?} (percent-encoded) is not UTF-8; rename the object"));
            continue;
        };
        let size = field("Size")?.trim();
        let modified = field("LastModified")?.trim();
        page.entries.push(Entry {
            key,
            e_tag: element(c, "ETag").map(unescape).transpose()?,
            size: size.parse().map_err(|_| format!("the size {size:?} is not a number"))?,
            last_modified: DateTime::parse_from_rfc3339(modified)
                .map_err(|_| format!("the time {modified:?} is not an RFC 3339 time"))?
                .with_timezone(&Utc),
        });
    }
    Ok(page)
}

/// The raw text of the first `<name>…</name>` in `xml`.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..start + end])
}

/// XML text with its entity and character references replaced.
fn unescape(text: &str) -> Result<String, String> {
    if text.contains('<') {
        return Err(format!("unexpected markup in {text:?}"));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after.find(';').filter(|&i| i <= 10).ok_or_else(|| format!("an unterminated `&` in {text:?}"))?;
        let name = &after[..semi];
        let c = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                    Some(h) => u32::from_str_radix(h, 16).ok(),
                    None => name.strip_prefix('#').and_then(|d| d.parse().ok()),
                };
                code.and_then(char::from_u32).ok_or_else(|| format!("an unknown reference `&{name};`"))?
            }
        };
        out.push(c);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_replaced_and_bad_ones_refused() {
        assert_eq!(unescape("&quot;abc&quot; &amp;&lt;&gt;&apos;&#65;&#x42;").unwrap(), "\"abc\" &<>'AB");
        assert_eq!(unescape("plain").unwrap(), "plain");
        assert!(unescape("a &nbsp; b").is_err());
        assert!(unescape("a & b").is_err());
        assert!(unescape("&#xD800;").is_err(), "a surrogate is no character");
        assert!(unescape("a<b").is_err());
    }

    #[test]
    fn keys_are_percent_and_plus_decoded() {
        assert_eq!(crate::events::decode_key_exact("landing/s/bad%0Aname.csv").unwrap(), "landing/s/bad\nname.csv");
        assert_eq!(crate::events::decode_key_exact("a+b%2Bc%20d").unwrap(), "a b+c d");
        assert_eq!(crate::events::decode_key_exact("caf%C3%A9%25.csv").unwrap(), "café%.csv");
        assert_eq!(crate::events::decode_key_exact("100%").unwrap(), "100%", "a lone % stays");
        assert_eq!(crate::events::decode_key_exact("x%4").unwrap(), "x%4");
        assert_eq!(crate::events::decode_key_exact("%zz").unwrap(), "%zz");
        assert_eq!(crate::events::decode_key_exact("a//b"), Some("a//b".into()));
        assert!(crate::events::decode_key_exact("latin1-%E9.csv").is_none());
    }

    #[test]
    fn the_signed_query_decodes_to_the_values_sent() {
        // object_store signs the query as `Url::query_pairs` decodes it (where `+` is a space):
        // every value must come back unchanged, or the signature would cover other values.
        let token = "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=+ &x";
        let prefix = "pre fix/landing+/ä/";
        let url = page_url("http://127.0.0.1:9000/bucket", prefix, Some(token)).unwrap();
        let pairs: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into(), v.into())).collect();
        let want = [("list-type", "2"), ("encoding-type", "url"), ("prefix", prefix), ("continuation-token", token)];
        let want: Vec<(String, String)> = want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(pairs, want);
        assert_eq!(url.path(), "/bucket");
        let hosted = page_url("https://b.s3.eu-west-1.amazonaws.com", "landing/", None).unwrap();
        assert_eq!(
            hosted.as_str(),
            "https://b.s3.eu-west-1.amazonaws.com/?list-type=2&encoding-type=url&prefix=landing%2F"
        );
    }

    /// A hostile S3 on a loopback port: answers the n-th request with `answers[n]` (the last one
    /// again past the end) and keeps each request's head.
    fn hostile_s3(answers: Vec<Vec<u8>>) -> (S3Bucket, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate().take(50) {
                let Ok(mut conn) = conn else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                log.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
                let body = &answers[n.min(answers.len() - 1)];
                let _ = conn.write_all(body);
            }
        });
        let client = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name("b")
            .with_region("eu-west-1")
            .with_access_key_id("AKIDEXAMPLE")
            .with_secret_access_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
            .build()
            .unwrap();
        let bucket = S3Bucket {
            client: std::sync::Arc::new(client),
            url: format!("http://127.0.0.1:{port}/b"),
            region: "eu-west-1".into(),
            plain_sigv4: true,
        };
        (bucket, seen)
    }

    fn answer(status: &str, body: &str) -> Vec<u8> {
        format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).into_bytes()
    }

    fn list_from(answers: Vec<Vec<u8>>) -> (Result<Listed, S3ListError>, Vec<String>) {
        let (bucket, seen) = hostile_s3(answers);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let r = rt.block_on(list(&bucket, &reqwest::Client::new(), "landing/"));
        let heads = seen.lock().unwrap().clone();
        (r, heads)
    }

    fn truncated(token: &str, key: &str) -> String {
        format!(
            "<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><Contents><Key>{key}</Key>\
             <LastModified>2026-11-20T10:00:00Z</LastModified><Size>1</Size></Contents>\
             <NextContinuationToken>{token}</NextContinuationToken></ListBucketResult>"
        )
    }

    #[test]
    fn pages_are_followed_signed_and_a_token_cycle_is_refused() {
        let last = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
        let (r, heads) = list_from(vec![
            answer("200 OK", &truncated("t+1/=", "landing/a%0A")),
            answer("200 OK", &truncated("t2", "landing/b")),
            answer("200 OK", last),
        ]);
        let keys: Vec<String> = r.unwrap().entries.into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["landing/a\n", "landing/b"]);
        assert_eq!(heads.len(), 3);
        assert!(
            heads[0].starts_with("GET /b?list-type=2&encoding-type=url&prefix=landing%2F HTTP/1.1"),
            "{}",
            heads[0]
        );
        assert!(heads[1].contains("&continuation-token=t%2B1%2F%3D HTTP/1.1"), "{}", heads[1]);
        let auth = heads[0].lines().find(|l| l.to_ascii_lowercase().starts_with("authorization:")).unwrap();
        assert!(auth.contains("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), "{auth}");
        assert!(auth.contains("/eu-west-1/s3/aws4_request"), "{auth}");

        let (r, heads) =
            list_from(vec![answer("200 OK", &truncated("A", "k")), answer("200 OK", &truncated("B", "k"))]);
        assert!(r.unwrap_err().to_string().contains("came twice"));
        assert_eq!(heads.len(), 3, "A, B, then B again: refused");
    }

    #[test]
    fn an_error_answer_or_an_endless_one_fails_the_pass() {
        let denied = "<Error><Code>AccessDenied</Code><Message>Access &amp; Denied</Message></Error>";
        let (r, _) = list_from(vec![answer("403 Forbidden", denied)]);
        assert_eq!(r.unwrap_err().to_string(), "S3 answered 403: Access & Denied (AccessDenied)");
        // Chunked, so no Content-Length announces the size: the body is cut at the bound.
        let mut huge = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..(MAX_PAGE_BYTES >> 20) + 2 {
            huge.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            huge.extend_from_slice(&chunk);
            huge.extend_from_slice(b"\r\n");
        }
        huge.extend_from_slice(b"0\r\n\r\n");
        let (r, _) = list_from(vec![huge]);
        assert!(matches!(r, Err(S3ListError::TooLarge)), "{r:?}");
        let (r, _) =
            list_from(vec![answer("200 OK", "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>")]);
        assert!(r.unwrap_err().to_string().contains("without a NextContinuationToken"));
    }

    const PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>landing%2F</Prefix>
<KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
<Contents><Key>landing/s/bad%0Aname.csv</Key><LastModified>2026-11-20T10:00:00.000Z</LastModified>
<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm>
<Size>11</Size><StorageClass>STANDARD</StorageClass></Contents>
<Contents><Key>landing/s/a%2F%2Fb+c.csv</Key><LastModified>2026-11-20T10:00:01Z</LastModified><ETag>"e-2"</ETag><Size>0</Size></Contents>
<Contents><Key>landing/s/latin1-%E9.csv</Key><LastModified>2026-11-20T10:00:01Z</LastModified><Size>1</Size></Contents>
<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=&amp;</NextContinuationToken></ListBucketResult>"#;

    #[test]
    fn a_page_gives_every_key_verbatim_and_the_next_token() {
        let page = parse_page(PAGE).unwrap();
        assert!(page.truncated);
        assert_eq!(page.next.as_deref(), Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=&"));
        assert_eq!(page.entries.len(), 2, "{page:?}");
        let e = &page.entries[0];
        assert_eq!(e.key, "landing/s/bad\nname.csv");
        assert_eq!(e.e_tag.as_deref(), Some("\"9b2cf535f27731c974343645a3985328\""));
        assert_eq!(e.size, 11);
        assert_eq!(e.last_modified.to_rfc3339(), "2026-11-20T10:00:00+00:00");
        assert_eq!(page.entries[1].key, "landing/s/a//b c.csv");
        assert_eq!(page.problems.len(), 1, "{page:?}");
        assert!(page.problems[0].contains("latin1-%E9.csv") && page.problems[0].contains("rename"));
    }

    #[test]
    fn keys_are_not_decoded_when_the_store_did_not_encode_them() {
        let xml = "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a%41+b.csv</Key>\
                   <LastModified>2026-11-20T10:00:00Z</LastModified><Size>1</Size></Contents></ListBucketResult>";
        let page = parse_page(xml).unwrap();
        assert!(!page.truncated && page.next.is_none());
        assert_eq!(page.entries[0].key, "a%41+b.csv");
        assert_eq!(page.entries[0].e_tag, None);
    }

    #[test]
    fn a_malformed_page_is_an_error_not_a_panic() {
        let bad = [
            "",
            "<Error><Code>AccessDenied</Code></Error>",
            "<ListBucketResult><Contents><Key>a</Key>",
            "<ListBucketResult><Contents><Key>a</Key><LastModified>2026-11-20T10:00:00Z</LastModified></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key>a</Key><Size>-1</Size><LastModified>2026-11-20T10:00:00Z</LastModified></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key>a</Key><Size>1</Size><LastModified>yesterday</LastModified></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key>a&bogus;</Key><Size>1</Size><LastModified>2026-11-20T10:00:00Z</LastModified></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key><![CDATA[a]]></Key><Size>1</Size><LastModified>2026-11-20T10:00:00Z</LastModified></Contents></ListBucketResult>",
        ];
        for xml in bad {
            assert!(parse_page(xml).is_err(), "{xml}");
        }
        // Cut anywhere, a real page either parses or is refused.
        for i in 0..PAGE.len() {
            if PAGE.is_char_boundary(i) {
                let _ = parse_page(&PAGE[..i]);
            }
        }
    }
}
