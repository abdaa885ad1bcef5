//! A worker's life: register, open the device, send heartbeats, run delivered jobs one at a
//! time through the [`Runner`] until told to stop (a signal) or idle for long enough, then
//! record that it stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use orchestrator::config::Settings;
use orchestrator::queue::{Deliveries, Queue, QueueError, run_worker};
use orchestrator::reconcile::{ReconcileOptions, reconcile};
use orchestrator::runner::{BoxFuture, RetryPolicy, Runner, RunnerConfig, StopSignal};
use orchestrator::telemetry::WorkerTelemetry;
use store::{JobRef, Store, StoreError, WorkerInfo};
use tokio::sync::watch;
use tracing::{info, warn};
use types::Backoff;

use crate::handler::{Handler, HandlerConfig};
use crate::perspective::{self, Perspective};

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
    /// A live worker already has this name.
    #[error(
        "a worker named `{name}` is running (host {host}, pid {pid}, last heartbeat {age} s ago)\n  fix: stop it first, or give this worker another name with --name / NLEBENCH_WORKER_NAME"
    )]
    NameTaken {
        /// The name.
        name: String,
        /// Where the other worker runs.
        host: String,
        /// Its process id.
        pid: i64,
        /// Seconds since its heartbeat.
        age: i64,
    },
}

/// Who the worker is and when it stops by itself.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Unique name (`HOST-PID-RANDOM` by default).
    pub name: String,
    /// Host name, for the record.
    pub host: String,
    /// Stop after this long without a job.
    pub idle_exit: Option<Duration>,
    /// Its Prometheus counters.
    pub telemetry: Arc<WorkerTelemetry>,
    /// Prefer jobs for the model it holds (model affinity).
    pub affinity: bool,
    /// Code the embedding program runs at points of a job's life (none in `nlebench`).
    pub hooks: crate::Hooks,
    /// Remove its row when it stops cleanly instead of keeping it as stopped: the in-process
    /// workers of `nlebench run` are part of one command, not members of a team's cluster.
    pub forget_on_stop: bool,
}

/// Run jobs as one worker until `stop` turns true or it has been idle for
/// `opts.idle_exit`; the handler's model cache lives as long as the worker.
pub async fn run(
    s: &Settings,
    store: Store,
    mut queue: Queue,
    opts: WorkerOptions,
    stop: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let device = engine::device::select(s.device)?;
    let alive_within = s.queue.heartbeat * s.queue.missed_heartbeats as u32;
    claim_name(&store, &mut queue, &opts, alive_within).await?;
    if let Some(w) = queue.persistence_warning().await {
        warn!("{w}");
    }
    // What this worker offers its jobs: as configured, else its device's memory.
    let memory_mb = s
        .memory_gb
        .map(|gb| (gb * 1024.0) as u64)
        .or_else(|| engine::device::memory_bytes(&device).map(|b| b >> 20));
    store
        .register_worker(&WorkerInfo {
            name: opts.name.clone(),
            host: opts.host.clone(),
            pid: i64::from(std::process::id()),
            device: engine::device::name(&device),
            queue: s.queue.name.clone(),
            memory_mb,
            release: engine::ENGINE_VERSION.to_string(),
        })
        .await?;
    let handler = Handler::new(handler_config(s, &opts), store.clone(), device);
    let runner = Runner::new(
        RunnerConfig {
            worker: opts.name.clone(),
            policy: RetryPolicy::new(s.max_attempts, s.backoff),
            stale_after: stale_after(s),
            outage_budget: s.store_outage,
            telemetry: opts.telemetry.clone(),
            // Embedded, every worker shares this machine: refusing would leave the job to
            // nobody, so a job is tried whatever it needs.
            memory_mb: memory_mb.filter(|_| !s.embedded),
            affinity: opts.affinity,
            release: engine::ENGINE_VERSION.to_string(),
        },
        store.clone(),
        queue.clone(),
        Arc::new(handler),
        StopSignal::new(stop.clone()),
    );
    opts.telemetry.heartbeat();
    let heartbeat = tokio::spawn(send_heartbeats(
        store.clone(),
        opts.name.clone(),
        s.queue.heartbeat,
        opts.telemetry.clone(),
    ));
    let reconciler = s.reconcile_every.map(|every| {
        tokio::spawn(reconcile_periodically(
            store.clone(),
            queue.clone(),
            every,
            stale_after(s),
        ))
    });
    let result = take_jobs(queue, &opts, Activity::new(runner), stop).await;
    heartbeat.abort();
    if let Some(r) = reconciler {
        r.abort();
    }
    if opts.forget_on_stop && result.is_ok() {
        store.forget_worker(&opts.name).await?;
    } else {
        store.worker_stopped(&opts.name).await?;
    }
    Ok(result?)
}

/// What the worker's handler is given: where models are, budgets, the Perspective client.
fn handler_config(s: &Settings, opts: &WorkerOptions) -> HandlerConfig {
    let perspective = s.perspective.as_ref().map(|p| {
        Arc::new(Perspective::new(perspective::Config {
            endpoint: p
                .url
                .clone()
                .unwrap_or_else(|| perspective::DEFAULT_ENDPOINT.into()),
            key: p.key.clone(),
            qps: p.qps,
            max_attempts: 5,
            backoff: Backoff::new(s.backoff, Duration::from_secs(60)),
            timeout: Duration::from_secs(30),
        }))
    });
    HandlerConfig {
        worker: opts.name.clone(),
        locations: engine::Locations {
            models_dir: s.models_dir(),
            hub: s.hub.clone(),
        },
        memory_budget_mb: s.memory_budget_mb,
        bootstrap: metrics::bootstrap::Bootstrap::with_iterations(s.bootstrap_iterations),
        perspective,
        hooks: opts.hooks.clone(),
        telemetry: opts.telemetry.clone(),
    }
}

/// Record a heartbeat every `every`, for ever.
async fn send_heartbeats(
    store: Store,
    name: String,
    every: Duration,
    telemetry: Arc<WorkerTelemetry>,
) {
    loop {
        tokio::time::sleep(every).await;
        match store.heartbeat(&name).await {
            Ok(()) => telemetry.heartbeat(),
            Err(e) => warn!("heartbeat failed: {e}"),
        }
    }
}

/// Take delivered jobs until stopped or idle. The queue drops a worker it took for dead
/// (blocked on a long store outage, or the queue lost its data); the worker then registers
/// again instead of exiting.
async fn take_jobs(
    mut queue: Queue,
    opts: &WorkerOptions,
    activity: Activity,
    stop: watch::Receiver<bool>,
) -> Result<(), QueueError> {
    let deliveries: Arc<dyn Deliveries> = Arc::new(activity.clone());
    loop {
        let shutdown = activity.until_stopped(stop.clone(), opts.idle_exit);
        match run_worker(
            queue.clone(),
            opts.name.clone(),
            deliveries.clone(),
            shutdown,
        )
        .await
        {
            Err(e) if !*stop.borrow() => {
                warn!("the queue dropped this worker ({e}); registering again");
                // The job in hand still runs to its end (see `Activity`); one job at a time.
                activity.idle().await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Err(e) = queue.forget_worker(&opts.name).await {
                    warn!("cannot reset the queue's registration: {e}");
                }
            }
            other => return other,
        }
    }
}

/// Take this worker's name: refused while a live worker has it; otherwise the queue forgets
/// an earlier registration under it (a worker restarted under its name is accepted).
async fn claim_name(
    store: &Store,
    queue: &mut Queue,
    opts: &WorkerOptions,
    alive_within: Duration,
) -> Result<(), WorkerError> {
    if let Some(w) = store.worker_named(&opts.name).await? {
        let age = (chrono::Utc::now() - w.last_heartbeat).num_seconds();
        // On this host a process that is gone is known to be gone; elsewhere only its
        // silence tells.
        let gone =
            w.host == opts.host && !std::path::Path::new(&format!("/proc/{}", w.pid)).exists();
        let alive = w.status == "running" && (age.max(0) as u64) < alive_within.as_secs();
        if alive && !gone && i64::from(std::process::id()) != w.pid {
            return Err(WorkerError::NameTaken {
                name: w.name,
                host: w.host,
                pid: w.pid,
                age,
            });
        }
    }
    queue.forget_worker(&opts.name).await?;
    Ok(())
}

/// A reconciler pass every `every` (one at a time across workers, by the store's lock).
async fn reconcile_periodically(
    store: Store,
    mut queue: Queue,
    every: Duration,
    stale_after: Duration,
) {
    let opts = ReconcileOptions {
        stale_after,
        grace: stale_after.max(Duration::from_secs(2)),
        dry_run: false,
    };
    loop {
        tokio::time::sleep(every).await;
        match reconcile(&store, &mut queue, opts).await {
            Ok(report) => {
                for r in &report.repairs {
                    warn!(
                        job = r.job.job_id,
                        run = r.job.run_id,
                        "reconciler queued the job again: {}",
                        r.reason
                    );
                }
            }
            Err(e) => warn!("reconciler pass failed: {e}"),
        }
    }
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
#[derive(Clone)]
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
    /// The job runs on a task of its own: when the queue drops this worker mid-job (and with
    /// it the delivery's future), the job still finishes and records its outcome instead of
    /// staying named as this live worker's job with nobody computing it.
    fn handle(&self, job: JobRef) -> BoxFuture<Result<(), StoreError>> {
        let busy = Busy::start(self);
        let (runner, fut) = (self.runner.clone(), Deliveries::handle(&self.runner, job));
        let task = tokio::spawn(async move {
            let _busy = busy;
            fut.await
        });
        Box::pin(async move {
            match task.await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("the job's task failed: {e}; the reconciler queues it again");
                    runner.abandon().await
                }
            }
        })
    }
}

impl Activity {
    /// Completes once no job is in hand.
    async fn idle(&self) {
        while self.busy.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One job in hand, for as long as it lives (a panicking job is counted out too).
struct Busy {
    last: Arc<AtomicU64>,
    busy: Arc<AtomicU64>,
    started: Instant,
}

impl Busy {
    fn start(a: &Activity) -> Busy {
        a.busy.fetch_add(1, Ordering::SeqCst);
        Busy {
            last: a.last.clone(),
            busy: a.busy.clone(),
            started: a.started,
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.last
            .store(self.started.elapsed().as_secs(), Ordering::SeqCst);
        self.busy.fetch_sub(1, Ordering::SeqCst);
    }
}
