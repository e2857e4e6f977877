//! A small Redshift Data API for tests: it speaks the Data API's wire protocol over HTTP (AWS
//! JSON 1.1: `POST /` with `X-Amz-Target: RedshiftData.<Action>`) and runs the statements on
//! the test PostgreSQL, so that the Redshift adapter runs end to end with the real AWS SDK.
//! (The local AWS emulator's redshift-data runs no SQL: statements stay STARTED forever.)
//!
//! # What it does
//!
//! - `ExecuteStatement`, `BatchExecuteStatement`, `DescribeStatement`, `GetStatementResult`
//!   (paginated with a small page, so that clients must follow `NextToken`) and
//!   `CancelStatement` (accepted, cancels nothing). A statement runs in the background: a
//!   client must poll `DescribeStatement` (SUBMITTED, STARTED, then FINISHED, FAILED or
//!   ABORTED) and read `SubStatements` (status, error, `ResultRows` = affected rows).
//! - A batch runs in one PostgreSQL transaction, rolled back when a statement fails (that one
//!   FAILED with the error, the rest ABORTED); a lone statement autocommits.
//! - Sessions: `SessionKeepAliveSeconds` without `SessionId` opens a session (one PostgreSQL
//!   connection, which keeps its temporary tables) and answers its `SessionId`; `SessionId`
//!   runs on it, one statement at a time. Without a session every call gets a new connection.
//! - It checks the connection parameters as the Data API does: a database and exactly one of
//!   a cluster or a workgroup, `DbUser` only with a cluster and not with `SecretArn`, none of
//!   them with `SessionId`; at most 40 statements per batch. Every request is logged
//!   ([`DataApiServer::requests`]) for the tests to look at.
//! - Connections use UTC and `standard_conforming_strings = off`, so that a backslash in a
//!   string literal is an escape, as in Redshift.
//! - The one translation: `COPY t FROM 's3://bucket/key' IAM_ROLE … FORMAT AS PARQUET
//!   [MANIFEST]` reads the objects from the local S3 emulator (`GLUELESS_TEST_AWS_ENDPOINT`,
//!   path-style): without `MANIFEST` every object whose key starts with `key` (COPY's prefix
//!   match), with it the manifest's entries (each must have `meta.content_length`, equal to
//!   the object's size; a missing `mandatory` one fails); decodes the Parquet and binds its
//!   columns to the table's by position (their counts must match), then `COPY … FROM STDIN`.
//!   The rest — `CREATE TEMP TABLE`, `LOCK TABLE`, `MERGE`, `DELETE … USING`, the Redshift
//!   type names the adapter uses — is also PostgreSQL (15+) and runs as it is.
//! - Errors read like Redshift's: `ERROR: <message>`, and a PostgreSQL serialization failure
//!   (SQLSTATE 40001) as Redshift's `ERROR: 1023 DETAIL: Serializable isolation violation …`.
//!
//! # What it does not check
//!
//! Redshift's SQL dialect beyond what PostgreSQL shares (a statement Redshift would refuse may
//! run here: this server is no Redshift parser); Redshift's type conversions in COPY (a Parquet
//! column goes through PostgreSQL's text input of the table's type); IAM (roles, credentials,
//! `IAM_ROLE` and signatures are not checked); Redshift's isolation (PostgreSQL's READ
//! COMMITTED with `LOCK TABLE`, not Redshift's serializable isolation, and no real concurrency
//! conflicts but those PostgreSQL raises); session expiry; Data API limits other than the
//! batch size; result formats other than JSON records.

use arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::{SinkExt, StreamExt};
use object_store::aws::AmazonS3;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// Rows per `GetStatementResult` page.
const PAGE: usize = 2;
const MAX_BATCH: usize = 40;

/// A running server; it stops with the test's runtime.
pub struct DataApiServer {
    /// `http://127.0.0.1:PORT`, for the SDK's `endpoint_url`.
    pub endpoint: String,
    state: Arc<State>,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `ExecuteStatement`, `BatchExecuteStatement`, …
    pub action: String,
    pub body: Value,
}

struct State {
    pg_url: String,
    s3_endpoint: String,
    next: AtomicU64,
    statements: Mutex<HashMap<String, Statement>>,
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Client>>>>,
    requests: Mutex<Vec<Received>>,
}

#[derive(Clone)]
struct Statement {
    status: &'static str,
    error: Option<String>,
    batch: bool,
    subs: Vec<Sub>,
    session: Option<String>,
}

#[derive(Clone)]
struct Sub {
    sql: String,
    status: &'static str,
    error: Option<String>,
    rows: i64,
    result: Option<ResultSet>,
}

#[derive(Clone)]
struct ResultSet {
    columns: Vec<Value>,
    records: Vec<Vec<Value>>,
}

/// What one statement did.
struct Done {
    rows: i64,
    result: Option<ResultSet>,
}

impl DataApiServer {
    /// Starts a server on a free loopback port that runs statements on the PostgreSQL
    /// database `pg_url`.
    pub async fn start(pg_url: &str) -> DataApiServer {
        let s3_endpoint = std::env::var("GLUELESS_TEST_AWS_ENDPOINT").expect(
            "GLUELESS_TEST_AWS_ENDPOINT is not set: run the tests with scripts/test, which starts the local AWS emulator",
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            pg_url: pg_url.to_string(),
            s3_endpoint,
            next: AtomicU64::new(1),
            statements: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
        });
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, st.clone()));
            }
        });
        DataApiServer { endpoint, state }
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Received> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The statements (batches: their first SQL) submitted and not ended yet: SUBMITTED or
    /// STARTED. A statement runs to its end whether or not its client is still there, as in
    /// the Data API. (Used by the AWS runtime tests, feature `lambda`.)
    #[cfg(feature = "lambda")]
    pub fn in_flight(&self) -> Vec<String> {
        let statements = self.state.statements.lock().unwrap();
        statements
            .values()
            .filter(|s| matches!(s.status, "SUBMITTED" | "STARTED"))
            .map(|s| s.subs.first().map(|x| x.sql.clone()).unwrap_or_default())
            .collect()
    }

    /// Waits until no statement is in flight ([`Self::in_flight`]); panics after `limit`.
    #[cfg(feature = "lambda")]
    pub async fn wait_idle(&self, limit: std::time::Duration) {
        let started = std::time::Instant::now();
        loop {
            let running = self.in_flight();
            if running.is_empty() {
                return;
            }
            assert!(started.elapsed() < limit, "statements still running after {limit:?}: {running:?}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Every SQL statement submitted so far (batches flattened), in order.
    pub fn statements(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in self.requests() {
            if let Some(sql) = r.body["Sql"].as_str() {
                out.push(sql.to_string());
            }
            if let Some(sqls) = r.body["Sqls"].as_array() {
                out.extend(sqls.iter().filter_map(|s| s.as_str().map(str::to_string)));
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1, just enough for the SDK: requests with Content-Length, keep-alive.

async fn serve(stream: TcpStream, state: Arc<State>) {
    let mut conn = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if conn.read_line(&mut h).await.unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; len];
        if conn.read_exact(&mut body).await.is_err() {
            return;
        }
        let action =
            headers.get("x-amz-target").and_then(|t| t.strip_prefix("RedshiftData.")).unwrap_or("").to_string();
        let (status, answer) = match serde_json::from_slice::<Value>(&body) {
            Ok(input) => state.clone().handle(&action, input).await,
            Err(e) => error(400, "SerializationException", &format!("the body is not JSON: {e}")),
        };
        let text = answer.to_string();
        let mut head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nx-amzn-RequestId: {}\r\n",
            if status == 200 { "OK" } else { "Bad Request" },
            text.len(),
            state.next.fetch_add(1, Ordering::Relaxed)
        );
        if status != 200 {
            head.push_str(&format!("x-amzn-ErrorType: {}\r\n", answer["__type"].as_str().unwrap_or("")));
        }
        head.push_str("\r\n");
        let out = conn.get_mut();
        if out.write_all(head.as_bytes()).await.is_err() || out.write_all(text.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn error(status: u16, kind: &str, message: &str) -> (u16, Value) {
    (status, json!({"__type": kind, "message": message, "Message": message}))
}

// ---------------------------------------------------------------------------------------------
// The Data API.

impl State {
    async fn handle(self: Arc<Self>, action: &str, input: Value) -> (u16, Value) {
        self.requests.lock().unwrap().push(Received { action: action.to_string(), body: input.clone() });
        match action {
            "ExecuteStatement" => match input["Sql"].as_str() {
                Some(sql) => self.submit(&input, vec![sql.to_string()], false).await,
                None => error(400, "ValidationException", "Sql is required"),
            },
            "BatchExecuteStatement" => {
                let sqls: Vec<String> = input["Sqls"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                if sqls.is_empty() || sqls.len() > MAX_BATCH {
                    return error(400, "ValidationException", "Sqls must have 1 to 40 items");
                }
                self.submit(&input, sqls, true).await
            }
            "DescribeStatement" => {
                let id = input["Id"].as_str().unwrap_or("");
                match self.statements.lock().unwrap().get(id) {
                    Some(s) => (200, describe(id, s)),
                    None => error(400, "ResourceNotFoundException", &format!("statement {id} not found")),
                }
            }
            "GetStatementResult" => self.result(&input),
            "CancelStatement" => (200, json!({"Status": true})),
            other => error(400, "UnknownOperationException", &format!("unknown operation `{other}`")),
        }
    }

    /// Checks the connection parameters, opens or finds the session, starts the statement.
    async fn submit(self: Arc<Self>, input: &Value, sqls: Vec<String>, batch: bool) -> (u16, Value) {
        let has = |k: &str| input[k].as_str().is_some_and(|v| !v.is_empty());
        let session_id = input["SessionId"].as_str().map(str::to_string);
        let mut answer = json!({});
        let conn: Arc<tokio::sync::Mutex<Client>> = match &session_id {
            Some(id) => {
                if ["ClusterIdentifier", "WorkgroupName", "Database", "DbUser", "SecretArn"].iter().any(|k| has(k)) {
                    return error(400, "ValidationException", "a request on a session takes no connection parameters");
                }
                match self.sessions.lock().unwrap().get(id) {
                    Some(c) => c.clone(),
                    None => return error(400, "ValidationException", &format!("Session {id} is not available")),
                }
            }
            None => {
                if !has("Database") || has("ClusterIdentifier") == has("WorkgroupName") {
                    return error(
                        400,
                        "ValidationException",
                        "give Database and one of ClusterIdentifier or WorkgroupName",
                    );
                }
                if has("DbUser") && (has("WorkgroupName") || has("SecretArn")) {
                    return error(400, "ValidationException", "DbUser goes with a cluster and without SecretArn");
                }
                for k in ["ClusterIdentifier", "WorkgroupName", "Database", "DbUser", "SecretArn"] {
                    if has(k) {
                        answer[k] = input[k].clone();
                    }
                }
                match connect(&self.pg_url).await {
                    Ok(c) => Arc::new(tokio::sync::Mutex::new(c)),
                    Err(e) => return error(400, "DatabaseConnectionException", &e),
                }
            }
        };
        let session = match (&session_id, input["SessionKeepAliveSeconds"].as_i64()) {
            (Some(id), _) => Some(id.clone()),
            (None, Some(_)) => {
                let id = format!("session-{}", self.next.fetch_add(1, Ordering::Relaxed));
                self.sessions.lock().unwrap().insert(id.clone(), conn.clone());
                Some(id)
            }
            (None, None) => None,
        };
        let id = format!("statement-{}", self.next.fetch_add(1, Ordering::Relaxed));
        let subs = sqls
            .iter()
            .map(|sql| Sub { sql: sql.clone(), status: "SUBMITTED", error: None, rows: -1, result: None })
            .collect();
        let statement = Statement { status: "SUBMITTED", error: None, batch, subs, session: session.clone() };
        self.statements.lock().unwrap().insert(id.clone(), statement);
        tokio::spawn(self.clone().run(id.clone(), sqls, batch, conn));
        answer["Id"] = json!(id);
        if let Some(s) = session {
            answer["SessionId"] = json!(s);
        }
        (200, answer)
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Statement)) {
        if let Some(s) = self.statements.lock().unwrap().get_mut(id) {
            f(s);
        }
    }

    /// Runs the statement(s); a batch in one transaction.
    async fn run(self: Arc<Self>, id: String, sqls: Vec<String>, batch: bool, conn: Arc<tokio::sync::Mutex<Client>>) {
        let client = conn.lock().await;
        self.update(&id, |s| s.status = "STARTED");
        if batch && let Err(e) = client.batch_execute("BEGIN").await {
            self.update(&id, |s| {
                s.status = "FAILED";
                s.error = Some(pg_error(&e));
            });
            return;
        }
        for (i, sql) in sqls.iter().enumerate() {
            self.update(&id, |s| s.subs[i].status = "STARTED");
            match self.execute(&client, sql).await {
                Ok(done) => self.update(&id, |s| {
                    let sub = &mut s.subs[i];
                    sub.status = "FINISHED";
                    sub.rows = done.rows;
                    sub.result = done.result;
                }),
                Err(message) => {
                    if batch {
                        let _ = client.batch_execute("ROLLBACK").await;
                    }
                    self.update(&id, |s| {
                        s.subs[i].status = "FAILED";
                        s.subs[i].error = Some(message.clone());
                        for later in &mut s.subs[i + 1..] {
                            later.status = "ABORTED";
                        }
                        s.status = "FAILED";
                        s.error = Some(if batch { format!("Query #{} failed with {message}", i + 1) } else { message });
                    });
                    return;
                }
            }
        }
        if batch && let Err(e) = client.batch_execute("COMMIT").await {
            self.update(&id, |s| {
                s.status = "FAILED";
                s.error = Some(pg_error(&e));
            });
            return;
        }
        self.update(&id, |s| s.status = "FINISHED");
    }

    async fn execute(&self, client: &Client, sql: &str) -> Result<Done, String> {
        if sql
            .trim_start()
            .get(..5)
            .is_some_and(|w| w.eq_ignore_ascii_case("COPY ") || w.eq_ignore_ascii_case("COPY\n"))
        {
            let copy = parse_copy(sql)?;
            let rows = self.copy_from_s3(client, &copy).await?;
            return Ok(Done { rows: rows as i64, result: None });
        }
        let stmt = client.prepare(sql).await.map_err(|e| pg_error(&e))?;
        if stmt.columns().is_empty() {
            let rows = client.execute(&stmt, &[]).await.map_err(|e| pg_error(&e))?;
            return Ok(Done { rows: rows as i64, result: None });
        }
        let types: Vec<Type> = stmt.columns().iter().map(|c| c.type_().clone()).collect();
        let columns = stmt.columns().iter().map(|c| json!({"name": c.name(), "typeName": c.type_().name()})).collect();
        let mut records = Vec::new();
        for m in client.simple_query(sql).await.map_err(|e| pg_error(&e))? {
            if let SimpleQueryMessage::Row(row) = m {
                records.push((0..types.len()).map(|i| field(row.get(i), &types[i])).collect());
            }
        }
        Ok(Done { rows: records.len() as i64, result: Some(ResultSet { columns, records }) })
    }

    fn result(&self, input: &Value) -> (u16, Value) {
        let id = input["Id"].as_str().unwrap_or("");
        let (main, sub) = match id.rsplit_once(':') {
            Some((m, n)) => (m, n.parse::<usize>().ok().and_then(|n| n.checked_sub(1))),
            None => (id, None),
        };
        let statements = self.statements.lock().unwrap();
        let Some(s) = statements.get(main) else {
            return error(400, "ResourceNotFoundException", &format!("statement {id} not found"));
        };
        let Some(result) = s.subs.get(sub.unwrap_or(0)).and_then(|sub| sub.result.as_ref()) else {
            return error(400, "ValidationException", "the statement has no result set");
        };
        let start: usize = input["NextToken"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
        let end = (start + PAGE).min(result.records.len());
        let mut answer = json!({
            "Records": result.records[start.min(end)..end],
            "ColumnMetadata": result.columns,
            "TotalNumRows": result.records.len(),
        });
        if end < result.records.len() {
            answer["NextToken"] = json!(end.to_string());
        }
        (200, answer)
    }

    // -----------------------------------------------------------------------------------------
    // COPY from S3 Parquet.

    fn bucket(&self, bucket: &str) -> Result<AmazonS3, String> {
        crate::support::emulator_bucket(&self.s3_endpoint, bucket)
            .map_err(|e| format!("ERROR: S3 client for {bucket}: {e}"))
    }

    /// The objects a COPY reads: `(url, bytes)`.
    async fn objects(
        &self,
        copy: &Copy,
    ) -> Result<Vec<(String, impl parquet::file::reader::ChunkReader + 'static)>, String> {
        let (bucket, key) = split_s3(&copy.from)?;
        let store = self.bucket(bucket)?;
        let get = |store: &AmazonS3, key: String| {
            let store = store.clone();
            async move {
                match store.get(&ObjPath::from(key.as_str())).await {
                    Ok(r) => r.bytes().await.map(Some).map_err(|e| e.to_string()),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        if !copy.manifest {
            // COPY from a key loads every object whose key starts with it.
            let parent = key.rsplit_once('/').map(|(p, _)| ObjPath::from(p));
            let mut keys = Vec::new();
            let mut listing = store.list(parent.as_ref());
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(|e| format!("ERROR: S3ServiceException: {e}"))?;
                if meta.location.as_ref().starts_with(key) {
                    keys.push(meta.location.to_string());
                }
            }
            if keys.is_empty() {
                return Err(format!("ERROR: The specified S3 prefix '{key}' does not exist"));
            }
            keys.sort();
            let mut out = Vec::new();
            for k in keys {
                let bytes = get(&store, k.clone()).await.map_err(|e| format!("ERROR: S3ServiceException: {e}"))?;
                out.push((format!("s3://{bucket}/{k}"), bytes.unwrap_or_default()));
            }
            return Ok(out);
        }
        let manifest = get(&store, key.to_string())
            .await
            .map_err(|e| format!("ERROR: S3ServiceException: {e}"))?
            .ok_or_else(|| {
                format!(
                    "ERROR: Problem reading manifest file - S3ServiceException: The specified key does not exist ({})",
                    copy.from
                )
            })?;
        let manifest: Value = serde_json::from_slice(&manifest)
            .map_err(|e| format!("ERROR: Manifest file is not in correct json format: {e}"))?;
        let entries = manifest["entries"].as_array().ok_or("ERROR: Manifest file has no \"entries\" list")?;
        let mut out = Vec::new();
        for e in entries {
            let url = e["url"].as_str().ok_or("ERROR: a manifest entry has no url")?;
            let length = e["meta"]["content_length"].as_u64().ok_or_else(|| {
                format!("ERROR: manifest entry {url} has no meta.content_length, which COPY from Parquet requires")
            })?;
            let (b, k) = split_s3(url)?;
            let store = self.bucket(b)?;
            match get(&store, k.to_string()).await.map_err(|e| format!("ERROR: S3ServiceException: {e}"))? {
                Some(bytes) if bytes.len() as u64 == length => out.push((url.to_string(), bytes)),
                Some(bytes) => {
                    return Err(format!(
                        "ERROR: manifest entry {url} says content_length {length}, the object has {} bytes",
                        bytes.len()
                    ));
                }
                None if e["mandatory"].as_bool() == Some(true) => {
                    return Err(format!(
                        "ERROR: S3ServiceException: The specified key does not exist: mandatory {url}"
                    ));
                }
                None => {}
            }
        }
        Ok(out)
    }

    async fn copy_from_s3(&self, client: &Client, copy: &Copy) -> Result<u64, String> {
        let table_columns = client
            .prepare(&format!("SELECT * FROM {} LIMIT 0", copy.table))
            .await
            .map_err(|e| pg_error(&e))?
            .columns()
            .len();
        let mut csv = Vec::new();
        for (url, bytes) in self.objects(copy).await? {
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|b| b.build())
                .map_err(|e| format!("ERROR: Spectrum Scan Error: File '{url}' is not a valid Parquet file: {e}"))?;
            for batch in reader {
                let batch = batch.map_err(|e| format!("ERROR: Spectrum Scan Error: File '{url}': {e}"))?;
                if batch.num_columns() != table_columns {
                    return Err(format!(
                        "ERROR: Spectrum Scan Error: File '{url}' has an incompatible Parquet schema: {} columns, the table has {table_columns}",
                        batch.num_columns()
                    ));
                }
                let options = FormatOptions::default().with_display_error(true);
                let cells = batch
                    .columns()
                    .iter()
                    .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("ERROR: Spectrum Scan Error: File '{url}': {e}"))?;
                for row in 0..batch.num_rows() {
                    for (i, (col, cell)) in batch.columns().iter().zip(&cells).enumerate() {
                        if i > 0 {
                            csv.push(b',');
                        }
                        if col.is_valid(row) {
                            csv.push(b'"');
                            csv.extend(cell.value(row).to_string().replace('"', "\"\"").as_bytes());
                            csv.push(b'"');
                        }
                    }
                    csv.push(b'\n');
                }
            }
        }
        let sink = client
            .copy_in::<_, std::io::Cursor<Vec<u8>>>(&format!("COPY {} FROM STDIN (FORMAT csv)", copy.table))
            .await
            .map_err(|e| pg_error(&e))?;
        futures::pin_mut!(sink);
        sink.send(std::io::Cursor::new(csv)).await.map_err(|e| pg_error(&e))?;
        sink.finish().await.map_err(|e| pg_error(&e))
    }
}

fn describe(id: &str, s: &Statement) -> Value {
    let sub_json = |i: usize, sub: &Sub| {
        let mut v = json!({
            "Id": format!("{id}:{}", i + 1),
            "Status": sub.status,
            "QueryString": sub.sql,
            "HasResultSet": sub.result.is_some(),
            "ResultRows": sub.rows,
            "ResultSize": -1,
        });
        if let Some(e) = &sub.error {
            v["Error"] = json!(e);
        }
        v
    };
    let mut v = json!({ "Id": id, "Status": s.status });
    if let Some(e) = &s.error {
        v["Error"] = json!(e);
    }
    if let Some(session) = &s.session {
        v["SessionId"] = json!(session);
    }
    if s.batch {
        v["SubStatements"] = s.subs.iter().enumerate().map(|(i, sub)| sub_json(i, sub)).collect();
        v["HasResultSet"] = json!(false);
        v["QueryString"] = json!(s.subs.iter().map(|x| x.sql.as_str()).collect::<Vec<_>>().join("; "));
    } else if let Some(sub) = s.subs.first() {
        v["QueryString"] = json!(sub.sql);
        v["HasResultSet"] = json!(sub.result.is_some());
        v["ResultRows"] = json!(sub.rows);
    }
    v
}

/// A PostgreSQL value (text form) of type `ty` as a Data API `Field`.
fn field(text: Option<&str>, ty: &Type) -> Value {
    let Some(t) = text else { return json!({"isNull": true}) };
    match *ty {
        Type::INT2 | Type::INT4 | Type::INT8 => match t.parse::<i64>() {
            Ok(v) => json!({"longValue": v}),
            Err(_) => json!({"stringValue": t}),
        },
        Type::FLOAT4 | Type::FLOAT8 => match t.parse::<f64>() {
            Ok(v) if v.is_finite() => json!({"doubleValue": v}),
            _ => json!({"stringValue": t}),
        },
        Type::BOOL => json!({"booleanValue": t == "t"}),
        _ => json!({"stringValue": t}),
    }
}

/// `ERROR: message`, with a serialization failure in Redshift's words.
fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) if db.code().code() == "40001" => format!(
            "ERROR: 1023 DETAIL: Serializable isolation violation on table - {}, transactions forming the cycle are: (PostgreSQL: {})",
            db.table().unwrap_or("?"),
            db.message()
        ),
        Some(db) => format!("ERROR: {}", db.message()),
        None => format!("ERROR: {e}"),
    }
}

async fn connect(url: &str) -> Result<Client, String> {
    let (client, conn) =
        tokio_postgres::connect(url, NoTls).await.map_err(|e| format!("cannot reach the database: {e}"))?;
    tokio::spawn(conn);
    client
        .batch_execute("SET TIME ZONE 'UTC'; SET standard_conforming_strings = off; SET escape_string_warning = off")
        .await
        .map_err(|e| format!("cannot set up the session: {e}"))?;
    Ok(client)
}

fn split_s3(url: &str) -> Result<(&str, &str), String> {
    url.strip_prefix("s3://")
        .and_then(|r| r.split_once('/'))
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| format!("ERROR: Invalid S3 URL '{url}'"))
}

/// `COPY <table> FROM '<url>' IAM_ROLE <'arn'|default> FORMAT AS PARQUET [MANIFEST]`.
struct Copy {
    /// As written (quoted identifiers stay quoted).
    table: String,
    from: String,
    manifest: bool,
}

fn parse_copy(sql: &str) -> Result<Copy, String> {
    let unsupported = || {
        format!(
            "ERROR: the test Data API server runs only COPY t FROM 's3://…' IAM_ROLE … FORMAT AS PARQUET [MANIFEST], not: {sql}"
        )
    };
    let tokens = tokenize(sql).ok_or_else(unsupported)?;
    let word =
        |i: usize, w: &str| tokens.get(i).is_some_and(|t| matches!(t, Token::Word(x) if x.eq_ignore_ascii_case(w)));
    let (Some(Token::Word(table) | Token::Ident(table)), Some(Token::Literal(from))) = (tokens.get(1), tokens.get(3))
    else {
        return Err(unsupported());
    };
    let role_ok = matches!(tokens.get(5), Some(Token::Literal(_))) || word(5, "default");
    if !(word(0, "COPY")
        && word(2, "FROM")
        && word(4, "IAM_ROLE")
        && role_ok
        && word(6, "FORMAT")
        && word(7, "AS")
        && word(8, "PARQUET"))
    {
        return Err(unsupported());
    }
    let manifest = match tokens.len() {
        9 => false,
        10 if word(9, "MANIFEST") => true,
        _ => return Err(unsupported()),
    };
    Ok(Copy { table: table.clone(), from: from.clone(), manifest })
}

enum Token {
    Word(String),
    /// A quoted identifier, kept with its quotes.
    Ident(String),
    /// A string literal, unescaped (`''` and backslash escapes).
    Literal(String),
}

fn tokenize(sql: &str) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    let mut chars = sql.trim().trim_end_matches(';').chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            let mut s = String::from(chars.next()?);
            loop {
                let c = chars.next()?;
                s.push(c);
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        s.push(chars.next()?);
                    } else {
                        break;
                    }
                }
            }
            out.push(Token::Ident(s));
        } else if c == '\'' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next()? {
                    '\'' if chars.peek() == Some(&'\'') => {
                        chars.next();
                        s.push('\'');
                    }
                    '\'' => break,
                    '\\' => s.push(chars.next()?),
                    c => s.push(c),
                }
            }
            out.push(Token::Literal(s));
        } else {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '\'' || c == '"' {
                    break;
                }
                s.push(c);
                chars.next();
            }
            out.push(Token::Word(s));
        }
    }
    Some(out)
}
