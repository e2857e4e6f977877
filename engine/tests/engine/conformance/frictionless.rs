//! Table Schema validation: each case of `schema-validation/INDEX.json` (frictionless-py and
//! tableschema-py tests, with the report of `frictionless validate` 5.21.0) is run through
//! glueless with the same schema and data, and frictionless's row errors are compared with the
//! quarantine's, as a multiset of `(row, rule, field)` (stricter than the set of `(row, rule)`:
//! one error per extra cell, the field of each type, constraint or missing-cell error).
//! Frictionless errors without a row (header labels, an unreadable source) are compared with
//! glueless's file problem. Each difference is listed with its case and the reason for it.
//!
//! Every contract sets `load.max_rejected_ratio = 1.0`, so that rows are reported rather than
//! the file rejected for them, and keeps the default `extra_columns = "reject_file"`, which is
//! what frictionless's header checks (`blank-label`, `incorrect-label`) amount to.

use super::{Run, dataset, fixtures, read_json, run, toml_str};
use serde_json::Value as Json;
use std::collections::BTreeSet;
use std::path::Path;

/// Where a task's schema comes from.
enum Schema {
    /// The case's own Table Schema file, named by `schema = "…"` in the contract.
    File(&'static str),
    /// The resource at this index of the case's `datapackage.json`.
    Package(usize),
    /// The case has no schema: frictionless inferred one. The same fields (`name`, `type`) are
    /// written here by hand; a header label that is blank or repeated has no field, as a
    /// glueless contract cannot name it.
    Inferred(&'static [(&'static str, &'static str)]),
}

enum Outcome {
    /// The rows are read; glueless's row errors equal frictionless's, less `only_frictionless`
    /// and plus `only_glueless` (each entry one occurrence).
    Rows { only_frictionless: &'static [Diff], only_glueless: &'static [Diff] },
    /// The file is rejected with this problem before any row is read.
    FileRejected(&'static str),
}

const SAME: Outcome = Outcome::Rows { only_frictionless: &[], only_glueless: &[] };

struct Task {
    data: &'static str,
    schema: Schema,
    /// Top-level keys of the schema that glueless refuses. Each is asserted to be a contract
    /// error naming that key; the rows are then compared on the schema without them.
    refused: &'static [&'static str],
    /// The types of frictionless's errors that have no row number, exactly.
    file_level: &'static [&'static str],
    outcome: Outcome,
}

const fn task(data: &'static str, schema: Schema, outcome: Outcome) -> Task {
    Task { data, schema, refused: &[], file_level: &[], outcome }
}

struct Case {
    dir: &'static str,
    tasks: &'static [Task],
}

const ID_NAME_AGE: &[(&str, &str)] = &[("id", "integer"), ("name", "string"), ("age", "integer")];
const ID_NAME: &[(&str, &str)] = &[("id", "integer"), ("name", "string")];

const CASES: &[Case] = &[
    Case {
        dir: "frictionless-py/invalid-structure",
        tasks: &[Task {
            // Header `id,name,,name`. glueless stops at the first header problem, and it checks
            // the contract's fields before the header's other columns: the repeated `name` is
            // reported, not the blank label. No row is read, so frictionless's row errors
            // (missing-cell x4, blank-row, extra-cell) have no counterpart.
            file_level: &["blank-label", "duplicate-label"],
            ..task("invalid.csv", Schema::Inferred(ID_NAME), Outcome::FileRejected("duplicate-label"))
        }],
    },
    Case {
        dir: "frictionless-py/blank-headers",
        tasks: &[Task {
            file_level: &["blank-label"],
            ..task(
                "blank-headers.csv",
                Schema::Inferred(&[("id", "integer"), ("age", "integer")]),
                Outcome::FileRejected("blank-label"),
            )
        }],
    },
    Case {
        dir: "frictionless-py/duplicate-headers",
        tasks: &[Task {
            file_level: &["duplicate-label"],
            ..task("duplicate-headers.csv", Schema::Inferred(ID_NAME_AGE), Outcome::FileRejected("duplicate-label"))
        }],
    },
    Case {
        dir: "frictionless-py/defective-rows",
        tasks: &[task("defective-rows.csv", Schema::Inferred(ID_NAME_AGE), SAME)],
    },
    Case { dir: "frictionless-py/blank-rows", tasks: &[task("blank-rows.csv", Schema::Inferred(ID_NAME_AGE), SAME)] },
    Case {
        dir: "frictionless-py/blank-rows-multiple",
        tasks: &[task("blank-rows-multiple.csv", Schema::Inferred(ID_NAME_AGE), SAME)],
    },
    Case {
        dir: "frictionless-py/blank-cells-valid",
        tasks: &[task("blank-cells.csv", Schema::Inferred(ID_NAME), SAME)],
    },
    Case {
        dir: "frictionless-py/empty-file",
        tasks: &[Task {
            // frictionless: `source-error` "the source is empty"; glueless: `empty-file`.
            file_level: &["source-error"],
            ..task("empty.csv", Schema::Inferred(&[("id", "string")]), Outcome::FileRejected("empty-file"))
        }],
    },
    Case {
        dir: "frictionless-py/header-only-valid",
        tasks: &[task("without-rows.csv", Schema::Inferred(&[("id", "string"), ("name", "string")]), SAME)],
    },
    Case {
        dir: "frictionless-py/structure-errors",
        tasks: &[task(
            "structure-errors.csv",
            Schema::Inferred(ID_NAME_AGE),
            // Row 5 has three cells past the header: frictionless reports each; glueless reports
            // one `extra-cell` with their count, so that a row of a million delimiters is one
            // error, not a million (issue 11).
            Outcome::Rows { only_frictionless: &[(5, "extra-cell", ""), (5, "extra-cell", "")], only_glueless: &[] },
        )],
    },
    Case {
        dir: "frictionless-py/schema-errors",
        tasks: &[task(
            "schema-errors.csv",
            Schema::File("schema-valid.json"),
            // Rows 4 and 5 have no usable `id` (a type error, an empty cell). frictionless adds
            // a primary-key error for a key whose cells are all null; glueless reports the cell
            // itself (type-error, required) and, since only a row valid otherwise claims or
            // checks its key, no key error. Row 5's three extra cells are one `extra-cell`.
            Outcome::Rows {
                only_frictionless: &[
                    (4, "primary-key", ""),
                    (5, "primary-key", ""),
                    (5, "extra-cell", ""),
                    (5, "extra-cell", ""),
                ],
                only_glueless: &[],
            },
        )],
    },
    Case {
        dir: "frictionless-py/unique-field-and-primary-key",
        tasks: &[task(
            "unique-field.csv",
            Schema::File("unique-field.json"),
            // `id` is both the primary key and `unique`. glueless gives a row one key error: a
            // duplicate primary key rejects the row before the unique indexes are consulted
            // (they are not updated by a rejected row either).
            Outcome::Rows { only_frictionless: &[(10, "unique-error", "id")], only_glueless: &[] },
        )],
    },
    Case {
        dir: "frictionless-py/foreign-key-self-reference",
        tasks: &[Task {
            // Each file is validated on its own: `foreignKeys` is a contract error. Without it,
            // every row loads, so the one foreign-key error is the whole difference.
            refused: &["foreignKeys"],
            ..task(
                "nested-invalid.csv",
                Schema::File("schema.json"),
                Outcome::Rows { only_frictionless: &[(6, "foreign-key", "")], only_glueless: &[] },
            )
        }],
    },
    Case {
        dir: "frictionless-py/latin1-read-as-utf8",
        tasks: &[Task {
            // frictionless fails the whole source on the first byte that is not UTF-8.
            // glueless decodes row by row: the header and row 2 are valid UTF-8, row 3 is
            // quarantined with `encoding-error` and the rest of the file is still read.
            file_level: &["encoding-error"],
            ..task(
                "latin1.csv",
                Schema::Inferred(ID_NAME),
                Outcome::Rows { only_frictionless: &[], only_glueless: &[(3, "encoding-error", "")] },
            )
        }],
    },
    Case {
        dir: "frictionless-py/wide-table-enum-issue-277",
        tasks: &[Task {
            // The schema carries the producer's own top-level keys. glueless refuses keys it
            // does not know rather than ignore them, so that a misspelt keyword never passes
            // unnoticed; they say nothing about the data, so they are dropped to compare.
            refused: &["tablename", "csv", "status", "work to be done"],
            // Run with --schema-sync: fields bound by header name, which glueless always does.
            ..task("issue-277.csv", Schema::File("issue-277.json"), SAME)
        }],
    },
    Case {
        dir: "frictionless-py/package-blank-row-primary-key",
        tasks: &[
            task(
                "data.csv",
                Schema::Package(0),
                // A blank row is rejected as `blank-row` and nothing else; frictionless also
                // reports its all-null primary key.
                Outcome::Rows { only_frictionless: &[(3, "primary-key", "")], only_glueless: &[] },
            ),
            // The foreign key into `data` holds for every row (frictionless reports no
            // foreign-key error), so dropping it changes nothing else.
            Task { refused: &["foreignKeys"], ..task("data2.csv", Schema::Package(1), SAME) },
        ],
    },
    Case {
        dir: "frictionless-py/capital-invalid",
        tasks: &[Task {
            // Header `id,name,name`: rejected at the header, so frictionless's row errors
            // (missing-cell, blank-row, type-error, extra-cell) have no counterpart.
            file_level: &["duplicate-label"],
            ..task("capital-invalid.csv", Schema::Inferred(ID_NAME), Outcome::FileRejected("duplicate-label"))
        }],
    },
    Case { dir: "frictionless-py/min-length", tasks: &[task("data.csv", Schema::File("schema.json"), SAME)] },
    Case { dir: "frictionless-py/max-length", tasks: &[task("data.csv", Schema::File("schema.json"), SAME)] },
    Case { dir: "frictionless-py/minimum", tasks: &[task("data.csv", Schema::File("schema.json"), SAME)] },
    Case { dir: "frictionless-py/maximum", tasks: &[task("data.csv", Schema::File("schema.json"), SAME)] },
    Case {
        dir: "frictionless-py/unique-and-type-error",
        tasks: &[task("data.csv", Schema::File("schema.json"), SAME)],
    },
    Case {
        dir: "frictionless-py/composite-primary-key",
        tasks: &[task(
            "data.csv",
            Schema::File("schema.json"),
            // Row 4 (`,Paul`): glueless makes every primary-key field required (the key is the
            // warehouse's upsert key, so none of its parts may be NULL; docs/contracts.md,
            // "Constraints"); frictionless only objects to a key whose cells are all null. Row 6
            // is blank: `blank-row` only, as in package-blank-row-primary-key.
            Outcome::Rows {
                only_frictionless: &[(6, "primary-key", "")],
                only_glueless: &[(4, "constraint-error", "id")],
            },
        )],
    },
    Case {
        dir: "frictionless-py/cell-required-missing-values",
        tasks: &[task("data.csv", Schema::File("schema.json"), SAME)],
    },
    Case { dir: "frictionless-py/cell-pattern", tasks: &[task("data.csv", Schema::File("schema.json"), SAME)] },
    Case { dir: "frictionless-py/cell-enum-integer", tasks: &[task("data.csv", Schema::File("schema.json"), SAME)] },
    Case {
        dir: "frictionless-py/cell-enum-and-pattern",
        tasks: &[task(
            "data.csv",
            Schema::File("schema.json"),
            // frictionless reports each failed constraint of a cell (pattern and enum on row 4);
            // glueless reports the first (enum): the cell is rejected either way.
            Outcome::Rows { only_frictionless: &[(4, "constraint-error", "name")], only_glueless: &[] },
        )],
    },
    Case { dir: "frictionless-py/cell-minimum-integer", tasks: &[task("data.csv", Schema::File("schema.json"), SAME)] },
    Case { dir: "frictionless-py/cell-maximum-integer", tasks: &[task("data.csv", Schema::File("schema.json"), SAME)] },
    Case {
        dir: "tableschema-py/invalid-col-value",
        tasks: &[task("data_invalid_col_value.csv", Schema::File("schema.json"), SAME)],
    },
    Case {
        dir: "tableschema-py/invalid-extra-cols",
        tasks: &[task("data_invalid_extra_cols.csv", Schema::File("schema.json"), SAME)],
    },
    Case {
        dir: "tableschema-py/missing-cols",
        tasks: &[task("data_missing_cols.csv", Schema::File("schema.json"), SAME)],
    },
    Case {
        dir: "tableschema-py/unique-primary-key-violation",
        tasks: &[task(
            "data_unique_primary_key_violation.csv",
            Schema::File("schema.json"),
            // Row 2 (`1 39,Paul`) has no valid id: as in schema-errors, no key error for it.
            Outcome::Rows { only_frictionless: &[(2, "primary-key", "")], only_glueless: &[] },
        )],
    },
    Case {
        dir: "tableschema-py/headers-field-names-mismatch",
        tasks: &[Task {
            // Header `id,bad,name` for fields id, age, name. frictionless matches labels to
            // fields by position (`incorrect-label`); glueless binds by name: the optional
            // `age` is absent (a warning) and `bad` is a column the contract does not name.
            file_level: &["incorrect-label"],
            ..task(
                "data_headers_field_names_mismatch.csv",
                Schema::File("schema.json"),
                Outcome::FileRejected("extra-label"),
            )
        }],
    },
];

/// A contract around `schema`: either `schema = "<file>"` or `[schema]` tables.
fn contract(schema: &str) -> String {
    let (key, tables) = if schema.starts_with("schema = ") { (schema, "") } else { ("", schema) };
    format!("name = \"conformance\"\n{key}\n[load]\nmax_rejected_ratio = 1.0\n{tables}")
}

/// One row error: `(row, rule, field)`, the field empty for row-level errors.
type Diff = (u64, &'static str, &'static str);
type RowError = (u64, String, String);

/// A frictionless task's row errors (sorted), and the types of its errors without a row.
fn frictionless_errors(task: &Json) -> (Vec<RowError>, BTreeSet<String>) {
    let mut rows = Vec::new();
    let mut file = BTreeSet::new();
    for e in task["errors"].as_array().unwrap() {
        let kind = e["type"].as_str().unwrap().to_string();
        match e["rowNumber"].as_u64() {
            Some(n) => rows.push((n, kind, e["fieldName"].as_str().unwrap_or("").to_string())),
            None => {
                file.insert(kind);
            }
        }
    }
    rows.sort();
    (rows, file)
}

/// The quarantine's row errors (sorted), in the same shape. frictionless names no field for a
/// key error, which is about the row; glueless names the key's fields: dropped to compare.
fn glueless_errors(r: &Run) -> Vec<RowError> {
    let mut out = Vec::new();
    for q in &r.rejects {
        for e in q["errors"].as_array().unwrap() {
            let rule = e["rule"].as_str().unwrap().to_string();
            let field = if rule == "primary-key" { "" } else { e["field"].as_str().unwrap_or("") };
            out.push((q["row"].as_u64().unwrap(), rule, field.to_string()));
        }
    }
    out.sort();
    out
}

fn owned(d: &Diff) -> RowError {
    (d.0, d.1.to_string(), d.2.to_string())
}

/// The glueless file problem for a frictionless error without a row.
fn file_counterpart(frictionless: &str) -> &str {
    match frictionless {
        // Same names, same meaning.
        "blank-label" | "duplicate-label" | "missing-label" | "extra-label" => frictionless,
        // frictionless pairs labels with fields by position and reports a mismatch; glueless
        // pairs them by name, so the header's unknown label is an extra one.
        "incorrect-label" => "extra-label",
        // The only source error in the suite is "the source is empty".
        "source-error" => "empty-file",
        other => panic!("no glueless counterpart written for frictionless `{other}`"),
    }
}

/// Writes `schema` as `schema.json` in `dir` and returns the contract naming it.
fn schema_file_contract(dir: &Path, schema: &Json) -> String {
    let path = dir.join("schema.json");
    std::fs::write(&path, serde_json::to_vec_pretty(schema).unwrap()).unwrap();
    contract(&format!("schema = {}", toml_str(path.to_str().unwrap())))
}

/// The contract for one task (asserting the refused keys on the way), and its base folder.
fn contract_for(case_dir: &Path, t: &Task, tmp: &Path) -> String {
    let json = match &t.schema {
        Schema::Inferred(fields) => {
            assert!(t.refused.is_empty());
            let mut toml = "[schema]\n".to_string();
            for (name, ty) in *fields {
                toml.push_str(&format!("[[schema.fields]]\nname = {}\ntype = \"{ty}\"\n", toml_str(name)));
            }
            return contract(&toml);
        }
        Schema::File(f) if t.refused.is_empty() => return contract(&format!("schema = {}", toml_str(f))),
        Schema::File(f) => read_json(&case_dir.join(f)),
        Schema::Package(i) => read_json(&case_dir.join("datapackage.json"))["resources"][*i]["schema"].clone(),
    };
    let mut clean = json.clone();
    for key in t.refused {
        clean.as_object_mut().unwrap().remove(*key).unwrap_or_else(|| panic!("the schema has `{key}`"));
    }
    for key in t.refused {
        let mut one = clean.clone();
        one[*key] = json[*key].clone();
        let err = glueless_engine::contract::load_str(&schema_file_contract(tmp, &one), "c.toml", tmp)
            .expect_err("a refused key is a contract error");
        assert_eq!(err.key, *key, "{}: {err}", case_dir.display());
        assert!(err.file.ends_with("schema.json"), "the error names the schema file: {err}");
    }
    schema_file_contract(tmp, &clean)
}

#[tokio::test]
async fn frictionless_reports_match_the_quarantine() {
    let root = fixtures().join("schema-validation");
    let index = read_json(&root.join("INDEX.json"));
    let index = index.as_array().unwrap();
    let listed: BTreeSet<&str> = index.iter().map(|e| e["case"].as_str().unwrap()).collect();
    let written: BTreeSet<&str> = CASES.iter().map(|c| c.dir).collect();
    assert_eq!(written, listed, "one expectation per case of INDEX.json");
    assert_eq!(written.len(), CASES.len(), "no case written twice");

    let mut visited = 0;
    for entry in index {
        let dir_name = entry["case"].as_str().unwrap();
        let case = CASES.iter().find(|c| c.dir == dir_name).unwrap();
        let dir = root.join(dir_name);
        let report = read_json(&dir.join("frictionless-report.json"));
        let tasks = report["tasks"].as_array().unwrap();
        assert_eq!(tasks.len(), case.tasks.len(), "{dir_name}: one task per data file");
        // INDEX.json summarizes the report: check it does, so that the two cannot drift.
        let all_types: BTreeSet<&str> =
            tasks.iter().flat_map(|t| t["errors"].as_array().unwrap()).map(|e| e["type"].as_str().unwrap()).collect();
        let index_types: BTreeSet<&str> =
            entry["error_types"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        assert_eq!(all_types, index_types, "{dir_name}: INDEX.json error_types");
        assert_eq!(report["valid"], entry["valid_per_frictionless"], "{dir_name}");

        for (t, ft) in case.tasks.iter().zip(tasks) {
            let what = format!("{dir_name}/{}", t.data);
            assert_eq!(ft["place"].as_str(), Some(t.data), "{what}: task order");
            let (f_rows, f_file) = frictionless_errors(ft);
            let file_level: BTreeSet<String> = t.file_level.iter().map(|s| s.to_string()).collect();
            assert_eq!(f_file, file_level, "{what}: frictionless's errors without a row");

            let tmp = tempfile::tempdir().unwrap();
            let toml = contract_for(&dir, t, tmp.path());
            let base =
                if matches!(t.schema, Schema::File(_)) && t.refused.is_empty() { dir.as_path() } else { tmp.path() };
            let r: Run = run(&dataset(&toml, base), &dir.join(t.data)).await;
            match &t.outcome {
                Outcome::Rows { only_frictionless, only_glueless } => {
                    // Frictionless's errors, less those glueless does not report (one
                    // occurrence each), plus those only glueless reports.
                    let mut want = f_rows.clone();
                    for d in *only_frictionless {
                        let i = want.iter().position(|e| *e == owned(d));
                        want.remove(i.unwrap_or_else(|| panic!("{what}: {d:?} is not a frictionless error")));
                    }
                    for d in *only_glueless {
                        assert!(!f_rows.contains(&owned(d)), "{what}: {d:?} is a frictionless error");
                        want.push(owned(d));
                    }
                    want.sort();
                    let got = glueless_errors(&r);
                    assert_eq!(r.report.file_problem, None, "{what}");
                    assert_eq!(got, want, "{what}");
                    let rejected: BTreeSet<u64> = got.iter().map(|e| e.0).collect();
                    assert_eq!(r.report.rows_rejected, rejected.len() as u64, "{what}: one quarantine line a row");
                    assert_eq!(r.report.status == "valid", want.is_empty(), "{what}: {:?}", r.report.status);
                }
                Outcome::FileRejected(rule) => {
                    let counterparts: Vec<&str> = f_file.iter().map(|f| file_counterpart(f)).collect();
                    assert!(counterparts.contains(rule), "{what}: {rule} stands for one of {f_file:?}");
                    assert_eq!(r.file_problem(), Some(*rule), "{what}: {:?}", r.report);
                    assert_eq!((r.report.rows_read, r.rejects.len()), (0, 0), "{what}: rejected at the header");
                }
            }
            visited += 1;
        }
    }
    assert_eq!(visited, 35, "34 cases, one of them a package of two files");
}
