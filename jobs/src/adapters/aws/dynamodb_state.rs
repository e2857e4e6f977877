//! The `StateStore` port on an Amazon DynamoDB table (`[state] url = "dynamodb://TABLE"`,
//! feature `aws`): the state store of the AWS runtime, shared by every worker (process, task or
//! function) that can reach the table.
//!
//! # Table layout
//!
//! One item per file, in a table whose name is the URL's `TABLE`:
//!
//! | attribute       | type | what                                                             |
//! | --------------- | ---- | ---------------------------------------------------------------- |
//! | `url`           | S    | **partition key**: the file's URL                                |
//! | `version`       | S    | **sort key**: its ETag or content fingerprint                    |
//! | `state`         | S    | `RECEIVED`, `RUNNING`, `LOADED`, `REJECTED`, `FAILED` or `DEAD`  |
//! | `updated_at`    | N    | milliseconds since the Unix epoch of the last change             |
//! | `dataset`       | S    | the matched dataset (may be the empty string)                    |
//! | `size`          | N    | bytes                                                            |
//! | `attempts`      | N    | claims so far                                                    |
//! | `received_at`   | N    | ms                                                               |
//! | `owner`, `route`, `last_error`, `load_id` | S | absent when not set                     |
//! | `lease_until`, `retry_at`, `event_time`, `rows_loaded`, `rows_rejected` | N | absent when not set (ms or counts) |
//! | `ttl`           | N    | LOADED only: epoch **seconds** after which DynamoDB may delete it |
//!
//! A global secondary index **`by_state`**: partition key `state` (S), sort key `updated_at`
//! (N), projection `ALL`. It answers `glueless status`: [`StateStore::list`] with states queries
//! it once per state, newest first, and merges; [`StateStore::count_by_state`] queries it with
//! `Select = COUNT` per state. `list` without states scans the table (strongly consistent),
//! except with a `limit`, where it queries the index for every state and stops early.
//!
//! Billing `PAY_PER_REQUEST` suits the load (a few writes per file). Time to live is enabled on
//! the attribute `ttl`: a LOADED file's item expires [`LOADED_TTL_DAYS`] days after it was
//! loaded, far beyond any redelivery window (S3 events, SQS retention of at most 14 days), so a
//! duplicate delivery still finds it. REJECTED, FAILED and DEAD items never expire: they wait
//! for a person (`glueless replay`), and replay removes any `ttl`.
//!
//! In CloudFormation terms (the infrastructure template creates it in production;
//! [`DynamoDbStateStore::ensure_table`] creates the same for local use and tests):
//!
//! ```yaml
//! StateTable:
//!   Type: AWS::DynamoDB::Table
//!   Properties:
//!     BillingMode: PAY_PER_REQUEST
//!     AttributeDefinitions:
//!       - { AttributeName: url, AttributeType: S }
//!       - { AttributeName: version, AttributeType: S }
//!       - { AttributeName: state, AttributeType: S }
//!       - { AttributeName: updated_at, AttributeType: N }
//!     KeySchema:
//!       - { AttributeName: url, KeyType: HASH }
//!       - { AttributeName: version, KeyType: RANGE }
//!     GlobalSecondaryIndexes:
//!       - IndexName: by_state
//!         KeySchema:
//!           - { AttributeName: state, KeyType: HASH }
//!           - { AttributeName: updated_at, KeyType: RANGE }
//!         Projection: { ProjectionType: ALL }
//!     TimeToLiveSpecification: { AttributeName: ttl, Enabled: true }
//! ```
//!
//! An item is at most 400 KB: `last_error` is cut to [`ERROR_MAX`] bytes (saying so), so that a
//! very long reason can never keep an outcome from being recorded.
//!
//! The credentials in use need `dynamodb:GetItem`, `PutItem`, `UpdateItem`, `Query` and `Scan`
//! on the table and `dynamodb:Query` on `TABLE/index/by_state` (plus `DescribeTable`,
//! `CreateTable` and `UpdateTimeToLive` for [`DynamoDbStateStore::ensure_table`]).
//!
//! # Transitions
//!
//! Every transition is one conditional write, so two workers never both win:
//!
//! - register: `PutItem` with `attribute_not_exists(url)`;
//! - claim: `UpdateItem` with `state = RECEIVED OR (state = FAILED AND (attribute_not_exists(retry_at)
//!   OR retry_at <= :now)) OR (state = RUNNING AND (attribute_not_exists(lease_until) OR lease_until
//!   <= :now))`, returning the new item;
//! - renew and finish: conditional on `state = RUNNING AND owner = :me`; `Released` gives the
//!   attempt back with a second condition on `attempts > 0` (an item with no attempt to give back
//!   keeps 0);
//! - replay: conditional on `state IN (REJECTED, FAILED, DEAD)`.
//!
//! A failed condition (`ConditionalCheckFailedException`) is the answer "no" (`false` / `None`),
//! not an error. Throttling, 5xx answers, timeouts and network failures are retryable
//! [`StateError`]s (after the SDK's own retries). Reads of one item are strongly consistent;
//! the index behind `list` and `count_by_state` is eventually consistent (a change may take
//! a moment to show in `glueless status`).
//!
//! The SDK retries a request whose answer was lost: a conditional write that did happen then
//! reads as "no" (a claim that seems lost, whose lease later expires; a finish that seems
//! refused, whose outcome is recorded). Both are safe: the worker stops, nothing is lost.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ReturnValue, ScalarAttributeType, Select, TableStatus, TimeToLiveSpecification,
};

use crate::ports::{Claim, FileKey, FileRecord, FileState, Filter, Millis, NewFile, Outcome, StateError, StateStore};

/// Days a LOADED file's item is kept before DynamoDB's time to live may delete it.
pub const LOADED_TTL_DAYS: i64 = 90;

/// The longest `last_error` kept, in bytes (a DynamoDB item is at most 400 KB).
pub const ERROR_MAX: usize = 64 * 1024;

/// The global secondary index on (`state`, `updated_at`).
pub const STATE_INDEX: &str = "by_state";

/// How long [`DynamoDbStateStore::ensure_table`] waits for a new table to become ACTIVE.
const TABLE_READY_TIMEOUT: Duration = Duration::from_secs(120);

type Item = HashMap<String, AttributeValue>;

/// Per-file state in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoDbStateStore {
    client: Client,
    table: String,
}

impl DynamoDbStateStore {
    /// The store in the table named by `url` (`dynamodb://TABLE`), with the region, credentials
    /// and endpoint of the usual AWS environment (`AWS_REGION`, `AWS_PROFILE`,
    /// `AWS_ACCESS_KEY_ID`, instance or task roles, `AWS_ENDPOINT_URL`…). No call is made until
    /// the first use; the table must exist (see the module docs).
    pub async fn connect(url: &str) -> Result<DynamoDbStateStore, StateError> {
        let table = table_name(url)?;
        let conf = super::config_loader().load().await;
        Ok(DynamoDbStateStore::with_client(Client::new(&conf), table))
    }

    /// The store in table `table` through an SDK client built by the caller (its own endpoint,
    /// region, credentials, retry or timeout settings): what [`DynamoDbStateStore::connect`]
    /// does after reading the environment, and how tests point the adapter at a local emulator
    /// without touching the process environment.
    pub fn with_client(client: Client, table: impl Into<String>) -> DynamoDbStateStore {
        DynamoDbStateStore { client, table: table.into() }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table of the module docs (keys, the [`STATE_INDEX`] index, on-demand
    /// billing, time to live on `ttl`) when it does not exist, and waits until it and its index
    /// are ACTIVE. For local use and tests: production creates the table from the
    /// infrastructure template. An existing table is left as it is (its layout is not checked).
    pub async fn ensure_table(&self) -> Result<(), StateError> {
        if self.table_status().await?.is_none() {
            self.create_table().await?;
        }
        let started = std::time::Instant::now();
        loop {
            if self.table_status().await? == Some(true) {
                return Ok(());
            }
            if started.elapsed() > TABLE_READY_TIMEOUT {
                return Err(StateError {
                    store: self.describe(),
                    message: format!(
                        "the table is not ACTIVE after {} s; check it in the DynamoDB console and try again",
                        TABLE_READY_TIMEOUT.as_secs()
                    ),
                    retryable: true,
                    source: None,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `None` when the table does not exist, else whether it and its indexes are ACTIVE.
    async fn table_status(&self) -> Result<Option<bool>, StateError> {
        match self.client.describe_table().table_name(&self.table).send().await {
            Ok(out) => {
                let Some(t) = out.table() else { return Ok(Some(false)) };
                let indexes_ready =
                    t.global_secondary_indexes().iter().all(|i| i.index_status() == Some(&IndexStatus::Active));
                Ok(Some(t.table_status() == Some(&TableStatus::Active) && indexes_ready))
            }
            Err(e) if code(&e) == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(self.fail("cannot describe the table", e)),
        }
    }

    async fn create_table(&self) -> Result<(), StateError> {
        let built = |e: aws_sdk_dynamodb::error::BuildError| StateError {
            store: self.describe(),
            message: format!("cannot build the table definition: {e}"),
            retryable: false,
            source: Some(e.into()),
        };
        let attr = |name: &str, t: ScalarAttributeType| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(t).build().map_err(built)
        };
        let key = |name: &str, t: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(t).build();
        let index = GlobalSecondaryIndex::builder()
            .index_name(STATE_INDEX)
            .key_schema(key("state", KeyType::Hash).map_err(built)?)
            .key_schema(key("updated_at", KeyType::Range).map_err(built)?)
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .map_err(built)?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("url", ScalarAttributeType::S)?)
            .attribute_definitions(attr("version", ScalarAttributeType::S)?)
            .attribute_definitions(attr("state", ScalarAttributeType::S)?)
            .attribute_definitions(attr("updated_at", ScalarAttributeType::N)?)
            .key_schema(key("url", KeyType::Hash).map_err(built)?)
            .key_schema(key("version", KeyType::Range).map_err(built)?)
            .global_secondary_indexes(index)
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Another process created it meanwhile: wait for it like for ours.
            Err(e) if code(&e) == Some("ResourceInUseException") => return Ok(()),
            Err(e) => return Err(self.fail("cannot create the table", e)),
        }
        // Time to live can only be set once the table exists; a failure here is not fatal for
        // the store (items just never expire), but is reported so the setup gets fixed.
        let spec = TimeToLiveSpecification::builder().attribute_name("ttl").enabled(true).build().map_err(built)?;
        let mut waited = Duration::ZERO;
        loop {
            match self
                .client
                .update_time_to_live()
                .table_name(&self.table)
                .time_to_live_specification(spec.clone())
                .send()
                .await
            {
                Ok(_) => return Ok(()),
                // The table is still being created.
                Err(e) if code(&e) == Some("ResourceInUseException") && waited < TABLE_READY_TIMEOUT => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    waited += Duration::from_millis(500);
                }
                Err(e) => return Err(self.fail("cannot enable time to live on the table", e)),
            }
        }
    }

    /// An SDK error as a [`StateError`] that says what was being done and what may help.
    fn fail<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
        &self,
        doing: &str,
        e: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> StateError {
        let retryable = retryable(&e);
        let what = match (e.code(), e.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_string(),
            _ => DisplayErrorContext(&e).to_string(),
        };
        let hint = self.hint(e.code(), retryable);
        StateError {
            store: self.describe(),
            message: format!("{doing}: {what}; {hint}"),
            retryable,
            source: Some(e.into()),
        }
    }

    fn region(&self) -> String {
        self.client.config().region().map(|r| r.to_string()).unwrap_or_else(|| "(no region set)".into())
    }

    /// What to do after an error with this code (None: the request never got an answer).
    fn hint(&self, code: Option<&str>, retryable: bool) -> String {
        let (table, region) = (&self.table, self.region());
        match code {
            Some("ResourceNotFoundException") => format!(
                "the table {table} (or its index {STATE_INDEX}) does not exist in region {region}: create it (see the \
                 module docs of glueless_jobs::adapters::aws::dynamodb_state, or the infrastructure template) or set \
                 [state] url"
            ),
            Some("AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation") => format!(
                "check that the credentials in use are allowed dynamodb:GetItem, PutItem, UpdateItem, Query and Scan \
                 on the table {table} and dynamodb:Query on {table}/index/{STATE_INDEX}"
            ),
            Some(
                "UnrecognizedClientException"
                | "InvalidClientTokenId"
                | "InvalidSignatureException"
                | "ExpiredToken"
                | "ExpiredTokenException"
                | "MissingAuthenticationToken"
                | "IncompleteSignature",
            ) => "check the AWS credentials in the environment (expired or wrong keys, profile or role)".into(),
            Some("ValidationException") => format!(
                "DynamoDB refused the request as invalid: check that the table {table} has the layout of the module \
                 docs of glueless_jobs::adapters::aws::dynamodb_state, or set [state] url to another table"
            ),
            _ if retryable && code.is_some() => "DynamoDB is busy or throttling: try again later".into(),
            Some(_) => format!("check the table {table} in region {region} and the credentials in use"),
            None => format!(
                "check the network path to DynamoDB in region {region} (and AWS_ENDPOINT_URL, if set); try again later"
            ),
        }
    }

    fn describe_key(key: &FileKey) -> String {
        format!("{} (version {})", key.url, key.version)
    }

    /// A record read from the table, or an error naming the item.
    fn parse(&self, item: &Item) -> Result<FileRecord, StateError> {
        record(item).map_err(|message| StateError {
            store: self.describe(),
            message: format!(
                "an item is not a glueless file record ({message}); was it written by a newer glueless or by hand? \
                 Set [state] url to a table of its own"
            ),
            retryable: false,
            source: None,
        })
    }

    /// A conditional `UpdateItem` of `key`: `Ok(Some(new item))` when the condition held.
    async fn update(
        &self,
        key: &FileKey,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
        doing: &str,
    ) -> Result<Option<Item>, StateError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("url", s(&key.url))
            .key("version", s(&key.version))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names_in(&[update, condition])))
            .return_values(ReturnValue::AllNew);
        for (name, value) in values {
            req = req.expression_attribute_values(name, value);
        }
        match req.send().await {
            Ok(out) => Ok(Some(out.attributes().cloned().unwrap_or_default())),
            Err(e) if code(&e) == Some("ConditionalCheckFailedException") => Ok(None),
            Err(e) => Err(self.fail(&format!("cannot {doing} {}", Self::describe_key(key)), e)),
        }
    }

    /// Records of one state from the index, newest first, that the filter accepts. With `limit`,
    /// stops once no later item can be among the first `limit` of the merged list.
    async fn query_state(
        &self,
        state: FileState,
        filter: &Filter,
        out: &mut Vec<FileRecord>,
    ) -> Result<(), StateError> {
        let (expr, values) = server_filter(filter);
        let mut start: Option<Item> = None;
        let mut mine: Vec<FileRecord> = Vec::new();
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(STATE_INDEX)
                .key_condition_expression("#state = :state")
                .expression_attribute_values(":state", s(state.as_str()))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take());
            let mut exprs = vec!["#state = :state"];
            if let Some(expr) = &expr {
                req = req.filter_expression(expr);
                exprs.push(expr.as_str());
            }
            for (name, value) in &values {
                req = req.expression_attribute_values(*name, value.clone());
            }
            req = req.set_expression_attribute_names(Some(names_in(&exprs)));
            let page = req.send().await.map_err(|e| self.fail("cannot list files", e))?;
            for item in page.items() {
                let r = self.parse(item)?;
                if !matches(filter, &r) {
                    continue;
                }
                if let Some(limit) = filter.limit
                    && mine.len() >= limit
                    && mine.get(limit - 1).is_some_and(|last| r.updated_at < last.updated_at)
                {
                    out.append(&mut mine);
                    return Ok(());
                }
                mine.push(r);
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.append(&mut mine);
        Ok(())
    }

    /// Every record that `filter` accepts, from a strongly consistent scan of the table.
    async fn scan(&self, filter: &Filter, out: &mut Vec<FileRecord>) -> Result<(), StateError> {
        let (expr, values) = server_filter(filter);
        let mut start: Option<Item> = None;
        loop {
            let mut req =
                self.client.scan().table_name(&self.table).consistent_read(true).set_exclusive_start_key(start.take());
            if let Some(expr) = &expr {
                req = req.filter_expression(expr).set_expression_attribute_names(Some(names_in(&[expr])));
            }
            for (name, value) in &values {
                req = req.expression_attribute_values(*name, value.clone());
            }
            let page = req.send().await.map_err(|e| self.fail("cannot list files", e))?;
            for item in page.items() {
                let r = self.parse(item)?;
                if matches(filter, &r) {
                    out.push(r);
                }
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(()),
            }
        }
    }

    /// How many files of `state` (in `dataset`, when given) the index holds.
    async fn count_state(&self, state: FileState, dataset: Option<&str>) -> Result<u64, StateError> {
        let mut start: Option<Item> = None;
        let mut count: u64 = 0;
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(STATE_INDEX)
                .key_condition_expression("#state = :state")
                .expression_attribute_values(":state", s(state.as_str()))
                .set_exclusive_start_key(start.take());
            let mut exprs = vec!["#state = :state"];
            // The empty dataset cannot be compared with `=` everywhere (an empty string value):
            // its files are counted from their `dataset` attribute instead.
            let by_hand = dataset == Some("");
            match dataset {
                Some("") => {
                    req = req.projection_expression("#dataset");
                    exprs.push("#dataset");
                }
                Some(d) => {
                    req = req
                        .select(Select::Count)
                        .filter_expression("#dataset = :dataset")
                        .expression_attribute_values(":dataset", s(d));
                    exprs.push("#dataset = :dataset");
                }
                None => req = req.select(Select::Count),
            }
            req = req.set_expression_attribute_names(Some(names_in(&exprs)));
            let page = req.send().await.map_err(|e| self.fail("cannot count files", e))?;
            if by_hand {
                let empty = |i: &&Item| match i.get("dataset") {
                    None => true,
                    Some(AttributeValue::S(d)) => d.is_empty(),
                    Some(_) => false,
                };
                count += page.items().iter().filter(empty).count() as u64;
            } else {
                count += u64::try_from(page.count()).unwrap_or(0);
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(count),
            }
        }
    }
}

/// The table named by `dynamodb://TABLE`.
fn table_name(url: &str) -> Result<String, StateError> {
    let refuse =
        |message: String| StateError { store: crate::redact::url(url), message, retryable: false, source: None };
    let Some(rest) = url.trim().strip_prefix("dynamodb://") else {
        return Err(refuse("expected a URL such as dynamodb://glueless-state".into()));
    };
    let table = rest.trim_end_matches('/');
    let valid = (3..=255).contains(&table.len())
        && table.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        return Err(refuse(format!(
            "`{}` is not a DynamoDB table name (3 to 255 letters, digits, `_`, `-` or `.`); set [state] url to \
             dynamodb://TABLE",
            crate::redact::url(table)
        )));
    }
    Ok(table.to_string())
}

/// The error code of a service error.
fn code<E: ProvideErrorMetadata>(e: &SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

/// Worth another try: throttling, a 5xx, a timeout or a network failure.
fn retryable<E: ProvideErrorMetadata>(e: &SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>) -> bool {
    super::retryable(
        e,
        &[
            "ProvisionedThroughputExceededException",
            "RequestLimitExceeded",
            "ThrottlingException",
            "Throttling",
            "LimitExceededException",
            "TransactionConflictException",
            "InternalServerError",
            "InternalFailure",
            "ServiceUnavailable",
        ],
    )
}

/// `#name → name` for every `#name` in the expressions (DynamoDB refuses unused names, and
/// `state`, `owner`, `size`, `ttl`… are reserved words).
fn names_in(exprs: &[&str]) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for expr in exprs {
        let mut rest = *expr;
        while let Some(at) = rest.find('#') {
            rest = &rest[at + 1..];
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            names.insert(format!("#{}", &rest[..end]), rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    names
}

/// The part of `filter` DynamoDB can apply (dataset and prefix, when not empty); the rest is
/// applied by [`matches`].
fn server_filter(filter: &Filter) -> (Option<String>, Vec<(&'static str, AttributeValue)>) {
    let mut parts = Vec::new();
    let mut values = Vec::new();
    if let Some(d) = filter.dataset.as_deref().filter(|d| !d.is_empty()) {
        parts.push("#dataset = :dataset");
        values.push((":dataset", s(d)));
    }
    if let Some(p) = filter.url_prefix.as_deref().filter(|p| !p.is_empty()) {
        // begins_with is a literal, case-sensitive prefix.
        parts.push("begins_with(#url, :prefix)");
        values.push((":prefix", s(p)));
    }
    if parts.is_empty() { (None, values) } else { (Some(parts.join(" AND ")), values) }
}

/// Whether `r` passes the filter's dataset and prefix.
fn matches(filter: &Filter, r: &FileRecord) -> bool {
    filter.dataset.as_deref().is_none_or(|d| r.dataset == d)
        && filter.url_prefix.as_deref().is_none_or(|p| r.key.url.starts_with(p))
}

/// `error` cut to [`ERROR_MAX`] bytes at a character boundary, saying so.
fn error_text(error: &str) -> AttributeValue {
    if error.len() <= ERROR_MAX {
        return s(error);
    }
    const CUT: &str = " … (cut: the whole error is in the job's log)";
    let mut end = ERROR_MAX - CUT.len();
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    AttributeValue::S(format!("{}{CUT}", &error[..end]))
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// `now + lease_ms`, without overflowing.
fn deadline(now: Millis, lease_ms: u64) -> Millis {
    now.saturating_add(Millis::try_from(lease_ms).unwrap_or(Millis::MAX))
}

/// The `ttl` (epoch seconds) of a file loaded at `now`.
fn loaded_ttl(now: Millis) -> i64 {
    now.div_euclid(1000).saturating_add(LOADED_TTL_DAYS * 86_400)
}

fn get_s(item: &Item, name: &str) -> Result<Option<String>, String> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
        Some(_) => Err(format!("`{name}` is not a string")),
    }
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<Option<T>, String> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| format!("`{name}` = {v} is out of range")),
        Some(_) => Err(format!("`{name}` is not a number")),
    }
}

fn required<T>(v: Option<T>, name: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("`{name}` is missing"))
}

/// A [`FileRecord`] from an item.
fn record(item: &Item) -> Result<FileRecord, String> {
    let state = required(get_s(item, "state")?, "state")?;
    Ok(FileRecord {
        key: FileKey {
            url: required(get_s(item, "url")?, "url")?,
            version: required(get_s(item, "version")?, "version")?,
        },
        dataset: get_s(item, "dataset")?.unwrap_or_default(),
        size: required(get_n(item, "size")?, "size")?,
        state: FileState::parse(&state).ok_or_else(|| format!("unknown file state {state:?}"))?,
        owner: get_s(item, "owner")?,
        lease_until: get_n(item, "lease_until")?,
        attempts: get_n(item, "attempts")?.unwrap_or(0),
        retry_at: get_n(item, "retry_at")?,
        route: get_s(item, "route")?,
        last_error: get_s(item, "last_error")?,
        event_time: get_n(item, "event_time")?,
        received_at: required(get_n(item, "received_at")?, "received_at")?,
        updated_at: required(get_n(item, "updated_at")?, "updated_at")?,
        load_id: get_s(item, "load_id")?,
        rows_loaded: get_n(item, "rows_loaded")?,
        rows_rejected: get_n(item, "rows_rejected")?,
    })
}

/// Newest updated first; ties in a fixed order.
fn newest_first(records: &mut [FileRecord]) {
    records.sort_by(|a, b| {
        b.updated_at
            .cmp(&a.updated_at)
            .then(b.received_at.cmp(&a.received_at))
            .then_with(|| a.key.url.cmp(&b.key.url))
            .then_with(|| a.key.version.cmp(&b.key.version))
    });
}

/// The condition of every transition out of RUNNING.
const HELD: &str = "#state = :running AND #owner = :me";

#[async_trait::async_trait]
impl StateStore for DynamoDbStateStore {
    fn describe(&self) -> String {
        format!("dynamodb://{}", self.table)
    }

    async fn register(&self, file: &NewFile, now: Millis) -> Result<bool, StateError> {
        let mut item: Item = HashMap::from([
            ("url".to_string(), s(&file.key.url)),
            ("version".to_string(), s(&file.key.version)),
            ("dataset".to_string(), s(&file.dataset)),
            ("size".to_string(), n(file.size)),
            ("state".to_string(), s(FileState::Received.as_str())),
            ("attempts".to_string(), n(0)),
            ("received_at".to_string(), n(now)),
            ("updated_at".to_string(), n(now)),
        ]);
        if let Some(t) = file.event_time {
            item.insert("event_time".to_string(), n(t));
        }
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#url)")
            .expression_attribute_names("#url", "url")
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if code(&e) == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(self.fail(&format!("cannot register {}", Self::describe_key(&file.key)), e)),
        }
    }

    async fn claim(&self, key: &FileKey, claim: &Claim<'_>) -> Result<Option<FileRecord>, StateError> {
        let update = "SET #state = :running, #owner = :me, #lease_until = :lease, #attempts = #attempts + :one, \
                      #route = :route, #updated_at = :now";
        let condition = "attribute_exists(#url) AND (#state = :received \
                         OR (#state = :failed AND (attribute_not_exists(#retry_at) OR #retry_at <= :now)) \
                         OR (#state = :running AND (attribute_not_exists(#lease_until) OR #lease_until <= :now)))";
        let values = vec![
            (":running", s(FileState::Running.as_str())),
            (":received", s(FileState::Received.as_str())),
            (":failed", s(FileState::Failed.as_str())),
            (":me", s(claim.owner)),
            (":lease", n(deadline(claim.now, claim.lease_ms))),
            (":one", n(1)),
            (":route", s(claim.route)),
            (":now", n(claim.now)),
        ];
        match self.update(key, update, condition, values, "claim").await? {
            Some(item) => self.parse(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn renew(&self, key: &FileKey, owner: &str, now: Millis, lease_ms: u64) -> Result<bool, StateError> {
        let values = vec![
            (":running", s(FileState::Running.as_str())),
            (":me", s(owner)),
            (":lease", n(deadline(now, lease_ms))),
        ];
        let renewed = self.update(key, "SET #lease_until = :lease", HELD, values, "renew the claim on").await?;
        Ok(renewed.is_some())
    }

    async fn finish(&self, key: &FileKey, owner: &str, outcome: &Outcome, now: Millis) -> Result<bool, StateError> {
        let mut values = vec![(":running", s(FileState::Running.as_str())), (":me", s(owner)), (":now", n(now))];
        let (update, condition) = match outcome {
            Outcome::Loaded { load_id, rows_loaded, rows_rejected } => {
                values.push((":state", s(FileState::Loaded.as_str())));
                values.push((":load_id", s(load_id)));
                values.push((":rows_loaded", n(rows_loaded)));
                values.push((":rows_rejected", n(rows_rejected)));
                values.push((":ttl", n(loaded_ttl(now))));
                (
                    "SET #state = :state, #load_id = :load_id, #rows_loaded = :rows_loaded, \
                     #rows_rejected = :rows_rejected, #ttl = :ttl, #updated_at = :now REMOVE #last_error, #lease_until",
                    HELD.to_string(),
                )
            }
            Outcome::Rejected { reason, rows_rejected } => {
                values.push((":state", s(FileState::Rejected.as_str())));
                values.push((":error", error_text(reason)));
                values.push((":rows_rejected", n(rows_rejected)));
                (
                    "SET #state = :state, #last_error = :error, #rows_rejected = :rows_rejected, #updated_at = :now \
                     REMOVE #lease_until",
                    HELD.to_string(),
                )
            }
            Outcome::Failed { error, retry_at } => {
                values.push((":state", s(FileState::Failed.as_str())));
                values.push((":error", error_text(error)));
                values.push((":retry_at", n(retry_at)));
                (
                    "SET #state = :state, #last_error = :error, #retry_at = :retry_at, #updated_at = :now \
                     REMOVE #lease_until",
                    HELD.to_string(),
                )
            }
            Outcome::Dead { error } => {
                values.push((":state", s(FileState::Dead.as_str())));
                values.push((":error", error_text(error)));
                ("SET #state = :state, #last_error = :error, #updated_at = :now REMOVE #lease_until", HELD.to_string())
            }
            Outcome::Released => {
                values.push((":state", s(FileState::Received.as_str())));
                values.push((":one", n(1)));
                values.push((":zero", n(0)));
                // attempts = max(attempts - 1, 0) in two conditional writes: one that gives the
                // attempt back, and, when there is none to give, one that keeps 0.
                let give_back = format!("{HELD} AND #attempts > :zero");
                let update =
                    "SET #state = :state, #attempts = #attempts - :one, #updated_at = :now REMOVE #lease_until";
                if self.update(key, update, &give_back, values.clone(), "release").await?.is_some() {
                    return Ok(true);
                }
                values.retain(|(name, _)| *name != ":one");
                (
                    "SET #state = :state, #attempts = :zero, #updated_at = :now REMOVE #lease_until",
                    format!("{HELD} AND (attribute_not_exists(#attempts) OR #attempts <= :zero)"),
                )
            }
        };
        let done = self.update(key, update, &condition, values, "record the outcome of").await?;
        Ok(done.is_some())
    }

    async fn get(&self, key: &FileKey) -> Result<Option<FileRecord>, StateError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("url", s(&key.url))
            .key("version", s(&key.version))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.fail(&format!("cannot read {}", Self::describe_key(key)), e))?;
        match got.item() {
            Some(item) if !item.is_empty() => self.parse(item).map(Some),
            _ => Ok(None),
        }
    }

    async fn list(&self, filter: &Filter) -> Result<Vec<FileRecord>, StateError> {
        if filter.limit == Some(0) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        if !filter.states.is_empty() || filter.limit.is_some() {
            let mut states = if filter.states.is_empty() { FileState::ALL.to_vec() } else { filter.states.clone() };
            states.sort();
            states.dedup();
            for state in states {
                self.query_state(state, filter, &mut out).await?;
            }
        } else {
            self.scan(filter, &mut out).await?;
        }
        newest_first(&mut out);
        if let Some(limit) = filter.limit {
            out.truncate(limit);
        }
        Ok(out)
    }

    async fn count_by_state(&self, dataset: Option<&str>) -> Result<Vec<(FileState, u64)>, StateError> {
        let mut out = Vec::new();
        for state in FileState::ALL {
            let count = self.count_state(state, dataset).await?;
            if count > 0 {
                out.push((state, count));
            }
        }
        Ok(out)
    }

    async fn replay(&self, key: &FileKey, now: Millis) -> Result<bool, StateError> {
        let update = "SET #state = :received, #attempts = :zero, #updated_at = :now \
                      REMOVE #retry_at, #lease_until, #ttl";
        let condition = "#state IN (:rejected, :failed, :dead)";
        let values = vec![
            (":received", s(FileState::Received.as_str())),
            (":rejected", s(FileState::Rejected.as_str())),
            (":failed", s(FileState::Failed.as_str())),
            (":dead", s(FileState::Dead.as_str())),
            (":zero", n(0)),
            (":now", n(now)),
        ];
        Ok(self.update(key, update, condition, values, "replay").await?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13: the SDK's error is the source of a state error, not only words in it.
    #[tokio::test]
    async fn a_failed_call_keeps_the_sdk_error() {
        let conf = super::super::refused_config().await;
        let store = DynamoDbStateStore::with_client(Client::new(&conf), "glueless-state");
        let key = FileKey { url: "s3://lake/landing/a.csv".into(), version: "v1".into() };
        let e = store.get(&key).await.expect_err("nobody listens");
        assert!(e.retryable, "{e}");
        super::super::assert_sdk_source(&e);
    }

    #[test]
    fn the_table_comes_from_the_url() {
        assert_eq!(table_name("dynamodb://glueless-state").unwrap(), "glueless-state");
        assert_eq!(table_name("dynamodb://my_table.v2/").unwrap(), "my_table.v2");
        for bad in ["dynamodb://", "dynamodb://ab", "dynamodb://a/b", "sqlite://x.db", "glueless-state"] {
            let err = table_name(bad).expect_err(bad);
            assert_eq!(err.store, bad);
            assert!(!err.retryable);
            assert!(err.message.contains("dynamodb://"), "{err}");
        }
    }

    #[test]
    fn names_are_the_ones_used() {
        let names = names_in(&["SET #state = :s, #lease_until = :l", "attribute_exists(#url) AND #state = :x"]);
        let mut got: Vec<_> = names.into_iter().collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("#lease_until".to_string(), "lease_until".to_string()),
                ("#state".to_string(), "state".to_string()),
                ("#url".to_string(), "url".to_string()),
            ]
        );
    }

    #[test]
    fn long_errors_are_cut_to_fit_an_item() {
        assert_eq!(error_text("short"), s("short"));
        let long = "é".repeat(ERROR_MAX);
        let AttributeValue::S(cut) = error_text(&long) else { panic!("a string") };
        assert!(cut.len() <= ERROR_MAX && cut.starts_with("éé") && cut.ends_with("log)"), "{}", cut.len());
    }

    #[test]
    fn loaded_items_expire_after_the_ttl_in_seconds() {
        assert_eq!(loaded_ttl(1_700_000_000_123), 1_700_000_000 + LOADED_TTL_DAYS * 86_400);
    }
}
