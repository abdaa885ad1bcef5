//! A synthetic history for the dashboard benchmark and tests: sweeps of finished runs with
//! samples and metrics, workers and baselines, written in bulk. Deterministic: the same
//! size gives the same rows. Not for real results — the runs' sources say `synthetic`.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};

use spec::manifest::{ModelManifest, RunManifest};
use spec::resolve::{ResolvedDataset, ResolvedModel};
use spec::{Decoding, Dtype, Setting, Source, TaskRegistry, TaskSpec};
use store::entities::{baseline, metric, run, sample, sweep, sweep_cell, worker};
use store::{RunStatus, Store};

/// How much history to write.
#[derive(Debug, Clone, Copy)]
pub struct SeedSize {
    /// Sweeps; runs are spread evenly over them.
    pub sweeps: usize,
    /// Runs in all.
    pub runs: usize,
    /// Samples per run.
    pub samples_per_run: usize,
    /// Metric rows per run.
    pub metrics_per_run: usize,
    /// Workers.
    pub workers: usize,
}

const TASKS: [(&str, &str, &[&str]); 2] = [
    (
        "no-crows-pairs",
        "bias_paper",
        &[
            "bias_paper",
            "bias_standard",
            "bias_paper/gender",
            "bias_paper/age",
            "bias_paper/religion",
        ],
    ),
    (
        "multi-qa-sum-summary",
        "rouge_l",
        &["rouge_l", "bleu", "rouge_1", "rouge_2", "usr"],
    ),
];
const MODELS: [&str; 5] = [
    "NorGPT-369M",
    "NorGPT-3B",
    "NorLlama-3B",
    "NB-GPT-J-6B",
    "NorGPT-23B",
];

/// The seeded tasks' specs, from the repository's task files; the generation task gets a
/// template so that the pages show one.
fn task_specs() -> anyhow::Result<[TaskSpec; 2]> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/tasks");
    let registry = TaskRegistry::load_dir(&dir)?;
    let spec = |name: &str| {
        registry
            .get(name)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no task `{name}` in {}", dir.display()))
    };
    let mut generation = spec(TASKS[1].0)?;
    generation.template = Some("Human: {question} Robot:".into());
    Ok([spec(TASKS[0].0)?, generation])
}

/// A run's manifest as a submission would write it, for a synthetic model on the Hub.
fn manifest(task: &TaskSpec, model: &str, setting: &str, rows: usize) -> anyhow::Result<String> {
    let m = RunManifest {
        model: ModelManifest {
            name: model.into(),
            source: Source::Hf {
                repo: format!("NorGLM/{model}"),
                revision: None,
            },
            dtype: Dtype::F32,
            resolved: ResolvedModel {
                revision: Some("main".into()),
                content_id: None,
                random_weights: false,
                arch: "gpt2".into(),
                memory: None,
                chat_template: None,
            },
        },
        adapter: None,
        task: task.clone(),
        dataset: ResolvedDataset {
            revision: "sha256:synthetic".into(),
            rows: rows as u64,
        },
        setting: Setting {
            name: setting.into(),
            decoding: task.kind.uses_decoding().then_some(Decoding {
                do_sample: false,
                temperature: None,
                top_p: None,
                top_k: None,
                num_beams: None,
                max_new_tokens: Some(64),
                min_new_tokens: None,
                max_length: None,
                no_repeat_ngram_size: None,
                repetition_penalty: None,
            }),
            ..Setting::default()
        },
        fewshot: None,
        seed: 1,
        n_expected: rows as u64,
        engine_version: "0.1.0".into(),
    };
    Ok(serde_json::to_string(&m)?)
}

/// A value in 0..1 from a counter (deterministic, spread out).
fn unit(i: usize) -> f64 {
    ((i as f64 * 0.618_033_988_75).fract() * 0.8) + 0.1
}

/// Write `size` worth of synthetic history into an empty `store`; `progress(what, done,
/// total)` is called as rows go in. Returns the number of rows written.
pub async fn seed_history(
    store: &Store,
    size: SeedSize,
    progress: impl Fn(&str, usize, usize),
) -> anyhow::Result<usize> {
    let db = store.connection();
    if sweep::Entity::find().one(db).await?.is_some() {
        anyhow::bail!("the store already holds sweeps; seed a fresh database");
    }
    let s = Seeder {
        db,
        size,
        t0: Utc::now() - Duration::days(30),
    };
    let sweep_ids = s.sweeps().await?;
    let specs = task_specs()?;
    let mut run_ids: Vec<i64> = Vec::with_capacity(size.runs);
    for start in (0..size.runs).step_by(1000) {
        let end = (start + 1000).min(size.runs);
        s.runs(start..end, &specs).await?;
        run_ids.extend(s.cells_and_metrics(start..end, &sweep_ids).await?);
        progress("runs", end, size.runs);
    }
    let samples = s.samples(&run_ids, &progress).await?;
    s.workers_and_baselines().await?;
    let runs = size.runs * (2 + size.metrics_per_run);
    Ok(size.sweeps + runs + samples + size.workers + MODELS.len() * TASKS.len())
}

/// Writes the parts of a synthetic history.
struct Seeder<'a> {
    db: &'a DatabaseConnection,
    size: SeedSize,
    /// When the history starts.
    t0: DateTime<Utc>,
}

impl Seeder<'_> {
    /// The sweeps `bench-NNNN`, by name → id.
    async fn sweeps(&self) -> anyhow::Result<HashMap<String, i64>> {
        let (db, size, t0) = (self.db, self.size, self.t0);
        let sweeps = (0..size.sweeps).map(|s| sweep::ActiveModel {
            name: Set(format!("bench-{s:04}")),
            owner: Set(Some(format!("team-{}", s % 7))),
            description: Set(Some("synthetic history for the dashboard benchmark".into())),
            spec_path: Set("synthetic.toml".into()),
            spec: Set(String::new()),
            priority: Set(0),
            shard_size: Set(50),
            created_at: Set(t0 + Duration::minutes(s as i64)),
            updated_at: Set(t0 + Duration::minutes(s as i64 + 60)),
            ..Default::default()
        });
        for chunk in sweeps.collect::<Vec<_>>().chunks(1000) {
            sweep::Entity::insert_many(chunk.to_vec()).exec(db).await?;
        }
        Ok(sweep::Entity::find()
            .filter(sweep::Column::Name.starts_with("bench-"))
            .all(db)
            .await?
            .into_iter()
            .map(|s| (s.name, s.id))
            .collect())
    }

    /// Runs `range`, finished (every 97th failed), alternating the two tasks.
    async fn runs(
        &self,
        range: std::ops::Range<usize>,
        specs: &[TaskSpec; 2],
    ) -> anyhow::Result<()> {
        let (db, size, t0) = (self.db, self.size, self.t0);
        let runs = range.map(|i| -> anyhow::Result<run::ActiveModel> {
            let (task, _, _) = TASKS[i % 2];
            let model = MODELS[(i / 2) % MODELS.len()];
            let setting = format!("setting-{}", (i / 10) % 5);
            let started = t0 + Duration::minutes(i as i64);
            let manifest = manifest(&specs[i % 2], model, &setting, size.samples_per_run)?;
            Ok(run::ActiveModel {
                fingerprint: Set(format!("synthetic-{i:08}")),
                model_name: Set(model.into()),
                model_source: Set(format!("hf:NorGLM/{model}")),
                model_revision: Set(Some("main".into())),
                adapter_name: Set(None),
                adapter_source: Set(None),
                task_name: Set(task.into()),
                task_version: Set(1),
                setting_name: Set(setting),
                seed: Set((i / 50) as i64),
                sample_limit: Set(None),
                manifest: Set(manifest),
                source: Set("synthetic".into()),
                status: Set(if i % 97 == 0 {
                    RunStatus::Failed
                } else {
                    RunStatus::Done
                }),
                n_expected: Set(size.samples_per_run as i64),
                random_weights: Set(false),
                error: Set((i % 97 == 0).then(|| "synthetic failure".to_string())),
                worker: Set(Some(format!("worker-{}", i % size.workers.max(1)))),
                attempts: Set(1),
                created_at: Set(started),
                started_at: Set(Some(started)),
                finished_at: Set(Some(started + Duration::seconds(90))),
                ..Default::default()
            })
        });
        run::Entity::insert_many(runs.collect::<anyhow::Result<Vec<_>>>()?)
            .exec(db)
            .await?;
        Ok(())
    }

    /// The sweep cells and metric rows of runs `range`; returns the runs' ids.
    async fn cells_and_metrics(
        &self,
        range: std::ops::Range<usize>,
        sweep_ids: &HashMap<String, i64>,
    ) -> anyhow::Result<Vec<i64>> {
        let (db, size, t0) = (self.db, self.size, self.t0);
        let (start, end) = (range.start, range.end);
        let per_sweep = size.runs.div_ceil(size.sweeps.max(1));
        let ids: HashMap<String, i64> = run::Entity::find()
            .filter(
                run::Column::Fingerprint.is_in((start..end).map(|i| format!("synthetic-{i:08}"))),
            )
            .all(db)
            .await?
            .into_iter()
            .map(|r| (r.fingerprint, r.id))
            .collect();
        let run_ids: Vec<i64> = (start..end)
            .map(|i| ids[&format!("synthetic-{i:08}")])
            .collect();
        let cells = (start..end).map(|i| sweep_cell::ActiveModel {
            sweep_id: Set(sweep_ids[&format!("bench-{:04}", i / per_sweep)]),
            cell_key: Set(format!("cell-{i:08}")),
            run_id: Set(run_ids[i - start]),
            ..Default::default()
        });
        sweep_cell::Entity::insert_many(cells.collect::<Vec<_>>())
            .exec(db)
            .await?;
        let metrics = (start..end).flat_map(|i| {
            let (_, _, names) = TASKS[i % 2];
            let rid = run_ids[i - start];
            (0..size.metrics_per_run).map(move |k| {
                let v = unit(i * 7 + k);
                metric::ActiveModel {
                    run_id: Set(rid),
                    name: Set(names
                        .get(k)
                        .map_or_else(|| format!("extra_{k}"), |n| n.to_string())),
                    value: Set(if names[0] == "bias_paper" {
                        v * 100.0
                    } else {
                        v
                    }),
                    ci_low: Set(Some(v * 0.9)),
                    ci_high: Set(Some(v * 1.1)),
                    n: Set(size.samples_per_run as i64),
                    version: Set(1),
                    created_at: Set(t0),
                    ..Default::default()
                }
            })
        });
        for chunk in metrics.collect::<Vec<_>>().chunks(2000) {
            metric::Entity::insert_many(chunk.to_vec()).exec(db).await?;
        }
        Ok(run_ids)
    }

    /// `samples_per_run` Norwegian question-answer samples per run; returns how many.
    async fn samples(
        &self,
        run_ids: &[i64],
        progress: &impl Fn(&str, usize, usize),
    ) -> anyhow::Result<usize> {
        let (db, size, t0) = (self.db, self.size, self.t0);
        let total = size.runs * size.samples_per_run;
        let mut done = 0;
        let per_insert = 1000usize;
        let mut batch = Vec::with_capacity(per_insert);
        for (i, &run_id) in run_ids.iter().enumerate() {
            for idx in 0..size.samples_per_run {
                batch.push(sample::ActiveModel {
                    run_id: Set(run_id),
                    idx: Set(idx as i64),
                    shard: Set((idx / 50) as i32),
                    prompt: Set(format!(
                        "Human: Hva handler artikkel nummer {idx} om, og hvem er involvert? Robot:"
                    )),
                    output: Set(Some(format!(
                        "Artikkelen handler om kommunestyret i Trondheim, som vedtok et nytt budsjett for skoler og eldreomsorg (svar {i}-{idx})."
                    ))),
                    reference: Set(Some(
                        "Kommunestyret vedtok budsjettet for skole og eldreomsorg.".into(),
                    )),
                    data: Set(format!("{{\"score\": {:.4}}}", unit(i + idx))),
                    worker: Set(None),
                    created_at: Set(t0),
                    ..Default::default()
                });
                if batch.len() == per_insert {
                    sample::Entity::insert_many(std::mem::take(&mut batch))
                        .exec(db)
                        .await?;
                    done += per_insert;
                    if done % 50_000 == 0 {
                        progress("samples", done, total);
                    }
                }
            }
        }
        if !batch.is_empty() {
            done += batch.len();
            sample::Entity::insert_many(batch).exec(db).await?;
        }
        progress("samples", done, total);
        Ok(done)
    }

    /// The workers and one baseline per model and task.
    async fn workers_and_baselines(&self) -> anyhow::Result<()> {
        let (db, size, t0) = (self.db, self.size, self.t0);
        let workers = (0..size.workers).map(|w| worker::ActiveModel {
            name: Set(format!("worker-{w}")),
            host: Set(format!("gpu-{:02}", w / 4)),
            pid: Set(1000 + w as i64),
            device: Set(format!("cuda:{}", w % 4)),
            queue: Set("nlebench-jobs".into()),
            status: Set("stopped".into()),
            current_job: Set(None),
            jobs_done: Set((size.runs / size.workers.max(1)) as i64),
            started_at: Set(t0),
            last_heartbeat: Set(t0 + Duration::days(1)),
            ..Default::default()
        });
        if size.workers > 0 {
            worker::Entity::insert_many(workers.collect::<Vec<_>>())
                .exec(db)
                .await?;
        }
        let baselines = MODELS.iter().flat_map(|m| {
            TASKS
                .iter()
                .map(move |(task, primary, _)| baseline::ActiveModel {
                    task: Set(task.to_string()),
                    model: Set(m.to_string()),
                    setting: Set("paper".into()),
                    metric: Set(primary.to_string()),
                    value: Set(if *primary == "bias_paper" { 50.0 } else { 0.2 }),
                    source: Set("synthetic".into()),
                    note: Set(None),
                    created_at: Set(t0),
                    ..Default::default()
                })
        });
        baseline::Entity::insert_many(baselines.collect::<Vec<_>>())
            .exec(db)
            .await?;
        Ok(())
    }
}
