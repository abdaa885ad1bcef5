//! The job handler: load the model (cached) and dataset, score the examples of a shard not yet
//! stored batch by batch, write samples per batch; after the last shard, the run's metrics.
//! Claiming, retries and run states belong to the [`Runner`](orchestrator::runner::Runner).

use std::collections::HashSet;
use std::sync::Arc;

use candle_core::Device;
use engine::{EngineError, Locations, ModelCache};
use metrics::bootstrap::Bootstrap;
use orchestrator::runner::{BoxFuture, JobError, JobHandler, Scored, StopSignal};
use orchestrator::telemetry::WorkerTelemetry;
use store::{ClaimedJob, RunStatus, Store};
use tracing::info;

use crate::data::{DatasetCache, Table};
use crate::metric_models::MetricModelCache;
use crate::tasks::{self, Batch, BatchOptions, TaskError, chain};
use engine::LoadedModel;
use spec::{TaskKind, TaskSpec};
use store::NewSample;

/// Examples scored and written together when the setting names no batch size.
pub const DEFAULT_BATCH_SIZE: usize = 16;

/// What the handler needs.
#[derive(Debug)]
pub struct HandlerConfig {
    /// This worker's unique name (recorded with each sample).
    pub worker: String,
    /// Where random-weight models are written and the Hugging Face cache is.
    pub locations: Locations,
    /// Memory budget of a forward pass in MiB, when a setting names no batch size.
    pub memory_budget_mb: u64,
    /// How metric intervals are drawn.
    pub bootstrap: Bootstrap,
    /// The Perspective API scoring the outputs of attribute tasks, when configured.
    pub perspective: Option<Arc<crate::perspective::Perspective>>,
    /// Called as each claimed job starts (the tests' fault injection).
    pub hooks: crate::Hooks,
    /// The worker's Prometheus counters (model loads, samples, generated tokens).
    pub telemetry: Arc<WorkerTelemetry>,
}

/// Computes jobs; cheap to clone.
#[derive(Debug, Clone)]
pub struct Handler {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: HandlerConfig,
    store: Store,
    models: ModelCache,
    metric_models: MetricModelCache,
    datasets: DatasetCache,
    device: Device,
}

impl From<TaskError> for JobError {
    fn from(e: TaskError) -> Self {
        let retryable = match &e {
            TaskError::Engine(e) => matches!(
                e,
                EngineError::Io { .. } | EngineError::NotAvailable { .. } | EngineError::Candle(_)
            ),
            _ => false,
        };
        if retryable {
            JobError::Retryable(e.to_string())
        } else {
            JobError::Permanent(e.to_string())
        }
    }
}

impl Handler {
    /// A handler running models on `device`.
    pub fn new(cfg: HandlerConfig, store: Store, device: Device) -> Handler {
        Handler {
            inner: Arc::new(Inner {
                cfg,
                store,
                models: ModelCache::default(),
                metric_models: MetricModelCache::default(),
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
    fn run(&self, job: ClaimedJob, stop: StopSignal) -> BoxFuture<Result<(), JobError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.process(&job, &stop).await })
    }

    fn metrics(&self, job: ClaimedJob) -> BoxFuture<Result<Scored, JobError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.metrics(&job).await })
    }

    fn held_model(&self) -> Option<String> {
        self.inner.models.held_source()
    }

    fn give_up_note(&self, run_id: i64) -> Option<String> {
        let tail = crate::runlog::tail(run_id);
        (!tail.is_empty()).then(|| {
            format!(
                "log tail (worker {}):\n{}",
                self.inner.cfg.worker,
                tail.join("\n")
            )
        })
    }

    fn forget(&self, run_id: i64) {
        crate::runlog::forget(run_id);
    }
}

impl Inner {
    async fn process(self: &Arc<Self>, c: &ClaimedJob, stop: &StopSignal) -> Result<(), JobError> {
        let m = &c.manifest;
        if let Some(hook) = &self.cfg.hooks.before_job {
            hook(m);
        }
        let (source, dtype) = (m.model.source.clone(), m.model.dtype);
        let adapter = m.adapter.as_ref().map(|a| a.source.clone());
        let locations = self.cfg.locations.clone();
        let device = self.device.clone();
        check_model_revision(m, &self.cfg.locations)?;
        let model = {
            let this = self.clone();
            blocking(move || {
                let (loads, start) = (this.models.loads(), std::time::Instant::now());
                let model = this
                    .models
                    .get(&source, dtype, adapter.as_ref(), &locations, &device)
                    .map_err(|e| JobError::from(TaskError::from(e)))?;
                if this.models.loads() > loads {
                    this.cfg
                        .telemetry
                        .model_loaded(start.elapsed().as_secs_f64());
                }
                Ok(model)
            })
            .await?
        };
        let table = {
            let this = self.clone();
            let (d, rev) = (m.task.dataset.clone(), m.dataset.revision.clone());
            blocking(move || {
                this.datasets
                    .get(&d, &rev, &this.cfg.locations.hub)
                    .map_err(|e| JobError::from(TaskError::from(e)))
            })
            .await?
        };
        let table = match m.setting.sample {
            Some(n) => Arc::new(crate::data::examples::sample(
                &table,
                n,
                m.setting.sample_seed,
            )),
            None => table,
        };
        let shots = match &m.fewshot {
            None => None,
            Some(f) => {
                let this = self.clone();
                let (d, rev) = (f.dataset.clone(), f.resolved.revision.clone());
                let pool = blocking(move || {
                    this.datasets
                        .get(&d, &rev, &this.cfg.locations.hub)
                        .map_err(|e| JobError::from(TaskError::from(e)))
                })
                .await?;
                Some(tasks::fewshot::Shots {
                    pool,
                    k: f.k as usize,
                    seed: m.seed,
                })
            }
        };
        let (start, end) = (c.job.start_idx, c.job.end_idx);
        if end as usize > table.rows.len() {
            return Err(JobError::Retryable(format!(
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
            memory_budget_mb: self.cfg.memory_budget_mb,
            max_tokens: m.setting.max_tokens.map(|t| t as usize),
            decoding: m.setting.decoding.clone(),
            seed: m.seed,
            shots,
        };
        // Samples are written after every `write_every` examples (a crash loses at most that).
        let write_every = opts.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        for chunk in todo.chunks(write_every) {
            if stop.is_set() {
                return Err(JobError::Stopping);
            }
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
            let samples = if task.kind == TaskKind::Chain {
                self.run_chain(c.run.id, task, model, table, idx, shard, opts)
                    .await?
            } else {
                let scorer = self.cfg.perspective.clone();
                let this = self.clone();
                blocking(move || {
                    let batch = Batch {
                        task: &task,
                        model: &model,
                        table: &table,
                        indices: &idx,
                        shard,
                        opts: &opts,
                    };
                    let mut samples = tasks::run_batch(&batch).map_err(JobError::from)?;
                    if task.kind == TaskKind::AttributeScores {
                        match (&task.toxicity_model, scorer) {
                            (Some(src), _) => {
                                let clf = this
                                    .metric_models
                                    .toxicity(src, &this.cfg.locations, &this.device, true)
                                    .map_err(|e| JobError::from(TaskError::from(e)))?;
                                tasks::attributes::score_with_classifier(&task, &mut samples, &clf)
                                    .map_err(JobError::from)?;
                            }
                            (None, Some(p)) => {
                                tasks::attributes::score_outputs(&task, &mut samples, &p)
                            }
                            (None, None) => {}
                        }
                    }
                    Ok(samples)
                })
                .await?
            };
            self.store
                .insert_samples(c.run.id, &self.cfg.worker, &samples)
                .await?;
            let tokens: u64 = samples
                .iter()
                .filter_map(|s| s.data.get("new_tokens").and_then(serde_json::Value::as_u64))
                .sum();
            self.cfg
                .telemetry
                .samples_stored(samples.len() as u64, tokens);
        }
        Ok(())
    }

    /// A chain task's examples, step by step: each step is computed only for the examples
    /// that do not have it stored, and stored before the next step starts.
    #[allow(clippy::too_many_arguments)] // the parts of one batch, moved into blocking tasks
    async fn run_chain(
        &self,
        run_id: i64,
        task: TaskSpec,
        model: Arc<LoadedModel>,
        table: Arc<Table>,
        idx: Vec<usize>,
        shard: i32,
        opts: BatchOptions,
    ) -> Result<Vec<NewSample>, JobError> {
        let (lo, hi) = (
            idx.iter().min().copied().unwrap_or(0) as i64,
            idx.iter().max().map_or(0, |m| *m + 1) as i64,
        );
        let mut stored = Arc::new(chain::index(self.store.steps(run_id, lo, hi).await?));
        let parts = Arc::new(ChainBatch {
            task,
            model,
            table,
            idx,
            shard,
            opts,
        });
        for k in 0..parts.task.steps.len() {
            let (p, have) = (parts.clone(), stored.clone());
            let new =
                blocking(move || chain::run_step(&p.batch(), k, &have).map_err(JobError::from))
                    .await?;
            if !new.is_empty() {
                info!(step = %parts.task.steps[k].name, computed = new.len(), "chain step");
                self.store.insert_steps(run_id, &new).await?;
                // Read back what the store kept: a step another delivery stored first wins,
                // and text is stored as PostgreSQL can hold it; later steps build on that.
                stored = Arc::new(chain::index(self.store.steps(run_id, lo, hi).await?));
            }
        }
        chain::samples(&parts.batch(), &stored).map_err(JobError::from)
    }

    async fn metrics(self: &Arc<Self>, c: &ClaimedJob) -> Result<Scored, JobError> {
        let samples = self.store.samples(c.run.id).await?;
        let expected = c.manifest.n_expected as usize;
        if samples.len() != expected {
            return Err(JobError::Retryable(format!(
                "run {} has {} of {expected} samples after its last shard",
                c.run.id,
                samples.len()
            )));
        }
        let (task, boot, this) = (c.manifest.task.clone(), self.cfg.bootstrap, self.clone());
        blocking(move || {
            let models =
                this.metric_models
                    .models_for(&task, &this.cfg.locations, &this.device, true);
            let (metrics, notes) = tasks::metrics_with_models(&task, &samples, &models, &boot)
                .map_err(JobError::from)?;
            Ok(Scored { metrics, notes })
        })
        .await
    }
}

/// The parts of one batch of a chain task, shared with its blocking steps.
struct ChainBatch {
    task: TaskSpec,
    model: Arc<LoadedModel>,
    table: Arc<Table>,
    idx: Vec<usize>,
    shard: i32,
    opts: BatchOptions,
}

impl ChainBatch {
    fn batch(&self) -> Batch<'_> {
        Batch {
            task: &self.task,
            model: &self.model,
            table: &self.table,
            indices: &self.idx,
            shard: self.shard,
            opts: &self.opts,
        }
    }
}

/// Run CPU-heavy work off the async threads, so heartbeats keep flowing.
/// Refuse to compute with model files other than the revision the manifest recorded (a Hub
/// cache that moved to another commit since submission).
fn check_model_revision(m: &spec::manifest::RunManifest, at: &Locations) -> Result<(), JobError> {
    let Some(recorded) = m.model.resolved.revision.as_deref() else {
        return Ok(());
    };
    let files = engine::locate(&m.model.source, at, true)
        .map_err(|e| JobError::from(TaskError::from(e)))?;
    match files.revision.as_deref() {
        Some(found) if found != recorded => Err(JobError::Permanent(format!(
            "the model {} is at revision {found} on this worker, but the run was submitted with {recorded}\n  fix: restore revision {recorded} here, or submit the sweep again to evaluate the new revision as a new run",
            m.model.source
        ))),
        _ => Ok(()),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, JobError> + Send + 'static,
) -> Result<T, JobError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| JobError::Retryable(format!("the scoring thread failed: {e}")))?
}
