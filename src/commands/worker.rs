//! `nlebench worker`: pull jobs and run them until stopped (SIGINT/SIGTERM, or idle).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use orchestrator::config::Settings;
use orchestrator::queue::{JobHandler, Queue, run_worker};
use orchestrator::store::{JobRef, Store, WorkerInfo};
use tokio::sync::watch;
use tracing::{info, warn};
use worker::handler::{Handler, HandlerConfig};

use crate::args::{Global, WorkerArgs};
use crate::context;

pub async fn worker(g: &Global, a: WorkerArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = Store::connect(&s.database_url).await?;
    if s.embedded {
        store.migrate().await?;
    } else {
        store.require_migrated().await?;
    }
    let queue = context::queue(&s).await?;
    let name = context::worker_name(a.name, None);
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("stopping after the current job");
        let _ = stop_tx.send(true);
    });
    info!(worker = %name, queue = %s.queue.name, "worker started");
    run_one(
        &s,
        store,
        queue,
        name,
        stop_rx,
        a.exit_when_idle.map(Duration::from_secs),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Tracks activity so an idle worker can stop itself.
struct Activity {
    inner: Handler,
    last: Arc<AtomicU64>,
    busy: Arc<AtomicU64>,
    started: Instant,
}

impl JobHandler for Activity {
    fn handle(
        &self,
        job: JobRef,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>> {
        let (last, busy, started) = (self.last.clone(), self.busy.clone(), self.started);
        let fut = self.inner.handle(job);
        Box::pin(async move {
            busy.fetch_add(1, Ordering::SeqCst);
            let r = fut.await;
            last.store(started.elapsed().as_secs(), Ordering::SeqCst);
            busy.fetch_sub(1, Ordering::SeqCst);
            r
        })
    }
}

/// Register a worker, keep its heartbeat, and run jobs until `stop` turns true (or it has
/// been idle for `idle_exit`).
pub async fn run_one(
    s: &Settings,
    store: Store,
    queue: Queue,
    name: String,
    mut stop: watch::Receiver<bool>,
    idle_exit: Option<Duration>,
) -> anyhow::Result<()> {
    let device = worker::engine::device::from_env()?;
    let info = WorkerInfo {
        name: name.clone(),
        host: gethostname::gethostname().to_string_lossy().into_owned(),
        pid: std::process::id() as i64,
        device: worker::engine::device::name(&device),
        queue: s.queue.name.clone(),
    };
    store.register_worker(&info).await?;
    let handler = Handler::new(
        HandlerConfig {
            worker: name.clone(),
            models_dir: context::models_dir(s),
            max_attempts: s.max_attempts,
            backoff: s.backoff,
            // Half the queue's orphan window: a dead holder always looks dead by the time the
            // queue delivers its job again; a live one (beating every `heartbeat`) rarely
            // looks dead, and if it does the shard is only computed twice, never stored twice.
            stale_after: (s.queue.heartbeat * s.queue.missed_heartbeats as u32 / 2)
                .max(Duration::from_secs(1)),
        },
        store.clone(),
        queue.clone(),
        device,
    );
    let started = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let busy = Arc::new(AtomicU64::new(0));
    let activity = Activity {
        inner: handler,
        last: last.clone(),
        busy: busy.clone(),
        started,
    };
    let heartbeat = {
        let (store, name, every) = (store.clone(), name.clone(), s.queue.heartbeat);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = store.heartbeat(&name).await {
                    warn!("heartbeat failed: {e}");
                }
            }
        })
    };
    let shutdown = async move {
        loop {
            if *stop.borrow() {
                return;
            }
            if let Some(idle) = idle_exit
                && busy.load(Ordering::SeqCst) == 0
            {
                let since = started.elapsed().as_secs() - last.load(Ordering::SeqCst);
                if since >= idle.as_secs() {
                    info!("idle for {since} s; stopping");
                    return;
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(500), stop.changed()).await;
        }
    };
    let result = run_worker(queue, name.clone(), Arc::new(activity), shutdown).await;
    heartbeat.abort();
    store.worker_stopped(&name).await?;
    Ok(result?)
}
