//! Every suite under `../shared/fixtures` is run, or excluded in writing.
//!
//! A suite folder added to the fixtures would otherwise sit there untested while its presence
//! suggests coverage (as the CSVW suite did until issue 12).

use super::fixtures;

/// Suite folder (relative to the fixtures) → the runner's source, which must read that folder.
const RUNNERS: &[(&str, &str, &str)] = &[
    ("parsing/csv-spectrum", "parsing.rs", include_str!("parsing.rs")),
    ("parsing/csv-test-data", "parsing.rs", include_str!("parsing.rs")),
    ("parsing/csvlint-rb", "parsing.rs", include_str!("parsing.rs")),
    ("parsing/csvw-tests", "csvw.rs", include_str!("csvw.rs")),
    ("schema-validation/frictionless-py", "frictionless.rs", include_str!("frictionless.rs")),
    ("schema-validation/tableschema-py", "frictionless.rs", include_str!("frictionless.rs")),
];

/// Suite folders deliberately not run: `(folder, why)`. Empty today; an entry needs a reason a
/// reviewer can check.
const EXCLUDED: &[(&str, &str)] = &[];

/// The groups of suites: each child folder of these is one suite.
const GROUPS: &[&str] = &["parsing", "schema-validation"];

#[test]
fn every_fixture_suite_has_a_runner_or_a_written_exclusion() {
    let root = fixtures();
    // The groups themselves: a new top-level folder needs a decision too.
    let mut top: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, GROUPS, "a new folder in {}: add its suites to conformance/coverage.rs", root.display());

    let mut missing = Vec::new();
    let mut suites = Vec::new();
    for group in GROUPS {
        for e in std::fs::read_dir(root.join(group)).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                suites.push(format!("{group}/{}", e.file_name().to_string_lossy()));
            }
        }
    }
    suites.sort();
    for suite in &suites {
        let runner = RUNNERS.iter().find(|(s, ..)| s == suite);
        let excluded = EXCLUDED.iter().find(|(s, _)| s == suite);
        match (runner, excluded) {
            (Some((_, file, source)), None) => {
                // The runner must actually read the folder (by its path, or by its cases' paths
                // below the group), not merely be named here.
                let leaf = suite.split_once('/').unwrap().1;
                assert!(
                    source.contains(&format!("\"{suite}")) || source.contains(&format!("\"{leaf}/")),
                    "{file} does not read {suite}"
                );
            }
            (None, Some((_, why))) => assert!(why.len() > 20, "{suite}: the exclusion says why"),
            (Some(_), Some(_)) => panic!("{suite} is both run and excluded"),
            (None, None) => missing.push(suite.clone()),
        }
    }
    assert!(
        missing.is_empty(),
        "fixture suites with neither a runner nor a written exclusion: {missing:?}; \
         write a runner in engine/tests/engine/conformance/ or add the folder to EXCLUDED in \
         conformance/coverage.rs with the reason"
    );
    for (suite, ..) in RUNNERS.iter().map(|(s, f, _)| (s, f)).chain(EXCLUDED.iter().map(|(s, w)| (s, w))) {
        assert!(suites.iter().any(|s| s == suite), "{suite} is listed but is not in the fixtures");
    }
}
