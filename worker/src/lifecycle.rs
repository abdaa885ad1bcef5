//! A worker's life: register, open the device, send heartbeats, run delivered jobs one at a
//! time through the [`Runner`] until told to stop (a signal) or idle for long enough, then
//! record that it stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use orchestrator::config::Settings;
use orchestrator::queue::{Deliveries, Queue, QueueError, run_worker};
use orchestrator::runner::{BoxFuture, RetryPolicy, Runner};
use orchestrator::store::{JobRef, Store, StoreError, WorkerInfo};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::handler::{Handler, HandlerConfig};

/// Why a worker stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The device could not be opened.
    #[error(transparent)]
    Device(#[from] engine::EngineError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Who the worker is and when it stops by itself.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Unique name (`HOST-PID` by default).
    pub name: String,
    /// Host name, for the record.
    pub host: String,
    /// Stop after this long without a job.
    pub idle_exit: Option<Duration>,
}

/// Run jobs as one worker until `stop` turns true or it has been idle for
/// `opts.idle_exit`; the handler's model cache lives as long as the worker.
pub async fn run(
    s: &Settings,
    store: Store,
    queue: Queue,
    opts: WorkerOptions,
    stop: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let device = engine::device::select(s.device)?;
    let name = opts.name.clone();
    store
        .register_worker(&WorkerInfo {
            name: name.clone(),
            host: opts.host.clone(),
            pid: i64::from(std::process::id()),
            device: engine::device::name(&device),
            queue: s.queue.name.clone(),
        })
        .await?;
    let handler = Handler::new(
        HandlerConfig {
            worker: name.clone(),
            models_dir: s.models_dir(),
            memory_budget_mb: s.memory_budget_mb,
            bootstrap: metrics::bootstrap::Bootstrap::with_iterations(s.bootstrap_iterations),
            perspective: s.perspective.as_ref().map(|p| {
                std::sync::Arc::new(crate::perspective::Perspective::new(
                    crate::perspective::Config {
                        endpoint: p
                            .url
                            .clone()
                            .unwrap_or_else(|| crate::perspective::DEFAULT_ENDPOINT.into()),
                        key: p.key.clone(),
                        qps: p.qps,
                        max_attempts: 5,
                        backoff: s.backoff,
                        timeout: std::time::Duration::from_secs(30),
                    },
                ))
            }),
        },
        store.clone(),
        device,
    );
    let runner = Runner::new(
        name.clone(),
        store.clone(),
        queue.clone(),
        RetryPolicy {
            max_attempts: s.max_attempts,
            backoff: s.backoff,
        },
        stale_after(s),
        Arc::new(handler),
    );
    let activity = Activity::new(runner);
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
    let shutdown = activity.until_stopped(stop, opts.idle_exit);
    let result = run_worker(queue, name.clone(), Arc::new(activity), shutdown).await;
    heartbeat.abort();
    store.worker_stopped(&name).await?;
    Ok(result?)
}

/// How long a job's holder may be silent before another worker takes it over: half the
/// queue's orphan window. A dead holder always looks dead by the time the queue delivers its
/// job again; a live one (beating every `heartbeat`) rarely looks dead, and if it does the
/// shard is only computed twice, never stored twice.
fn stale_after(s: &Settings) -> Duration {
    (s.queue.heartbeat * s.queue.missed_heartbeats as u32 / 2).max(Duration::from_secs(1))
}

/// Resolves on SIGINT or SIGTERM (Ctrl-C elsewhere).
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                warn!("cannot listen for SIGTERM ({e}); stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// The runner, tracking activity so an idle worker can stop itself.
struct Activity {
    runner: Runner,
    last: Arc<AtomicU64>,
    busy: Arc<AtomicU64>,
    started: Instant,
}

impl Activity {
    fn new(runner: Runner) -> Activity {
        Activity {
            runner,
            last: Arc::new(AtomicU64::new(0)),
            busy: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
        }
    }

    /// Completes when `stop` turns true, or after `idle_exit` without a job.
    fn until_stopped(
        &self,
        mut stop: watch::Receiver<bool>,
        idle_exit: Option<Duration>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (last, busy, started) = (self.last.clone(), self.busy.clone(), self.started);
        async move {
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
        }
    }
}

impl Deliveries for Activity {
    fn handle(&self, job: JobRef) -> BoxFuture<Result<(), StoreError>> {
        let (last, busy, started) = (self.last.clone(), self.busy.clone(), self.started);
        let fut = Deliveries::handle(&self.runner, job);
        Box::pin(async move {
            busy.fetch_add(1, Ordering::SeqCst);
            let r = fut.await;
            last.store(started.elapsed().as_secs(), Ordering::SeqCst);
            busy.fetch_sub(1, Ordering::SeqCst);
            r
        })
    }
}
