//! The job runner: what happens to a delivered [`JobRef`] whatever the job computes. It claims
//! the job in the store, hands it to a [`JobHandler`], records the outcome, finishes the run
//! after its last shard, and owns the retry policy: a failure a retry can help goes back on
//! the queue after an exponential backoff until the attempts run out; one it cannot fails the
//! run at once (the shape of crates.io's background-job runner).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tracing::{Instrument, info, info_span, warn};
use types::MetricValue;

use crate::queue::{Deliveries, Queue};
use crate::store::{ClaimedJob, JobOutcome, JobRef, Store, StoreError};

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
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        JobError::Retryable(e.to_string())
    }
}

/// What a worker computes for a job; implemented by the worker crate.
pub trait JobHandler: Send + Sync + 'static {
    /// Compute and store the job's samples (those not stored yet).
    fn run(&self, job: ClaimedJob) -> BoxFuture<Result<(), JobError>>;
    /// The run's metrics from its stored samples, after its last shard.
    fn metrics(&self, job: ClaimedJob) -> BoxFuture<Result<Scored, JobError>>;
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
    /// Delay before the second attempt; it doubles per attempt.
    pub backoff: Duration,
}

impl RetryPolicy {
    /// The delay before the attempt after `attempts` failed ones.
    pub fn delay(&self, attempts: u32) -> Duration {
        self.backoff * 2u32.saturating_pow(attempts.saturating_sub(1))
    }
}

/// Runs delivered jobs for one worker; cheap to clone.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<RunnerInner>,
}

struct RunnerInner {
    worker: String,
    store: Store,
    queue: tokio::sync::Mutex<Queue>,
    policy: RetryPolicy,
    stale_after: Duration,
    handler: Arc<dyn JobHandler>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("worker", &self.inner.worker)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// A runner for worker `worker`. A job held by a worker whose heartbeat is younger than
    /// `stale_after` is left to it.
    pub fn new(
        worker: String,
        store: Store,
        queue: Queue,
        policy: RetryPolicy,
        stale_after: Duration,
        handler: Arc<dyn JobHandler>,
    ) -> Runner {
        Runner {
            inner: Arc::new(RunnerInner {
                worker,
                store,
                queue: tokio::sync::Mutex::new(queue),
                policy,
                stale_after,
                handler,
            }),
        }
    }

    /// Claim, run and record one delivered job. An `Err` means the outcome could not be
    /// recorded, and the queue should deliver the job again.
    pub async fn handle(&self, job: JobRef) -> Result<(), StoreError> {
        let me = &self.inner;
        let Some(claimed) = me
            .store
            .claim_job(job.job_id, &me.worker, me.stale_after)
            .await?
        else {
            info!("nothing to do (job done, gone, cancelled or held by a live worker)");
            return Ok(());
        };
        me.store
            .worker_job(&me.worker, Some(job.job_id), false)
            .await?;
        let finished = match me.handler.run(claimed.clone()).await {
            Ok(()) => {
                if me.store.complete_job(job.job_id, job.run_id).await?
                    && let Err(e) = self.finish_run(&claimed).await
                {
                    self.failed(&claimed, e).await?;
                }
                true
            }
            Err(JobError::Cancelled) => {
                info!("run cancelled; stopping");
                false
            }
            Err(e) => {
                self.failed(&claimed, e).await?;
                false
            }
        };
        if finished {
            me.handler.forget(job.run_id);
        }
        me.store.worker_job(&me.worker, None, finished).await?;
        Ok(())
    }

    async fn finish_run(&self, c: &ClaimedJob) -> Result<(), JobError> {
        let scored = self.inner.handler.metrics(c.clone()).await?;
        for note in &scored.notes {
            warn!(run = c.run.id, "{note}");
        }
        self.inner
            .store
            .finish_run(c.run.id, &scored.metrics, &scored.notes)
            .await?;
        info!(run = c.run.id, "run done");
        Ok(())
    }

    /// Record a failed attempt: retry after the backoff, or fail the run for good.
    async fn failed(&self, c: &ClaimedJob, e: JobError) -> Result<(), StoreError> {
        let me = &self.inner;
        let attempts = c.job.attempts.max(1) as u32;
        let message = e.to_string();
        let permanent = matches!(e, JobError::Permanent(_));
        if permanent || attempts >= me.policy.max_attempts {
            warn!(attempts, "job failed for good: {message}");
            let stored = match me.handler.give_up_note(c.run.id) {
                Some(note) => format!("{message}\n\n{note}"),
                None => message,
            };
            me.handler.forget(c.run.id);
            return me
                .store
                .fail_job(c.job.id, c.run.id, &stored, JobOutcome::GiveUp)
                .await;
        }
        let delay = me.policy.delay(attempts);
        warn!(attempts, ?delay, "job failed, retrying: {message}");
        me.store
            .fail_job(c.job.id, c.run.id, &message, JobOutcome::Retry)
            .await?;
        let job = JobRef {
            job_id: c.job.id,
            run_id: c.run.id,
            shard: c.job.shard,
        };
        let pushed = me.queue.lock().await.push(&[job], 0, Some(delay)).await;
        match pushed {
            Ok(()) => me.store.mark_job_enqueued(c.job.id).await,
            Err(q) => {
                me.store
                    .fail_job(
                        c.job.id,
                        c.run.id,
                        &format!("{message}; and the retry could not be queued: {q}"),
                        JobOutcome::GiveUp,
                    )
                    .await
            }
        }
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
        let p = RetryPolicy {
            max_attempts: 3,
            backoff: Duration::from_secs(5),
        };
        assert_eq!(p.delay(1), Duration::from_secs(5));
        assert_eq!(p.delay(2), Duration::from_secs(10));
        assert_eq!(p.delay(3), Duration::from_secs(20));
    }
}
