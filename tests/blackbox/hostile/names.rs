//! Object names S3 allows, which glueless once percent-encoded a second time (DEAD "does not
//! exist") or never listed (`data.csv#1`): each goes from listing to LOADED unchanged, in a
//! local lake and in an S3 lake on the local emulator. The event parsers' side of the round trip
//! is `events::tests::hostile_keys_round_trip_through_every_event_shape`.

use crate::pipeline::{HEADER, Lake, count};
use crate::support::{aws_endpoint, emulator_bucket, make_bucket};
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;

/// File names (below `landing/sales/`) with every sign S3 allows and `Path::from` encodes.
pub const NAMES: &[&str] = &[
    "café.csv",
    "a~b.csv",
    "a[1].csv",
    "q\"uote.csv",
    "it's.csv",
    "a%41.csv",
    "100%.csv",
    "data.csv#1",
    "sp ace+plus.csv",
    "{b}^|<a>.csv",
    "back\\slash*?.csv",
    "日本/😀.csv",
];

/// One valid row per file, its id the file's index.
fn body(i: usize) -> String {
    format!("{HEADER}{i},2026-11-20T10:00:00Z,1,{i}.00\n")
}

/// Every name LOADED under its own URL, with its row in the warehouse.
fn assert_all_loaded(lake: &Lake, report: &serde_json::Value, root: &str) {
    assert_eq!(report["counts"]["LOADED"], NAMES.len(), "{report}");
    let urls: Vec<&str> = report["files"].as_array().unwrap().iter().map(|f| f["url"].as_str().unwrap()).collect();
    for name in NAMES {
        let url = format!("{root}/landing/sales/{name}");
        assert!(urls.contains(&url.as_str()), "{url} not among {urls:?}");
    }
    let ids: Vec<String> =
        lake.query("SELECT id FROM fact_sales ORDER BY id").into_iter().map(|r| r.join("")).collect();
    let want: Vec<String> = (0..NAMES.len()).map(|i| i.to_string()).collect();
    assert_eq!(ids, want);
    let st = lake.status();
    assert_eq!(count(&st, "LOADED"), NAMES.len() as u64, "{st}");
    assert!(st["attention"].as_array().unwrap().is_empty(), "{st}");
}

#[test]
fn every_name_s3_allows_is_loaded_from_a_local_lake() {
    let lake = Lake::new("");
    for (i, name) in NAMES.iter().enumerate() {
        lake.drop_file(&format!("sales/{name}"), &body(i));
    }
    let report = lake.run_once(&[]);
    let root = lake.root.join("lake").display().to_string();
    assert_all_loaded(&lake, &report, &root);
}

#[test]
fn every_name_s3_allows_is_loaded_from_an_s3_lake() {
    let bucket = make_bucket("names");
    let s3 = emulator_bucket(&aws_endpoint(), &bucket).expect("s3 client");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for (i, name) in NAMES.iter().enumerate() {
        // `Path::parse` keeps the key verbatim: this is the key a producer's PUT names.
        let key = ObjPath::parse(format!("landing/sales/{name}")).unwrap();
        rt.block_on(s3.put(&key, body(i).into_bytes().into())).unwrap();
    }
    let lake = Lake::new("");
    let endpoint = aws_endpoint();
    let url = format!("s3://{bucket}");
    let env = s3_env(&url, &endpoint);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let report = lake.run_once(&env);
    assert_all_loaded(&lake, &report, &url);
}

/// Puts `body` under a key that no object_store path can hold, with S3's browser-form upload (a
/// POST whose `key` field the emulator takes as is).
fn post_raw_key(bucket: &str, key: &str, body: &str) {
    use std::io::{Read, Write};
    let ep = aws_endpoint();
    let host = ep.trim_start_matches("http://");
    let b = "glueless-form-boundary-7d1f";
    let form = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n{key}\r\n--{b}\r\n\
         Content-Disposition: form-data; name=\"file\"; filename=\"f.csv\"\r\nContent-Type: text/csv\r\n\r\n{body}\r\n--{b}--\r\n"
    );
    let mut s = std::net::TcpStream::connect(host).expect("emulator reachable");
    write!(
        s,
        "POST /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary={b}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 20"), "upload of {key:?}: {answer}");
}

/// Keys S3 allows that no store path can hold used to fail the listing of the whole bucket (one
/// odd object stopped every other): each is now REJECTED by name, and the others are LOADED.
/// 1,000 unfinished (`.tmp`) objects sort first and fill the first page of the listing, so all
/// of these come on the second.
#[test]
fn keys_no_store_path_can_hold_are_rejected_and_the_rest_of_an_s3_lake_loaded() {
    let bucket = make_bucket("oddkeys");
    let s3 = emulator_bucket(&aws_endpoint(), &bucket).expect("s3 client");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let page: Vec<_> = (0..1000).map(|i| ObjPath::parse(format!("landing/sales/0-{i:04}.tmp")).unwrap()).collect();
    rt.block_on(async {
        use futures::StreamExt;
        let puts = futures::stream::iter(&page).map(|k| s3.put(k, Vec::new().into())).buffer_unordered(16);
        puts.for_each(|r| async move {
            r.unwrap();
        })
        .await;
    });
    let good = ["good.csv", "sp ace+plus.csv", "a%41.csv"];
    for (i, name) in good.iter().enumerate() {
        let key = ObjPath::parse(format!("landing/sales/{name}")).unwrap();
        rt.block_on(s3.put(&key, body(i).into_bytes().into())).unwrap();
    }
    let bad = [
        ("bad\nname.csv", "control character '\\n'"),
        ("tab\there.csv", "control character '\\t'"),
        ("a//b.csv", "empty segment"),
        ("x/../y.csv", "`..` segment"),
    ];
    for (i, (name, _)) in bad.iter().enumerate() {
        post_raw_key(&bucket, &format!("landing/sales/{name}"), &body(10 + i));
    }
    let lake = Lake::new("");
    let url = format!("s3://{bucket}");
    let env = s3_env(&url, &aws_endpoint());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let report = lake.run_once(&env);
    assert_eq!(report["exit_code"], 3, "{report}");
    assert_eq!(report["list_errors"], 0, "{report}");
    let file = |name: &str| {
        let u = format!("{url}/landing/sales/{name}");
        report["files"].as_array().unwrap().iter().find(|f| f["url"] == u.as_str()).cloned()
    };
    for name in good {
        let f = file(name).unwrap_or_else(|| panic!("{name} not in {report}"));
        assert_eq!(f["state"], "LOADED", "{f}");
    }
    for (name, why) in bad {
        let f = file(name).unwrap_or_else(|| panic!("{name:?} not in {report}"));
        assert_eq!(f["state"], "REJECTED", "{f}");
        let reason = f["reason"].as_str().unwrap();
        assert!(reason.contains(why) && reason.contains("rename the file"), "{name:?}: {reason}");
    }
    let ids: Vec<String> =
        lake.query("SELECT id FROM fact_sales ORDER BY id").into_iter().map(|r| r.join("")).collect();
    assert_eq!(ids, ["0", "1", "2"], "only the good files' rows");
}

/// The settings of an S3 lake on the emulator, as environment variables.
pub fn s3_env(lake_url: &str, endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("GLUELESS__LAKE__URL", lake_url.to_string()),
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}
