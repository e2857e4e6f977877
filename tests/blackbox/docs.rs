//! The documentation holds together: every relative link in `README.md`, `infra/README.md` and
//! `docs/*.md` points to a file of the repository (and, with `#anchor`, to a heading of that
//! page, slugged as GitHub does), every page under `docs/` can be reached from the README, and
//! the configuration reference (`docs/configuration.md`) names every key with its default.
//! Links inside code (fenced blocks, `spans`) are not links; web links are not followed.

use crate::support::repo;
use glueless_jobs::settings::Settings;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The Markdown pages checked: the README, the infrastructure's README, and `docs/*.md`.
fn pages() -> Vec<PathBuf> {
    let root = repo();
    let mut pages = vec![root.join("README.md"), root.join("infra/README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// The text of a page outside code: fenced blocks dropped, inline code spans removed.
fn prose_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Drop `code spans`: everything between a pair of backticks on the line.
        let prose = line.split('`').step_by(2).collect::<Vec<_>>().join("");
        out.push((n + 1, prose));
    }
    out
}

/// GitHub's anchor of a heading: lower case, punctuation dropped (letters, digits, `-`, `_` kept),
/// spaces to hyphens; a repeated heading gets `-1`, `-2`, ….
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        let Some(title) = line.strip_prefix('#').filter(|_| !fenced).map(|t| t.trim_start_matches('#')) else {
            continue;
        };
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *n == 0 { slug.clone() } else { format!("{slug}-{n}") });
        *n += 1;
    }
    out
}

/// The targets of the inline links `[text](target)` of one line of prose.
fn link_targets(prose: &str) -> Vec<String> {
    prose
        .match_indices("](")
        .filter_map(|(i, _)| {
            let rest = &prose[i + 2..];
            rest.find(')').map(|end| rest[..end].trim().to_string())
        })
        .collect()
}

/// Every relative link of `page` that does not resolve, as `page:line: target (why)`; and the
/// pages under `docs/` the page links to.
fn check_page(page: &Path) -> (Vec<String>, Vec<PathBuf>) {
    let root = repo();
    let text = std::fs::read_to_string(page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
    let name = page.strip_prefix(&root).unwrap_or(page).display().to_string();
    let dir = page.parent().expect("a page is in a folder");
    let (mut broken, mut linked) = (Vec::new(), Vec::new());
    for (line, prose) in prose_lines(&text) {
        for target in link_targets(&prose) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target.as_str(), ""));
            let file = if path.is_empty() { page.to_path_buf() } else { dir.join(path) };
            let Ok(file) = file.canonicalize() else {
                broken.push(format!("{name}:{line}: {target} (no such file)"));
                continue;
            };
            if !file.starts_with(&root) {
                broken.push(format!("{name}:{line}: {target} (outside the repository)"));
                continue;
            }
            if !anchor.is_empty() {
                let Some(target_text) =
                    file.extension().filter(|x| *x == "md").and_then(|_| std::fs::read_to_string(&file).ok())
                else {
                    broken.push(format!("{name}:{line}: {target} (an anchor into a file that is not a Markdown page)"));
                    continue;
                };
                if !anchors(&target_text).contains(anchor) {
                    broken.push(format!("{name}:{line}: {target} (no heading with anchor #{anchor})"));
                }
            }
            linked.push(file);
        }
    }
    (broken, linked)
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let broken: Vec<String> = pages().iter().flat_map(|p| check_page(p).0).collect();
    assert!(broken.is_empty(), "broken links in the documentation:\n{}", broken.join("\n"));
}

#[test]
fn every_docs_page_is_reachable_from_the_readme() {
    let root = repo().canonicalize().unwrap();
    let mut reached = BTreeSet::new();
    let mut todo = vec![root.join("README.md")];
    while let Some(page) = todo.pop() {
        if !reached.insert(page.clone()) {
            continue;
        }
        let (_, linked) = check_page(&page);
        todo.extend(linked.into_iter().filter(|p| p.extension().is_some_and(|x| x == "md") && !reached.contains(p)));
    }
    let orphans: Vec<String> = pages()
        .iter()
        .map(|p| p.canonicalize().unwrap())
        .filter(|p| p.starts_with(root.join("docs")) && !reached.contains(p))
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(orphans.is_empty(), "pages no link from README.md leads to: {orphans:?}");
}

#[test]
fn anchors_are_slugged_as_github_does() {
    let a = anchors(
        "# Title\n## `[limits]` in `glueless.toml`\n## Status, replay and alerts\n```\n# not a heading\n```\n## Title\n",
    );
    let want = ["limits-in-gluelesstoml", "status-replay-and-alerts", "title", "title-1"];
    assert_eq!(a, want.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
    assert_eq!(link_targets("see [a](x.md#y) and [b](../z.md)"), ["x.md#y", "../z.md"]);
    assert_eq!(prose_lines("`[a](nope.md)` and [b](yes.md)")[0].1, " and [b](yes.md)");
}

/// The `section.key` names in a `Debug` rendering of [`Settings`]: the fields one level inside
/// each section struct (quoted values skipped).
fn debug_keys(debug: &str) -> BTreeSet<String> {
    let (mut keys, mut depth, mut section, mut ident) = (BTreeSet::new(), 0, String::new(), String::new());
    let mut chars = debug.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '{' => depth += 1,
            '}' => depth -= 1,
            ':' if chars.peek() == Some(&' ') => match depth {
                1 => section = ident.clone(),
                2 => {
                    keys.insert(format!("{section}.{ident}"));
                }
                _ => {}
            },
            c if c.is_ascii_alphanumeric() || c == '_' => {
                ident.push(c);
                continue;
            }
            _ => {}
        }
        ident.clear();
    }
    keys
}

#[test]
fn the_configuration_page_names_every_key_with_its_default() {
    let page = std::fs::read_to_string(repo().join("docs/configuration.md")).unwrap();
    let block = page.split("```toml\n").nth(1).and_then(|b| b.split("\n```").next()).expect("a ```toml block");
    let dir = tempfile::tempdir().unwrap();
    let (documented, empty) = (dir.path().join("documented.toml"), dir.path().join("empty.toml"));
    std::fs::write(&documented, block).unwrap();
    std::fs::write(&empty, "").unwrap();
    // Unknown keys are an error, so a key the code no longer has fails here.
    let doc =
        Settings::load(Some(&documented), std::iter::empty()).unwrap_or_else(|e| panic!("docs/configuration.md: {e}"));
    let defaults = Settings::load(Some(&empty), std::iter::empty()).unwrap();
    let (doc, defaults) = (format!("{doc:?}"), format!("{defaults:?}"));
    assert_eq!(doc, defaults, "docs/configuration.md states other values than the defaults");

    let table: toml::Table = block.parse().unwrap();
    let on_page: BTreeSet<String> = table
        .iter()
        .flat_map(|(section, keys)| keys.as_table().expect("a section").keys().map(move |k| format!("{section}.{k}")))
        .collect();
    let in_code = debug_keys(&defaults);
    assert!(in_code.len() > 40 && in_code.contains("run.lease_secs"), "{in_code:?}");
    assert_eq!(on_page, in_code, "docs/configuration.md and the settings name different keys");
}
