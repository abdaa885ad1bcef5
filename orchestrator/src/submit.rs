//! Planning a submission: expand the grid, resolve sources, build manifests and
//! fingerprints, and decide per cell what to do given the runs already stored.

use std::collections::{BTreeMap, HashMap};

use crate::queue::{Queue, QueueError};
use spec::grid::{Cell, expand};
use spec::manifest::{AdapterManifest, FewShot, ModelManifest, RunManifest};
use spec::resolve::{ResolveError, ResolvedDataset, ResolvedModel, Resolver};
use spec::{Setting, SpecError, SweepSpec, TaskKind, TaskSpec};
use store::{CellAction, Store, StoreError};

pub use store::plan::{PlannedCell, SweepRow};

/// Why a submission could not be planned or made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A problem in the spec files or their sources.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The queue refused the jobs.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What a submission did.
#[derive(Debug)]
pub struct Submitted {
    /// The sweep.
    pub sweep: SweepSpec,
    /// Its cells with their actions.
    pub cells: Vec<PlannedCell>,
    /// Jobs put on the queue.
    pub enqueued: usize,
}

/// Plan, store and enqueue a sweep whose cells were resolved with [`manifests`]. Callers
/// resolve the cells, then reach the store and the queue, before anything is written; the
/// jobs' `enqueued_at` is set only once the queue accepted them, and a later submission
/// pushes again any job that never reached the queue.
pub async fn submit(
    store: &Store,
    queue: &mut Queue,
    sweep: SweepSpec,
    cells: Vec<CellManifest>,
    force: bool,
) -> Result<Submitted, PlanError> {
    let (row, mut cells) = plan(&sweep, cells, store, force).await?;
    let (_, jobs) = store.apply(&row, &mut cells).await?;
    queue.push(&jobs, sweep.priority, None).await?;
    store.mark_enqueued(&jobs).await?;
    Ok(Submitted {
        sweep,
        cells,
        enqueued: jobs.len(),
    })
}

/// The plan against the stored runs at `database_url`, writing nothing: a store that does not
/// exist yet, or has no tables yet, means every cell is new.
pub async fn dry_run(
    database_url: &str,
    sweep: &SweepSpec,
    cells: Vec<CellManifest>,
    force: bool,
) -> Result<Vec<PlannedCell>, PlanError> {
    let missing_sqlite = database_url
        .strip_prefix("sqlite://")
        .map(|p| p.split('?').next().unwrap_or(p))
        .is_some_and(|p| !std::path::Path::new(p).exists());
    if !missing_sqlite {
        let store = Store::connect(database_url).await?;
        if store.require_migrated().await.is_ok() {
            return Ok(plan(sweep, cells, &store, force).await?.1);
        }
    }
    Ok(cells
        .into_iter()
        .map(|(key, manifest, fingerprint)| PlannedCell {
            key,
            manifest,
            fingerprint,
            action: CellAction::New,
        })
        .collect())
}

/// The cells of a sweep with their manifests and fingerprints (no store needed).
pub fn manifests(
    sweep: &SweepSpec,
    resolver: &dyn Resolver,
) -> Result<Vec<CellManifest>, SpecError> {
    let mut models: HashMap<String, ResolvedModel> = HashMap::new();
    let mut adapters: HashMap<String, ResolvedModel> = HashMap::new();
    let mut datasets: HashMap<String, ResolvedDataset> = HashMap::new();
    let mut out = Vec::new();
    for cell in expand(sweep) {
        let key = cell.model.source.to_string();
        let model = match models.get(&key) {
            Some(m) => m.clone(),
            None => {
                let m = resolver
                    .model(&cell.model.source)
                    .map_err(|e| cell.model.origin.error(e.problem, e.fix))?;
                models.insert(key, m.clone());
                m
            }
        };
        let adapter = match cell.adapter {
            None => None,
            Some(a) => {
                let key = a.source.to_string();
                let resolved = match adapters.get(&key) {
                    Some(r) => r.clone(),
                    None => {
                        let r = resolver
                            .adapter(&a.source)
                            .map_err(|e| a.origin.error(e.problem, e.fix))?;
                        adapters.insert(key, r.clone());
                        r
                    }
                };
                Some(AdapterManifest {
                    name: a.name.clone(),
                    source: a.source.clone(),
                    resolved,
                })
            }
        };
        let dkey = format!("{:?}", (&cell.task.dataset, &cell.task.fields));
        let dataset = match datasets.get(&dkey) {
            Some(d) => d.clone(),
            None => {
                let d = resolver
                    .dataset(cell.task)
                    .map_err(|e| dataset_error(cell.task, e))?;
                if d.rows == 0 {
                    return Err(dataset_error(
                        cell.task,
                        ResolveError {
                            problem: format!(
                                "the dataset {} has no examples",
                                cell.task.dataset.source
                            ),
                            fix: "point the task at a dataset with at least one row".into(),
                        },
                    ));
                }
                datasets.insert(dkey, d.clone());
                d
            }
        };
        if cell.setting.chat_template && model.chat_template.is_none() {
            return Err(cell.model.origin.error(
                format!(
                    "setting `{}` asks for the chat template, but model `{}` ({}) ships none (no chat_template.jinja, no `chat_template` in tokenizer_config.json)",
                    cell.setting.name, cell.model.name, cell.model.source
                ),
                "use an instruction-tuned model with a template, or a setting without `chat_template = true` for this model (an exclude rule)",
            ));
        }
        // An lm-eval task draws its examples from its own file's few-shot split.
        let fewshot = match cell.setting.num_fewshot {
            Some(k) if cell.task.lm_eval.is_none() => Some(fewshot(sweep, &cell, k, resolver)?),
            _ => None,
        };
        let n_expected = cell
            .setting
            .limit
            .or(cell.setting.sample)
            .map_or(dataset.rows, |l| l.min(dataset.rows));
        let manifest = RunManifest {
            model: ModelManifest {
                name: cell.model.name.clone(),
                source: cell.model.source.clone(),
                dtype: cell.model.dtype,
                resolved: model,
            },
            adapter,
            task: cell.task.clone(),
            dataset,
            setting: Setting {
                // The setting's decoding, or else the task's own (the paper's).
                decoding: cell
                    .setting
                    .decoding
                    .clone()
                    .or_else(|| cell.task.decoding.clone()),
                ..cell.setting.clone()
            },
            fewshot,
            seed: cell.seed,
            n_expected,
            engine_version: resolver.engine_version().to_string(),
        };
        let fp = manifest.fingerprint();
        out.push((cell.key(), manifest, fp));
    }
    Ok(out)
}

/// The few-shot pool of a cell whose setting asks for `k` examples: the task's `[fewshot]`,
/// checked like a dataset (the task's columns, at least `k` rows).
fn fewshot(
    sweep: &SweepSpec,
    cell: &Cell,
    k: u32,
    resolver: &dyn Resolver,
) -> Result<FewShot, SpecError> {
    let task = cell.task;
    let refuse = |problem: String, fix: &str| SpecError::file(&sweep.path, problem, fix);
    let Some(pool) = &task.fewshot else {
        return Err(refuse(
            format!(
                "setting `{}` asks for num_fewshot = {k}, but task `{}` has no few-shot examples",
                cell.setting.name, task.name
            ),
            "add a [fewshot] table (source, file, rows: where its train examples are) to the task file, or leave num_fewshot out for this task (an exclude rule)",
        ));
    };
    if task.kind == TaskKind::Classification && task.label_words.is_empty() {
        return Err(refuse(
            format!(
                "task `{}` classifies with a classification head; few-shot prompts need its zero-shot form (label_words)",
                task.name
            ),
            "add label_words and zero_shot_template to the task file, or leave num_fewshot out",
        ));
    }
    let pool_task = TaskSpec {
        dataset: pool.clone(),
        ..task.clone()
    };
    let resolved = resolver
        .dataset(&pool_task)
        .map_err(|e| SpecError::file(&task.path, format!("[fewshot]: {}", e.problem), e.fix))?;
    if resolved.rows < u64::from(k) {
        return Err(refuse(
            format!(
                "setting `{}` asks for {k} few-shot examples, but task `{}`'s pool has {}",
                cell.setting.name, task.name, resolved.rows
            ),
            "lower num_fewshot or point [fewshot] at more examples",
        ));
    }
    Ok(FewShot {
        k,
        dataset: pool.clone(),
        resolved,
    })
}

fn dataset_error(task: &TaskSpec, e: ResolveError) -> SpecError {
    match &task.dataset_origin {
        Some((file, line, col, key)) => SpecError {
            file: file.clone(),
            location: Some((*line, *col)),
            key: key.clone(),
            problem: e.problem,
            fix: e.fix,
        },
        None => SpecError::file(&task.path, e.problem, e.fix),
    }
}

/// How many cells a sweep's grid has per model, task and adapter (no resolving, no store).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GridCounts {
    /// Cells per model name.
    pub by_model: BTreeMap<String, usize>,
    /// Cells per task name.
    pub by_task: BTreeMap<String, usize>,
    /// Cells per adapter name (`none` for the base models).
    pub by_adapter: BTreeMap<String, usize>,
    /// (model, adapter, task) of every cell, in grid order.
    pub cells: Vec<(String, String, String)>,
}

impl GridCounts {
    /// The counts of `sweep`'s grid.
    pub fn of(sweep: &SweepSpec) -> GridCounts {
        let mut c = GridCounts::default();
        for cell in expand(sweep) {
            let adapter = cell.adapter.map_or("none", |a| a.name.as_str()).to_string();
            *c.by_model.entry(cell.model.name.clone()).or_default() += 1;
            *c.by_task.entry(cell.task.name.clone()).or_default() += 1;
            *c.by_adapter.entry(adapter.clone()).or_default() += 1;
            c.cells
                .push((cell.model.name.clone(), adapter, cell.task.name.clone()));
        }
        c
    }

    /// Number of cells.
    pub fn total(&self) -> usize {
        self.cells.len()
    }
}

/// A source of the sweep that could not be resolved here, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// `model NAME (SOURCE)`, `adapter NAME of MODEL (SOURCE)` or `dataset of TASK (SOURCE)`.
    pub what: String,
    /// Why.
    pub problem: String,
}

/// Every model, adapter and dataset of the sweep's grid that does not resolve (e.g. offline
/// with nothing cached), each source tried once; empty when all resolve.
pub fn unresolved(sweep: &SweepSpec, resolver: &dyn Resolver) -> Vec<Unresolved> {
    let mut tried: std::collections::BTreeSet<String> = Default::default();
    let mut out = Vec::new();
    let mut check = |key: String, what: String, r: Result<(), ResolveError>| {
        if tried.insert(key)
            && let Err(e) = r
        {
            out.push(Unresolved {
                what,
                problem: e.problem,
            });
        }
    };
    for cell in expand(sweep) {
        let m = cell.model;
        check(
            format!("m {}", m.source),
            format!("model {} ({})", m.name, m.source),
            resolver.model(&m.source).map(|_| ()),
        );
        if let Some(a) = cell.adapter {
            check(
                format!("a {}", a.source),
                format!("adapter {} of {} ({})", a.name, m.name, a.source),
                resolver.adapter(&a.source).map(|_| ()),
            );
        }
        let t = cell.task;
        check(
            format!("d {:?}", (&t.dataset, &t.fields)),
            format!("dataset of {} ({})", t.name, t.dataset.source),
            resolver.dataset(t).map(|_| ()),
        );
    }
    out
}

/// A cell's key, manifest and fingerprint.
pub type CellManifest = (String, RunManifest, String);

/// Plan a submission: what happens to each cell (from [`manifests`]) given the stored runs.
pub async fn plan(
    sweep: &SweepSpec,
    cells: Vec<CellManifest>,
    store: &Store,
    force: bool,
) -> Result<(SweepRow, Vec<PlannedCell>), PlanError> {
    let fingerprints: Vec<String> = cells.iter().map(|(_, _, f)| f.clone()).collect();
    let actions = store.decide(&fingerprints, force).await?;
    let row = SweepRow {
        name: sweep.name.clone(),
        owner: sweep.owner.clone(),
        description: sweep.description.clone(),
        spec_path: sweep.path.display().to_string(),
        spec: sweep.text.clone(),
        priority: sweep.priority,
        shard_size: sweep.shard_size,
    };
    let planned = cells
        .into_iter()
        .zip(actions)
        .map(|((key, manifest, fingerprint), action)| PlannedCell {
            key,
            manifest,
            fingerprint,
            action,
        })
        .collect();
    Ok((row, planned))
}

/// Counts of a plan for printing: (new, done, retried, in progress, forced).
pub fn summarize(cells: &[PlannedCell]) -> [(&'static str, usize); 5] {
    let count = |f: fn(&CellAction) -> bool| cells.iter().filter(|c| f(&c.action)).count();
    [
        ("new", count(|a| matches!(a, CellAction::New))),
        (
            "already done",
            count(|a| matches!(a, CellAction::Done { .. })),
        ),
        (
            "failed → retried",
            count(|a| matches!(a, CellAction::Retry { .. })),
        ),
        (
            "in progress",
            count(|a| matches!(a, CellAction::InProgress { .. })),
        ),
        ("forced", count(|a| matches!(a, CellAction::Forced { .. }))),
    ]
}
