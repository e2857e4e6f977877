//! The dataset contracts of `[contracts] dir`, and which one an object key belongs to.
//!
//! A broken contract does not stop the service: it is listed with its error, and files its
//! `match` glob would take (when the file is readable enough to tell) are rejected with that
//! error, so `glueless status` shows why and `glueless replay` retries once it is fixed. The
//! catalog is reloaded whenever a contract file changes.

use crate::ports::TableSpec;
use globset::{Glob, GlobBuilder, GlobMatcher};
use glueless_engine::Dataset;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// A usable contract.
#[derive(Debug)]
pub struct Entry {
    pub dataset: Arc<Dataset>,
    pub table: TableSpec,
    pub glob: String,
    matcher: GlobMatcher,
}

/// A contract that cannot be used, and why.
#[derive(Debug)]
pub struct Broken {
    pub path: PathBuf,
    pub error: String,
    matcher: Option<GlobMatcher>,
}

/// Where an object key goes.
#[derive(Debug)]
pub enum Route<'a> {
    Dataset(&'a Entry),
    /// Only a broken contract claims it.
    Broken(&'a Broken),
    /// Several contracts claim it: a configuration error.
    Ambiguous(Vec<String>),
    None,
}

#[derive(Debug, Default)]
pub struct Catalog {
    pub entries: Vec<Entry>,
    pub broken: Vec<Broken>,
    /// Names, sizes and modification times of the files it was loaded from.
    stamp: Vec<(PathBuf, u64, Option<SystemTime>)>,
}

/// The contracts folder itself cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the contracts folder {dir}: {source}; create it, or set [contracts] dir in glueless.toml")]
pub struct CatalogError {
    pub dir: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn glob(pattern: &str) -> Result<GlobMatcher, globset::Error> {
    Ok(GlobBuilder::new(pattern).literal_separator(true).build()?.compile_matcher())
}

fn stamp(dir: &Path) -> Result<Vec<(PathBuf, u64, Option<SystemTime>)>, CatalogError> {
    let err = |source: std::io::Error| CatalogError { dir: dir.to_path_buf(), source };
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(err)? {
        let e = e.map_err(err)?;
        let p = e.path();
        if p.extension().is_some_and(|x| x == "toml") {
            let m = e.metadata().map_err(err)?;
            out.push((p, m.len(), m.modified().ok()));
        }
    }
    out.sort();
    Ok(out)
}

impl Catalog {
    /// Loads every `*.toml` of `dir`.
    pub fn load(dir: &Path) -> Result<Catalog, CatalogError> {
        let stamp = stamp(dir)?;
        let mut cat = Catalog { stamp: stamp.clone(), ..Catalog::default() };
        for (path, _, _) in &stamp {
            cat.add(path);
        }
        Ok(cat)
    }

    /// Whether a contract file was added, removed or changed since this catalog was loaded.
    pub fn is_stale(&self, dir: &Path) -> bool {
        stamp(dir).map(|s| s != self.stamp).unwrap_or(true)
    }

    fn add(&mut self, path: &Path) {
        let broken = |error: String, matcher: Option<GlobMatcher>| Broken { path: path.to_path_buf(), error, matcher };
        // The `match` glob, read leniently, so a contract that fails validation still claims
        // its files (and they are rejected with its error rather than left unrouted).
        let lenient = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .and_then(|t| t.get("match").and_then(|m| m.as_str()).map(str::to_string))
            .and_then(|g| glob(&g).ok());
        let dataset = match Dataset::load(path) {
            Ok(d) => d,
            Err(e) => return self.broken.push(broken(e.to_string(), lenient)),
        };
        let Some(pattern) = dataset.contract.match_glob.clone() else {
            return self.broken.push(broken(
                format!(
                    "{} has no `match` glob, so no file is routed to it; add e.g. match = \"landing/{}/**/*.csv*\"",
                    path.display(),
                    dataset.contract.name
                ),
                None,
            ));
        };
        let matcher = match Glob::new(&pattern).and_then(|_| glob(&pattern)) {
            Ok(m) => m,
            Err(e) => {
                return self
                    .broken
                    .push(broken(format!("{}: `match` = {pattern:?} is not a glob: {e}", path.display()), None));
            }
        };
        let table = match TableSpec::from_dataset(&dataset) {
            Ok(t) => t,
            Err(e) => return self.broken.push(broken(format!("{}: {e}", path.display()), Some(matcher))),
        };
        if let Some(other) = self.entries.iter().find(|e| e.dataset.contract.name == dataset.contract.name) {
            let msg = format!(
                "{} and {} both name the dataset `{}`; rename one",
                path.display(),
                other.dataset.contract.source,
                dataset.contract.name
            );
            return self.broken.push(broken(msg, Some(matcher)));
        }
        self.entries.push(Entry { dataset: Arc::new(dataset), table, glob: pattern, matcher });
    }

    /// The contract(s) whose `match` covers `key` (relative to the lake root).
    pub fn route(&self, key: &str) -> Route<'_> {
        let hits: Vec<&Entry> = self.entries.iter().filter(|e| e.matcher.is_match(key)).collect();
        match hits.as_slice() {
            [one] => Route::Dataset(one),
            [] => match self.broken.iter().find(|b| b.matcher.as_ref().is_some_and(|m| m.is_match(key))) {
                Some(b) => Route::Broken(b),
                None => Route::None,
            },
            many => Route::Ambiguous(many.iter().map(|e| e.dataset.contract.source.clone()).collect()),
        }
    }

    pub fn get(&self, dataset: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.dataset.contract.name == dataset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTRACT: &str = r#"
name = "NAME"
match = "landing/NAME/**/*.csv*"
table = "fact_NAME"
[schema]
primaryKey = ["id"]
[[schema.fields]]
name = "id"
type = "integer"
"#;

    #[test]
    fn routes_by_glob_and_reports_broken_contracts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), CONTRACT.replace("NAME", "a")).unwrap();
        std::fs::write(dir.path().join("b.toml"), CONTRACT.replace("NAME", "b").replace("integer", "integr")).unwrap();
        std::fs::write(dir.path().join("c.toml"), "this is = not toml [").unwrap();
        let cat = Catalog::load(dir.path()).unwrap();
        assert_eq!(cat.entries.len(), 1);
        assert_eq!(cat.broken.len(), 2);
        assert!(matches!(cat.route("landing/a/x.csv"), Route::Dataset(e) if e.dataset.contract.name == "a"));
        assert!(matches!(cat.route("landing/a/2026/11/x.csv.gz"), Route::Dataset(_)));
        assert!(matches!(cat.route("landing/a/x.json"), Route::None));
        match cat.route("landing/b/x.csv") {
            Route::Broken(b) => assert!(b.error.contains("integr"), "{}", b.error),
            other => panic!("{other:?}"),
        }
        assert!(!cat.is_stale(dir.path()));
        std::fs::write(dir.path().join("d.toml"), CONTRACT.replace("NAME", "d")).unwrap();
        assert!(cat.is_stale(dir.path()));
    }

    #[test]
    fn two_contracts_for_one_key_are_ambiguous() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), CONTRACT.replace("NAME", "a")).unwrap();
        std::fs::write(
            dir.path().join("a2.toml"),
            CONTRACT.replace("name = \"NAME\"", "name = \"a2\"").replace("NAME", "a"),
        )
        .unwrap();
        let cat = Catalog::load(dir.path()).unwrap();
        assert!(matches!(cat.route("landing/a/x.csv"), Route::Ambiguous(v) if v.len() == 2));
    }
}
