//! Configuration: command-line flags > `NLEBENCH_*` environment variables > `nlebench.toml`
//! > defaults (the embedded SQLite store and queue under `./.nlebench/`).
//!
//! Flags and environment variables arrive merged (the CLI reads both) as [`Overrides`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use types::{DeviceSpec, HubSettings, UnknownDevice};

use crate::queue::{DEFAULT_QUEUE, QueueConfig};
use spec::SpecError;
use spec::load::load_toml;

/// Values given on the command line or in the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Store URL.
    pub database_url: Option<String>,
    /// Queue URL.
    pub queue_url: Option<String>,
    /// Queue name.
    pub queue_name: Option<String>,
    /// Directory of the embedded store, queue and generated models.
    pub data_dir: Option<PathBuf>,
    /// Directory of task definitions.
    pub tasks_dir: Option<PathBuf>,
    /// Model catalog file.
    pub catalog: Option<PathBuf>,
    /// Worker heartbeat interval in seconds.
    pub heartbeat_secs: Option<u64>,
    /// Missed heartbeats before a worker's jobs are delivered again.
    pub missed_heartbeats: Option<usize>,
    /// Attempts per job before its run fails.
    pub max_attempts: Option<u32>,
    /// First retry delay in seconds (doubles per attempt).
    pub backoff_secs: Option<u64>,
    /// Seconds a worker waits out a store outage.
    pub store_outage_secs: Option<u64>,
    /// Seconds between the workers' reconciler passes (0: none).
    pub reconcile_secs: Option<u64>,
    /// Inference device, as written (`auto`, `cpu`, `cuda`, `cuda:N`).
    pub device: Option<String>,
    /// Memory budget of a forward pass in MiB, as written.
    pub memory_budget_mb: Option<String>,
    /// Memory a worker offers its jobs in GiB, as written.
    pub memory_gb: Option<String>,
    /// Bootstrap resamples per metric interval, as written.
    pub bootstrap_iterations: Option<String>,
    /// Perspective API key.
    pub perspective_key: Option<String>,
    /// Perspective endpoint.
    pub perspective_url: Option<String>,
    /// Perspective requests per second, as written.
    pub perspective_qps: Option<String>,
    /// The Hugging Face cache and Hub (the binary reads them from the environment).
    pub hub: Option<HubSettings>,
}

/// `nlebench.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    queue_url: Option<String>,
    queue_name: Option<String>,
    data_dir: Option<PathBuf>,
    tasks_dir: Option<PathBuf>,
    catalog: Option<PathBuf>,
    bootstrap_iterations: Option<usize>,
    #[serde(default)]
    worker: WorkerFileConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkerFileConfig {
    heartbeat_secs: Option<u64>,
    missed_heartbeats: Option<usize>,
    max_attempts: Option<u32>,
    backoff_secs: Option<u64>,
    store_outage_secs: Option<u64>,
    reconcile_secs: Option<u64>,
    device: Option<String>,
    memory_budget_mb: Option<u64>,
    memory_gb: Option<f64>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Store URL.
    pub database_url: String,
    /// Queue connection and leases.
    pub queue: QueueConfig,
    /// Directory of the embedded store, queue and generated models.
    pub data_dir: PathBuf,
    /// Directory of task definitions.
    pub tasks_dir: PathBuf,
    /// Model catalog file.
    pub catalog: PathBuf,
    /// Attempts per job before its run fails.
    pub max_attempts: u32,
    /// First retry delay (doubles per attempt).
    pub backoff: Duration,
    /// How long a worker waits out a store outage before releasing its job to the queue.
    pub store_outage: Duration,
    /// How often workers run a reconciler pass (`None`: never).
    pub reconcile_every: Option<Duration>,
    /// Where workers and direct commands run models.
    pub device: DeviceSpec,
    /// Memory budget of a scoring forward pass in MiB, when a setting names no batch size.
    pub memory_budget_mb: u64,
    /// Memory a worker offers its jobs in GiB (`None`: what its device has).
    pub memory_gb: Option<f64>,
    /// Bootstrap resamples per metric interval (0: no intervals).
    pub bootstrap_iterations: usize,
    /// The Perspective API, when a key is configured.
    pub perspective: Option<PerspectiveSettings>,
    /// Store and queue are the embedded SQLite files.
    pub embedded: bool,
    /// The Hugging Face cache and Hub (`DATA_DIR/hub` when none is given).
    pub hub: HubSettings,
}

/// How workers reach the Perspective API.
#[derive(Clone)]
pub struct PerspectiveSettings {
    /// The API key (kept out of `Debug`, logs and the store).
    pub key: String,
    /// The endpoint, `None` for the public one.
    pub url: Option<String>,
    /// Requests per second.
    pub qps: f64,
}

impl std::fmt::Debug for PerspectiveSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerspectiveSettings")
            .field("key", &"<hidden>")
            .field("url", &self.url)
            .field("qps", &self.qps)
            .finish()
    }
}

/// Default config file name, looked up in the current directory.
pub const CONFIG_FILE: &str = "nlebench.toml";

/// Default memory budget of a scoring forward pass, in MiB.
pub const DEFAULT_MEMORY_BUDGET_MB: u64 = 2048;

/// Default bootstrap resamples per metric interval.
pub const DEFAULT_BOOTSTRAP_ITERATIONS: usize = 1000;

/// Parse a flag or environment value, or say which flag/variable is wrong and what it takes.
/// A positive, finite number of GiB.
struct Gib(f64);

impl std::str::FromStr for Gib {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<f64>() {
            Ok(g) if g > 0.0 && g.is_finite() => Ok(Gib(g)),
            _ => Err(()),
        }
    }
}

fn parse_override<T: std::str::FromStr>(
    value: &str,
    flag: &str,
    var: &str,
    expected: &str,
) -> Result<T, SpecError> {
    value.trim().parse().map_err(|_| {
        SpecError::file(
            Path::new(var),
            format!("`{value}` (from {var} or {flag}) is not valid"),
            format!("set {var} (or {flag}) to {expected}"),
        )
    })
}

/// Refuse store and queue URLs that cannot work: unknown schemes, and a Redis queue (shared
/// by machines) in front of the SQLite store (a file on one machine).
fn check_urls(database_url: &str, queue_url: &str) -> Result<(), SpecError> {
    let scheme = |u: &str| u.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    let db = scheme(database_url);
    if !matches!(db.as_deref(), Some("postgres" | "postgresql" | "sqlite")) {
        return Err(SpecError::file(
            Path::new("NLEBENCH_DATABASE_URL"),
            format!("unsupported store URL `{}`", store::redact(database_url)),
            "use postgres://USER@HOST/DB (team mode) or sqlite://FILE (embedded)",
        ));
    }
    let queue = scheme(queue_url);
    if !matches!(queue.as_deref(), Some("redis" | "rediss" | "sqlite")) {
        return Err(SpecError::file(
            Path::new("NLEBENCH_QUEUE_URL"),
            format!("unsupported queue URL `{}`", store::redact(queue_url)),
            "use redis://HOST:PORT (team mode) or sqlite://FILE (embedded)",
        ));
    }
    if db.as_deref() == Some("sqlite") && queue.as_deref() != Some("sqlite") {
        return Err(SpecError::file(
            Path::new("NLEBENCH_QUEUE_URL"),
            "a Redis queue with the embedded SQLite store: workers elsewhere could take jobs but never reach the store file",
            "set NLEBENCH_DATABASE_URL=postgres://… for team mode, or drop NLEBENCH_QUEUE_URL for the embedded default",
        ));
    }
    Ok(())
}

impl Settings {
    /// Where generated (random-weight) models are kept.
    pub fn models_dir(&self) -> PathBuf {
        self.data_dir.join("models")
    }

    /// Merge overrides with the config file (if it exists) and defaults.
    pub fn resolve(o: Overrides, config_file: Option<&Path>) -> Result<Settings, SpecError> {
        let file = FileConfig::read(config_file)?;
        let file_path = config_file.unwrap_or(Path::new(CONFIG_FILE));
        let data_dir = o
            .data_dir
            .clone()
            .or(file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(".nlebench"));
        let (database_url, queue_url) = store_and_queue(&o, &file, &data_dir)?;
        let embedded = database_url.starts_with("sqlite:") && queue_url.starts_with("sqlite:");
        let w = &file.worker;
        Ok(Settings {
            device: device(o.device.as_deref(), w.device.as_deref(), file_path)?,
            memory_budget_mb: match &o.memory_budget_mb {
                Some(v) => parse_override(
                    v,
                    "--memory-budget-mb",
                    "NLEBENCH_MEMORY_BUDGET_MB",
                    "a whole number of MiB, e.g. 2048",
                )?,
                None => w.memory_budget_mb.unwrap_or(DEFAULT_MEMORY_BUDGET_MB),
            },
            memory_gb: match &o.memory_gb {
                Some(v) => Some(
                    parse_override::<Gib>(
                        v,
                        "--memory-gb",
                        "NLEBENCH_MEMORY_GB",
                        "a positive number of GiB, e.g. 80",
                    )?
                    .0,
                ),
                None => w.memory_gb,
            },
            bootstrap_iterations: match &o.bootstrap_iterations {
                Some(v) => parse_override(
                    v,
                    "--bootstrap-iterations",
                    "NLEBENCH_BOOTSTRAP_ITERATIONS",
                    "a whole number, e.g. 1000 (0 turns intervals off)",
                )?,
                None => file
                    .bootstrap_iterations
                    .unwrap_or(DEFAULT_BOOTSTRAP_ITERATIONS),
            },
            perspective: perspective(&o)?,
            queue: QueueConfig {
                url: queue_url,
                name: o
                    .queue_name
                    .clone()
                    .or(file.queue_name.clone())
                    .unwrap_or_else(|| DEFAULT_QUEUE.into()),
                heartbeat: Duration::from_secs(
                    o.heartbeat_secs.or(w.heartbeat_secs).unwrap_or(10).max(1),
                ),
                missed_heartbeats: o
                    .missed_heartbeats
                    .or(w.missed_heartbeats)
                    .unwrap_or(3)
                    .max(1),
            },
            database_url,
            tasks_dir: o
                .tasks_dir
                .clone()
                .or(file.tasks_dir.clone())
                .unwrap_or_else(|| PathBuf::from("experiments/tasks")),
            catalog: o
                .catalog
                .clone()
                .or(file.catalog.clone())
                .unwrap_or_else(|| PathBuf::from("experiments/models/catalog.toml")),
            max_attempts: o.max_attempts.or(w.max_attempts).unwrap_or(3).max(1),
            backoff: Duration::from_secs(o.backoff_secs.or(w.backoff_secs).unwrap_or(5)),
            store_outage: Duration::from_secs(
                o.store_outage_secs.or(w.store_outage_secs).unwrap_or(120),
            ),
            reconcile_every: match o.reconcile_secs.or(w.reconcile_secs).unwrap_or(30) {
                0 => None,
                n => Some(Duration::from_secs(n)),
            },
            hub: o
                .hub
                .clone()
                .unwrap_or_else(|| HubSettings::at(data_dir.join("hub"))),
            data_dir,
            embedded,
        })
    }
}

impl FileConfig {
    /// The config file: `path` when it exists; none when the default `nlebench.toml` is
    /// absent; an error when a file named with `--config` is.
    fn read(path: Option<&Path>) -> Result<FileConfig, SpecError> {
        match path {
            Some(p) if p.exists() => Ok(load_toml(p)?.0),
            Some(p) if p != Path::new(CONFIG_FILE) => Err(SpecError::file(
                p,
                "the config file does not exist",
                "check the path given to --config or NLEBENCH_CONFIG",
            )),
            _ => Ok(FileConfig::default()),
        }
    }
}

/// The store and queue URLs: both embedded SQLite files under `data_dir` unless configured,
/// and checked to work together.
fn store_and_queue(
    o: &Overrides,
    file: &FileConfig,
    data_dir: &Path,
) -> Result<(String, String), SpecError> {
    let database_url = o.database_url.clone().or(file.database_url.clone());
    let queue_url = o.queue_url.clone().or(file.queue_url.clone());
    let embedded_db = format!("sqlite://{}", data_dir.join("nlebench.sqlite").display());
    let embedded_queue = format!("sqlite://{}", data_dir.join("queue.sqlite").display());
    let urls = match (database_url, queue_url) {
        (None, None) => (embedded_db, embedded_queue),
        (Some(db), Some(q)) => (db, q),
        (Some(db), None) if db.starts_with("sqlite:") => (db, embedded_queue),
        (Some(_), None) => {
            return Err(SpecError::file(
                Path::new(CONFIG_FILE),
                "a server database is configured but no queue",
                "set NLEBENCH_QUEUE_URL=redis://HOST:PORT (or queue_url in nlebench.toml)",
            ));
        }
        (None, Some(q)) => (embedded_db, q),
    };
    check_urls(&urls.0, &urls.1)?;
    Ok(urls)
}

/// The device of the flag or variable, else of the file's `[worker] device`, else `auto`.
fn device(flag: Option<&str>, in_file: Option<&str>, file: &Path) -> Result<DeviceSpec, SpecError> {
    match (flag, in_file) {
        (Some(v), _) => parse_override(
            v,
            "--device",
            "NLEBENCH_DEVICE",
            "auto, cpu, cuda or cuda:N",
        ),
        (None, Some(v)) => v.parse().map_err(|e: UnknownDevice| {
            SpecError::file(
                file,
                format!("[worker] device: {e}"),
                "write device = \"auto\", \"cpu\", \"cuda\" or \"cuda:N\"",
            )
        }),
        (None, None) => Ok(DeviceSpec::Auto),
    }
}

/// The Perspective API, when a key is given: its endpoint and request rate.
fn perspective(o: &Overrides) -> Result<Option<PerspectiveSettings>, SpecError> {
    let Some(key) = o
        .perspective_key
        .as_deref()
        .filter(|k| !k.trim().is_empty())
    else {
        return Ok(None);
    };
    let qps = match &o.perspective_qps {
        None => 1.0,
        Some(v) => {
            const VAR: &str = "NLEBENCH_PERSPECTIVE_QPS";
            const FLAG: &str = "--perspective-qps";
            const EXPECTED: &str = "requests per second, a number > 0, e.g. 1";
            let qps: f64 = parse_override(v, FLAG, VAR, EXPECTED)?;
            if !(qps.is_finite() && qps > 0.0) {
                return Err(SpecError::file(
                    Path::new(VAR),
                    format!("`{v}` (from {VAR} or {FLAG}) is not valid"),
                    format!("set {VAR} (or {FLAG}) to {EXPECTED}"),
                ));
            }
            qps
        }
    };
    Ok(Some(PerspectiveSettings {
        key: key.trim().to_string(),
        url: o.perspective_url.clone(),
        qps,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_sqlite_files() {
        let s = Settings::resolve(Overrides::default(), None).unwrap();
        assert!(s.embedded);
        assert_eq!(s.database_url, "sqlite://.nlebench/nlebench.sqlite");
        assert_eq!(s.queue.url, "sqlite://.nlebench/queue.sqlite");
        assert_eq!(s.queue.name, DEFAULT_QUEUE);
    }

    #[test]
    fn overrides_beat_the_file_and_the_file_beats_defaults() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("nlebench.toml");
        std::fs::write(
            &p,
            "database_url = \"postgres://file/db\"\nqueue_url = \"redis://file:6379\"\n[worker]\nmax_attempts = 7\n",
        )
        .unwrap();
        let o = Overrides {
            queue_url: Some("redis://flag:6379".into()),
            ..Overrides::default()
        };
        let s = Settings::resolve(o, Some(&p)).unwrap();
        assert_eq!(s.database_url, "postgres://file/db");
        assert_eq!(s.queue.url, "redis://flag:6379");
        assert_eq!(s.max_attempts, 7);
        assert!(!s.embedded);
    }

    #[test]
    fn bad_device_budget_or_bootstrap_values_name_the_variable() {
        for (o, var) in [
            (
                Overrides {
                    device: Some("tpu".into()),
                    ..Overrides::default()
                },
                "NLEBENCH_DEVICE",
            ),
            (
                Overrides {
                    memory_budget_mb: Some("lots".into()),
                    ..Overrides::default()
                },
                "NLEBENCH_MEMORY_BUDGET_MB",
            ),
            (
                Overrides {
                    bootstrap_iterations: Some("-1".into()),
                    ..Overrides::default()
                },
                "NLEBENCH_BOOTSTRAP_ITERATIONS",
            ),
            (
                Overrides {
                    memory_gb: Some("-2".into()),
                    ..Overrides::default()
                },
                "NLEBENCH_MEMORY_GB",
            ),
        ] {
            let e = Settings::resolve(o, None).unwrap_err().to_string();
            assert!(e.starts_with(var) && e.contains("fix: set"), "{e}");
        }
        let s = Settings::resolve(
            Overrides {
                device: Some("cuda:1".into()),
                memory_budget_mb: Some("512".into()),
                bootstrap_iterations: Some("0".into()),
                ..Overrides::default()
            },
            None,
        )
        .unwrap();
        assert_eq!(
            (s.device, s.memory_budget_mb, s.bootstrap_iterations),
            (DeviceSpec::Cuda(1), 512, 0)
        );
    }

    #[test]
    fn postgres_without_a_queue_is_an_error() {
        let o = Overrides {
            database_url: Some("postgres://x/y".into()),
            ..Overrides::default()
        };
        let e = Settings::resolve(o, None).unwrap_err();
        assert!(e.fix.contains("NLEBENCH_QUEUE_URL"), "{e}");
    }

    #[test]
    fn store_and_queue_that_cannot_work_together_are_refused() {
        for (db, queue, var, says) in [
            (
                Some("sqlite://x.db"),
                Some("redis://h:6379"),
                "NLEBENCH_QUEUE_URL",
                "SQLite store",
            ),
            (
                None,
                Some("redis://h:6379"),
                "NLEBENCH_QUEUE_URL",
                "SQLite store",
            ),
            (
                Some("mysql://u:secret@h/db"),
                Some("redis://h"),
                "NLEBENCH_DATABASE_URL",
                "unsupported store URL",
            ),
            (
                Some("postgres://h/db"),
                Some("amqp://h"),
                "NLEBENCH_QUEUE_URL",
                "unsupported queue URL",
            ),
        ] {
            let o = Overrides {
                database_url: db.map(Into::into),
                queue_url: queue.map(Into::into),
                ..Overrides::default()
            };
            let e = Settings::resolve(o, None).unwrap_err().to_string();
            assert!(
                e.starts_with(var) && e.contains(says) && e.contains("fix:"),
                "{e}"
            );
            assert!(!e.contains("secret"), "{e}");
        }
    }
}
