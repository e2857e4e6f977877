//! The rows drawn for a contract, how a row is broken, and the file they make with what must
//! come out of it.

use super::contract::{
    FieldSpec, Spec, Ty, US_PER_SEC, Val, day_range, finite_f64, float_of, int_of, micros_range, spec,
};
use super::spell::{csv_cell, spell};
use glueless_engine::decode::CHUNK_BYTES;
use proptest::collection::vec;
use proptest::prelude::*;
use std::collections::HashSet;

// ---------------------------------------------------------------------------------------------
// Strategies

fn lit(s: &'static str) -> BoxedStrategy<String> {
    Just(s.to_string()).boxed()
}

/// A non-empty string of at most `max_chars` characters, rich in what CSV must quote.
fn text(max_chars: usize) -> BoxedStrategy<String> {
    let piece = prop_oneof![
        8 => "[a-zA-Z0-9]{1,3}".boxed(),
        1 => lit(","), 1 => lit("\""), 1 => lit("\"\""), 1 => lit("\n"), 1 => lit("\r\n"),
        1 => lit("\r"), 1 => lit(" "), 1 => lit("\t"), 1 => lit("é"), 1 => lit("日本"), 1 => lit("🦀"),
        1 => any::<char>().prop_map(String::from).boxed(),
    ];
    vec(piece, 1..8).prop_map(move |ps| ps.concat().chars().take(max_chars).collect()).boxed()
}

/// A value that satisfies the field's constraints.
fn value(f: &FieldSpec) -> BoxedStrategy<Val> {
    let r = &f.rules;
    if let Some(list) = &r.one_of {
        return prop::sample::select(list.clone()).boxed();
    }
    let (d0, d1) = day_range();
    let (t0, t1) = micros_range();
    match f.ty {
        Ty::Str => text(r.max_length.unwrap_or(20)).prop_map(Val::Str).boxed(),
        Ty::Int => {
            let (lo, hi) = (int_of(&r.min).unwrap_or(i64::MIN), int_of(&r.max).unwrap_or(i64::MAX));
            let small = (-100i64..100).prop_map(move |v| v.clamp(lo, hi));
            prop_oneof![3 => lo..=hi, 1 => Just(lo), 1 => Just(hi), 2 => small].prop_map(Val::Int).boxed()
        }
        Ty::Float => match (&r.min, &r.max) {
            (None, None) => {
                let special = vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, f64::MAX, f64::MIN_POSITIVE];
                prop_oneof![6 => finite_f64(), 1 => prop::sample::select(special)].prop_map(Val::Float).boxed()
            }
            (min, max) => {
                let lo = float_of(min).unwrap_or(-f64::MAX);
                let hi = float_of(max).unwrap_or(f64::MAX);
                let between = (0.0..=1.0f64).prop_map(move |t| (lo * (1.0 - t) + hi * t).clamp(lo, hi));
                prop_oneof![3 => between, 1 => Just(lo), 1 => Just(hi)].prop_map(Val::Float).boxed()
            }
        },
        Ty::Decimal { precision, .. } => {
            let m = 10i128.pow(u32::from(precision)) - 1;
            let lo = match r.min {
                Some(Val::Dec(v)) => v,
                _ => -m,
            };
            let hi = match r.max {
                Some(Val::Dec(v)) => v,
                _ => m,
            };
            prop_oneof![3 => lo..=hi, 1 => Just(lo), 1 => Just(hi)].prop_map(Val::Dec).boxed()
        }
        Ty::Bool => any::<bool>().prop_map(Val::Bool).boxed(),
        Ty::Date => {
            let lo = match r.min {
                Some(Val::Date(v)) => v,
                _ => d0,
            };
            let hi = match r.max {
                Some(Val::Date(v)) => v,
                _ => d1,
            };
            prop_oneof![3 => lo..=hi, 1 => Just(lo), 1 => Just(hi)].prop_map(Val::Date).boxed()
        }
        Ty::Datetime => {
            let lo = match r.min {
                Some(Val::Ts(v)) => v,
                _ => t0,
            };
            let hi = match r.max {
                Some(Val::Ts(v)) => v,
                _ => t1,
            };
            // Whole seconds and milliseconds too, to draw the spellings without a fraction.
            let round = move |v: i64, unit: i64| {
                let r = v - v.rem_euclid(unit);
                if r >= lo { r } else { v }
            };
            prop_oneof![
                3 => lo..=hi,
                2 => (lo..=hi).prop_map(move |v| round(v, US_PER_SEC)),
                1 => (lo..=hi).prop_map(move |v| round(v, 1000)),
                1 => Just(lo),
                1 => Just(hi),
            ]
            .prop_map(Val::Ts)
            .boxed()
        }
    }
}

#[derive(Debug, Clone)]
pub struct CellDraw {
    /// Satisfies the contract.
    pub value: Val,
    /// Leave the cell empty (ignored for required fields).
    pub empty: bool,
    pub spelling: u32,
    pub quote: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Break {
    BadType,
    OutOfRange,
    EmptyRequired,
    CellCount,
    DuplicateKey,
    StrayQuote,
}

#[derive(Debug, Clone, Copy)]
pub struct BreakDraw {
    pub kind: Break,
    /// Picks the field among those the break applies to.
    pub pick: usize,
    pub aux: u32,
}

#[derive(Debug, Clone)]
pub struct RowDraw {
    pub cells: Vec<CellDraw>,
    pub brk: Option<BreakDraw>,
    /// With mixed terminators: 0 LF, 1 CRLF, 2 CR.
    pub term: u8,
}

#[derive(Debug, Clone)]
pub struct FileDraw {
    pub bom: bool,
    /// 0 LF, 1 CRLF, 2 mixed per row.
    pub terminators: u8,
    pub final_terminator: bool,
    pub quote_header: bool,
    /// Pad a valid row so that the engine's first read ends near this (scaled) position.
    pub chunk_boundary: Option<u32>,
}

fn row(spec: &Spec) -> BoxedStrategy<RowDraw> {
    let cells: Vec<_> = spec
        .fields
        .iter()
        .map(|f| {
            (value(f), prop::bool::weighted(0.2), any::<u32>(), prop::bool::weighted(0.15))
                .prop_map(|(value, empty, spelling, quote)| CellDraw { value, empty, spelling, quote })
        })
        .collect();
    let kind = prop::sample::select(vec![
        Break::BadType,
        Break::OutOfRange,
        Break::EmptyRequired,
        Break::CellCount,
        Break::DuplicateKey,
        Break::StrayQuote,
    ]);
    let brk = (kind, any::<usize>(), any::<u32>()).prop_map(|(kind, pick, aux)| BreakDraw { kind, pick, aux });
    (cells, prop::option::weighted(0.35, brk), 0u8..3)
        .prop_map(|(cells, brk, term)| RowDraw { cells, brk, term })
        .boxed()
}

fn file() -> BoxedStrategy<FileDraw> {
    (any::<bool>(), 0u8..3, any::<bool>(), any::<bool>(), prop::option::weighted(0.5, any::<u32>()))
        .prop_map(|(bom, terminators, final_terminator, quote_header, chunk_boundary)| FileDraw {
            bom,
            terminators,
            final_terminator,
            quote_header,
            chunk_boundary,
        })
        .boxed()
}

/// A contract, its rows, and how the file is written.
pub fn case() -> impl Strategy<Value = (Spec, Vec<RowDraw>, FileDraw)> {
    spec().prop_flat_map(|spec| {
        let rows = vec(row(&spec), 0..40);
        (Just(spec), rows, file())
    })
}

// ---------------------------------------------------------------------------------------------
// Breaking a row

/// Text that is not a value of the type at all.
fn bad_type_text(ty: Ty, aux: u32) -> String {
    let pick = |list: &[&str]| list[aux as usize % list.len()].to_string();
    match ty {
        Ty::Str => unreachable!("any text is a string"),
        Ty::Int => {
            pick(&["12x", "1.5", "9223372036854775808", "-9223372036854775809", " 7", "1e3", "0x10", "--1", "٣"])
        }
        Ty::Float => pick(&["1.2.3", "abc", "1e", "1,5", " 1.5", "1.5 ", "e5", "+-1", "0x1p3", "1_000", "infinit"]),
        Ty::Decimal { precision, scale } => match aux % 5 {
            // One decimal place more than the scale allows.
            0 => format!("0.{}1", "0".repeat(scale.max(0) as usize)),
            // One digit more than the precision allows.
            1 => format!("1{}", "0".repeat(usize::from(precision))),
            _ => pick(&["abc", "1.2.3", "1,5", ".", "1e", "NaN"]),
        },
        Ty::Bool => pick(&["yes", "TRUE ", "t", "2", "tRUE", "no"]),
        Ty::Date => pick(&[
            "2023-02-29",
            "2024-13-01",
            "2024/01/01",
            "24-01-01",
            "2024-1-1",
            "0000-01-01",
            "2024-01-01T00:00:00Z",
            "2024-02-30",
            " 2024-01-01",
        ]),
        Ty::Datetime => pick(&[
            "2024-01-01",
            "2024-01-01T25:00:00Z",
            "2024-01-01T10:00Z",
            "2024-01-01T10:00:00+25:00",
            "2024-01-01T10:00:00.Z",
            "2024-01-01T10:00:00.1234567890Z",
            "2024-02-30T00:00:00Z",
            "2024-01-01T10:00:60Z",
            "2024-01-01X10:00:00",
        ]),
    }
}

/// A value of the right type that breaks a constraint of `f`, if it has one; and the rules the
/// quarantine may give it.
fn out_of_range_text(f: &FieldSpec, aux: u32, spelling: u32) -> Option<(String, Vec<&'static str>)> {
    let r = &f.rules;
    let constraint = vec!["constraint-error"];
    if let Some(list) = &r.one_of {
        return Some(match (f.ty, &list[aux as usize % list.len()]) {
            (_, Val::Int(_)) => {
                let top = list.iter().filter_map(|v| if let Val::Int(i) = v { Some(*i) } else { None }).max();
                let top = top.expect("an integer enum");
                (spell(f.ty, &Val::Int(top + 1 + i64::from(aux % 5)), spelling), constraint)
            }
            (_, Val::Str(s)) => {
                let mut t = format!("{s}~");
                while list.contains(&Val::Str(t.clone())) {
                    t.push('~');
                }
                (t, constraint)
            }
            _ => unreachable!("enums are drawn for strings and integers"),
        });
    }
    if let Some(n) = r.max_length {
        let long: String = "ab,\"é\n日 ".chars().cycle().take(n + 1 + aux as usize % 3).collect();
        return Some((long, constraint));
    }
    let below = r.min.is_some() && (r.max.is_none() || aux & 1 == 0);
    let bound = if below { r.min.as_ref() } else { r.max.as_ref() }?;
    let k = aux >> 1;
    let v = match bound {
        Val::Int(b) => {
            let step = i64::from(1 + k % 3);
            Val::Int(if below { b.checked_sub(step)? } else { b.checked_add(step)? })
        }
        Val::Float(b) => Val::Float(match (below, k % 2) {
            (true, 0) => b.next_down(),
            (true, _) => b - b.abs() - 1.0,
            (false, 0) => b.next_up(),
            (false, _) => b + b.abs() + 1.0,
        }),
        // Past ±(10^p - 1) the value no longer fits the precision: a type error instead.
        Val::Dec(b) => {
            let step = i128::from(1 + k % 10);
            let v = Val::Dec(if below { b - step } else { b + step });
            return Some((spell(f.ty, &v, spelling), vec!["constraint-error", "type-error"]));
        }
        Val::Date(b) => {
            let step = (1 + k % 30) as i32;
            Val::Date(if below { b - step } else { b + step })
        }
        Val::Ts(b) => {
            let step = i64::from(1 + k % 1_000_000_000);
            Val::Ts(if below { b - step } else { b + step })
        }
        Val::Str(_) | Val::Bool(_) => unreachable!("no bounds on strings and booleans"),
    };
    Some((spell(f.ty, &v, spelling), constraint))
}

// ---------------------------------------------------------------------------------------------
// The file and what must come out of it

#[derive(Debug)]
pub struct ExpectedRow {
    /// Physical line on which the row starts.
    pub line: u64,
    /// The row's text without its terminator.
    pub raw: String,
    /// For a valid row, the value of each field (`None`: empty cell, NULL).
    pub values: Vec<Option<Val>>,
    /// For a broken row: what was done, and the rules the quarantine may give.
    pub broken: Option<(Break, Vec<&'static str>)>,
    /// For a duplicate key: the line of the row that holds the key first.
    pub first_line: Option<u64>,
}

#[derive(Debug)]
pub struct Case {
    pub toml: String,
    pub csv: Vec<u8>,
    pub rows: Vec<ExpectedRow>,
}

/// Line breaks as the tokenizer counts them: `\n`, `\r\n` and a lone `\r`.
fn line_breaks(s: &str) -> u64 {
    let b = s.as_bytes();
    (0..b.len()).filter(|&i| b[i] == b'\n' || (b[i] == b'\r' && b.get(i + 1) != Some(&b'\n'))).count() as u64
}

/// Everything decided about the rows before they are written.
struct Plan {
    /// Per row: the break, the field it hits, its extra randomness; `None` for a valid row.
    breaks: Vec<Option<(Break, usize, u32)>>,
    /// Per row, per field: the value written (`None`: an empty cell).
    values: Vec<Vec<Option<Val>>>,
    /// Per row: for a duplicate key, the row that holds the key first.
    dup_of: Vec<Option<usize>>,
}

/// The file for `draws`, and what must come out of it.
pub fn build(spec: &Spec, draws: &[RowDraw], file: &FileDraw) -> Case {
    let mut plan = plan(spec, draws);
    let (mut case, row_ends) = render(spec, draws, file, &plan);
    // Sometimes pad a string of a valid row so that the engine's first read of the file ends
    // at a chosen byte of a later row (or near the end of this one): records, lines and values
    // must come out the same across reads.
    let unconstrained = |f: &FieldSpec| f.ty == Ty::Str && f.rules.one_of.is_none() && f.rules.max_length.is_none();
    let target = spec.fields.iter().position(unconstrained).and_then(|fi| {
        let r = plan.breaks.iter().position(Option::is_none)?;
        Some((r, fi))
    });
    if let (Some(shift), Some((r, fi))) = (file.chunk_boundary, target) {
        let (end, rest) = (row_ends[r], case.csv.len() - row_ends[r]);
        let past_end = (shift as usize % (rest + 101)) as i64 - 100;
        let pad = usize::try_from(CHUNK_BYTES as i64 - end as i64 - past_end).expect("the rows are short");
        let old = match &plan.values[r][fi] {
            Some(Val::Str(s)) => s.clone(),
            _ => String::new(),
        };
        plan.values[r][fi] = Some(Val::Str("a".repeat(pad) + &old));
        let before = case.csv.len();
        case = render(spec, draws, file, &plan).0;
        assert_eq!(case.csv.len(), before + pad, "padding shifts the rest of the file");
    }
    case
}

fn plan(spec: &Spec, draws: &[RowDraw]) -> Plan {
    let n = spec.fields.len();
    let fields = &spec.fields;

    // The break of each row, or a wrong cell count where the drawn one does not apply.
    let mut breaks: Vec<Option<(Break, usize, u32)>> = draws
        .iter()
        .map(|d| {
            let b = d.brk?;
            let among = |cands: Vec<usize>| (!cands.is_empty()).then(|| cands[b.pick % cands.len()]);
            let target = match b.kind {
                Break::BadType => among((0..n).filter(|&i| fields[i].ty != Ty::Str).collect()),
                Break::OutOfRange => among(
                    (0..n).filter(|&i| out_of_range_text(&fields[i], b.aux, d.cells[i].spelling).is_some()).collect(),
                ),
                Break::EmptyRequired => among((0..n).filter(|&i| spec.required(i)).collect()),
                Break::StrayQuote => Some(b.pick % n),
                Break::DuplicateKey => spec.pk,
                Break::CellCount => Some(0),
            };
            Some(match target {
                Some(fi) => (b.kind, fi, b.aux),
                None => (Break::CellCount, 0, b.aux),
            })
        })
        .collect();

    // The values: empty cells only in optional fields, and never a whole row of them (a blank
    // row is rejected).
    let mut values: Vec<Vec<Option<Val>>> = draws
        .iter()
        .map(|d| {
            let mut v: Vec<Option<Val>> =
                (0..n).map(|i| (spec.required(i) || !d.cells[i].empty).then(|| d.cells[i].value.clone())).collect();
            if v.iter().all(Option::is_none) {
                v[0] = Some(d.cells[0].value.clone());
            }
            v
        })
        .collect();

    // Keys: distinct over the valid rows; a duplicate repeats the key of an earlier valid row;
    // some other broken rows take the key of a later valid row, which must still load, since
    // only a row that is otherwise valid claims its key.
    let mut taken: HashSet<i64> = HashSet::new();
    let mut dup_of: Vec<Option<usize>> = vec![None; draws.len()];
    if let Some(k) = spec.pk {
        let (lo, hi) =
            (int_of(&fields[k].rules.min).unwrap_or(i64::MIN), int_of(&fields[k].rules.max).unwrap_or(i64::MAX));
        let mut valid_rows = Vec::new();
        for r in 0..draws.len() {
            match breaks[r] {
                None => {
                    let Some(Val::Int(mut key)) = values[r][k] else { unreachable!("a key is required") };
                    while taken.contains(&key) {
                        key = if key >= hi { lo } else { key + 1 };
                    }
                    taken.insert(key);
                    values[r][k] = Some(Val::Int(key));
                    valid_rows.push(r);
                }
                Some((Break::DuplicateKey, _, aux)) if valid_rows.is_empty() => {
                    breaks[r] = Some((Break::CellCount, 0, aux));
                }
                Some((Break::DuplicateKey, _, aux)) => {
                    let first = valid_rows[aux as usize % valid_rows.len()];
                    values[r][k] = values[first][k].clone();
                    dup_of[r] = Some(first);
                }
                Some(_) => {}
            }
        }
        for r in 0..draws.len() {
            if let Some((kind, fi, aux)) = breaks[r] {
                let hits_key = fi == k && matches!(kind, Break::BadType | Break::OutOfRange | Break::EmptyRequired);
                if kind != Break::DuplicateKey
                    && !hits_key
                    && aux & 0x100 != 0
                    && let Some(&later) = valid_rows.iter().find(|&&v| v > r)
                {
                    values[r][k] = values[later][k].clone();
                }
            }
        }
    }

    Plan { breaks, values, dup_of }
}

/// The CSV, the expected rows, and the byte offset where each row ends.
fn render(spec: &Spec, draws: &[RowDraw], file: &FileDraw, plan: &Plan) -> (Case, Vec<usize>) {
    let (n, fields) = (spec.fields.len(), &spec.fields);
    let Plan { breaks, values, dup_of } = plan;
    let term = |d: &RowDraw| match (file.terminators, d.term) {
        (0, _) | (2, 0) => "\n",
        (1, _) | (2, 1) => "\r\n",
        _ => "\r",
    };
    let header: Vec<String> = spec.order.iter().map(|&fi| csv_cell(&fields[fi].name, file.quote_header)).collect();
    let mut csv = String::new();
    if file.bom {
        csv.push('\u{feff}');
    }
    csv += &header.join(",");
    let mut line = 1 + line_breaks(&csv);
    let mut pending_term = draws.first().map_or("\n", term);
    let mut rows: Vec<ExpectedRow> = Vec::with_capacity(draws.len());
    let mut row_ends = Vec::with_capacity(draws.len());
    for (r, d) in draws.iter().enumerate() {
        csv += pending_term;
        line += 1;
        pending_term = term(d);
        let mut cells: Vec<String> = spec
            .order
            .iter()
            .map(|&fi| {
                let c = &d.cells[fi];
                let text = values[r][fi].as_ref().map_or_else(String::new, |v| spell(fields[fi].ty, v, c.spelling));
                csv_cell(&text, c.quote)
            })
            .collect();
        let col = |fi: usize| spec.order.iter().position(|&x| x == fi).expect("every field has a column");
        let broken = breaks[r].map(|(kind, fi, aux)| {
            let c = &d.cells[fi];
            let rules = match kind {
                Break::BadType => {
                    cells[col(fi)] = csv_cell(&bad_type_text(fields[fi].ty, aux), c.quote);
                    vec!["type-error"]
                }
                Break::OutOfRange => {
                    let (t, rules) = out_of_range_text(&fields[fi], aux, c.spelling).expect("checked above");
                    cells[col(fi)] = csv_cell(&t, c.quote);
                    rules
                }
                Break::EmptyRequired => {
                    cells[col(fi)] = if aux & 1 == 0 { String::new() } else { "\"\"".into() };
                    vec!["constraint-error", "blank-row"]
                }
                Break::StrayQuote => {
                    // A quote inside an unquoted field, or text after a closing quote.
                    cells[col(fi)] = if aux & 1 == 0 { "x\"y".into() } else { "\"x\"y".into() };
                    vec!["malformed-row"]
                }
                Break::DuplicateKey => vec!["primary-key"],
                Break::CellCount => {
                    let drop = 1 + (aux as usize >> 1) % (n - 1);
                    let keep = &cells[..n - drop];
                    if aux & 1 == 0 && !keep.concat().is_empty() {
                        cells.truncate(n - drop);
                        vec!["missing-cell", "blank-row"]
                    } else {
                        cells.push("extra".into());
                        if aux & 2 != 0 {
                            cells.push(String::new());
                        }
                        vec!["extra-cell", "blank-row"]
                    }
                }
            };
            (kind, rules)
        });
        let raw = cells.join(",");
        let first_line = dup_of[r].map(|first| rows[first].line);
        rows.push(ExpectedRow {
            line,
            values: if broken.is_none() { values[r].clone() } else { Vec::new() },
            broken,
            first_line,
            raw: raw.clone(),
        });
        line += line_breaks(&raw);
        csv += &raw;
        row_ends.push(csv.len());
    }
    if file.final_terminator {
        csv += pending_term;
    }
    (Case { toml: spec.toml(), csv: csv.into_bytes(), rows }, row_ends)
}

#[test]
fn lines_are_counted_like_the_tokenizer_does() {
    assert_eq!(line_breaks("a\r\nb\rc\nd"), 3);
    assert_eq!(line_breaks("\"x\r\n\r\"\r"), 3);
}
