//! `infer`: dialect and type detection on the traps the issue names, and the round trip: the
//! drafted contract, loaded by the contract loader, makes a real file job over the same files
//! reject no row but the ones no contract can accept (which the draft counts).
//!
//! Files go to the in-memory store (`memory://`), so the decoding is the store's path: the
//! key's compression suffix, Latin-1 transcoding, the BOM.

use glueless_engine::infer::{Draft, InferError, Options, infer};
use glueless_engine::{Dataset, FileJob, Location, Stores, contract::load_str};
use object_store::{ObjectStoreExt, PutPayload, path::Path as StorePath};
use tokio::io::AsyncWriteExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Puts `files` into a fresh in-memory store and returns their locations.
fn put(rt: &tokio::runtime::Runtime, stores: &Stores, files: &[(&str, Vec<u8>)]) -> Vec<Location> {
    files
        .iter()
        .map(|(name, body)| {
            rt.block_on(stores.memory().put(&StorePath::from(*name), PutPayload::from(body.clone()))).expect("put");
            stores.resolve(&format!("memory://{name}")).expect("url")
        })
        .collect()
}

/// Drafts a contract from `locations`, loads its TOML, and validates every one of them with it;
/// asserts the round trip and returns the draft and its TOML.
fn round_trip_at(rt: &tokio::runtime::Runtime, locations: &[Location], options: &Options) -> (Draft, String) {
    let draft = rt.block_on(infer(locations, options)).unwrap_or_else(|e| panic!("infer: {e}"));
    let toml = draft.toml();
    let contract = load_str(&toml, "draft.toml", std::path::Path::new(".")).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    let dataset = Dataset::from_contract(contract).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    let mut rejected = 0;
    for loc in locations {
        let report = rt.block_on(FileJob::new(&dataset, loc.clone()).max_errors(5).run()).expect("the job runs");
        // Rows no contract accepts are rejected, and with them the file above the default
        // `max_rejected_ratio` of 0; nothing else rejects it.
        let problem = report.file_problem.as_ref().map(|p| p.rule);
        assert!(
            problem.is_none() || (problem == Some("rejected-ratio") && draft.unacceptable.total() > 0),
            "{}: {:?}\n{toml}",
            loc.url,
            report.file_problem
        );
        rejected += report.rows_rejected;
        assert!(
            report.rows_rejected == 0 || draft.unacceptable.total() > 0,
            "{}: {:?}\n{toml}",
            loc.url,
            report.errors
        );
    }
    assert_eq!(rejected, draft.unacceptable.total(), "rejected rows are exactly those no contract accepts\n{toml}");
    // The commented `[load]` lines at the end load once uncommented, as the README says.
    let loosened = toml.replace("# [load]\n# max_rejected_ratio", "[load]\nmax_rejected_ratio");
    let c = load_str(&loosened, "draft.toml", std::path::Path::new(".")).unwrap_or_else(|e| panic!("{e}\n{loosened}"));
    assert_eq!(c.load.max_rejected_ratio, 0.01, "{loosened}");
    (draft, toml)
}

fn round_trip(files: &[(&str, Vec<u8>)]) -> (Draft, String) {
    let rt = runtime();
    let stores = Stores::new();
    let locations = put(&rt, &stores, files);
    round_trip_at(&rt, &locations, &Options::default())
}

fn field<'d>(d: &'d Draft, name: &str) -> &'d glueless_engine::infer::DraftField {
    d.fields.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no field {name}"))
}

fn type_of(d: &Draft, name: &str) -> serde_json::Value {
    let j = d.contract_json();
    let fields = j["schema"]["fields"].as_array().expect("fields").clone();
    fields.into_iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("no field {name}"))
}

#[test]
fn leading_zeros_na_markers_and_64_bit_ids() {
    let mut csv = String::from("id,zip,flights,delay,carrier,price\n");
    for i in 0..40u64 {
        let delay = if i % 7 == 3 { "NA".to_string() } else { format!("{}", i as i64 * 13 - 43) };
        let carrier = ["AA", "DL", "UA"][i as usize % 3];
        csv.push_str(&format!(
            "{},{:05},{},{delay},{carrier},{}.{:02}\n",
            9_007_199_254_740_993u64 + i * 2,
            i * 37,
            i % 5,
            i * 3,
            i % 100
        ));
    }
    let (d, toml) = round_trip(&[("flights-2026-01-01.csv", csv.into_bytes())]);
    assert_eq!(d.name, "flights");
    assert_eq!(type_of(&d, "id")["type"], "integer", "ids beyond 2^53 stay exact 64-bit integers");
    assert_eq!(type_of(&d, "zip")["type"], "string", "codes with leading zeros stay text");
    assert!(field(&d, "zip").evidence.reason.contains("leading zeros"));
    assert_eq!(type_of(&d, "delay")["type"], "integer");
    assert_eq!(d.missing_values, ["", "NA"]);
    assert!(!field(&d, "delay").required && field(&d, "id").required);
    assert!(toml.contains(r#"# 34 values, 6 missing as "NA", integer from -43 to 464"#), "{toml}");
    assert_eq!(type_of(&d, "carrier")["constraints"]["enum"], serde_json::json!(["AA", "DL", "UA"]));
    assert_eq!(type_of(&d, "price")["decimal"], serde_json::json!([18, 2]));
    assert_eq!(d.primary_key.columns, ["id"], "{toml}");
    assert!(toml.contains("primaryKey = [\"id\"]"));
}

#[test]
fn non_iso_dates_times_and_booleans() {
    let csv = "day,eu,us,when,at,ok,shipped\n\
               2024/01/31,31.01.2024,12/31/2024,Jan 05 2024,10:30,yes,2024-01-01 10:00:00+02:00\n\
               2024/02/01,01.02.2024,01/02/2024,Feb 29 2024,23:59,no,2024-01-02T11:00:00Z\n";
    let (d, toml) = round_trip(&[("d.csv", csv.as_bytes().to_vec())]);
    assert_eq!(type_of(&d, "day")["format"], "%Y/%m/%d");
    assert_eq!(type_of(&d, "eu")["format"], "%d.%m.%Y");
    assert_eq!(type_of(&d, "us")["format"], "%m/%d/%Y", "12/31 has a month first\n{toml}");
    assert_eq!(type_of(&d, "when")["format"], "%b %d %Y");
    assert_eq!(type_of(&d, "at")["type"], "time");
    assert_eq!(type_of(&d, "ok")["trueValues"], serde_json::json!(["yes"]));
    assert_eq!(type_of(&d, "shipped")["type"], "datetime");
    assert!(field(&d, "shipped").evidence.reason.contains("offsets"));
    // ISO has no day and month to swap: nothing to call ambiguous.
    assert!(!field(&d, "shipped").evidence.reason.contains("ambiguous"), "{toml}");
    assert!(!field(&d, "day").evidence.reason.contains("ambiguous"), "2024/01/31 has a day above 12\n{toml}");
    // Day-first is chosen by evidence: a day above 12.
    let csv = "d\n25/12/2024\n01/02/2024\n";
    let (d, _) = round_trip(&[("x.csv", csv.as_bytes().to_vec())]);
    assert_eq!(type_of(&d, "d")["format"], "%d/%m/%Y");
    // No evidence either way: the first pattern, and the comment says it is ambiguous.
    let (d, toml) = round_trip(&[("x.csv", b"d\n01/02/2024\n03/04/2024\n".to_vec())]);
    assert_eq!(type_of(&d, "d")["format"], "%m/%d/%Y");
    assert!(toml.contains("ambiguous"), "{toml}");
}

#[test]
fn a_semicolon_latin1_file_with_a_title_line() {
    let mut body = b"Lieferungen Export 2026-11\n".to_vec();
    body.extend_from_slice(b"nr;stadt;gewicht;datum\n");
    for (i, city) in [b"K\xf6ln".as_slice(), b"M\xfcnchen", b"Z\xfcrich", b"Gen\xe8ve"].iter().enumerate() {
        body.extend_from_slice(format!("{i};").as_bytes());
        body.extend_from_slice(city);
        body.extend_from_slice(format!(";{}.5;0{}.11.2026\n", i * 10, i + 1).as_bytes());
    }
    let (d, toml) = round_trip(&[("lieferungen.csv", body)]);
    assert_eq!(d.dialect.delimiter, ';');
    assert_eq!(d.dialect.encoding, "latin-1");
    assert_eq!(d.dialect.skip_lines, 1, "{toml}");
    assert!(d.dialect.header);
    assert_eq!(type_of(&d, "datum")["format"], "%d.%m.%Y");
    assert_eq!(type_of(&d, "gewicht")["decimal"], serde_json::json!([18, 1]));
}

#[test]
fn a_headerless_file_binds_by_position() {
    let csv = "1,Alice,2024-01-01,3.5\n2,Bob,2024-01-02,\n3,Carol,2024-01-03,1\n";
    let (d, _) = round_trip(&[("people.csv", csv.as_bytes().to_vec())]);
    assert!(!d.dialect.header);
    let names: Vec<&str> = d.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["column_1", "column_2", "column_3", "column_4"]);
    assert_eq!(type_of(&d, "column_3")["type"], "date");
    assert!(!field(&d, "column_4").required);
}

#[test]
fn several_files_together_with_compression() {
    let a = "id,v,note\n1,5,x\n2,6,y\n".as_bytes().to_vec();
    // The second file has a decimal and the columns in another order: the union decides.
    let b = "note,id,v\nz,3,7.25\nw,4,-1\n";
    let gz = runtime().block_on(async {
        let mut gz = async_compression::tokio::write::GzipEncoder::new(Vec::new());
        gz.write_all(b.as_bytes()).await.unwrap();
        gz.shutdown().await.unwrap();
        gz.into_inner()
    });
    let (d, toml) = round_trip(&[("orders-1.csv", a), ("orders-2.csv.gz", gz)]);
    assert_eq!(d.rows, 4);
    assert_eq!(type_of(&d, "v")["decimal"], serde_json::json!([18, 2]), "{toml}");
    assert_eq!(d.files[1].compression, "gzip");
    assert_eq!(d.primary_key.columns, ["id"]);

    // Files with other columns are a clear error, naming both.
    let rt = runtime();
    let stores = Stores::new();
    let locs = put(&rt, &stores, &[("a.csv", b"id,v\n1,2\n".to_vec()), ("b.csv", b"id,w\n1,2\n".to_vec())]);
    match rt.block_on(infer(&locs, &Options::default())) {
        Err(InferError::Unusable(m)) => {
            assert!(m.contains("b.csv") && m.contains("`v`") && m.contains("`w`"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn hostile_headers_load_back_or_bind_by_position() {
    // Names with quotes, backslashes, `]]` and TOML syntax are kept exactly.
    let csv = "\"a \"\"q\"\"\",b\\c,]],\"[x] = 1 #\"\n1,2,3,4\n";
    let (d, toml) = round_trip(&[("h.csv", csv.as_bytes().to_vec())]);
    let names: Vec<&str> = d.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["a \"q\"", "b\\c", "]]", "[x] = 1 #"], "{toml}");
    assert!(d.dialect.header);
    // Empty, duplicate and control-character names cannot be fields: the header line is
    // skipped and the fields bind by position, named after the cells made inert.
    let csv = ",id,ID,\"x\ny\",\"\u{1b}[31mred\"\n1,2,3,4,5\n6,7,8,9,10\n";
    let (d, toml) = round_trip(&[("h.csv", csv.as_bytes().to_vec())]);
    assert!(!d.dialect.header);
    assert_eq!(d.dialect.skip_lines, 2, "the header spans two lines");
    let names: Vec<&str> = d.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["column_1", "id", "ID_2", "x\\ny", "\\u{1b}[31mred"]);
    assert!(!toml.chars().any(|c| c.is_control() && c != '\n'), "no control character in the TOML: {toml:?}");
    // Values with control characters, quotes and line ends become enum members (sorted):
    // escaped in the TOML, and loaded back to the same text.
    let mut csv = String::from("id,flag\n");
    for i in 0..30 {
        let flag = ["\"bell\u{7}\"", "\"say \"\"hi\"\"\n]]\"", "\"\u{1b}[2J\u{202e}\""][i % 3];
        csv.push_str(&format!("{i},{flag}\n"));
    }
    let (d, toml) = round_trip(&[("e.csv", csv.into_bytes())]);
    let members = type_of(&d, "flag")["constraints"]["enum"].clone();
    assert_eq!(members, serde_json::json!(["\u{1b}[2J\u{202e}", "bell\u{7}", "say \"hi\"\n]]"]), "{toml}");
    assert!(!toml.chars().any(|c| crate::infer::unsafe_char(c) && c != '\n'), "{toml:?}");
}

/// A character that must not reach a terminal (as `glueless_engine::text::is_unsafe_char`).
fn unsafe_char(c: char) -> bool {
    glueless_engine::text::is_unsafe_char(c)
}

#[test]
fn huge_lines_and_many_distinct_values_stay_bounded() {
    // A million distinct values: the enum cap is reached and said; a 3 MB cell is read whole.
    let mut csv = String::from("id,text\n");
    for i in 0..200_000 {
        csv.push_str(&format!("{i},v{i}\n"));
    }
    csv.push_str(&format!("200000,{}\n", "x".repeat(3 << 20)));
    let (d, toml) = round_trip(&[("big.csv", csv.into_bytes())]);
    assert_eq!(type_of(&d, "text")["type"], "string");
    assert!(type_of(&d, "text").get("constraints").and_then(|c| c.get("enum")).is_none());
    assert!(d.caps.iter().any(|c| c.contains("distinct values")), "{toml}");
    assert_eq!(d.primary_key.columns, ["id"]);
}

/// A line longer than `[limits] max_record_bytes` (an unclosed quote, say) is a clear error
/// after reading about that much, not a read of the whole file.
#[test]
fn a_record_past_the_limit_is_an_error() {
    let mut body = b"a,b\n1,\"".to_vec();
    body.extend(std::iter::repeat_n(b'x', 5 << 20));
    let rt = runtime();
    let stores = Stores::new();
    let locs = put(&rt, &stores, &[("q.csv", body)]);
    let limits = glueless_engine::Limits { max_record_bytes: 2 << 20, ..Default::default() };
    let options = Options { sample_bytes: None, limits, ..Options::default() };
    match rt.block_on(infer(&locs, &options)) {
        Err(InferError::Unusable(m)) => assert!(m.contains("longer than 2097152 bytes"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_sample_reads_the_start_and_says_so() {
    let mut csv = String::from("id,v\n");
    for i in 0..400_000 {
        csv.push_str(&format!("{i},{}\n", i % 10));
    }
    let rt = runtime();
    let stores = Stores::new();
    let locs = put(&rt, &stores, &[("s.csv", csv.into_bytes())]);
    // The sample is read in whole chunks of the decoder (1 MiB).
    let options = Options { sample_bytes: Some(1 << 20), ..Options::default() };
    let d = rt.block_on(infer(&locs, &options)).expect("infers");
    assert!(!d.files[0].complete && d.rows < 400_000 && d.rows > 10_000, "{} rows", d.rows);
    assert!(d.caps.iter().any(|c| c.contains("only the first")), "{:?}", d.caps);
    let full = rt.block_on(infer(&locs, &Options { sample_bytes: None, ..Options::default() })).expect("infers");
    assert_eq!(full.rows, 400_000);
}

#[test]
fn rows_no_contract_accepts_are_counted_not_typed() {
    let csv = "a,b\n1,2\n\n3,4,5\n\"6,7\n";
    let (d, _) = round_trip(&[("bad.csv", csv.as_bytes().to_vec())]);
    assert_eq!((d.unacceptable.blank, d.unacceptable.wrong_cells, d.unacceptable.malformed), (1, 1, 1));
    assert_eq!(type_of(&d, "a")["type"], "integer");
}

#[test]
fn bounds_only_when_asked() {
    let rt = runtime();
    let stores = Stores::new();
    let locs = put(&rt, &stores, &[("b.csv", b"n,d,t\n-5,2024-01-02,1.5\n7,2023-12-31,-2.25\n".to_vec())]);
    let (d, toml) = round_trip_at(&rt, &locs, &Options { bounds: true, ..Options::default() });
    let n = type_of(&d, "n");
    assert_eq!(
        (n["constraints"]["minimum"].clone(), n["constraints"]["maximum"].clone()),
        (serde_json::json!(-5), serde_json::json!(7))
    );
    assert_eq!(type_of(&d, "d")["constraints"]["minimum"], "2023-12-31", "{toml}");
    assert_eq!(type_of(&d, "t")["constraints"]["maximum"], "1.5");
    let (d, _) = round_trip_at(&rt, &locs, &Options::default());
    assert!(type_of(&d, "n")["constraints"].get("minimum").is_none());
}

#[test]
fn an_empty_file_is_a_clear_error() {
    let rt = runtime();
    let stores = Stores::new();
    let locs = put(&rt, &stores, &[("e.csv", Vec::new())]);
    match rt.block_on(infer(&locs, &Options::default())) {
        Err(InferError::Unusable(m)) => assert!(m.contains("empty"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// Every CSV file of the shared fixtures: the draft loads, and validating the file with it
/// rejects exactly the rows the draft counts as acceptable by no contract; a file with
/// nothing to infer from (empty) is a clear error.
#[test]
fn the_round_trip_holds_on_every_fixture_file() {
    let root = super::conformance::fixtures();
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("readable").filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "csv") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() > 250, "{} fixture files", files.len());
    let rt = runtime();
    let stores = Stores::new();
    let (mut drafted, mut unusable, mut with_bad_rows) = (0, 0, 0);
    for p in &files {
        let loc = stores.resolve(p.to_str().expect("UTF-8 path")).expect("resolves");
        match rt.block_on(infer(std::slice::from_ref(&loc), &Options::default())) {
            Err(InferError::Unusable(m)) => {
                let blank = std::fs::read(p).unwrap().iter().all(u8::is_ascii_whitespace);
                assert!(blank && m.contains("empty"), "{}: {m}", p.display());
                unusable += 1;
            }
            Err(e) => panic!("{}: {e}", p.display()),
            Ok(d) => {
                let (d2, _) = round_trip_at(&rt, std::slice::from_ref(&loc), &Options::default());
                assert_eq!(d2.fields.len(), d.fields.len());
                drafted += 1;
                if d.unacceptable.total() > 0 {
                    with_bad_rows += 1;
                }
            }
        }
    }
    eprintln!("fixtures: {drafted} drafted ({with_bad_rows} with rows no contract accepts), {unusable} unusable");
    assert!(drafted > 250 && unusable < 10, "{drafted} drafted, {unusable} unusable");
}

#[test]
fn a_binary_file_is_a_clear_error_not_a_field_named_by_its_bytes() {
    let rt = runtime();
    let stores = Stores::new();
    // Random bytes (a fixed xorshift, so the case is the same every run), and UTF-16.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let random: Vec<u8> = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let utf16: Vec<u8> = "id,name\n1,a\n".encode_utf16().flat_map(u16::to_le_bytes).collect();
    for (name, body) in [("r.csv", random), ("u.csv", utf16)] {
        let locs = put(&rt, &stores, &[(name, body)]);
        match rt.block_on(infer(&locs, &Options::default())) {
            Err(InferError::Unusable(m)) => {
                assert!(m.contains("does not look like a text file"), "{m}");
                assert!(m.len() < 400, "the message stays short: {m}");
            }
            Ok(d) => panic!("{name}: drafted {} field(s)", d.fields.len()),
            Err(e) => panic!("{name}: {e}"),
        }
    }
    // Text with a few control characters in it is still text, even when they are most of a
    // tiny file (escape sequences in a header: drafted inert).
    let csv = "id,note\n1,bell\u{7}\n2,fine\n3,ok\n";
    round_trip(&[("t.csv", csv.as_bytes().to_vec())]);
    round_trip(&[("e.csv", b"\x1b[2J\x1b[H,b\x1b]0;x\x07\n1,2\n".to_vec())]);
}
