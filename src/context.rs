//! Wiring shared by the commands: configuration, logging, store, queue, specs, resolver.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::anyhow;
use engine::{LoadedModel, ModelCache};

use engine::content::HashCache;
use orchestrator::config::{Overrides, Settings};
use orchestrator::queue::Queue;
use spec::{Catalog, Dtype, Source, SweepSpec, TaskRegistry, TaskSpec};
use store::Store;
use worker::lifecycle::WorkerOptions;
use worker::resolver::EngineResolver;

use crate::args::{Cli, Command, DtypeArg, Global, ModelArgs};

/// Log to stderr; `run` stays quiet unless asked, so the progress bar stays readable.
pub fn init_logging(cli: &Cli) {
    let base = match (cli.global.verbose, &cli.command) {
        (0, Command::Worker(_)) => "warn,nlebench=info,worker=info,orchestrator=info",
        (0, _) => "warn",
        (1, _) => "info",
        _ => "debug,sqlx=warn,hyper=info",
    };
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("NLEBENCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(base));
    let console = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(filter);
    // Jobs' own lines at info and above, whatever the console shows: a failed run keeps them.
    let run_log = worker::runlog::RunLogLayer.with_filter(tracing_subscriber::EnvFilter::new(
        "warn,worker=info,nlebench=info,orchestrator::runner=info",
    ));
    tracing_subscriber::registry()
        .with(console)
        .with(run_log)
        .init();
}

/// The effective settings.
pub fn settings(g: &Global) -> anyhow::Result<Settings> {
    let o = &g.options;
    let s = Settings::resolve(
        Overrides {
            database_url: o.store.database_url.clone(),
            queue_url: o.store.queue_url.clone(),
            queue_name: o.store.queue_name.clone(),
            data_dir: o.store.data_dir.clone().or(o.data.data_dir.clone()),
            tasks_dir: o.spec.tasks_dir.clone(),
            catalog: o.spec.catalog.clone(),
            heartbeat_secs: o.store.heartbeat_secs,
            missed_heartbeats: o.store.missed_heartbeats,
            max_attempts: o.worker.max_attempts,
            backoff_secs: o.worker.backoff_secs,
            store_outage_secs: o.worker.store_outage_secs,
            reconcile_secs: o.worker.reconcile_secs,
            device: o.device.device.clone(),
            memory_budget_mb: o.device.memory_budget_mb.clone(),
            memory_gb: o.worker.memory_gb.clone(),
            bootstrap_iterations: o.metric.bootstrap_iterations.clone(),
            perspective_key: o.worker.perspective_key.clone(),
            perspective_url: o.worker.perspective_url.clone(),
            perspective_qps: o.worker.perspective_qps.clone(),
            hub: Some(crate::environment::hub()),
        },
        Some(&g.config),
    )?;
    let _ = DATA_DIR.set(s.data_dir.clone());
    Ok(s)
}

/// The data directory of this command's settings, once resolved: what a full disk's error
/// names.
static DATA_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// A full disk, said as such: the error rewritten to name the data directory (where the store,
/// the embedded queue and generated models are) and the fix, replacing a fix that blamed
/// something else. `None` when `text` is no disk-full error.
pub fn disk_full(text: &str) -> Option<String> {
    if !store::is_disk_full(text) {
        return None;
    }
    let problem: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("fix:"))
        .collect();
    let place = DATA_DIR.get().map_or_else(
        || "the disk nlebench writes to".to_string(),
        |d| format!("the disk that holds {}", d.display()),
    );
    Some(format!(
        "the disk is full ({place}): {}\n  fix: free space on {place}, then run the command again; nothing stored was lost (the store writes in transactions) and the work resumes where it stopped",
        problem.join("\n")
    ))
}

/// Connect to the store and bring its schema up to date.
pub async fn store_migrated(s: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect(&s.database_url).await?;
    store.migrate().await?;
    Ok(store)
}

/// Connect to the queue.
pub async fn queue(s: &Settings) -> anyhow::Result<Queue> {
    Ok(Queue::connect(&s.queue).await?)
}

/// The task registry, with lm-eval's task files for `lm-eval:NAME`; when the configured
/// directory does not exist, the `tasks` directory next to the sweep's directory
/// (`experiments/sweeps/../tasks`) is tried.
pub fn tasks(s: &Settings, sweep: Option<&Path>) -> anyhow::Result<TaskRegistry> {
    let dir = fallback(&s.tasks_dir, sweep, "tasks");
    Ok(TaskRegistry::load_dir(&dir)?
        .with_lm_eval(std::sync::Arc::new(worker::resolver::LmEvalReader)))
}

/// Task `name` of the registry, or an error listing the known ones.
pub fn task<'a>(tasks: &'a TaskRegistry, name: &str) -> anyhow::Result<&'a TaskSpec> {
    tasks.get(name).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown task `{name}`; known tasks: {}\n  fix: see `nlebench tasks list`",
            tasks.names().join(", ")
        )
    })
}

/// The model catalog (same fallback as the tasks).
pub fn catalog(s: &Settings, sweep: Option<&Path>) -> anyhow::Result<Catalog> {
    let path = if s.catalog.exists() {
        s.catalog.clone()
    } else {
        sweep
            .and_then(|p| p.parent()?.parent())
            .map(|e| e.join("models/catalog.toml"))
            .filter(|p| p.exists())
            .unwrap_or_else(|| s.catalog.clone())
    };
    Ok(Catalog::load(&path)?)
}

fn fallback(configured: &Path, sweep: Option<&Path>, name: &str) -> PathBuf {
    if configured.exists() {
        return configured.to_path_buf();
    }
    sweep
        .and_then(|p| p.parent()?.parent())
        .map(|e| e.join(name))
        .filter(|p| p.exists())
        .unwrap_or_else(|| configured.to_path_buf())
}

/// Load and validate a sweep file.
pub fn sweep(s: &Settings, path: &Path) -> anyhow::Result<SweepSpec> {
    let tasks = tasks(s, Some(path))?;
    let catalog = catalog(s, Some(path))?;
    Ok(SweepSpec::load(path, &tasks, &catalog)?)
}

/// Where models are written and found.
pub fn locations(s: &Settings) -> engine::Locations {
    engine::Locations {
        models_dir: s.models_dir(),
        hub: s.hub.clone(),
    }
}

/// The data directory, created and written to once: the directory of the embedded store,
/// generated models and caches. Checked before anything is resolved, so that a directory that
/// cannot be written is named as such and not blamed on the first model or dataset written there.
pub fn writable_data_dir(s: &Settings) -> anyhow::Result<()> {
    let dir = &s.data_dir;
    let probe = dir.join(format!(".nlebench-write-check-{}", std::process::id()));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b""))
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| {
            anyhow!(
                "the data directory {} cannot be written: {e}\n  fix: make it writable, or choose another with NLEBENCH_DATA_DIR / --data-dir",
                dir.display()
            )
        })
}

/// The engine-backed resolver for submissions.
pub fn resolver(s: &Settings) -> EngineResolver {
    EngineResolver {
        locations: locations(s),
        hashes: HashCache::new(Some(s.data_dir.join("file-hashes.json"))),
        download: true,
    }
}

/// How long a silent worker still counts as alive: its missed heartbeats.
pub fn alive_within(s: &Settings) -> std::time::Duration {
    s.queue.heartbeat * s.queue.missed_heartbeats as u32
}

/// A worker named `given`, or `HOST-PID-RANDOM[-SUFFIX]`: host and PID alone repeat across
/// containers on the host network (each worker is PID 1 under the same host name).
pub fn worker_options(
    given: Option<String>,
    suffix: Option<usize>,
    idle_exit: Option<std::time::Duration>,
    hooks: &worker::Hooks,
) -> WorkerOptions {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let name = given.unwrap_or_else(|| {
        let base = format!(
            "{host}-{}-{:06x}",
            std::process::id(),
            rand::random::<u32>() & 0xff_ffff
        );
        match suffix {
            Some(i) => format!("{base}-{i}"),
            None => base,
        }
    });
    WorkerOptions {
        name,
        host,
        idle_exit,
        telemetry: Default::default(),
        affinity: true,
        hooks: hooks.clone(),
        forget_on_stop: false,
    }
}

/// A source as given on the command line; a bare existing directory means `path:DIR`.
pub fn source(s: &str) -> anyhow::Result<Source> {
    if !s.contains(':') && Path::new(s).is_dir() {
        return Ok(Source::Path {
            path: std::fs::canonicalize(s)?,
        });
    }
    let cwd = std::env::current_dir()?;
    Source::parse(s, &cwd).map_err(|e| anyhow!("`{s}`: {}\n  fix: {}", e.problem, e.fix))
}

/// The model (and adapter) of `m`, loaded on the configured device.
pub fn load_model(g: &Global, m: &ModelArgs) -> anyhow::Result<Arc<LoadedModel>> {
    let s = settings(g)?;
    let dtype = match m.dtype {
        DtypeArg::F32 => Dtype::F32,
        DtypeArg::F16 => Dtype::F16,
        DtypeArg::Bf16 => Dtype::Bf16,
    };
    let adapter = m.adapter.as_deref().map(source).transpose()?;
    Ok(ModelCache::default().get(
        &source(&m.model)?,
        dtype,
        adapter.as_ref(),
        &locations(&s),
        &engine::device::select(s.device)?,
    )?)
}

/// A note on stderr when `model` has random weights.
pub fn warn_random(model: &LoadedModel) {
    if model.random_weights {
        eprintln!(
            "note: {} has RANDOM WEIGHTS; its output is noise",
            model.dir.display()
        );
    }
}
