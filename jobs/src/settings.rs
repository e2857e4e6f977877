//! `glueless.toml`: one file, every key overridable as `GLUELESS__SECTION__KEY`, validated at
//! start with errors that name the key and say what to change.
//!
//! Every key, its default and its unit are in docs/configuration.md (the `[limits]` keys in
//! docs/hostile-input-engine.md); the structs below are their source of truth.
//!
//! Relative paths (lake folder, contracts dir, SQLite files) are relative to the folder of the
//! config file, or to the current folder when there is none.
//!
//! Errors never show a secret: a URL they name (and any URL a TOML parse error quotes from the
//! file) goes through [`crate::redact`].

use serde::Deserialize;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub lake: LakeSettings,
    pub contracts: ContractSettings,
    pub state: UrlSettings,
    pub warehouse: WarehouseSettings,
    pub alerts: AlertSettings,
    pub run: RunSettings,
    pub queue: QueueSettings,
    pub ecs: EcsSettings,
    pub limits: LimitsSettings,
    /// The folder relative paths are resolved against (not a key of the file).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakeSettings {
    pub url: String,
    pub landing: String,
    pub staging: String,
    pub rejected: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContractSettings {
    pub dir: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlSettings {
    pub url: String,
}

/// `[warehouse]`: where the fact tables are, and what the server-backed warehouses need.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WarehouseSettings {
    /// `sqlite://PATH`, `postgres://USER@HOST:PORT/DB`, or `redshift-data://…`.
    pub url: String,
    /// PostgreSQL: the environment variable that holds the password (never put it in the URL).
    pub password_env: String,
    /// PostgreSQL: a file that holds the password (e.g. a mounted secret); wins over `password_env`.
    pub password_file: String,
    /// PostgreSQL: `disable`, `require` (TLS, server certificate checked against the system's
    /// roots and `ca_file`).
    pub tls: String,
    /// PostgreSQL: a PEM file with extra CA certificates for `tls = "require"`.
    pub ca_file: String,
    /// Redshift: the IAM role ARN that COPY assumes to read the staging files.
    pub iam_role: String,
    /// Redshift: how long one load may take before it is reported as failed (retryable).
    pub statement_timeout_secs: u64,
}

impl Default for WarehouseSettings {
    fn default() -> Self {
        WarehouseSettings {
            url: "sqlite://warehouse.db".into(),
            password_env: "PGPASSWORD".into(),
            password_file: String::new(),
            tls: "disable".into(),
            ca_file: String::new(),
            iam_role: String::new(),
            statement_timeout_secs: 900,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// A Slack-compatible incoming webhook (JSON POST with `text`); empty: log only.
    pub webhook_url: String,
    /// An SNS topic ARN (feature `aws`): alerts are published there (AWS Chatbot can forward
    /// them to Slack). Wins over `webhook_url`.
    pub sns_topic_arn: String,
    /// Put the cell values (and the messages that quote them) of the first row errors into
    /// alerts. Off by default: cells may be personal data, and an alert channel is read more
    /// widely than the quarantine.
    pub include_values: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSettings {
    pub poll_interval_ms: u64,
    pub lease_secs: u64,
    pub max_attempts: u32,
    pub retry_base_secs: f64,
    pub retry_max_secs: f64,
    pub inline_max_bytes: u64,
    pub batch_max_files: usize,
    pub batch_max_wait_ms: u64,
    /// Files of one batch transformed at once.
    pub max_concurrent_files: usize,
    /// Batches `glueless run` works on at once: while one is in the warehouse, the others are
    /// claimed and transformed (loads into one table still commit one at a time). Three keep
    /// two cores busy where two left a third of them idle (a batch's claims, load and state
    /// updates are each one at a time). At most `max_concurrent_batches × max_concurrent_files`
    /// file jobs run at once, each within `[limits] memory_mb`.
    pub max_concurrent_batches: usize,
    pub keep_staging: bool,
    /// A local folder is not written atomically: a file is taken once it was seen unchanged
    /// this long (its modification time this old, or the same on two looks this far apart).
    pub settle_ms: u64,
    /// Lambda: stop starting files, and hand back the claims of unfinished ones, this long
    /// before the invocation's deadline.
    pub deadline_reserve_secs: u64,
}

/// `[queue]`: the SQS queue `glueless worker` long-polls (feature `aws`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSettings {
    /// The queue URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`).
    pub url: String,
    /// Long-poll wait per receive (0–20 s).
    pub wait_secs: u32,
    /// Messages per receive (1–10).
    pub max_messages: u32,
    /// While a message is in work its visibility is extended to this many seconds, every
    /// third of it.
    pub visibility_secs: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings { url: String::new(), wait_secs: 20, max_messages: 10, visibility_secs: 300 }
    }
}

/// `[ecs]`: where files above `run.inline_max_bytes` run when the dispatcher is the Lambda
/// function or the SQS worker (feature `aws`). Empty `cluster`: they run in the dispatcher.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EcsSettings {
    pub cluster: String,
    /// The task definition (family, `family:revision` or ARN); its container runs `glueless task`.
    pub task_definition: String,
    /// The container whose environment names the file.
    pub container: String,
    /// Comma-separated subnet ids (awsvpc networking, required by Fargate).
    pub subnets: String,
    /// Comma-separated security group ids.
    pub security_groups: String,
    pub assign_public_ip: bool,
    /// `FARGATE`, `FARGATE_SPOT` (a capacity provider) or `EC2`.
    pub launch_type: String,
    /// How long a launched file is held for its task to start and take it over; after that
    /// the claim lapses and the next delivery or sweep launches it again.
    pub start_lease_secs: u64,
    /// How often a dispatcher (a warm Lambda container, a worker) looks for files whose task
    /// died (RUNNING past the lease) or failed (FAILED, retry due), and launches them again.
    pub sweep_secs: u64,
}

impl Default for EcsSettings {
    fn default() -> Self {
        EcsSettings {
            cluster: String::new(),
            task_definition: String::new(),
            container: "glueless".into(),
            subnets: String::new(),
            security_groups: String::new(),
            assign_public_ip: false,
            launch_type: "FARGATE".into(),
            start_lease_secs: 600,
            sweep_secs: 300,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lake: LakeSettings::default(),
            contracts: ContractSettings::default(),
            state: UrlSettings { url: "sqlite://glueless-state.db".into() },
            warehouse: WarehouseSettings::default(),
            alerts: AlertSettings::default(),
            run: RunSettings::default(),
            queue: QueueSettings::default(),
            ecs: EcsSettings::default(),
            limits: LimitsSettings::default(),
            base_dir: PathBuf::from("."),
        }
    }
}

impl Default for LakeSettings {
    fn default() -> Self {
        LakeSettings {
            url: "./lake".into(),
            landing: "landing/".into(),
            staging: "staging/".into(),
            rejected: "rejected/".into(),
        }
    }
}

impl Default for ContractSettings {
    fn default() -> Self {
        ContractSettings { dir: "schemas".into() }
    }
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            poll_interval_ms: 1000,
            lease_secs: 300,
            max_attempts: 5,
            retry_base_secs: 30.0,
            retry_max_secs: 3600.0,
            inline_max_bytes: 1 << 30,
            batch_max_files: 20,
            batch_max_wait_ms: 100,
            max_concurrent_files: 2,
            max_concurrent_batches: 3,
            keep_staging: false,
            settle_ms: 250,
            deadline_reserve_secs: 20,
        }
    }
}

/// `[limits]`: the bounds of one file job (the engine's [`glueless_engine::Limits`], in MB).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSettings {
    /// The memory budget of a file job, the one knob for it: the transform's DataFusion pool
    /// gets half of it, the file's `primaryKey`/`unique` indexes an eighth (past it they spill
    /// to the temp dir), the rest is the reader, the batches in flight and the Parquet writer.
    pub memory_mb: u64,
    pub max_record_mb: u64,
    pub batch_mb: u64,
    pub max_row_errors: u64,
    pub max_columns: u64,
    pub decompressed_ratio: u64,
    pub decompressed_floor_mb: u64,
    pub quarantine_ratio: u64,
    pub quarantine_floor_mb: u64,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        let l = glueless_engine::Limits::default();
        LimitsSettings {
            memory_mb: (l.transform_memory_bytes as u64 * 2) >> 20,
            max_record_mb: l.max_record_bytes as u64 >> 20,
            batch_mb: l.batch_bytes as u64 >> 20,
            max_row_errors: l.max_row_errors as u64,
            max_columns: l.max_columns as u64,
            decompressed_ratio: l.decompressed_ratio,
            decompressed_floor_mb: l.decompressed_floor_bytes >> 20,
            quarantine_ratio: l.quarantine_ratio,
            quarantine_floor_mb: l.quarantine_floor_bytes >> 20,
        }
    }
}

impl LimitsSettings {
    /// The engine's limits.
    pub fn engine(&self) -> glueless_engine::Limits {
        let mb = |v: u64| usize::try_from(v.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        glueless_engine::Limits {
            transform_memory_bytes: mb(self.memory_mb / 2),
            key_index_bytes: mb(self.memory_mb) / 8,
            max_record_bytes: mb(self.max_record_mb),
            batch_bytes: mb(self.batch_mb),
            max_row_errors: usize::try_from(self.max_row_errors).unwrap_or(usize::MAX),
            max_columns: usize::try_from(self.max_columns).unwrap_or(usize::MAX),
            decompressed_ratio: self.decompressed_ratio,
            decompressed_floor_bytes: self.decompressed_floor_mb.saturating_mul(1 << 20),
            quarantine_ratio: self.quarantine_ratio,
            quarantine_floor_bytes: self.quarantine_floor_mb.saturating_mul(1 << 20),
        }
    }

    fn validate(&self) -> Result<(), String> {
        let ranges = [
            ("limits.memory_mb", self.memory_mb, 16, u64::MAX),
            ("limits.max_record_mb", self.max_record_mb, 1, 1023),
            ("limits.batch_mb", self.batch_mb, 1, 1023),
            ("limits.max_row_errors", self.max_row_errors, 2, u64::MAX),
            ("limits.max_columns", self.max_columns, 1, u64::MAX),
            ("limits.decompressed_ratio", self.decompressed_ratio, 1, u64::MAX),
            ("limits.quarantine_ratio", self.quarantine_ratio, 1, u64::MAX),
        ];
        for (key, v, min, max) in ranges {
            if v < min || v > max {
                let range = if max == u64::MAX { format!("at least {min}") } else { format!("{min}–{max}") };
                return Err(format!(
                    "{key} = {v} must be {range} (records and batches share 32-bit offsets below 2 GiB)"
                ));
            }
        }
        Ok(())
    }
}

/// A configuration that cannot be used, with what to change.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {}", crate::redact::text(.message))]
pub struct SettingsError {
    /// The file, or the environment variable, the problem comes from.
    pub source_name: String,
    pub message: String,
}

/// The prefix of environment overrides: `GLUELESS__RUN__LEASE_SECS=60`.
pub const ENV_PREFIX: &str = "GLUELESS__";

impl Settings {
    /// Loads `path` (or `./glueless.toml` if it exists, else the defaults) and applies the
    /// `GLUELESS__…` variables of `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, SettingsError> {
        let (file, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("glueless.toml"), false),
        };
        let source_name = file.display().to_string();
        let mut table = match std::fs::read_to_string(&file) {
            Ok(text) => text.parse::<toml::Table>().map_err(|e| SettingsError {
                source_name: source_name.clone(),
                message: format!("not valid TOML: {e}"),
            })?,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => toml::Table::new(),
            Err(e) => {
                return Err(SettingsError {
                    source_name,
                    message: format!("cannot read the config file: {e}; pass an existing file to --config"),
                });
            }
        };
        let mut overrides: Vec<String> = Vec::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else { continue };
            let parts: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
            let [section, key] = parts.as_slice() else {
                return Err(SettingsError {
                    source_name: name.clone(),
                    message: format!("expected {ENV_PREFIX}SECTION__KEY, e.g. {ENV_PREFIX}RUN__LEASE_SECS"),
                });
            };
            let entry = table.entry(section.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(t) = entry.as_table_mut() else {
                return Err(SettingsError { source_name: name, message: format!("`{section}` is not a section") });
            };
            t.insert(key.clone(), env_value(&value));
            overrides.push(name);
        }
        let described = if overrides.is_empty() {
            source_name.clone()
        } else {
            format!("{source_name} (with {})", overrides.join(", "))
        };
        let mut s: Settings = Settings::deserialize(toml::Value::Table(table))
            .map_err(|e| SettingsError { source_name: described.clone(), message: e.message().to_string() })?;
        s.base_dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        s.validate().map_err(|message| SettingsError { source_name: described, message })?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), String> {
        let r = &self.run;
        let positive = [
            ("run.poll_interval_ms", r.poll_interval_ms),
            ("run.lease_secs", r.lease_secs),
            ("run.max_attempts", r.max_attempts as u64),
            ("run.batch_max_files", r.batch_max_files as u64),
            ("run.max_concurrent_files", r.max_concurrent_files as u64),
            ("run.max_concurrent_batches", r.max_concurrent_batches as u64),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(format!("{key} must be at least 1"));
            }
        }
        if !(r.retry_base_secs >= 0.0 && r.retry_max_secs >= r.retry_base_secs) {
            return Err("run.retry_base_secs must be >= 0 and run.retry_max_secs >= run.retry_base_secs".into());
        }
        for (key, v) in [
            ("lake.landing", &self.lake.landing),
            ("lake.staging", &self.lake.staging),
            ("lake.rejected", &self.lake.rejected),
        ] {
            if v.starts_with('/') || v.contains("..") {
                return Err(format!("{key} = {v:?} must be a prefix inside the lake, like \"landing/\""));
            }
        }
        let prefixes = [&self.lake.landing, &self.lake.staging, &self.lake.rejected];
        for a in prefixes {
            for b in prefixes {
                if !std::ptr::eq(a, b) && (a.is_empty() || a.starts_with(b.as_str())) {
                    return Err(format!(
                        "lake.landing, lake.staging and lake.rejected must be separate prefixes (got {:?}, {:?}, {:?}); otherwise glueless would pick up its own output",
                        self.lake.landing, self.lake.staging, self.lake.rejected
                    ));
                }
            }
        }
        let q = &self.queue;
        if q.wait_secs > 20 || !(1..=10).contains(&q.max_messages) || !(1..=43_200).contains(&q.visibility_secs) {
            return Err(format!(
                "queue.wait_secs must be 0–20 (got {}), queue.max_messages 1–10 (got {}), queue.visibility_secs 1–43200 (got {}): SQS's limits",
                q.wait_secs, q.max_messages, q.visibility_secs
            ));
        }
        if !self.ecs.cluster.is_empty() && self.ecs.task_definition.is_empty() {
            return Err("ecs.cluster is set but ecs.task_definition is empty: name the task definition whose container runs `glueless task`".into());
        }
        self.limits.validate()?;
        if self.state.url.is_empty() || self.warehouse.url.is_empty() {
            return Err("state.url and warehouse.url must not be empty".into());
        }
        let hook = &self.alerts.webhook_url;
        if !hook.is_empty() && url::Url::parse(hook).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
            return Err(format!(
                "alerts.webhook_url = {:?} is not an http(s) URL; give the incoming webhook's URL \
                 (https://hooks.slack.com/services/…), or leave it empty to alert to the log",
                crate::redact::url(hook)
            ));
        }
        Ok(())
    }

    /// A path from the config, resolved against the config file's folder, without `.`
    /// components (`./lake` in a config in `.` is `lake`, not `././lake`). `..` is kept: with
    /// symbolic links, dropping it with the component before it could name another folder.
    pub fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        let joined = if p.is_absolute() { p.to_path_buf() } else { self.base_dir.join(p) };
        let out: PathBuf = joined.components().filter(|c| *c != Component::CurDir).collect();
        if out.as_os_str().is_empty() { PathBuf::from(".") } else { out }
    }

    /// The lease in milliseconds.
    pub fn lease_ms(&self) -> u64 {
        self.run.lease_secs.saturating_mul(1000)
    }
}

/// An environment value as TOML: numbers and booleans typed, anything else a string.
fn env_value(v: &str) -> toml::Value {
    if let Ok(i) = v.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(f) = v.parse::<f64>() {
        toml::Value::Float(f)
    } else if let Ok(b) = v.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_without_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings::load(None, env(&[])).unwrap_or_else(|e| panic!("{e} in {}", dir.path().display()));
        assert_eq!(s.lake.landing, "landing/");
        assert_eq!(s.run.max_attempts, 5);
        assert_eq!(s.limits.engine(), glueless_engine::Limits::default(), "[limits] defaults are the engine's");
    }

    #[test]
    fn env_overrides_file_and_types_values() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("g.toml");
        std::fs::write(&f, "[run]\nlease_secs = 10\n[lake]\nurl = \"/data/lake\"\n").unwrap();
        let s = Settings::load(
            Some(&f),
            env(&[("GLUELESS__RUN__LEASE_SECS", "42"), ("GLUELESS__RUN__KEEP_STAGING", "true"), ("OTHER", "x")]),
        )
        .unwrap();
        assert_eq!(s.run.lease_secs, 42);
        assert!(s.run.keep_staging);
        assert_eq!(s.lake.url, "/data/lake");
        assert_eq!(s.base_dir, dir.path());
    }

    #[test]
    fn unknown_keys_and_bad_values_say_where() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("g.toml");
        std::fs::write(&f, "[run]\nleese_secs = 10\n").unwrap();
        let e = Settings::load(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(e.contains("g.toml") && e.contains("leese_secs") && e.contains("lease_secs"), "{e}");
        std::fs::write(&f, "").unwrap();
        let e = Settings::load(Some(&f), env(&[("GLUELESS__RUN__MAX_ATTEMPTS", "0")])).unwrap_err().to_string();
        assert!(e.contains("GLUELESS__RUN__MAX_ATTEMPTS") && e.contains("run.max_attempts must be at least 1"), "{e}");
        let e = Settings::load(Some(&f), env(&[("GLUELESS__LIMITS__BATCH_MB", "4096")])).unwrap_err().to_string();
        assert!(e.contains("limits.batch_mb = 4096 must be 1–1023"), "{e}");
        let e = Settings::load(Some(&f), env(&[("GLUELESS__LAKE__STAGING", "landing/x/")])).unwrap_err().to_string();
        assert!(e.contains("separate prefixes"), "{e}");
        let e = Settings::load(Some(&dir.path().join("missing.toml")), env(&[])).unwrap_err().to_string();
        assert!(e.contains("missing.toml") && e.contains("--config"), "{e}");
    }

    #[test]
    fn config_paths_drop_dot_components_and_keep_dot_dot() {
        let mut s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(s.base_dir, Path::new("."));
        assert_eq!(s.path("./lake"), Path::new("lake"));
        assert_eq!(s.path("."), Path::new("."));
        assert_eq!(s.path("./a/./b/"), Path::new("a/b"));
        assert_eq!(s.path("../lake/./x"), Path::new("../lake/x"));
        s.base_dir = PathBuf::from("/srv/./conf");
        assert_eq!(s.path("./lake").display().to_string(), "/srv/conf/lake");
        assert_eq!(s.path("a/../b").display().to_string(), "/srv/conf/a/../b", "`..` is never resolved lexically");
        assert_eq!(s.path("/abs/./x").display().to_string(), "/abs/x");
    }

    #[test]
    fn alerts_include_values_is_off_unless_set() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("g.toml");
        std::fs::write(&f, "").unwrap();
        assert!(!Settings::load(Some(&f), env(&[])).unwrap().alerts.include_values);
        std::fs::write(&f, "[alerts]\ninclude_values = true\n").unwrap();
        assert!(Settings::load(Some(&f), env(&[])).unwrap().alerts.include_values);
        std::fs::write(&f, "[alerts]\ninclude_value = true\n").unwrap();
        let e = Settings::load(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(e.contains("include_value") && e.contains("include_values"), "{e}");
    }

    /// Issue 11: a config error never shows a password or a webhook token, also where the
    /// TOML parser quotes the offending line.
    #[test]
    fn configuration_errors_never_show_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("g.toml");
        std::fs::write(&f, "[warehouse]\nurl = \"postgres://me:s3cret@db/x?pass%77ord=s3cret\n").unwrap();
        let e = Settings::load(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(e.contains("postgres://me@db/x?pass%77ord=…") && !e.contains("s3cret"), "{e}");
        std::fs::write(&f, "").unwrap();
        let e =
            Settings::load(Some(&f), env(&[("GLUELESS__ALERTS__WEBHOOK_URL", "hooks.slack.com/services/T/B/s3cret")]))
                .unwrap_err()
                .to_string();
        assert!(e.contains("alerts.webhook_url") && !e.contains("s3cret"), "{e}");
        let e = Settings::load(Some(&f), env(&[("GLUELESS__ALERTS__WEBHOOK_URL", "ftp://u:s3cret@h/T/B/s3cret")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ftp://u@h/…") && !e.contains("s3cret"), "{e}");
    }
}
