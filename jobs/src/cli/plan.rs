//! `glueless plan`: what the next load would do to each dataset's warehouse table (create it,
//! add columns, nothing, or refuse), changing nothing, so that a contract change can be
//! reviewed (and gated in CI) before it ships.
//!
//! It asks each table's [`Warehouse::plan_table`]: the very comparison `ensure_table` makes
//! before a load ([`crate::ports::load_plan::evolve`]), in a read-only transaction (SQLite: the
//! file opened read-only; PostgreSQL: `READ ONLY`; Redshift: queries only), so the plan and the
//! load cannot disagree, and no ALTER or ledger row is ever written.
//!
//! Exit codes: 0 every table can follow its contract (created, columns added, or nothing to
//! do); 4 some table would be refused; 2 a contract is broken, `--dataset` names no dataset,
//! or the configuration is wrong; 1 the warehouse did not answer.

use super::exit::Exit;
use super::{CliError, Format, PipelineArgs, for_terminal, shown};
use crate::adapters::SqliteWarehouse;
use crate::pipeline::catalog::Catalog;
use crate::ports::Warehouse;
use crate::ports::load_plan::TableChange;
use serde_json::json;
use std::sync::Arc;

/// One dataset's table and what the next load would do to it.
struct Planned {
    dataset: String,
    table: String,
    change: TableChange,
}

pub async fn run(dataset: Option<String>, args: &PipelineArgs) -> Result<Exit, CliError> {
    let s = super::pipeline::settings(args)?;
    let dir = s.path(&s.contracts.dir);
    let catalog = Catalog::load(&dir).map_err(|e| CliError::Failed { message: e.to_string(), retryable: false })?;
    let entries: Vec<_> =
        catalog.entries.iter().filter(|e| dataset.as_ref().is_none_or(|d| &e.dataset.contract.name == d)).collect();
    if let Some(d) = &dataset
        && entries.is_empty()
    {
        return Err(CliError::Usage(format!("no contract in {} is the dataset `{d}`", dir.display())));
    }
    let warehouse: Arc<dyn Warehouse> = match s.warehouse.url.strip_prefix("sqlite://") {
        Some(p) if !p.is_empty() => Arc::new(SqliteWarehouse::open_read_only(&s.path(p))?),
        _ => crate::startup::open_warehouse(&s).await?,
    };
    let mut planned = Vec::with_capacity(entries.len());
    for e in entries {
        let change = warehouse.plan_table(&e.table).await?;
        planned.push(Planned { dataset: e.dataset.contract.name.clone(), table: e.table.table.clone(), change });
    }
    // A broken contract cannot be planned (the files it claims would be rejected); with
    // --dataset, the others' are listed but do not decide the exit code.
    let broken = &catalog.broken;
    let refused = planned.iter().filter(|p| matches!(p.change, TableChange::Refuse { .. })).count();
    let exit = if !broken.is_empty() && dataset.is_none() {
        Exit::Usage
    } else if refused > 0 {
        Exit::FileRejected
    } else {
        Exit::Clean
    };
    if !args.quiet {
        eprintln!("glueless plan: warehouse {}, contracts {}", warehouse.describe(), dir.display());
        for p in &planned {
            eprintln!("{}", for_terminal(&text(p)));
        }
        for b in broken {
            eprintln!("  contract error: {}", for_terminal(&shown(&b.error)));
        }
        if refused > 0 {
            eprintln!(
                "glueless plan: {refused} table{} would be refused: nothing of its dataset loads until the contract or the table changes",
                if refused == 1 { "" } else { "s" }
            );
        }
    }
    if args.format == Format::Json {
        let v = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "status": match exit { Exit::Clean => "ok", Exit::FileRejected => "refused", _ => "contract_error" },
            "warehouse": warehouse.describe(),
            "tables": planned.iter().map(|p| {
                let mut v = serde_json::to_value(&p.change).unwrap_or_default();
                v["dataset"] = json!(p.dataset);
                v["table"] = json!(p.table);
                v
            }).collect::<Vec<_>>(),
            "broken": broken.iter().map(|b| json!({"path": b.path, "error": shown(&b.error)})).collect::<Vec<_>>(),
            "exit_code": exit.code(),
        });
        println!("{v}");
    }
    Ok(exit)
}

/// The human form of one table's plan.
fn text(p: &Planned) -> String {
    let head = format!("  {} -> {}:", p.dataset, p.table);
    match &p.change {
        TableChange::Create { ddl } => format!("{head} create\n      {}", ddl.replace('\n', "\n      ")),
        TableChange::AddColumns { columns, ddl } => format!(
            "{head} add {} column{}\n      {}",
            columns.len(),
            if columns.len() == 1 { "" } else { "s" },
            ddl.join("\n      ")
        ),
        TableChange::Nothing => format!("{head} nothing to change"),
        TableChange::Refuse { refusals } => {
            let mut out = format!("{head} REFUSED");
            for r in refusals {
                out.push_str(&format!("\n    - {}\n      operator SQL: {}", shown(&r.message), r.sql));
            }
            out
        }
    }
}
