//! Configuration: command-line flags > `NLEBENCH_*` environment variables > `nlebench.toml`
//! > defaults (the embedded SQLite store and queue under `./.nlebench/`).
//!
//! Flags and environment variables arrive merged (the CLI reads both) as [`Overrides`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::queue::{DEFAULT_QUEUE, QueueConfig};
use crate::spec::SpecError;
use crate::spec::load::load_toml;

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
    /// Store and queue are the embedded SQLite files.
    pub embedded: bool,
}

/// Default config file name, looked up in the current directory.
pub const CONFIG_FILE: &str = "nlebench.toml";

impl Settings {
    /// Merge overrides with the config file (if it exists) and defaults.
    pub fn resolve(o: Overrides, config_file: Option<&Path>) -> Result<Settings, SpecError> {
        let file: FileConfig = match config_file {
            Some(p) if p.exists() => load_toml(p)?.0,
            Some(p) if p != Path::new(CONFIG_FILE) => {
                return Err(SpecError::file(
                    p,
                    "the config file does not exist",
                    "check the path given to --config or NLEBENCH_CONFIG",
                ));
            }
            _ => FileConfig::default(),
        };
        let data_dir = o
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(".nlebench"));
        let database_url = o.database_url.or(file.database_url);
        let queue_url = o.queue_url.or(file.queue_url);
        let embedded_db = format!("sqlite://{}", data_dir.join("nlebench.sqlite").display());
        let embedded_queue = format!("sqlite://{}", data_dir.join("queue.sqlite").display());
        let (database_url, queue_url) = match (database_url, queue_url) {
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
        let embedded = database_url.starts_with("sqlite:") && queue_url.starts_with("sqlite:");
        Ok(Settings {
            queue: QueueConfig {
                url: queue_url,
                name: o
                    .queue_name
                    .or(file.queue_name)
                    .unwrap_or_else(|| DEFAULT_QUEUE.into()),
                heartbeat: Duration::from_secs(
                    o.heartbeat_secs
                        .or(file.worker.heartbeat_secs)
                        .unwrap_or(10)
                        .max(1),
                ),
                missed_heartbeats: o
                    .missed_heartbeats
                    .or(file.worker.missed_heartbeats)
                    .unwrap_or(3)
                    .max(1),
            },
            database_url,
            tasks_dir: o
                .tasks_dir
                .or(file.tasks_dir)
                .unwrap_or_else(|| PathBuf::from("experiments/tasks")),
            catalog: o
                .catalog
                .or(file.catalog)
                .unwrap_or_else(|| PathBuf::from("experiments/models/catalog.toml")),
            data_dir,
            max_attempts: o
                .max_attempts
                .or(file.worker.max_attempts)
                .unwrap_or(3)
                .max(1),
            backoff: Duration::from_secs(o.backoff_secs.or(file.worker.backoff_secs).unwrap_or(5)),
            embedded,
        })
    }
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
    fn postgres_without_a_queue_is_an_error() {
        let o = Overrides {
            database_url: Some("postgres://x/y".into()),
            ..Overrides::default()
        };
        let e = Settings::resolve(o, None).unwrap_err();
        assert!(e.fix.contains("NLEBENCH_QUEUE_URL"), "{e}");
    }
}
