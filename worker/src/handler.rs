//! The job handler: claim a job, load the model (cached) and dataset, score the examples not
//! yet stored batch by batch, write samples per batch, and finish the run when its last shard
//! is done. Failures are retried with exponential backoff up to a maximum, then fail the run.

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use candle_core::Device;
use orchestrator::queue::{JobHandler, Queue};
use orchestrator::store::{ClaimedJob, JobOutcome, JobRef, RunStatus, Store, StoreError};
use tracing::{Instrument, info, info_span, warn};

use crate::data::DatasetCache;
use crate::engine::{EngineError, ModelCache};
use crate::tasks::{self, BatchOptions, TaskError};

/// Examples scored and written together when the setting names no batch size.
pub const DEFAULT_BATCH_SIZE: usize = 16;

/// What the handler needs.
#[derive(Debug)]
pub struct HandlerConfig {
    /// This worker's unique name.
    pub worker: String,
    /// Where random-weight models are written.
    pub models_dir: PathBuf,
    /// Attempts per job before its run fails.
    pub max_attempts: u32,
    /// First retry delay (doubles per attempt).
    pub backoff: Duration,
    /// A worker silent for this long is dead; its jobs may be taken over.
    pub stale_after: Duration,
}

/// Runs jobs; cheap to clone.
#[derive(Debug, Clone)]
pub struct Handler {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: HandlerConfig,
    store: Store,
    queue: tokio::sync::Mutex<Queue>,
    models: ModelCache,
    datasets: DatasetCache,
    device: Device,
}

#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error("the run was cancelled")]
    Cancelled,
    #[error(transparent)]
    Task(Box<TaskError>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

impl From<TaskError> for JobError {
    fn from(e: TaskError) -> Self {
        JobError::Task(Box::new(e))
    }
}

impl JobError {
    /// Errors that no retry can fix (bad model files, bad data).
    fn is_permanent(&self) -> bool {
        match self {
            JobError::Task(t) => match t.as_ref() {
                TaskError::Engine(e) => !matches!(
                    e,
                    EngineError::Io { .. }
                        | EngineError::NotAvailable { .. }
                        | EngineError::Candle(_)
                ),
                _ => true,
            },
            _ => false,
        }
    }
}

impl Handler {
    /// A handler for worker `cfg.worker` running models on `device`.
    pub fn new(cfg: HandlerConfig, store: Store, queue: Queue, device: Device) -> Handler {
        Handler {
            inner: Arc::new(Inner {
                cfg,
                store,
                queue: tokio::sync::Mutex::new(queue),
                models: ModelCache::default(),
                datasets: DatasetCache::default(),
                device,
            }),
        }
    }

    /// How many times a model was loaded from disk by this handler.
    pub fn model_loads(&self) -> usize {
        self.inner.models.loads()
    }
}

impl JobHandler for Handler {
    fn handle(&self, job: JobRef) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> {
        let inner = self.inner.clone();
        let span = info_span!("job", job = job.job_id, run = job.run_id, shard = job.shard);
        Box::pin(async move { inner.handle(job).await.map_err(|e| e.to_string()) }.instrument(span))
    }
}

impl Inner {
    async fn handle(self: Arc<Self>, job: JobRef) -> Result<(), StoreError> {
        let name = &self.cfg.worker;
        let claimed = self
            .store
            .claim_job(job.job_id, name, self.cfg.stale_after)
            .await?;
        let Some(claimed) = claimed else {
            info!("nothing to do (job done, gone, cancelled or held by a live worker)");
            return Ok(());
        };
        self.store.worker_job(name, Some(job.job_id), false).await?;
        let result = self.process(&claimed).await;
        let finished = match result {
            Ok(()) => {
                if self.store.complete_job(job.job_id, job.run_id).await?
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
            crate::runlog::forget(job.run_id);
        }
        self.store.worker_job(name, None, finished).await?;
        Ok(())
    }

    async fn failed(&self, c: &ClaimedJob, e: JobError) -> Result<(), StoreError> {
        let attempts = c.job.attempts.max(1) as u32;
        let message = e.to_string();
        if e.is_permanent() || attempts >= self.cfg.max_attempts {
            warn!(attempts, "job failed for good: {message}");
            // The run keeps what its job logged here before failing (shown by the dashboard).
            let tail = crate::runlog::tail(c.run.id);
            crate::runlog::forget(c.run.id);
            let stored = if tail.is_empty() {
                message
            } else {
                format!(
                    "{message}\n\nlog tail (worker {}):\n{}",
                    self.cfg.worker,
                    tail.join("\n")
                )
            };
            self.store
                .fail_job(c.job.id, c.run.id, &stored, JobOutcome::GiveUp)
                .await
        } else {
            let delay = self.cfg.backoff * 2u32.saturating_pow(attempts - 1);
            warn!(attempts, ?delay, "job failed, retrying: {message}");
            self.store
                .fail_job(c.job.id, c.run.id, &message, JobOutcome::Retry)
                .await?;
            let job = JobRef {
                job_id: c.job.id,
                run_id: c.run.id,
                shard: c.job.shard,
            };
            let pushed = self.queue.lock().await.push(&[job], 0, Some(delay)).await;
            match pushed {
                Ok(()) => self.store.mark_job_enqueued(c.job.id).await,
                Err(q) => {
                    self.store
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

    async fn process(self: &Arc<Self>, c: &ClaimedJob) -> Result<(), JobError> {
        let m = &c.manifest;
        let (source, dtype) = (m.model.source.clone(), m.model.dtype);
        let adapter = m.adapter.as_ref().map(|a| a.source.clone());
        let models_dir = self.cfg.models_dir.clone();
        let device = self.device.clone();
        let model = {
            let this = self.clone();
            blocking(move || {
                this.models
                    .get(&source, dtype, adapter.as_ref(), &models_dir, &device)
                    .map_err(|e| JobError::from(TaskError::from(e)))
            })
            .await?
        };
        let table = {
            let this = self.clone();
            let (d, rev) = (m.task.dataset.clone(), m.dataset.revision.clone());
            blocking(move || {
                this.datasets
                    .get(&d, &rev)
                    .map_err(|e| JobError::from(TaskError::from(e)))
            })
            .await?
        };
        let (start, end) = (c.job.start_idx, c.job.end_idx);
        if end as usize > table.rows.len() {
            return Err(JobError::Other(format!(
                "the dataset has {} rows but the job covers rows {start}..{end}; it changed since submission",
                table.rows.len()
            )));
        }
        let stored: HashSet<i64> = self
            .store
            .stored_indices(c.run.id, start, end)
            .await?
            .into_iter()
            .collect();
        let todo: Vec<usize> = (start..end)
            .filter(|i| !stored.contains(i))
            .map(|i| i as usize)
            .collect();
        info!(stored = stored.len(), todo = todo.len(), "starting shard");
        let opts = BatchOptions {
            batch_size: m.setting.batch_size.map(|b| b as usize),
            max_tokens: m.setting.max_tokens.map(|t| t as usize),
            decoding: m.setting.decoding.clone(),
            seed: m.seed,
        };
        // Samples are written after every `write_every` examples (a crash loses at most that).
        let write_every = opts.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        for chunk in todo.chunks(write_every) {
            if self.store.run_status(c.run.id).await? == Some(RunStatus::Cancelled) {
                return Err(JobError::Cancelled);
            }
            let (task, model, table, idx, opts) = (
                m.task.clone(),
                model.clone(),
                table.clone(),
                chunk.to_vec(),
                opts.clone(),
            );
            let shard = c.job.shard;
            let samples = blocking(move || {
                tasks::run_batch(&task, &model, &table, &idx, shard, &opts).map_err(JobError::from)
            })
            .await?;
            self.store
                .insert_samples(c.run.id, &self.cfg.worker, &samples)
                .await?;
        }
        Ok(())
    }

    async fn finish_run(&self, c: &ClaimedJob) -> Result<(), JobError> {
        let samples = self.store.samples(c.run.id).await?;
        let expected = c.manifest.n_expected as usize;
        if samples.len() != expected {
            return Err(JobError::Other(format!(
                "run {} has {} of {expected} samples after its last shard",
                c.run.id,
                samples.len()
            )));
        }
        let task = c.manifest.task.clone();
        let metrics =
            blocking(move || tasks::metrics(&task, &samples).map_err(JobError::from)).await?;
        self.store.finish_run(c.run.id, &metrics).await?;
        info!(run = c.run.id, "run done");
        Ok(())
    }
}

/// Run CPU-heavy work off the async threads, so heartbeats keep flowing.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, JobError> + Send + 'static,
) -> Result<T, JobError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| JobError::Other(format!("the scoring thread failed: {e}")))?
}
