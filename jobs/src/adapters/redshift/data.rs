//! The [`Warehouse`] port on Amazon Redshift (a provisioned cluster or Serverless) through the
//! Redshift Data API: no driver, no open connection, only HTTPS calls with AWS credentials.
//!
//! The `[warehouse]` keys, the URL forms (a cluster or a Serverless workgroup; a database user,
//! a secret or the caller's IAM identity) and the permissions of the caller, the database user
//! and the `iam_role` are documented for users in docs/warehouses.md ("Amazon Redshift").
//! Region, credentials and endpoint come from the usual AWS environment through `aws-config`
//! (`?region=` in the URL overrides); an empty `iam_role` means `IAM_ROLE default`.
//!
//! # A load
//!
//! See [`super::sql`] for the statements and why the load is exactly once: a ledger
//! read, then staging batches (temporary tables, `COPY … FORMAT AS PARQUET`) and one commit
//! batch (one transaction: lock, guard, version filter, dedupe, `MERGE`, ledger rows) on one
//! Data API session (`SessionKeepAliveSeconds`), then a ledger read of what was recorded.
//! Before any SQL, every staged part of the files to load must be on S3 (else a `Staged`
//! error that says to set `[lake] url = "s3://…"`) and exist (`HEAD`); a file with several
//! parts, or whose only part's key is a prefix of another object's key (a COPY from one key
//! loads every object under that prefix), is copied through a manifest written next to its
//! parts (`<part stem>.<load id>.manifest`, with each part's `content_length`, which COPY
//! from Parquet requires), removed after the load.
//!
//! Each statement is polled with `DescribeStatement` (50 ms, doubling up to 2 s) until
//! FINISHED, FAILED or ABORTED, for at most `statement_timeout_secs`; then it is cancelled
//! and the load fails as retryable (a commit that finishes anyway is found in the ledger by
//! the retry, which then skips the files). A load that fails before its commit leaves only
//! temporary tables, which go with its session (`SessionKeepAliveSeconds` = 120 s).
//!
//! # Tables
//!
//! - The fact table of each dataset, created by [`Warehouse::ensure_table`] (types in
//!   [`super::sql`]; the key is declared as the `PRIMARY KEY`, which Redshift does not
//!   enforce: the load's dedupe keeps it unique). An existing table is compared with the
//!   contract from `information_schema` ([`crate::ports::load_plan::evolve`]; names without
//!   case, as Redshift folds them; the key is not compared, Redshift keeps none): new optional
//!   fields are added in the ensure batch, anything else is refused.
//! - The ledger `glueless_loads(object_url, object_version, fingerprint, load_id, dataset,
//!   table_name, rows_loaded, loaded_at /* ms since the epoch */, ledger_seq /* order of
//!   recording */)`, primary key `(object_url, object_version)`; newest first is
//!   `ORDER BY loaded_at DESC, ledger_seq DESC`.
//!
//! # Errors
//!
//! A failed statement names the failing sub-statement of its batch (`statement 6 of 7 (MERGE
//! INTO …)`, from `DescribeStatement`'s `SubStatements`) and Redshift's message. Redshift's
//! text (without its quoted names and values, see [`statement_cause`]) decides the cause. Refused
//! rows ([`LoadCause::Rows`]: the pipeline finds the culprit file): a violated constraint, a NULL
//! in a NOT NULL column, a value too long or out of range, invalid input, a COPY whose data
//! Redshift refuses (named with its file). Values that validation knows Redshift cannot store
//! ([`WarehouseLimits::redshift`]) are row errors before they get here. Retryable:
//! serializable isolation conflicts (`1023 … Serializable isolation violation`), deadlocks,
//! throttling and limits (`ThrottlingException`, `ActiveStatementsExceededException`, …),
//! an unavailable cluster or connection (`DatabaseConnectionException`,
//! `InternalServerException`, network errors), an aborted or timed-out statement, an expired
//! session. Neither (someone has to act): other SQL errors (a missing column or grant),
//! validation errors, an unknown cluster or workgroup. A failing COPY is a `Staged` error
//! naming the file's parts (retryable), unless Redshift refuses its data or says the Parquet
//! is incompatible with the table (the file was staged for another version of the contract):
//! both are refusals of that file's rows.
//!
//! # Reading back
//!
//! [`Warehouse::fact_rows`] reads with `ExecuteStatement` and `GetStatementResult` (all
//! pages) and turns Redshift's answers into the canonical JSON of the port: `DECIMAL` comes
//! as text and keeps its scale, `TIME` and `TIMESTAMPTZ` come as text and are rewritten to
//! `HH:MM:SS.ffffff` and `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC).
//!
//! Not verified against a real cluster here (the tests run the same SQL on PostgreSQL through
//! a small Data API server, see `tests/blackbox/redshift/`): Redshift's COPY of Parquet `TIME`
//! columns, and the affected-row counts Redshift reports for `MERGE` and `DELETE` in
//! `SubStatements.ResultRows` (used for `rows_merged` and `rows_superseded`; without a count
//! for the `MERGE`, `rows_merged` is the rows read less the rows superseded).

use super::sql::{self, CopyFrom, LoadFile, Redshift, statement_label};
use crate::ports::load_plan::{
    CheckedSpecs, Decision, ExistingColumn, ExistingTable, LoadPlan, Recorded, TableChange, decide, spec_fingerprint,
};
use crate::ports::{
    FileLoad, LedgerRow, LoadCause, LoadRequest, LoadResult, SqlType, StagedFile, TableSpec, Warehouse, WarehouseError,
    WarehouseLimits,
};
use crate::settings::WarehouseSettings;
use aws_sdk_redshiftdata::Client;
use aws_sdk_redshiftdata::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput;
use aws_sdk_redshiftdata::types::{Field, StatementStatusString, StatusString};
use futures::StreamExt;
use glueless_engine::store::Location;
use object_store::ObjectStoreExt;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// How long the Data API keeps a load's session (and its temporary tables) after each batch.
const SESSION_KEEP_ALIVE_SECS: i32 = 120;
const FIRST_POLL: Duration = Duration::from_millis(50);
const MAX_POLL: Duration = Duration::from_secs(2);

/// Where the statements run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Cluster { id: String, database: String, auth: ClusterAuth },
    Workgroup { name: String, database: String, secret_arn: Option<String> },
}

/// How a provisioned cluster is signed into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterAuth {
    DbUser(String),
    SecretArn(String),
    Iam,
}

impl Target {
    /// Parses a `redshift-data://` URL (see the module documentation); also returns its
    /// `region`, if any.
    pub fn parse(url: &str) -> Result<(Target, Option<String>), String> {
        let forms = "use redshift-data://cluster/<cluster-id>/<database>[?db_user=<user>|?secret_arn=<arn>] or \
                     redshift-data://workgroup/<workgroup>/<database>[?secret_arn=<arn>]";
        let u = url::Url::parse(url).map_err(|e| format!("not a URL ({e}); {forms}"))?;
        if u.scheme() != "redshift-data" {
            return Err(format!("the scheme is `{}`, not `redshift-data`; {forms}", u.scheme()));
        }
        let segments: Vec<&str> = u.path_segments().map(|s| s.filter(|p| !p.is_empty()).collect()).unwrap_or_default();
        let [name, database] = segments[..] else {
            return Err(format!("the path must be /<name>/<database>; {forms}"));
        };
        let (mut db_user, mut secret_arn, mut region) = (None, None, None);
        for (k, v) in u.query_pairs() {
            let slot = match k.as_ref() {
                "db_user" => &mut db_user,
                "secret_arn" => &mut secret_arn,
                "region" => &mut region,
                other => {
                    return Err(format!("unknown parameter `{other}`; the parameters are db_user, secret_arn, region"));
                }
            };
            if v.is_empty() {
                return Err(format!("the parameter `{k}` is empty"));
            }
            *slot = Some(v.into_owned());
        }
        let (name, database) = (name.to_string(), database.to_string());
        let target = match u.host_str() {
            Some("cluster") => Target::Cluster {
                id: name,
                database,
                auth: match (db_user, secret_arn) {
                    (Some(_), Some(_)) => return Err("give db_user or secret_arn, not both".into()),
                    (Some(user), None) => ClusterAuth::DbUser(user),
                    (None, Some(arn)) => ClusterAuth::SecretArn(arn),
                    (None, None) => ClusterAuth::Iam,
                },
            },
            Some("workgroup") => {
                if db_user.is_some() {
                    return Err(
                        "Serverless derives the database user from the IAM identity: drop db_user, or give secret_arn"
                            .into(),
                    );
                }
                Target::Workgroup { name, database, secret_arn }
            }
            other => return Err(format!("unknown kind `{}`; {forms}", other.unwrap_or(""))),
        };
        Ok((target, region))
    }

    /// The URL without its parameters (for messages).
    pub fn describe(&self) -> String {
        match self {
            Target::Cluster { id, database, .. } => format!("redshift-data://cluster/{id}/{database}"),
            Target::Workgroup { name, database, .. } => format!("redshift-data://workgroup/{name}/{database}"),
        }
    }
}

/// Sets the target parameters on an `ExecuteStatement` or `BatchExecuteStatement` request.
macro_rules! with_target {
    ($req:expr, $target:expr) => {{
        let req = $req;
        match $target {
            Target::Cluster { id, database, auth } => {
                let req = req.cluster_identifier(id).database(database);
                match auth {
                    ClusterAuth::DbUser(user) => req.db_user(user),
                    ClusterAuth::SecretArn(arn) => req.secret_arn(arn),
                    ClusterAuth::Iam => req,
                }
            }
            Target::Workgroup { name, database, secret_arn } => {
                req.workgroup_name(name).database(database).set_secret_arn(secret_arn.clone())
            }
        }
    }};
}

/// The warehouse in a Redshift database, through the Data API.
pub struct RedshiftDataWarehouse {
    client: Client,
    target: Target,
    iam_role: String,
    timeout: Duration,
    /// The table specs checked against Redshift's limits.
    checked: CheckedSpecs,
}

/// Why a Data API call or statement failed.
#[derive(Debug)]
struct Failure {
    message: String,
    cause: LoadCause,
    /// The failing sub-statement of a batch (0-based), when known.
    sub: Option<usize>,
}

impl Failure {
    fn table(self, table: &str) -> WarehouseError {
        let retryable = self.cause == LoadCause::Transient;
        WarehouseError::Table { table: table.to_string(), message: self.message, retryable }
    }

    fn load(self, table: &str) -> WarehouseError {
        WarehouseError::Load { table: table.to_string(), message: self.message, cause: self.cause }
    }
}

impl RedshiftDataWarehouse {
    /// Reads the AWS configuration from the environment and checks the settings; no call is
    /// made until the first statement.
    pub async fn connect(s: &WarehouseSettings) -> Result<RedshiftDataWarehouse, WarehouseError> {
        let (_, region) = Target::parse(&s.url).map_err(|message| connect_error(&s.url, message))?;
        let mut loader = crate::adapters::aws::config_loader();
        if let Some(r) = region {
            loader = loader.region(aws_config::Region::new(r));
        }
        let conf = loader.load().await;
        if conf.region().is_none() {
            return Err(connect_error(
                &s.url,
                "no AWS region: set AWS_REGION (or a profile with a region), or add ?region=… to the URL".into(),
            ));
        }
        RedshiftDataWarehouse::with_client(Client::new(&conf), s)
    }

    /// The warehouse of `s.url` with an SDK client built by the caller (its own endpoint,
    /// region, credentials, retry or HTTP settings): what `connect` does after reading the
    /// environment, and how the tests point the adapter at their Data API server without
    /// touching the process environment. The URL's `region` is ignored here.
    pub fn with_client(client: Client, s: &WarehouseSettings) -> Result<RedshiftDataWarehouse, WarehouseError> {
        let (target, _) = Target::parse(&s.url).map_err(|message| connect_error(&s.url, message))?;
        Ok(RedshiftDataWarehouse {
            client,
            target,
            iam_role: s.iam_role.trim().to_string(),
            timeout: Duration::from_secs(s.statement_timeout_secs.max(1)),
            checked: CheckedSpecs::default(),
        })
    }

    /// Submits one statement; returns its id.
    async fn submit(&self, sql: &str) -> Result<String, Failure> {
        let req = with_target!(self.client.execute_statement().sql(sql), &self.target);
        let out = req.send().await.map_err(|e| sdk_failure(e, sql))?;
        out.id().map(str::to_string).ok_or_else(|| no_id(sql))
    }

    /// Submits a batch, on `session` or on a new one (kept alive when `keep`); returns its id
    /// and the session's.
    async fn submit_batch(
        &self,
        sqls: &[String],
        session: Option<&str>,
        keep: bool,
    ) -> Result<(String, Option<String>), Failure> {
        let first = sqls.first().map(String::as_str).unwrap_or("");
        let mut req = self.client.batch_execute_statement().set_sqls(Some(sqls.to_vec()));
        // On a session the connection is the session's: the target parameters stay out.
        req = match session {
            Some(id) => req.session_id(id),
            None => with_target!(req, &self.target),
        };
        if keep {
            req = req.session_keep_alive_seconds(SESSION_KEEP_ALIVE_SECS);
        }
        let out = req.send().await.map_err(|e| sdk_failure(e, first))?;
        let id = out.id().map(str::to_string).ok_or_else(|| no_id(first))?;
        Ok((id, out.session_id().map(str::to_string)))
    }

    /// Polls until the statement is done; a failure names the failing sub-statement.
    async fn wait(&self, id: &str, sqls: &[String]) -> Result<DescribeStatementOutput, Failure> {
        let started = Instant::now();
        let mut delay = FIRST_POLL;
        loop {
            let d = self
                .client
                .describe_statement()
                .id(id)
                .send()
                .await
                .map_err(|e| sdk_failure(e, sqls.first().map(String::as_str).unwrap_or("")))?;
            match d.status() {
                Some(StatusString::Finished) => return Ok(d),
                Some(StatusString::Failed) | Some(StatusString::Aborted) => return Err(statement_failure(&d, sqls)),
                _ => {}
            }
            let elapsed = started.elapsed();
            if elapsed >= self.timeout {
                let _ = self.client.cancel_statement().id(id).send().await;
                return Err(Failure {
                    message: format!(
                        "{} was still running after {} s (statement_timeout_secs) and was cancelled",
                        describe_sqls(sqls),
                        self.timeout.as_secs()
                    ),
                    cause: LoadCause::Transient,
                    sub: None,
                });
            }
            tokio::time::sleep(delay.min(self.timeout - elapsed)).await;
            delay = (delay * 2).min(MAX_POLL);
        }
    }

    /// Every row of a finished statement's result, all pages.
    async fn records(&self, id: &str, sql: &str) -> Result<Vec<Vec<Field>>, Failure> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .get_statement_result()
                .id(id)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_failure(e, sql))?;
            out.extend(page.records().iter().cloned());
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    /// Runs one query and returns its rows.
    async fn query(&self, sql: &str) -> Result<Vec<Vec<Field>>, Failure> {
        let id = self.submit(sql).await?;
        let sqls = [sql.to_string()];
        let d = self.wait(&id, &sqls).await?;
        if d.has_result_set() == Some(false) {
            return Ok(Vec::new());
        }
        self.records(&id, sql).await
    }

    /// Runs one batch (one transaction) without a session.
    async fn batch(&self, sqls: &[String]) -> Result<DescribeStatementOutput, Failure> {
        let (id, _) = self.submit_batch(sqls, None, false).await?;
        self.wait(&id, sqls).await
    }

    /// The fact table as `information_schema` describes it (`None` when there is none), with
    /// the answers of the plan's NULL checks (queries only).
    async fn existing_table(&self, plan: &LoadPlan<'_, Redshift>) -> Result<Option<ExistingTable>, WarehouseError> {
        let t = plan.spec.table.as_str();
        let shape = self.query(&sql::table_shape_query(plan)).await.map_err(|f| f.table(t))?;
        let Some(kind) = shape.first().and_then(|r| r.first()).and_then(field_text) else { return Ok(None) };
        if kind != "BASE TABLE" {
            return Err(WarehouseError::not_a_table(t, &kind));
        }
        let columns = shape
            .iter()
            .filter_map(|r| {
                let name = r.get(1).and_then(field_text)?;
                let number = |i: usize| r.get(i).and_then(field_i64);
                let data_type = r.get(2).and_then(field_text).unwrap_or_default();
                Some(ExistingColumn {
                    name,
                    declared: sql::declared_type(&data_type, number(3), number(4), number(5)),
                    nullable: r.get(6).and_then(field_text).is_none_or(|n| n.eq_ignore_ascii_case("YES")),
                })
            })
            .collect();
        let mut table = ExistingTable { columns, unique_keys: None, with_nulls: vec![] };
        for (column, sql) in plan.null_checks(&table) {
            if !self.query(&sql).await.map_err(|f| f.table(t))?.is_empty() {
                table.with_nulls.push(column);
            }
        }
        Ok(Some(table))
    }

    async fn read_ledger(&self, urls: Option<&[&str]>) -> Result<Vec<LedgerEntry>, Failure> {
        let sql = sql::ledger_query(urls);
        self.query(&sql).await?.iter().map(|r| LedgerEntry::from_fields(r)).collect()
    }

    /// Checks the parts of the files to load and picks what each COPY reads; adds the
    /// manifests it writes to `manifests` (to remove after the load, whatever happens).
    async fn prepare_copies(
        &self,
        req: &LoadRequest<'_>,
        decisions: &[Decision],
        manifests: &mut Vec<Location>,
    ) -> Result<Vec<Option<CopyFrom>>, WarehouseError> {
        let mut copies = vec![None; req.files.len()];
        for (i, f) in req.files.iter().enumerate() {
            if !decisions[i].is_load() || f.parts.is_empty() {
                continue;
            }
            let mut sizes = Vec::with_capacity(f.parts.len());
            for part in &f.parts {
                sizes.push(part_size(part).await?);
            }
            let single = f.parts.len() == 1 && !has_prefix_sibling(&f.parts[0]).await?;
            copies[i] = Some(if single {
                CopyFrom::Object(f.parts[0].url.clone())
            } else {
                let manifest = manifest_location(&f.parts[0], req.load_id);
                let entries: Vec<(String, u64)> = f.parts.iter().map(|p| p.url.clone()).zip(sizes).collect();
                let body = sql::manifest_json(&entries);
                manifest.store.put(&manifest.path, body.into_bytes().into()).await.map_err(|e| {
                    WarehouseError::Staged {
                        url: manifest.url.clone(),
                        message: format!("cannot write the COPY manifest: {e}"),
                    }
                })?;
                let from = CopyFrom::Manifest(manifest.url.clone());
                manifests.push(manifest);
                from
            });
        }
        Ok(copies)
    }

    /// Stages and commits; the ledger read of step 0 is done.
    async fn stage_and_commit(
        &self,
        req: &LoadRequest<'_>,
        plan: &LoadPlan<'_, Redshift>,
        decisions: &[Decision],
        copies: &[Option<CopyFrom>],
    ) -> Result<(Vec<FileLoad>, u64, u64), WarehouseError> {
        let spec = req.table;
        let t = spec.table.as_str();
        let files: Vec<LoadFile<'_>> = req
            .files
            .iter()
            .enumerate()
            .filter(|(i, _)| decisions[*i].is_load())
            .map(|(i, f)| LoadFile {
                pos: i,
                url: &f.key.url,
                version: &f.key.version,
                fingerprint: &f.fingerprint,
                copy: copies[i].clone(),
            })
            .collect();
        let sql = sql::plan_sql(plan, req.load_id, req.now, &files, &self.iam_role);

        // 1. Stage, on a session of its own.
        let mut session: Option<String> = None;
        let mut offset = 0;
        for batch in sql.staging_batches() {
            let (id, sid) = self.submit_batch(batch, session.as_deref(), true).await.map_err(|f| f.load(t))?;
            if session.is_none() {
                session = Some(sid.ok_or_else(|| {
                    let message = "the Data API answered the staging batch without a session id";
                    WarehouseError::load(t, message, LoadCause::Transient)
                })?);
            }
            if let Err(f) = self.wait(&id, batch).await {
                let copy = f.sub.and_then(|s| sql.copies.iter().find(|(at, _)| *at == offset + s));
                return Err(match copy {
                    Some(&(_, pos)) => copy_error(spec, &req.files[pos], f),
                    None => f.load(t),
                });
            }
            offset += batch.len();
        }

        // 2. Commit: one transaction.
        let (id, _) = self.submit_batch(&sql.commit, session.as_deref(), false).await.map_err(|f| f.load(t))?;
        // The commit batch is one transaction on the server: the closest a client can die to it.
        crate::pipeline::faults::point("before-ledger");
        let done = self.wait(&id, &sql.commit).await.map_err(|f| f.load(t))?;
        let affected = |i: usize| done.sub_statements().get(i).map_or(0, |s| s.result_rows().max(0) as u64);
        let rows_superseded: u64 = sql.superseded.iter().map(|&i| affected(i)).sum();
        let merge_rows = done.sub_statements().get(sql.merge).map_or(-1, |s| s.result_rows());

        // 3. What this load recorded, and who recorded the files the guard dropped.
        let urls = unique_urls(req.files);
        let after = self.read_ledger(Some(&urls)).await.map_err(|f| WarehouseError::Load {
            table: t.to_string(),
            message: format!(
                "the load committed, but reading the ledger back failed ({}); a retry finds the files in the ledger",
                f.message
            ),
            cause: LoadCause::Transient,
        })?;
        let results = recorded_results(req, decisions, &after)?;
        // Every staged row left after the deletes is merged: the count when the MERGE reports none.
        let rows_merged = if merge_rows >= 0 {
            merge_rows as u64
        } else {
            let read: u64 = results.iter().map(|r| if let FileLoad::Loaded { rows } = r { *rows } else { 0 }).sum();
            read.saturating_sub(rows_superseded)
        };
        Ok((results, rows_superseded, rows_merged))
    }
}

/// What the commit did with each file, from the ledger read back after it: loaded by this
/// load, or by another one (the guard dropped it); a duplicate within the request takes its
/// first occurrence's answer.
fn recorded_results(
    req: &LoadRequest<'_>,
    decisions: &[Decision],
    after: &[LedgerEntry],
) -> Result<Vec<FileLoad>, WarehouseError> {
    let t = req.table.table.as_str();
    let mut results: Vec<FileLoad> = Vec::with_capacity(req.files.len());
    let mut first_of: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, f) in req.files.iter().enumerate() {
        let key = (f.key.url.as_str(), f.key.version.as_str());
        let r = match &decisions[i] {
            Decision::AlreadyLoaded { load_id: id } if id == req.load_id => match first_of.get(&key) {
                Some(&j) => match &results[j] {
                    FileLoad::AlreadyLoaded { load_id } => FileLoad::AlreadyLoaded { load_id: load_id.clone() },
                    FileLoad::Loaded { .. } => FileLoad::AlreadyLoaded { load_id: id.clone() },
                },
                None => FileLoad::AlreadyLoaded { load_id: id.clone() },
            },
            Decision::AlreadyLoaded { load_id: id } => FileLoad::AlreadyLoaded { load_id: id.clone() },
            Decision::Load => match after.iter().find(|e| e.url == key.0 && e.version == key.1) {
                Some(e) if e.load_id == req.load_id => FileLoad::Loaded { rows: e.rows_loaded },
                Some(e) => FileLoad::AlreadyLoaded { load_id: e.load_id.clone() },
                None => match after.iter().find(|e| e.url == key.0) {
                    Some(e) => FileLoad::AlreadyLoaded { load_id: e.load_id.clone() },
                    None => {
                        return Err(WarehouseError::Load {
                            table: t.to_string(),
                            message: format!(
                                "the load committed but the ledger has no row for {} {}; check glueless_loads",
                                key.0, key.1
                            ),
                            cause: LoadCause::Setup,
                        });
                    }
                },
            },
        };
        first_of.entry(key).or_insert(i);
        results.push(r);
    }
    Ok(results)
}

fn connect_error(url: &str, message: String) -> WarehouseError {
    // The parameters may name a secret; the rest goes through the one redaction of URLs.
    let target = crate::redact::url(url.split('?').next().unwrap_or(url));
    WarehouseError::Connect { target, message, unreachable: false }
}

fn no_id(sql: &str) -> Failure {
    Failure {
        message: format!("the Data API answered without a statement id for {}", statement_label(sql)),
        cause: LoadCause::Transient,
        sub: None,
    }
}

fn describe_sqls(sqls: &[String]) -> String {
    match sqls {
        [one] => format!("the statement ({})", statement_label(one)),
        _ => format!("the batch of {} statements", sqls.len()),
    }
}

/// Error codes of the Data API worth another try.
fn retryable_code(code: &str, message: &str) -> bool {
    match code {
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "ActiveStatementsExceededException"
        | "ActiveSessionsExceededException"
        | "ActiveWaitingRequestsExceededException"
        | "InternalServerException"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "DatabaseConnectionException"
        | "QueryTimeoutException"
        | "ExecuteStatementException"
        | "BatchExecuteStatementException" => true,
        // An expired or busy session: a new load starts a new one.
        "ValidationException" | "ResourceNotFoundException" => message.to_lowercase().contains("session"),
        _ => false,
    }
}

/// Whether a statement's error text is a passing condition rather than a wrong statement.
pub fn retryable_sql_error(text: &str) -> bool {
    statement_cause(text) == LoadCause::Transient
}

/// What a statement's error text says of its cause. Redshift's errors carry no SQLSTATE
/// through the Data API, so this reads the text, without its quoted parts: a column named
/// `session_id` or a value `'timeout'` says nothing about the cause.
pub fn statement_cause(text: &str) -> LoadCause {
    let t = unquoted(text).to_lowercase();
    let any = |patterns: &[&str]| patterns.iter().any(|p| t.contains(p));
    if any(&[
        "serializable isolation violation",
        "could not serialize",
        "deadlock",
        "throttl",
        "rate exceeded",
        "cluster is not available",
        "cluster unavailable",
        "currently unavailable",
        "connection",
        "timed out",
        "timeout",
        "terminated",
        "try again",
        "resize",
        "restarting",
        "session",
    ]) {
        return LoadCause::Transient;
    }
    if any(&[
        "violates",
        "null value",
        "cannot insert a null",
        "value too long",
        "string length exceeds",
        "out of range",
        "overflow",
        "invalid input syntax",
        "invalid digit",
        "invalid byte sequence",
        "invalid or unsupported utf-8",
        "division by zero",
        "duplicate key",
        "stl_load_errors",
    ]) {
        return LoadCause::Rows;
    }
    LoadCause::Setup
}

/// `text` without what is between double or single quotes.
fn unquoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut inside: Option<char> = None;
    for c in text.chars() {
        match inside {
            Some(q) if c == q => inside = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => inside = Some(c),
            None => out.push(c),
        }
    }
    out
}

fn sdk_failure<E>(e: SdkError<E>, sql: &str) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let transient = match &e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            retryable_code(err.code().unwrap_or(""), err.message().unwrap_or(""))
        }
        SdkError::ConstructionFailure(_) => false,
        _ => true,
    };
    Failure {
        message: format!("Data API call for ({}) failed: {}", statement_label(sql), DisplayErrorContext(&e)),
        cause: if transient { LoadCause::Transient } else { LoadCause::Setup },
        sub: None,
    }
}

/// A FAILED or ABORTED statement, naming the failing sub-statement of a batch.
fn statement_failure(d: &DescribeStatementOutput, sqls: &[String]) -> Failure {
    let aborted = d.status() == Some(&StatusString::Aborted);
    let subs = d.sub_statements();
    let failed = subs
        .iter()
        .position(|s| s.status() == Some(&StatementStatusString::Failed))
        .or_else(|| subs.iter().position(|s| s.error().is_some_and(|e| !e.is_empty())));
    let error = failed.and_then(|i| subs[i].error()).or(d.error()).filter(|e| !e.is_empty()).unwrap_or(if aborted {
        "the statement was aborted (cancelled, or stopped by workload management)"
    } else {
        "no error text"
    });
    let what = match failed {
        Some(i) => {
            let sql = sqls.get(i).map(String::as_str).or(subs[i].query_string()).unwrap_or("");
            format!("statement {} of {} ({})", i + 1, sqls.len().max(subs.len()), statement_label(sql))
        }
        None => describe_sqls(sqls),
    };
    Failure {
        message: format!("{what} failed: {error}"),
        cause: if aborted && failed.is_none() { LoadCause::Transient } else { statement_cause(error) },
        sub: failed,
    }
}

/// A failed COPY of `file`: its parts do not fit the table or hold values Redshift refuses
/// (the file's fault: a refusal of rows), or are unreadable (retryable).
fn copy_error(spec: &TableSpec, file: &StagedFile, f: Failure) -> WarehouseError {
    let lower = f.message.to_lowercase();
    if !lower.contains("permission denied")
        && (lower.contains("incompatible") || lower.contains("schema") || lower.contains("column count"))
    {
        return WarehouseError::Load {
            table: spec.table.clone(),
            message: format!(
                "{}; the staged Parquet of {} does not fit the table: it was written for another version of the contract of `{}`: stage the file again",
                f.message, file.key.url, spec.dataset
            ),
            cause: LoadCause::Rows,
        };
    }
    if f.cause == LoadCause::Rows {
        let message = format!("the COPY of {} was refused: {}", file.key.url, f.message);
        return WarehouseError::load(&spec.table, message, LoadCause::Rows);
    }
    let url = file.parts.iter().map(|p| p.url.as_str()).collect::<Vec<_>>().join(", ");
    WarehouseError::Staged { url, message: f.message }
}

/// The size of a staged part, which must be on S3 and exist.
async fn part_size(part: &Location) -> Result<u64, WarehouseError> {
    if !part.url.starts_with("s3://") {
        return Err(WarehouseError::Staged {
            url: part.url.clone(),
            message: "Redshift's COPY reads staged files from S3 only, and this one is not on S3: set [lake] url = \"s3://…\" so that staging goes to S3".into(),
        });
    }
    match part.store.head(&part.path).await {
        Ok(meta) => Ok(meta.size),
        Err(object_store::Error::NotFound { .. }) => Err(WarehouseError::Staged {
            url: part.url.clone(),
            message: "the staged part does not exist (removed, or not staged yet)".into(),
        }),
        Err(e) => Err(WarehouseError::Staged { url: part.url.clone(), message: e.to_string() }),
    }
}

/// Whether another object's key starts with the part's key (a COPY from the key would load
/// it too). Keys with that prefix sort right after the key itself: one listing item tells.
async fn has_prefix_sibling(part: &Location) -> Result<bool, WarehouseError> {
    let key = part.path.as_ref();
    let parent = key.rsplit_once('/').map(|(p, _)| object_store::path::Path::from(p));
    let mut listing = part.store.list_with_offset(parent.as_ref(), &part.path);
    match listing.next().await {
        None => Ok(false),
        Some(Ok(meta)) => Ok(meta.location.as_ref().starts_with(key)),
        Some(Err(e)) => {
            Err(WarehouseError::Staged { url: part.url.clone(), message: format!("cannot list next to it: {e}") })
        }
    }
}

/// `<stem>.<load id>.manifest` next to the first part (`stem` without `.parquet`, so that no
/// part key is a prefix of a manifest key).
fn manifest_location(first: &Location, load_id: &str) -> Location {
    let name = first.file_name();
    let stem = name.strip_suffix(".parquet").unwrap_or(name);
    let tag: String =
        load_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    first.with_file_name(&format!("{stem}.{tag}.manifest"))
}

fn unique_urls(files: &[StagedFile]) -> Vec<&str> {
    let mut seen = HashSet::new();
    files.iter().map(|f| f.key.url.as_str()).filter(|u| seen.insert(*u)).collect()
}

/// One row of [`sql::ledger_query`].
#[derive(Debug, Clone)]
struct LedgerEntry {
    url: String,
    version: String,
    fingerprint: String,
    load_id: String,
    dataset: String,
    table_name: String,
    rows_loaded: u64,
    loaded_at: i64,
}

impl LedgerEntry {
    fn from_fields(r: &[Field]) -> Result<LedgerEntry, Failure> {
        let bad = |what: &str| Failure {
            message: format!("unexpected ledger row from the Data API: {what} ({r:?})"),
            cause: LoadCause::Setup,
            sub: None,
        };
        if r.len() < sql::LEDGER_COLUMNS.len() {
            return Err(bad("too few columns"));
        }
        let text = |i: usize| field_text(&r[i]).ok_or_else(|| bad(sql::LEDGER_COLUMNS[i]));
        let int = |i: usize| field_i64(&r[i]).ok_or_else(|| bad(sql::LEDGER_COLUMNS[i]));
        Ok(LedgerEntry {
            url: text(0)?,
            version: text(1)?,
            fingerprint: text(2)?,
            load_id: text(3)?,
            dataset: text(4)?,
            table_name: text(5)?,
            rows_loaded: int(6)?.max(0) as u64,
            loaded_at: int(7)?,
        })
    }
}

fn field_text(f: &Field) -> Option<String> {
    match f {
        Field::StringValue(s) => Some(s.clone()),
        Field::LongValue(v) => Some(v.to_string()),
        Field::DoubleValue(v) => Some(v.to_string()),
        Field::BooleanValue(b) => Some(b.to_string()),
        _ => None,
    }
}

fn field_i64(f: &Field) -> Option<i64> {
    match f {
        Field::LongValue(v) => Some(*v),
        Field::StringValue(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A Data API value of a column of type `ty` in the canonical JSON form of the port.
pub fn canonical(f: &Field, ty: SqlType) -> serde_json::Value {
    use serde_json::Value as J;
    let float = |v: f64| serde_json::Number::from_f64(v).map_or_else(|| J::String(v.to_string()), J::Number);
    match (f, ty) {
        (Field::IsNull(true), _) => J::Null,
        (Field::BooleanValue(b), _) => J::Bool(*b),
        (Field::LongValue(v), SqlType::Float64) => float(*v as f64),
        (Field::LongValue(v), SqlType::Decimal { scale, .. }) => J::String(canonical_decimal(&v.to_string(), scale)),
        (Field::LongValue(v), SqlType::Boolean) => J::Bool(*v != 0),
        (Field::LongValue(v), _) => J::from(*v),
        (Field::DoubleValue(v), SqlType::Decimal { scale, .. }) => J::String(format!("{v:.*}", scale.max(0) as usize)),
        (Field::DoubleValue(v), _) => float(*v),
        (Field::StringValue(s), ty) => {
            let s = s.trim_end_matches('\0');
            match ty {
                SqlType::Int64 | SqlType::Int32 => {
                    s.trim().parse::<i64>().map_or_else(|_| J::String(s.into()), J::from)
                }
                SqlType::Float64 => s.trim().parse::<f64>().map_or_else(|_| J::String(s.into()), float),
                SqlType::Boolean => match s.trim() {
                    "t" | "true" | "TRUE" | "1" => J::Bool(true),
                    "f" | "false" | "FALSE" | "0" => J::Bool(false),
                    other => J::String(other.into()),
                },
                SqlType::Decimal { scale, .. } => J::String(canonical_decimal(s, scale)),
                SqlType::Time => J::String(canonical_time(s)),
                SqlType::Timestamp => J::String(canonical_timestamp(s)),
                SqlType::Date | SqlType::Text => J::String(s.to_string()),
            }
        }
        (Field::BlobValue(b), _) => J::String(String::from_utf8_lossy(b.as_ref()).into_owned()),
        _ => J::Null,
    }
}

/// `12.5` at scale 2 → `12.50`.
fn canonical_decimal(s: &str, scale: i8) -> String {
    let s = s.trim();
    let (sign, digits) = match s.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = if int.is_empty() { "0" } else { int };
    let scale = scale.max(0) as usize;
    let mut frac = frac.to_string();
    while frac.len() > scale && frac.ends_with('0') {
        frac.pop();
    }
    while frac.len() < scale {
        frac.push('0');
    }
    if frac.is_empty() { format!("{sign}{int}") } else { format!("{sign}{int}.{frac}") }
}

/// `13:45:00` → `13:45:00.000000`.
fn canonical_time(s: &str) -> String {
    match chrono::NaiveTime::parse_from_str(s.trim(), "%H:%M:%S%.f") {
        Ok(t) => t.format("%H:%M:%S%.6f").to_string(),
        Err(_) => s.to_string(),
    }
}

/// `2026-11-20 14:45:00.5+01` → `2026-11-20T13:45:00.500000Z`.
fn canonical_timestamp(s: &str) -> String {
    let s = s.trim();
    let utc = chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(s))
        .map(|d| d.naive_utc())
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"));
    match utc {
        Ok(d) => d.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        Err(_) => s.to_string(),
    }
}

#[async_trait::async_trait]
impl Warehouse for RedshiftDataWarehouse {
    fn describe(&self) -> String {
        self.target.describe()
    }

    fn limits(&self) -> WarehouseLimits {
        WarehouseLimits::redshift()
    }

    async fn ensure_table(&self, table: &TableSpec) -> Result<(), WarehouseError> {
        let t = table.table.as_str();
        let plan = self.checked.plan(table, Redshift)?;
        let fingerprint = spec_fingerprint(table);
        // Twice at most: a batch that fails because another loader changed the table at the
        // same time is decided again on the table as it is now.
        let mut tries = 2;
        loop {
            tries -= 1;
            let change = plan.evolution(self.existing_table(&plan).await?.as_ref());
            if let Some(refused) = change.refused(t) {
                return Err(refused);
            }
            let statements = sql::ensure_statements(&plan, &change, &fingerprint, crate::ports::now_ms());
            match self.batch(&statements).await {
                Ok(_) => {}
                Err(_) if tries > 0 && matches!(change, TableChange::AddColumns { .. }) => continue,
                Err(f) => return Err(f.table(t)),
            }
            if matches!(change, TableChange::Create { .. }) && self.existing_table(&plan).await?.is_none() {
                return Err(WarehouseError::Table {
                    table: t.to_string(),
                    message: "the table is not in information_schema after CREATE TABLE; does the user see the schema?"
                        .into(),
                    retryable: true,
                });
            }
            return Ok(());
        }
    }

    async fn plan_table(&self, table: &TableSpec) -> Result<TableChange, WarehouseError> {
        let plan = self.checked.plan(table, Redshift)?;
        Ok(plan.evolution(self.existing_table(&plan).await?.as_ref()))
    }

    async fn load(&self, req: &LoadRequest<'_>) -> Result<LoadResult, WarehouseError> {
        let spec = req.table;
        let t = spec.table.as_str();
        let plan = self.checked.plan(spec, Redshift)?;

        // 0. Which files the ledger already has (or an earlier file of this request).
        let urls = unique_urls(req.files);
        let ledger = self.read_ledger(Some(&urls)).await.map_err(|f| f.load(t))?;
        let rows =
            || ledger.iter().map(|e| (e.url.as_str(), e.version.as_str(), e.fingerprint.as_str(), e.load_id.as_str()));
        let recorded: Vec<Recorded> = req.files.iter().map(|f| Recorded::from_rows(&f.key, rows())).collect();
        let decisions = decide(req.load_id, req.files.iter().map(|f| (&f.key, f.fingerprint.as_str())), &recorded);
        if !decisions.iter().any(Decision::is_load) {
            let files = decisions.iter().map(|d| d.file_load(0)).collect();
            return Ok(LoadResult { files, rows_superseded: 0, rows_merged: 0, direct: false });
        }

        // 1–2. Stage and commit; the manifests go whatever happens.
        let mut manifests = Vec::new();
        let outcome = match self.prepare_copies(req, &decisions, &mut manifests).await {
            Ok(copies) => self.stage_and_commit(req, &plan, &decisions, &copies).await,
            Err(e) => Err(e),
        };
        for m in &manifests {
            let _ = m.store.delete(&m.path).await;
        }
        let (files, rows_superseded, rows_merged) = outcome?;
        Ok(LoadResult { files, rows_superseded, rows_merged, direct: false })
    }

    async fn ledger(&self, object_url: Option<&str>) -> Result<Vec<LedgerRow>, WarehouseError> {
        let urls = object_url.map(|u| [u]);
        let rows = self.read_ledger(urls.as_ref().map(|u| &u[..])).await.map_err(|f| f.table(sql::LEDGER))?;
        Ok(rows
            .into_iter()
            .map(|e| LedgerRow {
                object_url: e.url,
                object_version: e.version,
                fingerprint: e.fingerprint,
                load_id: e.load_id,
                dataset: e.dataset,
                table_name: e.table_name,
                rows_loaded: e.rows_loaded,
                loaded_at: e.loaded_at,
            })
            .collect())
    }

    async fn fact_rows(&self, table: &TableSpec) -> Result<Vec<Vec<serde_json::Value>>, WarehouseError> {
        let t = table.table.as_str();
        let sql = self.checked.plan(table, Redshift)?.select_all();
        let rows = self.query(&sql).await.map_err(|f| f.table(t))?;
        Ok(rows.iter().map(|r| r.iter().zip(&table.columns).map(|(f, c)| canonical(f, c.ty)).collect()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let (t, region) = Target::parse("redshift-data://cluster/c1/dev?db_user=glueless").unwrap();
        assert_eq!(
            t,
            Target::Cluster { id: "c1".into(), database: "dev".into(), auth: ClusterAuth::DbUser("glueless".into()) }
        );
        assert_eq!(region, None);
        let arn = "arn:aws:secretsmanager:eu-west-1:1:secret:rs/x-AbC";
        let (t, region) =
            Target::parse(&format!("redshift-data://cluster/c1/dev?secret_arn={arn}&region=eu-west-1")).unwrap();
        assert_eq!(
            t,
            Target::Cluster { id: "c1".into(), database: "dev".into(), auth: ClusterAuth::SecretArn(arn.into()) }
        );
        assert_eq!(region.as_deref(), Some("eu-west-1"));
        let (t, _) = Target::parse("redshift-data://cluster/c1/dev").unwrap();
        assert!(matches!(t, Target::Cluster { auth: ClusterAuth::Iam, .. }));
        let (t, _) = Target::parse("redshift-data://workgroup/wg/dev").unwrap();
        assert_eq!(t, Target::Workgroup { name: "wg".into(), database: "dev".into(), secret_arn: None });
        assert_eq!(t.describe(), "redshift-data://workgroup/wg/dev");
        for bad in [
            "redshift-data://cluster/c1",
            "redshift-data://cluster/c1/dev/x",
            "redshift-data://warehouse/c1/dev",
            "redshift-data://cluster/c1/dev?user=x",
            "redshift-data://cluster/c1/dev?db_user=x&secret_arn=y",
            "redshift-data://workgroup/wg/dev?db_user=x",
            "postgres://cluster/c1/dev",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn canonical_forms() {
        use serde_json::json;
        let s = |v: &str| Field::StringValue(v.into());
        assert_eq!(canonical(&s("12.5"), SqlType::Decimal { precision: 20, scale: 2 }), json!("12.50"));
        assert_eq!(canonical(&s("-0.05"), SqlType::Decimal { precision: 20, scale: 2 }), json!("-0.05"));
        assert_eq!(canonical(&s("13:45:00"), SqlType::Time), json!("13:45:00.000000"));
        assert_eq!(canonical(&s("23:59:59.123456"), SqlType::Time), json!("23:59:59.123456"));
        assert_eq!(canonical(&s("2026-11-20 14:45:00.5+01"), SqlType::Timestamp), json!("2026-11-20T13:45:00.500000Z"));
        assert_eq!(canonical(&s("1970-01-01 00:00:00+00"), SqlType::Timestamp), json!("1970-01-01T00:00:00.000000Z"));
        assert_eq!(canonical(&s("2026-11-20 13:45:00"), SqlType::Timestamp), json!("2026-11-20T13:45:00.000000Z"));
        assert_eq!(canonical(&Field::LongValue(7), SqlType::Int32), json!(7));
        assert_eq!(canonical(&Field::DoubleValue(0.25), SqlType::Float64), json!(0.25));
        assert_eq!(canonical(&Field::IsNull(true), SqlType::Text), json!(null));
        assert_eq!(canonical(&Field::BooleanValue(false), SqlType::Boolean), json!(false));
    }

    #[test]
    fn retryable_errors() {
        assert!(retryable_sql_error(
            "ERROR: 1023 DETAIL: Serializable isolation violation on table - 100, transactions forming the cycle are: 1, 2"
        ));
        assert!(retryable_sql_error("ERROR: deadlock detected"));
        assert!(!retryable_sql_error("ERROR: column \"x\" does not exist"));
        assert!(!retryable_sql_error("ERROR: new row for relation \"t\" violates check constraint \"c\""));
        assert!(retryable_code("ThrottlingException", ""));
        assert!(retryable_code("ActiveStatementsExceededException", ""));
        assert!(!retryable_code("ValidationException", "Cluster identifier is invalid"));
        // Names and values in quotes say nothing of the cause.
        assert_eq!(statement_cause("ERROR: column \"session_timeout\" does not exist"), LoadCause::Setup);
        assert_eq!(
            statement_cause("ERROR: new row for relation \"t\" violates check constraint \"c\""),
            LoadCause::Rows
        );
        assert_eq!(statement_cause("ERROR: value too long for type character varying(65535)"), LoadCause::Rows);
        assert_eq!(statement_cause("ERROR: permission denied for relation fact"), LoadCause::Setup);
        assert_eq!(statement_cause("ERROR: connection reset by peer"), LoadCause::Transient);
        // An unreadable staged part is the staging's problem (retried), a value that does not fit is the rows'.
        let scan = "ERROR: Spectrum Scan Error: File 's3://b/p.parquet' is not a valid Parquet file";
        assert_eq!(statement_cause(scan), LoadCause::Setup);
        let scan = "ERROR: Spectrum Scan Error: String length exceeds DDL length";
        assert_eq!(statement_cause(scan), LoadCause::Rows);
        assert!(retryable_code("ValidationException", "Session is not available"));
    }
}
