//! The store: sweeps, runs, jobs, samples, metrics, workers and baselines in PostgreSQL
//! (team mode) or SQLite (embedded default), through one set of sea-orm entities.

pub mod affinity;
pub mod annotations;
pub mod baselines;
pub mod dashboard;
pub mod entities;
mod import;
mod jobs;
mod orphans;
pub mod outage;
pub mod plan;
mod report;
mod results;
mod rows;
mod schema;
mod steps;
pub mod users;
mod workers;

use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use sea_orm::entity::prelude::{DeriveActiveEnum, EnumIter, StringLen};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait,
};

pub use jobs::{Claim, ClaimedJob, Completion, JobOutcome};
pub use orphans::{ReconcileLock, Unheld};
pub use plan::{CellAction, JobRef};
pub use report::{ExportRow, RunSummary, SampleRow, SweepStatus};
pub use results::NewSample;
pub use schema::Migrated;
use schema::SchemaState;
pub use steps::NewStep;
pub use types::MetricValue;
pub use workers::WorkerInfo;

/// Status of a run or job, stored as its lower-case name.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    serde::Serialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Waiting on the queue.
    #[sea_orm(string_value = "queued")]
    Queued,
    /// A worker is on it.
    #[sea_orm(string_value = "running")]
    Running,
    /// Finished; metrics are stored.
    #[sea_orm(string_value = "done")]
    Done,
    /// Gave up after the allowed retries.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Cancelled by a user.
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
}

impl RunStatus {
    /// Every status, in the order a run goes through them.
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Done,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    /// Name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Done => "done",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// No more work will happen without a user action.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Done | RunStatus::Failed | RunStatus::Cancelled
        )
    }

    /// Waiting or being worked on.
    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What could not be reached: the store or the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The database.
    Store,
    /// The queue.
    Queue,
}

/// Whether an error's text says the disk is full (the OS's ENOSPC, SQLite's SQLITE_FULL).
pub fn is_disk_full(message: &str) -> bool {
    let lower = message.to_lowercase();
    ["no space left on device", "disk is full", "os error 28"]
        .iter()
        .any(|m| lower.contains(m))
}

/// The fix of a failed connection to `url`, by what went wrong and where: a full disk, a
/// directory of an embedded SQLite file that cannot be written, or a server to start.
pub fn connect_fix(service: Service, url: &str, message: &str) -> String {
    let (flag, server) = match service {
        Service::Store => (
            "NLEBENCH_DATABASE_URL / --database-url",
            "database server (PostgreSQL)",
        ),
        Service::Queue => ("NLEBENCH_QUEUE_URL / --queue-url", "queue server (Redis)"),
    };
    if is_disk_full(message) {
        return "free space on the disk that holds it (nothing stored was lost), then run the command again".into();
    }
    if url.starts_with("sqlite:") {
        return format!(
            "make the directory of {url} writable, or choose another with NLEBENCH_DATA_DIR / --data-dir (or {flag})"
        );
    }
    format!("start the {server}, or correct {flag}")
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached.
    #[error("cannot connect to the database at {url}: {message}\n  fix: {fix}")]
    Connect {
        /// The URL with any password hidden.
        url: String,
        /// What the driver said.
        message: String,
        /// What to do about it ([`connect_fix`]).
        fix: String,
    },
    /// The schema is older than this version of nlebench.
    #[error(
        "the database at {url} has {pending} pending migration(s)\n  fix: run `nlebench migrate`"
    )]
    Pending {
        /// The URL with any password hidden.
        url: String,
        /// Number of migrations not applied.
        pending: usize,
    },
    /// The store holds migrations of a newer release and lacks some of this one's (written
    /// by releases of two lines of development).
    #[error(
        "the database at {url} has migrations of a newer release ({newer}) and lacks some of this one's ({pending})\n  fix: migrate it with the newest release (`nlebench migrate`) and run that release on every host"
    )]
    Diverged {
        /// The URL with any password hidden.
        url: String,
        /// The newer release's migrations, by name.
        newer: String,
        /// This release's migrations not applied, by name.
        pending: String,
    },
    /// No sweep of that name.
    #[error("no sweep named `{0}` in the store\n  fix: check the name with `nlebench status`")]
    NoSweep(String),
    /// No run with that id.
    #[error("no run {0} in the store\n  fix: check the id with `nlebench status SWEEP`")]
    NoRun(i64),
    /// No sample with that index in the run.
    #[error(
        "run {run_id} has no sample {idx}\n  fix: use the `idx` column of `nlebench export SWEEP --samples`"
    )]
    NoSample {
        /// The run.
        run_id: i64,
        /// The example index.
        idx: i64,
    },
    /// The store stayed unreachable for longer than a worker waits.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Any other database error.
    #[error(transparent)]
    Db(#[from] DbErr),
    /// A list filter that cannot be applied.
    #[error("{0}")]
    Filter(String),
    /// A manifest could not be encoded for storage.
    #[error("cannot encode a run manifest: {0}")]
    Encode(String),
    /// A stored manifest could not be read.
    #[error("run {run_id} has an unreadable manifest: {message}")]
    Manifest {
        /// The run.
        run_id: i64,
        /// The JSON error.
        message: String,
    },
}

/// A connection to the store.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    url: String,
    /// The SQLite file of an embedded store.
    sqlite_file: Option<std::path::PathBuf>,
}

/// The PostgreSQL advisory lock that serialises migrations ("nlebench" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6e6c_6562_656e_6368;

/// The lock file `FILE.migrate-lock` held exclusively (waiting for another process that holds
/// it), released when the returned file is dropped: one process at a time sets up the SQLite
/// file `FILE` (the store's migrations here, the embedded queue's in the orchestrator).
pub async fn setup_lock(file: &std::path::Path) -> std::io::Result<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(file.with_extension("migrate-lock"))?;
    tokio::task::spawn_blocking(move || f.lock().map(|()| f))
        .await
        .map_err(std::io::Error::other)?
}

/// A transaction begun on a task of its own, so a caller dropped while `BEGIN` is in flight (a
/// dashboard client that disconnects, a job its queue gave up on) cannot hand a pooled
/// PostgreSQL connection back inside a transaction nobody ends: sqlx 0.9.0 does not roll that
/// one back (launchbadge/sqlx#4393), and every later statement on the connection would join
/// it and be lost with it. Every transaction of the store starts here.
pub(crate) async fn begin(db: &DatabaseConnection) -> Result<DatabaseTransaction, StoreError> {
    let db = db.clone();
    tokio::spawn(async move { db.begin().await })
        .await
        .map_err(|e| DbErr::Custom(format!("starting a transaction failed: {e}")))?
        .map_err(StoreError::from)
}

impl Store {
    /// Connect to `url` (`postgres://…` or `sqlite://FILE`). A SQLite file and its directory
    /// are created when missing.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let shown = redact(url);
        let mut url = url.to_string();
        let mut sqlite_file = None;
        if let Some(path) = url.strip_prefix("sqlite://") {
            let file = path.split('?').next().unwrap_or(path);
            sqlite_file = Some(std::path::PathBuf::from(file));
            if let Some(dir) = std::path::Path::new(file).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    let message = format!("cannot create {}: {e}", dir.display());
                    StoreError::Connect {
                        fix: connect_fix(Service::Store, &shown, &message),
                        url: shown.clone(),
                        message,
                    }
                })?;
            }
            if !url.contains('?') {
                url.push_str("?mode=rwc");
            }
        }
        if url.starts_with("postgres") {
            // One quick attempt first: the pool would retry for its whole acquire timeout.
            use sea_orm::sqlx::Connection;
            let probe = tokio::time::timeout(
                Duration::from_secs(5),
                sea_orm::sqlx::PgConnection::connect(&url),
            )
            .await;
            let message = match probe {
                Err(_) => Some("no answer within 5 s".to_string()),
                Ok(Err(e)) => Some(e.to_string()),
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    None
                }
            };
            if let Some(message) = message {
                return Err(StoreError::Connect {
                    fix: connect_fix(Service::Store, &shown, &message),
                    url: shown,
                    message,
                });
            }
        }
        let mut opts = ConnectOptions::new(url);
        opts.connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(30))
            .max_connections(8)
            .sqlx_logging(false)
            // PostgreSQL's notices ("relation … already exists, skipping") are not for users,
            // and sqlx's per-notice `tracing::enabled!` check left the console's per-layer
            // filter dropping the next warning (the newer-release one after a migration).
            .map_sqlx_postgres_opts(|o| o.options([("client_min_messages", "warning")]))
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true)
            });
        let db = Database::connect(opts).await.map_err(|e| {
            let message = e.to_string();
            StoreError::Connect {
                fix: connect_fix(Service::Store, &shown, &message),
                url: shown.clone(),
                message,
            }
        })?;
        if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
            use sea_orm::ConnectionTrait;
            db.execute_unprepared(
                "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;",
            )
            .await?;
        }
        Ok(Store {
            db,
            url: shown,
            sqlite_file,
        })
    }

    /// Apply pending migrations. One process migrates at a time (a lock file beside an
    /// embedded store's database, an advisory lock on PostgreSQL): two commands started at
    /// once (on a fresh data directory, or hosts upgraded together) would otherwise both
    /// create the same tables, and one would fail. A store a newer release has migrated is
    /// left as it is, with a warning (migrations only add, so this release works with it).
    pub async fn migrate(&self) -> Result<Migrated, StoreError> {
        let _lock = match &self.sqlite_file {
            Some(file) => Some(setup_lock(file).await.map_err(|e| StoreError::Connect {
                url: self.url.clone(),
                message: format!("cannot lock the store for its migrations: {e}"),
                fix: connect_fix(Service::Store, &self.url, &e.to_string()),
            })?),
            None => None,
        };
        // On PostgreSQL, a session-level advisory lock on a connection of its own: hosts
        // upgraded at once migrate one after the other, and a process that dies mid-way
        // releases it with its session.
        if self.db.get_database_backend() != sea_orm::DbBackend::Postgres {
            return self.apply_pending().await;
        }
        use sea_orm::sqlx::Connection;
        let lock_err = |e: sea_orm::SqlxError| {
            let message = format!("cannot lock the store for its migrations: {e}");
            StoreError::Connect {
                fix: connect_fix(Service::Store, &self.url, &message),
                url: self.url.clone(),
                message,
            }
        };
        let mut conn = self
            .db
            .get_postgres_connection_pool()
            .acquire()
            .await
            .map_err(lock_err)?
            .detach();
        sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut conn)
            .await
            .map_err(lock_err)?;
        let migrated = self.apply_pending().await;
        // Closing the session releases the lock.
        let _ = conn.close().await;
        migrated
    }

    async fn apply_pending(&self) -> Result<Migrated, StoreError> {
        let state = self.schema().await?;
        if state.newer.is_empty() {
            Migrator::up(&self.db, None).await?;
            return Ok(Migrated {
                applied: state.pending.len(),
                newer: vec![],
            });
        }
        if !state.pending.is_empty() {
            return Err(StoreError::Diverged {
                url: self.url.clone(),
                newer: state.newer.join(", "),
                pending: state.pending.join(", "),
            });
        }
        state.warn_if_newer(&self.url);
        Ok(Migrated {
            applied: 0,
            newer: state.newer,
        })
    }

    /// The store's applied migrations against this release's.
    async fn schema(&self) -> Result<SchemaState, StoreError> {
        Ok(SchemaState::read(&self.db).await?)
    }

    /// Fail with a clear error when migrations are pending; warn when a newer release has
    /// migrated the store.
    pub async fn require_migrated(&self) -> Result<(), StoreError> {
        let state = self.schema().await?;
        if !state.pending.is_empty() {
            return Err(StoreError::Pending {
                url: self.url.clone(),
                pending: state.pending.len(),
            });
        }
        state.warn_if_newer(&self.url);
        Ok(())
    }

    /// Count every statement this store (and its clones made afterwards) runs.
    pub fn count_queries(&mut self) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
        let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = n.clone();
        self.db.set_metric_callback(move |_| {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        n
    }

    /// The underlying connection (for the dashboard's read-only queries).
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The URL with any password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// A URL safe to show: the password of the userinfo and the values of secret query
/// parameters (`password`, `token`, …) are replaced by `***`. A URL that does not parse (a
/// password with an unescaped `/`, say) keeps only its scheme and what follows its last `@`.
pub fn redact(url: &str) -> String {
    const SECRET: [&str; 7] = [
        "password", "pass", "pwd", "secret", "token", "key", "apikey",
    ];
    let Ok(mut parsed) = url::Url::parse(url) else {
        return match url.split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}"),
                None => url.to_string(),
            },
            None => url.to_string(),
        };
    };
    let secret = |k: &str| SECRET.contains(&k.to_ascii_lowercase().as_str());
    let mut changed = false;
    if parsed.password().is_some() {
        changed |= parsed.set_password(Some("***")).is_ok();
    }
    let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    if pairs.iter().any(|(k, _)| secret(k)) {
        parsed
            .query_pairs_mut()
            .clear()
            .extend_pairs(pairs.iter().map(|(k, v)| {
                let v = if secret(k) { "***" } else { v.as_str() };
                (k.as_str(), v)
            }));
        changed = true;
    }
    if changed {
        parsed.to_string()
    } else {
        url.to_string()
    }
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_error_names_the_fix_of_its_cause() {
        let fix = connect_fix(
            Service::Store,
            "sqlite:///srv/data/nlebench.sqlite",
            "cannot create /srv/data: Permission denied",
        );
        assert!(
            fix.contains("make the directory of sqlite:///srv/data/nlebench.sqlite writable")
                && !fix.contains("start the"),
            "{fix}"
        );
        let fix = connect_fix(
            Service::Queue,
            "sqlite:///srv/data/nlebench.sqlite",
            "database or disk is full",
        );
        assert!(fix.starts_with("free space on the disk"), "{fix}");
        let fix = connect_fix(
            Service::Queue,
            "redis://q:6379",
            "Connection refused (os error 111)",
        );
        assert_eq!(
            fix,
            "start the queue server (Redis), or correct NLEBENCH_QUEUE_URL / --queue-url"
        );
        let fix = connect_fix(Service::Store, "postgres://db/x", "connection refused");
        assert!(
            fix.starts_with("start the database server (PostgreSQL)"),
            "{fix}"
        );
    }

    #[test]
    fn redacts_passwords_in_every_url_form() {
        let table = [
            (
                "postgres://u:secret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            (
                "postgres://u:se@cr@et@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgres://u:se/cr@h/db", "postgres://***@h/db"),
            ("redis://:secret@h:6379", "redis://:***@h:6379"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "postgres://h/db?user=u&password=secret&sslmode=require",
                "postgres://h/db?user=u&password=***&sslmode=require",
            ),
            (
                "postgres://h/db?PASSWORD=secret#frag",
                "postgres://h/db?PASSWORD=***#frag",
            ),
            ("mysql://u:secret@h/db", "mysql://u:***@h/db"),
            ("sqlite://x.db", "sqlite://x.db"),
            ("sqlite://dir/x.db?mode=rwc", "sqlite://dir/x.db?mode=rwc"),
            ("not a url", "not a url"),
        ];
        for (url, shown) in table {
            assert_eq!(redact(url), shown, "{url}");
            assert!(
                !redact(url).contains("secret") && !redact(url).contains("cr@"),
                "{url}"
            );
        }
    }
}
