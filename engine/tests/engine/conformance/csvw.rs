//! The W3C CSV on the Web suite (`parsing/csvw-tests`, `manifest-json.jsonld`): its parsing and
//! dialect cases, with the suite's own expected JSON as the answer.
//!
//! Most of the suite tests CSVW *metadata* (JSON-LD documents: datatypes, URI templates, virtual
//! columns, foreign keys, metadata discovery over HTTP); glueless's contracts are TOML Table Schema
//! and read none of it. Those cases are excluded below, each group with its reason, and the test
//! fails when the manifest holds a case that is neither run nor excluded.

use super::{dataset, fixtures, read_json, run, toml_str};
use serde_json::Value as Json;
use std::collections::BTreeSet;
use std::path::Path;

/// Cases read from a bare CSV (no metadata): the header row names the columns and every value is a
/// string, which is exactly a contract of string fields with the default dialect.
const PLAIN: &[&str] =
    &["test001", "test005", "test006", "test007", "test008", "test009", "test010", "test028", "test029"];

/// `tree-ops.csv` with metadata whose dialect is invalid (a number for `delimiter`, ...). CSVW
/// says: warn and use the default, so the suite's expected rows are the default parse, which is
/// what glueless must produce with the default dialect. (glueless itself has no "warn and fall
/// back": an invalid dialect in a contract is refused when the contract loads; see
/// `invalid_dialect_values_are_refused_not_defaulted`.)
const DEFAULTED_DIALECT: &[&str] = &[
    "test059", "test060", "test061", "test062", "test063", "test065", "test066", "test067", "test068", "test069",
    "test070", "test071", "test072", "test106",
];

/// `tree-ops.csv` with `header: false`: the header line is a data row, columns `_col.N`.
const NO_HEADER: &str = "test023";

/// Every other case of the manifest, with why it is not run.
const EXCLUDED: &[(&[&str], &str)] = &[
    (
        &[
            "test011", "test012", "test013", "test015", "test017", "test018", "test027", "test030", "test031",
            "test032", "test033", "test034", "test035", "test036", "test037", "test038", "test039", "test040",
            "test041", "test042", "test043", "test044", "test045", "test046", "test047", "test048", "test049",
            "test073", "test075", "test076", "test093", "test095", "test097", "test099", "test100", "test101",
            "test102", "test105", "test107", "test109", "test110", "test111", "test112", "test113", "test114",
            "test115", "test117", "test119", "test121", "test123", "test124", "test125", "test126", "test127",
            "test129", "test130", "test131", "test132", "test147", "test148", "test149", "test150", "test151",
            "test152", "test153", "test154", "test155", "test156", "test157", "test158", "test159", "test160",
            "test161", "test162", "test163", "test164", "test165", "test166", "test167", "test168", "test169",
            "test170", "test171", "test172", "test173", "test174", "test175", "test176", "test177", "test178",
            "test179", "test180", "test181", "test182", "test183", "test184", "test185", "test186", "test187",
            "test188", "test189", "test190", "test191", "test192", "test193", "test194", "test195", "test196",
            "test197", "test198", "test202", "test203", "test204", "test205", "test206", "test207", "test208",
            "test209", "test210", "test211", "test212", "test213", "test214", "test215", "test228", "test229",
            "test230", "test231", "test232", "test233", "test234", "test235", "test236", "test237", "test238",
            "test242", "test245", "test246", "test247", "test248", "test259", "test260", "test263", "test264",
            "test266", "test268", "test269", "test270", "test273", "test275", "test276", "test277", "test278",
            "test279", "test280", "test281", "test282", "test283", "test284", "test285", "test286", "test287",
            "test288", "test289", "test290", "test291", "test292", "test293", "test294", "test295", "test296",
            "test297", "test298", "test299", "test300", "test301", "test302", "test303", "test304", "test305",
            "test306", "test307",
        ],
        "the answer depends on CSVW metadata glueless does not read (JSON-LD table groups, aboutUrl/ \
         propertyUrl/valueUrl templates, virtual columns, CSVW datatypes and formats, notes, \
         foreign keys across tables); glueless's types and constraints are Table Schema, covered by \
         the frictionless-py and tableschema-py suites",
    ),
    (
        &["test014", "test016", "test116", "test118", "test120", "test122"],
        "the metadata is found through an HTTP Link header or the URL's query string; glueless \
         takes its contract from its configuration, never from the data's location",
    ),
    (
        &[
            "test074", "test077", "test078", "test079", "test080", "test081", "test082", "test083", "test084",
            "test085", "test086", "test087", "test088", "test089", "test090", "test098", "test103", "test104",
            "test108", "test128", "test133", "test134", "test135", "test136", "test137", "test138", "test139",
            "test140", "test141", "test142", "test143", "test144", "test146", "test199", "test200", "test201",
            "test216", "test217", "test218", "test219", "test220", "test221", "test222", "test223", "test224",
            "test225", "test226", "test227", "test243", "test244", "test251", "test252", "test253", "test261",
            "test267", "test271", "test272", "test274",
        ],
        "a negative test of an invalid CSVW metadata document (bad @id/@type/@context, \
         inconsistent schemas, bad datatypes); glueless's own contract errors are tested in \
         engine/src/contract/load/tests.rs",
    ),
];

fn dir() -> std::path::PathBuf {
    fixtures().join("parsing/csvw-tests")
}

/// The manifest's entries by short id (`test001`).
fn manifest() -> Vec<(String, Json)> {
    let m = read_json(&dir().join("manifest-json.jsonld"));
    m["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| (e["id"].as_str().unwrap().rsplit('#').next().unwrap().to_string(), e.clone()))
        .collect()
}

/// The expected rows: one JSON object each (standard mode: `tables[0].row[].describes[0]`;
/// minimal mode: the array itself).
fn expected_rows(result: &Json) -> Vec<Json> {
    match result {
        Json::Array(rows) => rows.clone(),
        _ => {
            let tables = result["tables"].as_array().expect("tables");
            assert_eq!(tables.len(), 1, "one table");
            tables[0]["row"].as_array().unwrap().iter().map(|r| r["describes"][0].clone()).collect()
        }
    }
}

/// A contract of string fields, default dialect unless `dialect` says otherwise.
fn contract(names: &[String], dialect: &str) -> String {
    let mut t = format!("name = \"csvw\"\n[dialect]\n{dialect}\n[schema]\n");
    for n in names {
        t.push_str(&format!("[[schema.fields]]\nname = {}\ntype = \"string\"\n", toml_str(n)));
    }
    t
}

/// The header of a CSV whose header cells are plain (no quotes, no commas).
fn header(csv: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(csv).unwrap();
    let line = text.lines().next().expect("a header line");
    assert!(!line.contains('"'), "{}: a plain header", csv.display());
    line.split(',').map(String::from).collect()
}

/// Compares glueless's rows with the suite's: `keys[i]` is the suite's key for column `i`, `None`
/// for a column not compared. An absent key is CSVW's NULL (an empty cell), glueless's `None`.
fn assert_rows(id: &str, got: &[Vec<Option<String>>], want: &[Json], keys: &[Option<String>]) {
    assert_eq!(got.len(), want.len(), "{id}: row count");
    assert!(!want.is_empty(), "{id}: the suite expects rows");
    for (n, (g, w)) in got.iter().zip(want).enumerate() {
        for (i, key) in keys.iter().enumerate() {
            let Some(key) = key else { continue };
            let w = w.get(key).map(|v| v.as_str().unwrap_or_else(|| panic!("{id}: {key} is a string")));
            assert_eq!(g[i].as_deref(), w, "{id}: row {} column {key}", n + 1);
        }
    }
}

#[test]
fn every_csvw_case_is_run_or_excluded_with_a_reason() {
    let mut listed = BTreeSet::new();
    let all =
        PLAIN.iter().chain(DEFAULTED_DIALECT).chain([&NO_HEADER]).chain(EXCLUDED.iter().flat_map(|(ids, _)| *ids));
    for id in all {
        assert!(listed.insert(*id), "{id} is listed twice");
    }
    for (_, reason) in EXCLUDED {
        assert!(reason.len() > 40, "an exclusion says why: {reason:?}");
    }
    let in_manifest: BTreeSet<String> = manifest().into_iter().map(|(id, _)| id).collect();
    let listed: BTreeSet<String> = listed.into_iter().map(String::from).collect();
    let new: Vec<_> = in_manifest.difference(&listed).collect();
    assert!(new.is_empty(), "CSVW cases with neither a runner nor an exclusion in csvw.rs: {new:?}");
    let gone: Vec<_> = listed.difference(&in_manifest).collect();
    assert!(gone.is_empty(), "csvw.rs lists cases the manifest does not have: {gone:?}");
}

#[tokio::test]
async fn csvw_plain_tables_parse_as_the_suite_expects() {
    let dir = dir();
    let cases: Vec<(String, Json)> = manifest().into_iter().filter(|(id, _)| PLAIN.contains(&id.as_str())).collect();
    assert_eq!(cases.len(), PLAIN.len());
    for (id, e) in cases {
        assert!(e.get("implicit").is_none() && e["option"].get("metadata").is_none(), "{id}: no metadata");
        assert_eq!(e["type"], "csvt:ToJsonTest", "{id}");
        let csv = dir.join(e["action"].as_str().unwrap());
        let names = header(&csv);
        let r = run(&dataset(&contract(&names, ""), &dir), &csv).await;
        assert_eq!(r.report.status, "valid", "{id}: {:?}", r.report);
        let want = expected_rows(&read_json(&dir.join(e["result"].as_str().unwrap())));
        let keys: Vec<Option<String>> = names.into_iter().map(Some).collect();
        assert_rows(&id, &r.rows, &want, &keys);
    }
}

#[tokio::test]
async fn csvw_invalid_dialects_read_as_the_default_dialect() {
    let dir = dir();
    for (id, e) in manifest().into_iter().filter(|(id, _)| DEFAULTED_DIALECT.contains(&id.as_str())) {
        assert_eq!(e["type"], "csvt:ToJsonTestWithWarnings", "{id}: CSVW warns");
        let meta = read_json(&dir.join(e["action"].as_str().unwrap()));
        assert!(meta.get("dialect").is_some(), "{id}: a dialect case");
        let csv = dir.join(meta["url"].as_str().unwrap());
        let columns = meta["tableSchema"]["columns"].as_array().unwrap();
        let titles: Vec<String> = columns.iter().map(|c| c["titles"].as_str().unwrap().to_string()).collect();
        assert_eq!(titles, header(&csv), "{id}");
        // A column with a CSVW datatype comes out converted (a `M/d/yyyy` date as ISO); only the
        // columns read as text are the parse itself.
        let keys: Vec<Option<String>> = columns
            .iter()
            .map(|c| c.get("datatype").is_none().then(|| c["name"].as_str().unwrap().to_string()))
            .collect();
        assert!(keys.iter().filter(|k| k.is_some()).count() >= 4, "{id}");
        let r = run(&dataset(&contract(&titles, ""), &dir), &csv).await;
        assert_eq!(r.report.status, "valid", "{id}: {:?}", r.report);
        let want = expected_rows(&read_json(&dir.join(e["result"].as_str().unwrap())));
        assert_rows(&id, &r.rows, &want, &keys);
    }
}

#[tokio::test]
async fn csvw_header_false_reads_the_header_line_as_a_row() {
    let dir = dir();
    let (_, e) = manifest().into_iter().find(|(id, _)| id == NO_HEADER).unwrap();
    let meta = read_json(&dir.join(e["option"]["metadata"].as_str().unwrap()));
    assert_eq!(meta["dialect"]["header"], false);
    let csv = dir.join(e["action"].as_str().unwrap());
    let n = header(&csv).len();
    let names: Vec<String> = (1..=n).map(|i| format!("c{i}")).collect();
    let r = run(&dataset(&contract(&names, "header = false"), &dir), &csv).await;
    assert_eq!(r.report.status, "valid", "{:?}", r.report);
    let want = expected_rows(&read_json(&dir.join(e["result"].as_str().unwrap())));
    let keys: Vec<Option<String>> = (1..=n).map(|i| Some(format!("_col.{i}"))).collect();
    assert_rows(NO_HEADER, &r.rows, &want, &keys);
    assert_eq!(r.rows[0][1].as_deref(), Some("On Street"), "the header line is the first row");
}

#[test]
fn invalid_dialect_values_are_refused_not_defaulted() {
    // Where CSVW warns and falls back (the cases above), glueless refuses the contract: a typo in
    // a dialect must not load a file with a dialect nobody wrote.
    for (dialect, key) in [
        ("delimiter = 1", "dialect.delimiter"),
        ("quoteChar = 1", "dialect.quoteChar"),
        ("header = \"yes\"", "dialect.header"),
        ("encoding = \"ebcdic\"", "dialect.encoding"),
    ] {
        let toml = contract(&["a".to_string()], dialect);
        let err =
            glueless_engine::contract::load_str(&toml, "c.toml", &dir()).expect_err(&format!("{dialect} is refused"));
        assert_eq!(err.key, key, "{dialect}: {err}");
    }
}
