//! The job handler: load the model (cached) and dataset, score the examples of a shard not yet
//! stored batch by batch, write samples per batch; after the last shard, the run's metrics.
//! Claiming, retries and run states belong to the [`Runner`](orchestrator::runner::Runner).

use std::collections::{HashMap, HashSet};
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
use crate::tasks::conversation::ChatPrompting;
use crate::tasks::fewshot::Shots;
use crate::tasks::{self, Batch, BatchOptions, TaskError, chain};
use engine::LoadedModel;
use spec::manifest::RunManifest;
use spec::{DatasetRef, TaskKind, TaskSpec};
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
    /// The lm-eval tasks of the runs this worker computes (their documents and requests), by
    /// run and whether their prompts went through the chat template.
    lm_eval: std::sync::Mutex<HashMap<(i64, bool), Arc<tasks::lmeval::Prepared>>>,
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
                lm_eval: std::sync::Mutex::default(),
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
        if let Ok(mut prepared) = self.inner.lm_eval.lock() {
            prepared.retain(|(run, _), _| *run != run_id);
        }
    }
}

impl Inner {
    /// A claimed job: load what it needs, then compute and store its missing examples batch by
    /// batch, stopping between batches when the worker stops or the run is cancelled.
    async fn process(self: &Arc<Self>, c: &ClaimedJob, stop: &StopSignal) -> Result<(), JobError> {
        let m = &c.manifest;
        if let Some(hook) = &self.cfg.hooks.before_job {
            hook(m);
        }
        check_model_revision(m, &self.cfg.locations)?;
        let model = self.model(m).await?;
        let chat = chat_prompting(m, &model)?;
        let lm_eval = self.lm_eval_task(c.run.id, m, chat.clone()).await?;
        let table = match &lm_eval {
            Some(p) => Arc::new(p.table()),
            None => self.examples(m).await?,
        };
        let opts = BatchOptions {
            batch_size: m.setting.batch_size.map(|b| b as usize),
            memory_budget_mb: self.cfg.memory_budget_mb,
            max_tokens: m.setting.max_tokens.map(|t| t as usize),
            decoding: m.setting.decoding.clone(),
            seed: m.seed,
            shots: self.shots(m).await?,
            chat,
            lm_eval,
        };
        let todo = self.todo(c, table.rows.len()).await?;
        // Samples are written after every `write_every` examples (a crash loses at most that).
        let write_every = opts.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        for chunk in todo.chunks(write_every) {
            if stop.is_set() {
                return Err(JobError::Stopping);
            }
            if self.store.run_status(c.run.id).await? == Some(RunStatus::Cancelled) {
                return Err(JobError::Cancelled);
            }
            let samples = self.compute(c, &model, &table, chunk, &opts).await?;
            self.store_samples(c.run.id, &samples).await?;
        }
        Ok(())
    }

    /// The job's model (with its adapter), from the cache or loaded.
    async fn model(self: &Arc<Self>, m: &RunManifest) -> Result<Arc<LoadedModel>, JobError> {
        let (source, dtype) = (m.model.source.clone(), m.model.dtype);
        let adapter = m.adapter.as_ref().map(|a| a.source.clone());
        let this = self.clone();
        blocking(move || {
            let (loads, start) = (this.models.loads(), std::time::Instant::now());
            let model = this
                .models
                .get(
                    &source,
                    dtype,
                    adapter.as_ref(),
                    &this.cfg.locations,
                    &this.device,
                )
                .map_err(|e| JobError::from(TaskError::from(e)))?;
            if this.models.loads() > loads {
                this.cfg
                    .telemetry
                    .model_loaded(start.elapsed().as_secs_f64());
            }
            Ok(model)
        })
        .await
    }

    /// The documents and requests of run `run_id`'s lm-eval task, the prompts through `chat`
    /// where given, built once (`None` for other tasks).
    async fn lm_eval_task(
        self: &Arc<Self>,
        run_id: i64,
        m: &RunManifest,
        chat: Option<ChatPrompting>,
    ) -> Result<Option<Arc<tasks::lmeval::Prepared>>, JobError> {
        let Some(l) = m.task.lm_eval.clone() else {
            return Ok(None);
        };
        let key = (run_id, chat.is_some());
        if let Some(p) = self.lm_eval.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(Some(p));
        }
        let (this, shots, limit) = (self.clone(), m.setting.num_fewshot, m.setting.limit);
        let prepared = blocking(move || {
            let data = crate::data::lmeval_tasks::TaskData {
                hub: this.cfg.locations.hub.clone(),
                download: !this.cfg.locations.hub.offline,
            };
            tasks::lmeval::prepare(&l, shots, limit, &data, chat.as_ref())
                .map(Arc::new)
                .map_err(JobError::from)
        })
        .await?;
        if let Ok(mut c) = self.lm_eval.lock() {
            c.insert(key, prepared.clone());
        }
        Ok(Some(prepared))
    }

    /// The table of `d` at the revision recorded at submission.
    async fn table(
        self: &Arc<Self>,
        d: &DatasetRef,
        revision: &str,
    ) -> Result<Arc<Table>, JobError> {
        let (this, d, rev) = (self.clone(), d.clone(), revision.to_string());
        blocking(move || {
            this.datasets
                .get(&d, &rev, &this.cfg.locations.hub)
                .map_err(|e| JobError::from(TaskError::from(e)))
        })
        .await
    }

    /// The run's examples: its dataset, or the sample of it the setting draws.
    async fn examples(self: &Arc<Self>, m: &RunManifest) -> Result<Arc<Table>, JobError> {
        let table = self.table(&m.task.dataset, &m.dataset.revision).await?;
        Ok(match m.setting.sample {
            Some(n) => Arc::new(crate::data::examples::sample(
                &table,
                n,
                m.setting.sample_seed,
            )),
            None => table,
        })
    }

    /// The few-shot pool and how many shots each prompt gets, when the run has few-shot
    /// examples.
    async fn shots(self: &Arc<Self>, m: &RunManifest) -> Result<Option<Shots>, JobError> {
        let Some(f) = &m.fewshot else {
            return Ok(None);
        };
        Ok(Some(Shots {
            pool: self.table(&f.dataset, &f.resolved.revision).await?,
            k: f.k as usize,
            seed: m.seed,
        }))
    }

    /// The example indices of the job's shard that have no stored sample yet.
    async fn todo(&self, c: &ClaimedJob, rows: usize) -> Result<Vec<usize>, JobError> {
        let (start, end) = (c.job.start_idx, c.job.end_idx);
        if end as usize > rows {
            return Err(JobError::Retryable(format!(
                "the dataset has {rows} rows but the job covers rows {start}..{end}; it changed since submission"
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
        Ok(todo)
    }

    /// The samples of the examples `idx`: a chain task step by step, any other in one batch.
    async fn compute(
        self: &Arc<Self>,
        c: &ClaimedJob,
        model: &Arc<LoadedModel>,
        table: &Arc<Table>,
        idx: &[usize],
        opts: &BatchOptions,
    ) -> Result<Vec<NewSample>, JobError> {
        let parts = ChainBatch {
            task: c.manifest.task.clone(),
            model: model.clone(),
            table: table.clone(),
            idx: idx.to_vec(),
            shard: c.job.shard,
            opts: opts.clone(),
        };
        if parts.task.kind == TaskKind::Chain {
            return self.run_chain(c.run.id, parts).await;
        }
        let this = self.clone();
        blocking(move || {
            let mut samples = tasks::run_batch(&parts.batch()).map_err(JobError::from)?;
            if parts.task.kind == TaskKind::AttributeScores {
                this.score_attributes(&parts.task, &mut samples)?;
            }
            Ok(samples)
        })
        .await
    }

    /// An attribute task's outputs scored by its local classifier, else by the Perspective
    /// API when one is configured.
    fn score_attributes(&self, task: &TaskSpec, samples: &mut [NewSample]) -> Result<(), JobError> {
        match (&task.toxicity_model, &self.cfg.perspective) {
            (Some(src), _) => {
                let clf = self
                    .metric_models
                    .toxicity(src, &self.cfg.locations, &self.device, true)
                    .map_err(|e| JobError::from(TaskError::from(e)))?;
                tasks::attributes::score_with_classifier(task, samples, &clf)
                    .map_err(JobError::from)
            }
            (None, Some(p)) => {
                tasks::attributes::score_outputs(task, samples, p);
                Ok(())
            }
            (None, None) => Ok(()),
        }
    }

    /// Store a batch's samples and count them (and their generated tokens).
    async fn store_samples(&self, run_id: i64, samples: &[NewSample]) -> Result<(), JobError> {
        self.store
            .insert_samples(run_id, &self.cfg.worker, samples)
            .await?;
        let tokens: u64 = samples
            .iter()
            .filter_map(|s| s.data.get("new_tokens").and_then(serde_json::Value::as_u64))
            .sum();
        self.cfg
            .telemetry
            .samples_stored(samples.len() as u64, tokens);
        Ok(())
    }

    /// A chain task's examples, step by step: each step is computed only for the examples
    /// that do not have it stored, and stored before the next step starts.
    async fn run_chain(&self, run_id: i64, parts: ChainBatch) -> Result<Vec<NewSample>, JobError> {
        let (lo, hi) = (
            parts.idx.iter().min().copied().unwrap_or(0) as i64,
            parts.idx.iter().max().map_or(0, |m| *m + 1) as i64,
        );
        let mut stored = Arc::new(chain::index(self.store.steps(run_id, lo, hi).await?));
        let parts = Arc::new(parts);
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
        if let Some(l) = &c.manifest.task.lm_eval {
            // Its metrics need the documents; the prompts are those its samples keep.
            let p = self
                .lm_eval_task(c.run.id, &c.manifest, None)
                .await?
                .ok_or_else(|| JobError::Permanent("an lm-eval run without its task".into()))?;
            let (l, boot) = (l.clone(), self.cfg.bootstrap);
            return blocking(move || {
                let metrics =
                    tasks::lmeval::metrics(&l, &p, &samples, &boot).map_err(JobError::from)?;
                Ok(Scored {
                    metrics,
                    notes: vec![],
                })
            })
            .await;
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

/// The parts of one batch, moved into its blocking tasks.
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
fn check_model_revision(m: &RunManifest, at: &Locations) -> Result<(), JobError> {
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

/// The model's chat template when the run's setting asks for it, checked against the one the
/// run was submitted with.
fn chat_prompting(m: &RunManifest, model: &LoadedModel) -> Result<Option<ChatPrompting>, JobError> {
    if !m.setting.chat_template {
        return Ok(None);
    }
    let template = chat::ChatTemplate::from_dir(&model.dir)
        .map_err(|e| JobError::Permanent(e.to_string()))?
        .ok_or_else(|| {
            JobError::Permanent(format!(
                "{} has no chat template on this worker, but the run was submitted with one\n  fix: restore the model's tokenizer_config.json or chat_template.jinja",
                model.dir.display()
            ))
        })?;
    let (found, recorded) = (template.digest(), m.model.resolved.chat_template.as_deref());
    if recorded != Some(found.as_str()) {
        return Err(JobError::Permanent(format!(
            "the chat template of {} has changed since the run was submitted (sha256 {found}, recorded {})\n  fix: restore the template, or submit the sweep again to evaluate the new one as a new run",
            model.dir.display(),
            recorded.unwrap_or("none")
        )));
    }
    Ok(Some(ChatPrompting {
        template,
        system_prompt: m.setting.system_prompt.clone(),
        fewshot_as_multiturn: m.setting.fewshot_as_multiturn,
    }))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, JobError> + Send + 'static,
) -> Result<T, JobError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| JobError::Retryable(format!("the scoring thread failed: {e}")))?
}
