//! The job runner: what happens to a delivered [`JobRef`] whatever the job computes. It claims
//! the job in the store, hands it to a [`JobHandler`], records the outcome, finishes the run
//! after its last shard, and owns the retry policy: a failure a retry can help goes back on
//! the queue after an exponential backoff until the attempts run out; one it cannot fails the
//! run at once (the shape of crates.io's background-job runner).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{Instrument, info, info_span, warn};
use types::{Backoff, MetricValue};

use crate::queue::{Deliveries, Queue};
use crate::telemetry::WorkerTelemetry;
use store::outage::retry;
use store::{Claim, ClaimedJob, Completion, JobOutcome, JobRef, Store, StoreError};

/// A boxed future, as the handler's methods return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Why a job did not complete.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Another attempt may succeed (I/O, a download, the device, the store).
    #[error("{0}")]
    Retryable(String),
    /// No retry can fix it (bad model files, bad data, a bad task).
    #[error("{0}")]
    Permanent(String),
    /// The run was cancelled while the job ran; nothing more to record.
    #[error("the run was cancelled")]
    Cancelled,
    /// The worker is stopping: the job goes back to the queue after the current batch.
    #[error("the worker is stopping")]
    Stopping,
    /// The store could not be reached: the runner waits for it without spending an attempt.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            JobError::Unavailable(e.to_string())
        } else {
            JobError::Retryable(e.to_string())
        }
    }
}

/// Tells a handler between batches that its worker is stopping (SIGTERM): it returns
/// [`JobError::Stopping`] and the job goes back to the queue at once.
#[derive(Debug, Clone)]
pub struct StopSignal(watch::Receiver<bool>);

impl StopSignal {
    /// A signal that turns on when `rx` turns true.
    pub fn new(rx: watch::Receiver<bool>) -> StopSignal {
        StopSignal(rx)
    }

    /// Whether the worker is stopping.
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }
}

/// What a worker computes for a job; implemented by the worker crate.
pub trait JobHandler: Send + Sync + 'static {
    /// Compute and store the job's samples (those not stored yet), checking `stop` between
    /// batches.
    fn run(&self, job: ClaimedJob, stop: StopSignal) -> BoxFuture<Result<(), JobError>>;
    /// The run's metrics from its stored samples, after its last shard.
    fn metrics(&self, job: ClaimedJob) -> BoxFuture<Result<Scored, JobError>>;
    /// The model source this handler has loaded, for model affinity (`None`: none).
    fn held_model(&self) -> Option<String> {
        None
    }
    /// Text kept with the error of a run that gives up (e.g. the job's last log lines).
    fn give_up_note(&self, _run_id: i64) -> Option<String> {
        None
    }
    /// The run's job is over (done or failed for good): drop what was kept for it.
    fn forget(&self, _run_id: i64) {}
}

/// A run's metrics, and what could not be computed and why (e.g. a metric whose model is
/// not available): the run is done either way, and the notes are stored with it.
#[derive(Debug, Clone, Default)]
pub struct Scored {
    /// The metrics.
    pub metrics: Vec<MetricValue>,
    /// One line per metric left out, with the reason.
    pub notes: Vec<String>,
}

/// Attempts and backoff of failing jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per job before its run fails.
    pub max_attempts: u32,
    /// Delays before the second and later attempts.
    pub backoff: Backoff,
}

impl RetryPolicy {
    /// The longest base delay between two attempts of a job.
    pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);

    /// Attempts and delays doubling from `first` up to [`Self::MAX_DELAY`].
    pub fn new(max_attempts: u32, first: Duration) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            backoff: Backoff::new(first, Self::MAX_DELAY),
        }
    }

    /// The delay before the attempt after `attempts` failed ones.
    pub fn delay(&self, attempts: u32) -> Duration {
        self.backoff.delay(attempts)
    }
}

/// How a runner treats its jobs.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// This worker's unique name.
    pub worker: String,
    /// Attempts and backoff.
    pub policy: RetryPolicy,
    /// A job held by a worker whose heartbeat is younger than this is left to it.
    pub stale_after: Duration,
    /// How long a store outage is waited out before the job is released to the queue.
    pub outage_budget: Duration,
    /// The worker's Prometheus counters.
    pub telemetry: Arc<WorkerTelemetry>,
    /// MiB this worker offers its jobs (`None`: unknown, it takes every job).
    pub memory_mb: Option<u64>,
    /// Prefer jobs for the model it holds (model affinity).
    pub affinity: bool,
    /// The engine version its handler computes with: it computes only runs planned for it.
    pub release: String,
}

/// Runs delivered jobs for one worker; cheap to clone.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<RunnerInner>,
}

struct RunnerInner {
    cfg: RunnerConfig,
    store: Store,
    queue: tokio::sync::Mutex<Queue>,
    handler: Arc<dyn JobHandler>,
    stop: StopSignal,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("cfg", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// A runner whose handler stops between batches once `stop` is set.
    pub fn new(
        cfg: RunnerConfig,
        store: Store,
        queue: Queue,
        handler: Arc<dyn JobHandler>,
        stop: StopSignal,
    ) -> Runner {
        Runner {
            inner: Arc::new(RunnerInner {
                cfg,
                store,
                queue: tokio::sync::Mutex::new(queue),
                handler,
                stop,
            }),
        }
    }

    /// Claim, run and record one delivered job. Store outages are waited out for the outage
    /// budget; past it the job is pushed back to the queue. An `Err` means not even that was
    /// possible (the reconciler finds the job later).
    pub async fn handle(&self, job: JobRef) -> Result<(), StoreError> {
        let job = self.prefer_held_model(job).await;
        let me = &self.inner;
        if !self.same_release(&job).await || !self.admits(&job).await {
            return Ok(());
        }
        let (budget, worker) = (me.cfg.outage_budget, me.cfg.worker.as_str());
        let claim = retry(budget, "claiming a job", || {
            me.store.claim_job(
                job.job_id,
                worker,
                me.cfg.stale_after,
                me.cfg.policy.max_attempts,
            )
        })
        .await;
        let claimed = match claim {
            Ok(Claim::Claimed(c)) => {
                me.cfg.telemetry.job_started();
                *c
            }
            Ok(Claim::Skip(why)) => {
                info!("nothing to do: {why}");
                return Ok(());
            }
            Ok(Claim::GaveUp(message)) => {
                warn!("job failed for good: {message}");
                me.handler.forget(job.run_id);
                return Ok(());
            }
            Err(e) if e.is_unavailable() => return self.push_back(job, e).await,
            Err(e) => return Err(e),
        };
        let outcome = self.compute(&claimed).await;
        let finished = match self.record(&claimed, outcome).await {
            Ok(finished) => finished,
            Err(e) if e.is_unavailable() => return self.push_back(job, e).await,
            Err(e) => {
                // Not left naming the job: a live worker on it would look like its holder.
                let _ = me.store.worker_job(worker, None, false).await;
                return Err(e);
            }
        };
        if finished {
            me.handler.forget(job.run_id);
        }
        retry(budget, "idling the worker", || {
            me.store.worker_job(worker, None, finished)
        })
        .await
    }

    /// Model affinity: the job to run instead of the delivered one, when the delivered job is
    /// for another model than the one this worker holds (holding none: than the model with
    /// the most queued work) and a job for that model waits at the delivered job's priority or
    /// higher. The delivered job goes back to the queue; the chosen job's own queue entry is
    /// skipped when it comes (its claim finds it taken). Anything failing here leaves the
    /// delivered job in hand: affinity saves model loads, it never decides what runs.
    async fn prefer_held_model(&self, job: JobRef) -> JobRef {
        let me = &self.inner;
        if !me.cfg.affinity {
            return job;
        }
        let Ok(Some(delivered)) = me.store.job_model(job.job_id).await else {
            return job;
        };
        if !delivered.queued {
            return job; // its claim skips it: nothing to give back
        }
        let wanted = match me.handler.held_model() {
            Some(held) => held,
            None => match me.store.busiest_model(delivered.priority).await {
                Ok(Some(busiest)) => busiest,
                _ => return job,
            },
        };
        if wanted == delivered.source {
            return job;
        }
        let Ok(Some(other)) = me
            .store
            .queued_job_for_model(&wanted, delivered.priority)
            .await
        else {
            return job;
        };
        let pushed = me
            .queue
            .lock()
            .await
            .push(std::slice::from_ref(&job), delivered.priority, None)
            .await;
        match pushed {
            Ok(()) => {
                info!(
                    delivered = job.job_id,
                    instead = other.job_id,
                    model = %wanted,
                    "model affinity: taking a job for the model at hand"
                );
                other
            }
            Err(e) => {
                warn!(
                    "model affinity: the delivered job could not be queued again ({e}); running it"
                );
                job
            }
        }
    }

    /// Releases side by side: whether `job`'s run was planned for the engine this worker
    /// computes with. A run records its engine version in its manifest and fingerprint; a
    /// worker of another release (during a rolling upgrade, say) leaves the job on the queue,
    /// after the time a delivery takes, for a worker of that release, and logs why.
    async fn same_release(&self, job: &JobRef) -> bool {
        let me = &self.inner;
        let Ok(Some(planned)) = me.store.job_release(job.run_id).await else {
            return true;
        };
        if planned == me.cfg.release {
            return true;
        }
        warn!(
            job = job.job_id,
            run = job.run_id,
            "run {} was planned for engine {planned} and this worker computes with engine {}: left on the queue for a worker of that release",
            job.run_id,
            me.cfg.release
        );
        self.requeue_later(job).await;
        false
    }

    /// Put `job` back on the queue, delivered again after the time a delivery takes.
    async fn requeue_later(&self, job: &JobRef) {
        let me = &self.inner;
        let pushed = me
            .queue
            .lock()
            .await
            .push(std::slice::from_ref(job), 0, Some(me.cfg.stale_after))
            .await;
        if let Err(e) = pushed {
            warn!("the job could not be queued again ({e}); `nlebench reconcile` queues it");
        }
    }

    /// Memory admission: whether this worker can hold `job` (its model's weights and KV
    /// cache). A job that does not fit goes back to the queue, after the time a delivery takes,
    /// for a worker that offers more; `status` names the runs no live worker can fit.
    async fn admits(&self, job: &JobRef) -> bool {
        let me = &self.inner;
        let Some(have) = me.cfg.memory_mb else {
            return true;
        };
        let Ok(Some(need)) = me.store.job_need_mb(job.run_id).await else {
            return true;
        };
        if spec::memory::fits(Some(need), Some(have)) {
            return true;
        }
        warn!(
            job = job.job_id,
            "the job needs {need} MiB and this worker offers {have} MiB: back to the queue for another worker"
        );
        self.requeue_later(job).await;
        false
    }

    /// The job in hand was lost without an outcome (its task panicked): the worker names no
    /// job any more, so the reconciler queues it again (and its next claim counts a death).
    pub async fn abandon(&self) -> Result<(), StoreError> {
        let me = &self.inner;
        me.store.worker_job(&me.cfg.worker, None, false).await
    }

    /// The handler's outcome, run again (skipping stored samples, spending no attempt) while
    /// the store is unavailable and the outage budget lasts.
    async fn compute(&self, c: &ClaimedJob) -> Result<(), JobError> {
        let me = &self.inner;
        let start = Instant::now();
        loop {
            match me.handler.run(c.clone(), me.stop.clone()).await {
                Err(JobError::Unavailable(e)) if start.elapsed() < me.cfg.outage_budget => {
                    warn!("store unavailable while computing; retrying the job: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                other => return other,
            }
        }
    }

    /// Record the handler's outcome; `true` when the job is over (done or failed for good).
    async fn record(
        &self,
        c: &ClaimedJob,
        outcome: Result<(), JobError>,
    ) -> Result<bool, StoreError> {
        let me = &self.inner;
        let (budget, worker) = (me.cfg.outage_budget, me.cfg.worker.as_str());
        match outcome {
            Ok(()) => {
                let completion = retry(budget, "completing a job", || {
                    me.store.complete_job(c.job.id, c.run.id, worker)
                })
                .await?;
                match completion {
                    Completion::Done => {
                        me.cfg.telemetry.job_finished();
                        Ok(true)
                    }
                    Completion::Last => {
                        let finished = self.finish_run(c).await?;
                        if finished {
                            me.cfg.telemetry.job_finished();
                        }
                        Ok(finished)
                    }
                    Completion::Stale(why) => {
                        info!("result not recorded: {why}");
                        Ok(false)
                    }
                }
            }
            Err(JobError::Cancelled) => {
                info!("run cancelled; stopping");
                Ok(false)
            }
            Err(JobError::Stopping) => {
                self.release(c).await?;
                Ok(false)
            }
            Err(JobError::Unavailable(e)) => Err(StoreError::Unavailable(e)),
            Err(e) => self.failed(c, e).await,
        }
    }

    async fn finish_run(&self, c: &ClaimedJob) -> Result<bool, StoreError> {
        let me = &self.inner;
        let scored = match me.handler.metrics(c.clone()).await {
            Ok(s) => s,
            Err(e) => return self.failed(c, e).await,
        };
        for note in &scored.notes {
            warn!(run = c.run.id, "{note}");
        }
        let finished = retry(me.cfg.outage_budget, "finishing a run", || {
            me.store.finish_job(
                c.job.id,
                c.run.id,
                &me.cfg.worker,
                &scored.metrics,
                &scored.notes,
            )
        })
        .await?;
        if finished {
            info!(run = c.run.id, "run done");
        } else {
            info!(
                run = c.run.id,
                "run not finished: the job was taken over or cancelled"
            );
        }
        Ok(finished)
    }

    /// Give the job back to the queue at once (the worker is stopping).
    async fn release(&self, c: &ClaimedJob) -> Result<(), StoreError> {
        let me = &self.inner;
        let released = retry(me.cfg.outage_budget, "releasing a job", || {
            me.store.release_job(c.job.id, c.run.id, &me.cfg.worker)
        })
        .await?;
        if !released {
            return Ok(());
        }
        let job = job_ref(c);
        match me.queue.lock().await.push(&[job], 0, None).await {
            Ok(()) => {
                info!("worker stopping: job released to the queue");
                me.store.mark_job_enqueued(c.job.id).await
            }
            Err(e) => {
                warn!("job released but not queued ({e}); `nlebench reconcile` queues it");
                Ok(())
            }
        }
    }

    /// The store stayed unreachable past the outage budget: push the job back to the queue
    /// (after the time a holder counts as alive, so the next claim can take it over).
    async fn push_back(&self, job: JobRef, e: StoreError) -> Result<(), StoreError> {
        let me = &self.inner;
        warn!(
            "store unavailable for longer than {:?}; the job goes back to the queue: {e}",
            me.cfg.outage_budget
        );
        me.queue
            .lock()
            .await
            .push(&[job], 0, Some(me.cfg.stale_after))
            .await
            .map_err(|q| {
                StoreError::Unavailable(format!("{e}; and the job could not be queued again: {q}"))
            })
    }

    /// Record a failed attempt: retry after the backoff, or fail the run for good (`true`).
    async fn failed(&self, c: &ClaimedJob, e: JobError) -> Result<bool, StoreError> {
        let me = &self.inner;
        let (budget, worker) = (me.cfg.outage_budget, me.cfg.worker.as_str());
        let attempts = c.job.attempts.max(1) as u32;
        let message = e.to_string();
        let permanent = matches!(e, JobError::Permanent(_));
        let give_up = permanent || attempts >= me.cfg.policy.max_attempts;
        me.cfg.telemetry.job_failed(give_up);
        if give_up {
            warn!(attempts, "job failed for good: {message}");
            let stored = match me.handler.give_up_note(c.run.id) {
                Some(note) => format!("{message}\n\n{note}"),
                None => message,
            };
            me.handler.forget(c.run.id);
            retry(budget, "failing a job", || {
                me.store
                    .fail_job(c.job.id, c.run.id, worker, &stored, JobOutcome::GiveUp)
            })
            .await?;
            return Ok(true);
        }
        let delay = me.cfg.policy.delay(attempts);
        warn!(attempts, ?delay, "job failed, retrying: {message}");
        let recorded = retry(budget, "recording a failed attempt", || {
            me.store
                .fail_job(c.job.id, c.run.id, worker, &message, JobOutcome::Retry)
        })
        .await?;
        if !recorded {
            return Ok(false);
        }
        let pushed = me
            .queue
            .lock()
            .await
            .push(&[job_ref(c)], 0, Some(delay))
            .await;
        match pushed {
            Ok(()) => me.store.mark_job_enqueued(c.job.id).await?,
            Err(q) => warn!("the retry could not be queued ({q}); `nlebench reconcile` queues it"),
        }
        Ok(false)
    }
}

fn job_ref(c: &ClaimedJob) -> JobRef {
    JobRef {
        job_id: c.job.id,
        run_id: c.run.id,
        shard: c.job.shard,
    }
}

impl Deliveries for Runner {
    fn handle(&self, job: JobRef) -> BoxFuture<Result<(), StoreError>> {
        let runner = self.clone();
        let span = info_span!("job", job = job.job_id, run = job.run_id, shard = job.shard);
        Box::pin(async move { Runner::handle(&runner, job).await }.instrument(span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_failed_attempt() {
        let p = RetryPolicy::new(3, Duration::from_secs(5));
        for (attempts, base) in [(1, 5), (2, 10), (3, 20)] {
            let base = Duration::from_secs(base);
            assert_eq!(p.backoff.base(attempts), base);
            // Jitter adds less than the base itself.
            let d = p.delay(attempts);
            assert!(d >= base && d < 2 * base, "{d:?}");
        }
        assert_eq!(p.backoff.base(30), RetryPolicy::MAX_DELAY, "capped");
    }
}
