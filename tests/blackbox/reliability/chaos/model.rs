//! The chaos run's inputs, drawn from a seed, and the independent model of what they must
//! leave in the warehouse, the ledger, the state store and the quarantine.
//!
//! Nothing here calls glueless: the model is computed from the rows the generator wrote (it
//! knows which rows it made bad, and how). Row `version`s come from one counter, so no two
//! different rows share a key and a version (the generator asserts it); a row's price in cents
//! is its version, so `id|qty|price` names the exact row that won.

use crate::pipeline::HEADER;
use std::collections::{BTreeMap, HashMap};

/// SplitMix64: small, seedable, and the same on every platform and crate version.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.next_u64() as usize % v.len()]
    }
}

/// One data row as written.
#[derive(Clone, Debug)]
pub struct Row {
    pub id: u64,
    pub version: u64,
    pub qty: u64,
    /// Valid under the contract; a bad row breaks exactly one rule on purpose.
    pub good: bool,
    /// The CSV line, without its newline.
    pub line: String,
}

impl Row {
    /// As the fact table shows it: `id|qty|price`.
    pub fn fact(&self) -> String {
        format!("{}|{}|{}.{:02}", self.id, self.qty, self.version / 100, self.version % 100)
    }
}

/// What a content is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// At most a quarter of its rows bad (`max_rejected_ratio = 0.5`): LOADED, bad rows quarantined.
    Loads,
    /// All rows but one bad: REJECTED as a whole, the bad rows quarantined.
    MostlyBad,
    /// The required column `ts` missing from the header: REJECTED as a whole, no row read.
    NoTsColumn,
}

/// The bytes of one file, as delivered (maybe several times, under several names).
pub struct Content {
    pub text: String,
    pub rows: Vec<Row>,
    pub kind: Kind,
}

impl Content {
    pub fn poison(&self) -> bool {
        self.kind != Kind::Loads
    }

    /// The lines its quarantine must hold, sorted.
    pub fn quarantined(&self) -> Vec<String> {
        if self.kind == Kind::NoTsColumn {
            return Vec::new();
        }
        let mut v: Vec<String> = self.rows.iter().filter(|r| !r.good).map(|r| r.line.clone()).collect();
        v.sort();
        v
    }
}

/// One delivery: `content` written under `name` (a new version of that name).
pub struct Write {
    pub name: String,
    pub content: usize,
    /// What kind of delivery it is, for the log.
    pub op: &'static str,
}

/// The inputs, drawn round by round, and everything delivered so far.
pub struct Plan {
    rng: Rng,
    pub contents: Vec<Content>,
    pub writes: Vec<Write>,
    next_version: u64,
    next_id: u64,
    ids: Vec<u64>,
    names: usize,
    /// Name → (round of its last write, its last content).
    last: BTreeMap<String, (usize, usize)>,
    round: usize,
    /// Older contents of out-of-order pairs, delivered in the next round.
    deferred: Vec<usize>,
}

/// 2026-01-01T00:00:00Z: version `v` is this plus `v` seconds.
const EPOCH: i64 = 1_767_225_600;

impl Plan {
    pub fn new(seed: u64) -> Plan {
        Plan {
            rng: Rng::new(seed),
            contents: Vec::new(),
            writes: Vec::new(),
            next_version: 100,
            next_id: 1,
            ids: Vec::new(),
            names: 0,
            last: BTreeMap::new(),
            round: 0,
            deferred: Vec::new(),
        }
    }

    fn version(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    fn ts(v: u64) -> String {
        chrono::DateTime::from_timestamp(EPOCH + v as i64, 0)
            .expect("in range")
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    /// `n` distinct ids, each an existing one (an update) 40 % of the time when there are some.
    fn ids(&mut self, n: usize) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::with_capacity(n);
        while out.len() < n {
            let id = if !self.ids.is_empty() && self.rng.chance(40) {
                *self.rng.pick(&self.ids)
            } else {
                self.next_id += 1;
                self.ids.push(self.next_id);
                self.next_id
            };
            if !out.contains(&id) {
                out.push(id);
            }
        }
        out
    }

    fn good(&mut self, id: u64) -> Row {
        let version = self.version();
        let qty = self.rng.range(1, 9);
        let line = format!("{id},{},{qty},{}.{:02}", Plan::ts(version), version / 100, version % 100);
        Row { id, version, qty, good: true, line }
    }

    /// A row that breaks one rule: `qty` below its minimum, `ts` empty (required), `price` or
    /// `ts` not of their type.
    fn bad(&mut self, id: u64) -> Row {
        let version = self.version();
        let (ts, price) = (Plan::ts(version), format!("{}.{:02}", version / 100, version % 100));
        let line = match self.rng.range(0, 3) {
            0 => format!("{id},{ts},0,{price}"),
            1 => format!("{id},,3,{price}"),
            2 => format!("{id},{ts},3,n/a"),
            _ => format!("{id},yesterday,3,{price}"),
        };
        Row { id, version, qty: 0, good: false, line }
    }

    fn add(&mut self, rows: Vec<Row>, kind: Kind) -> usize {
        let header = if kind == Kind::NoTsColumn { "id,qty,price\n" } else { HEADER };
        let mut text = header.to_string();
        for r in &rows {
            text.push_str(&r.line);
            text.push('\n');
        }
        self.contents.push(Content { text, rows, kind });
        self.contents.len() - 1
    }

    /// Good rows for `ids`, and one bad row (on a new id) 40 % of the time: at most a quarter
    /// of the rows when there are three good ones or more.
    fn loads(&mut self, ids: &[u64]) -> usize {
        let mut rows: Vec<Row> = ids.iter().map(|&id| self.good(id)).collect();
        if rows.len() >= 3 && self.rng.chance(40) {
            let id = self.ids(1)[0];
            let at = self.rng.range(0, rows.len() as u64) as usize;
            let bad = self.bad(id);
            rows.insert(at, bad);
        }
        self.add(rows, Kind::Loads)
    }

    fn poison(&mut self) -> usize {
        let n = self.rng.range(4, 8) as usize;
        let ids = self.ids(n);
        if self.rng.chance(50) {
            let mut rows: Vec<Row> = ids[1..].iter().map(|&id| self.bad(id)).collect();
            let good = self.good(ids[0]);
            let at = self.rng.range(0, rows.len() as u64) as usize;
            rows.insert(at, good);
            self.add(rows, Kind::MostlyBad)
        } else {
            let rows = ids
                .iter()
                .map(|&id| {
                    let version = self.version();
                    let line = format!("{id},2,{}.{:02}", version / 100, version % 100);
                    Row { id, version, qty: 2, good: false, line }
                })
                .collect();
            self.add(rows, Kind::NoTsColumn)
        }
    }

    fn new_name(&mut self) -> String {
        self.names += 1;
        format!("f{:05}.csv", self.names)
    }

    fn deliver(&mut self, out: &mut Vec<Write>, name: String, content: usize, op: &'static str) {
        self.last.insert(name.clone(), (self.round, content));
        out.push(Write { name, content, op });
    }

    /// A name last written in an earlier round (so its last version has settled by now), if any.
    fn settled_name(&mut self) -> Option<(String, usize)> {
        let round = self.round;
        let names: Vec<(&String, &(usize, usize))> = self.last.iter().filter(|(_, (r, _))| *r < round).collect();
        if names.is_empty() {
            return None;
        }
        let (name, (_, content)) = *self.rng.pick(&names);
        Some((name.clone(), *content))
    }

    /// The next round: about `n` deliveries (the older halves of the last round's out-of-order
    /// pairs first). A name is written again only if its last write was in an earlier round:
    /// the run waits for every version to be settled between rounds.
    pub fn round(&mut self, n: usize) -> Vec<Write> {
        self.round += 1;
        let mut out = Vec::new();
        for c in std::mem::take(&mut self.deferred) {
            let name = self.new_name();
            self.deliver(&mut out, name, c, "older version, after the newer one");
        }
        while out.len() < n {
            let op = self.rng.range(0, 99);
            let rewrite = if (45..70).contains(&op) { self.settled_name() } else { None };
            match (op, rewrite) {
                (35..45, _) if !(self.writes.is_empty() && out.is_empty()) => {
                    let delivered: Vec<usize> = self.writes.iter().chain(&out).map(|w| w.content).collect();
                    let c = *self.rng.pick(&delivered);
                    let name = self.new_name();
                    self.deliver(&mut out, name, c, "duplicate under another name");
                }
                (45..55, Some((name, c))) => self.deliver(&mut out, name, c, "unchanged re-upload"),
                (55..70, Some((name, c))) => {
                    // Every valid key of the replaced content again, newer, and maybe more keys.
                    let old = &self.contents[c];
                    let mut ids: Vec<u64> = if old.poison() {
                        Vec::new()
                    } else {
                        old.rows.iter().filter(|r| r.good).map(|r| r.id).collect()
                    };
                    let more = self.rng.range(if ids.is_empty() { 3 } else { 0 }, 3) as usize;
                    for id in self.ids(more) {
                        if !ids.contains(&id) {
                            ids.push(id);
                        }
                    }
                    let c = self.loads(&ids);
                    self.deliver(&mut out, name, c, "changed re-upload");
                }
                (70..85, _) => {
                    // Versions drawn for the older content first: its rows lose to the newer's.
                    let n = self.rng.range(3, 8) as usize;
                    let ids = self.ids(n);
                    let older = self.loads(&ids);
                    let newer = self.loads(&ids);
                    let name = self.new_name();
                    self.deliver(&mut out, name, newer, "newer version");
                    self.deferred.push(older);
                }
                (85.., _) => {
                    let c = self.poison();
                    let name = self.new_name();
                    self.deliver(&mut out, name, c, "poison");
                }
                _ => {
                    let n = self.rng.range(3, 12) as usize;
                    let ids = self.ids(n);
                    let c = self.loads(&ids);
                    let name = self.new_name();
                    self.deliver(&mut out, name, c, "new file");
                }
            }
        }
        out
    }

    /// The older halves still owed: the last round.
    pub fn flush(&mut self) -> Vec<Write> {
        self.round += 1;
        let mut out = Vec::new();
        for c in std::mem::take(&mut self.deferred) {
            let name = self.new_name();
            self.deliver(&mut out, name, c, "older version, after the newer one");
        }
        out
    }

    /// Records `w` as delivered.
    pub fn delivered(&mut self, w: Write) {
        self.writes.push(w);
    }

    // ----- The model -----

    /// Versions (deliveries) that must end LOADED and REJECTED.
    pub fn states(&self) -> (u64, u64) {
        let rejected = self.writes.iter().filter(|w| self.contents[w.content].poison()).count() as u64;
        (self.writes.len() as u64 - rejected, rejected)
    }

    /// The fact table, `id|qty|price` ordered by id: per key, the valid row with the highest
    /// version among the contents delivered that are not rejected as a whole.
    pub fn facts(&self) -> Vec<String> {
        let mut best: BTreeMap<u64, &Row> = BTreeMap::new();
        for w in &self.writes {
            let c = &self.contents[w.content];
            if c.poison() {
                continue;
            }
            for r in c.rows.iter().filter(|r| r.good) {
                let e = best.entry(r.id).or_insert(r);
                assert!(e.version != r.version || e.line == r.line, "the generator drew one key and version twice");
                if r.version > e.version {
                    *e = r;
                }
            }
        }
        best.values().map(|r| r.fact()).collect()
    }

    /// Ledger rows per name: a loaded version whose content differs from the last content
    /// loaded under its name is a load; an unchanged re-upload is not (the ledger compares a
    /// URL's new content with its latest ledger row). Sorted by name.
    pub fn ledger(&self) -> Vec<(String, usize)> {
        let mut per: BTreeMap<&str, (usize, Option<&str>)> = BTreeMap::new();
        for w in &self.writes {
            let c = &self.contents[w.content];
            if c.poison() {
                continue;
            }
            let e = per.entry(&w.name).or_insert((0, None));
            if e.1 != Some(c.text.as_str()) {
                e.0 += 1;
                e.1 = Some(&c.text);
            }
        }
        per.into_iter().map(|(n, (k, _))| (n.to_string(), k)).collect()
    }

    /// Distinct contents that end loaded (distinct fingerprints in the ledger).
    pub fn distinct_loaded(&self) -> usize {
        let set: std::collections::HashSet<&str> = self
            .writes
            .iter()
            .map(|w| &self.contents[w.content])
            .filter(|c| !c.poison())
            .map(|c| c.text.as_str())
            .collect();
        set.len()
    }

    /// Per name, the non-empty quarantines of its versions (each sorted), sorted.
    pub fn quarantines(&self) -> BTreeMap<String, Vec<Vec<String>>> {
        let mut out: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
        for w in &self.writes {
            let q = self.contents[w.content].quarantined();
            if !q.is_empty() {
                out.entry(w.name.clone()).or_default().push(q);
            }
        }
        for v in out.values_mut() {
            v.sort();
        }
        out
    }

    /// For each valid row (`id|qty|price`), the names its contents were delivered under.
    pub fn sources(&self) -> HashMap<String, Vec<&str>> {
        let mut out: HashMap<String, Vec<&str>> = HashMap::new();
        for w in &self.writes {
            for r in self.contents[w.content].rows.iter().filter(|r| r.good) {
                out.entry(r.fact()).or_default().push(&w.name);
            }
        }
        out
    }

    /// How many deliveries of each kind, for the log.
    pub fn mix(&self) -> String {
        let mut n: HashMap<&str, usize> = HashMap::new();
        for w in &self.writes {
            *n.entry(w.op).or_default() += 1;
        }
        let mut v: Vec<String> = n.into_iter().map(|(k, v)| format!("{v} {k}")).collect();
        v.sort();
        v.join(", ")
    }
}
