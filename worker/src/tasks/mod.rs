//! Task kinds: how a task's examples become samples, and samples become metrics.

pub mod attributes;
pub mod chain;
pub mod classification;
pub mod conversation;
pub mod fewshot;
pub mod generation;
pub mod lmeval;
pub mod loglik_pair;
pub mod prompt;

use std::collections::BTreeMap;

use spec::{Decoding, TaskKind, TaskSpec};
use store::{MetricValue, NewSample, entities::sample};

use crate::data::{DataError, Table};
use engine::{EngineError, LoadedModel};
use metrics::bootstrap::Bootstrap;

/// Errors of running or scoring a task.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The data is not as the task expects.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A scoring request that does not fit the task.
    #[error("{0}")]
    Request(String),
    /// An lm-eval task file or its documents.
    #[error(transparent)]
    LmEval(#[from] harness::Error),
    /// A stored sample cannot be read back.
    #[error("sample {idx}: {message}")]
    Sample {
        /// The sample index.
        idx: i64,
        /// What is wrong.
        message: String,
    },
}

/// How a batch is run.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Texts per forward pass (`None`: as many as fit the memory budget).
    pub batch_size: Option<usize>,
    /// Memory budget of a forward pass in MiB, when `batch_size` is `None`.
    pub memory_budget_mb: u64,
    /// Context limit in tokens.
    pub max_tokens: Option<usize>,
    /// Decoding of generation tasks.
    pub decoding: Option<Decoding>,
    /// Seed of sampling.
    pub seed: u64,
    /// Few-shot examples before each prompt (generation, zero-shot classification).
    pub shots: Option<fewshot::Shots>,
    /// Prompts through the model's chat template (generation, zero-shot classification).
    pub chat: Option<conversation::ChatPrompting>,
    /// An lm-eval task's documents and requests (built once per run).
    pub lm_eval: Option<std::sync::Arc<lmeval::Prepared>>,
}

/// How to read an outputs file for `score` and `import`.
#[derive(Debug, Clone, Default)]
pub struct ScoreRequest {
    /// Role (`hyp`, `ref`, `source`) → column.
    pub map: BTreeMap<String, String>,
    /// Apply the NorGLM authors' row filter first.
    pub filter_paper: bool,
    /// Models of the entailment ratios and MAUVE, as far as they are available.
    pub models: generation::MetricModels,
    /// How the metrics' intervals are drawn.
    pub bootstrap: Bootstrap,
}

/// What scoring an outputs file gave.
#[derive(Debug, Clone)]
pub struct ScoreOutcome {
    /// The metrics.
    pub metrics: Vec<MetricValue>,
    /// Rows that went into the metrics.
    pub rows_scored: usize,
    /// Rows skipped because a metric cannot be computed for them (counted, never silent).
    pub rows_skipped: usize,
    /// Metrics that could not be computed here, and why.
    pub notes: Vec<String>,
}

/// The cell the authors' outputs use when the model's input was too long.
pub const PAPER_PLACEHOLDER: &str = "Token indices sequence length is longer than 2048.";

/// Strings pandas' `read_csv` reads as missing values (the authors' filter relies on them).
const PANDAS_NA: &[&str] = &[
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// The authors' row filter: cells equal to [`PAPER_PLACEHOLDER`] become empty, and every row
/// with an empty (or pandas-missing) cell is dropped.
pub fn filter_paper(table: &Table) -> Table {
    let missing = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s == PAPER_PLACEHOLDER || PANDAS_NA.contains(&s.as_str()),
        serde_json::Value::Null => true,
        _ => false,
    };
    Table {
        columns: table.columns.clone(),
        rows: table
            .rows
            .iter()
            .filter(|r| {
                table
                    .columns
                    .iter()
                    .all(|c| r.get(c).is_some_and(|v| !missing(v)))
            })
            .cloned()
            .collect(),
        path: table.path.clone(),
    }
}

/// The rows a scoring request reads: the authors' filter applied when it asks for it.
fn requested_rows<'a>(table: &'a Table, req: &ScoreRequest) -> std::borrow::Cow<'a, Table> {
    if req.filter_paper {
        std::borrow::Cow::Owned(filter_paper(table))
    } else {
        std::borrow::Cow::Borrowed(table)
    }
}

/// The columns a task reads from its dataset: its fields and what its templates read (for
/// chains, what is not an earlier step or an item's part).
pub fn required_columns(task: &TaskSpec) -> Vec<String> {
    let (required, _) = task.kind.fields();
    let mut out: Vec<String> = required
        .iter()
        .filter_map(|k| task.fields.get(*k).cloned())
        .chain(task.fields.get("group").cloned())
        .collect();
    let mut not_columns: Vec<&str> = vec!["output"];
    for step in &task.steps {
        if let Some(each) = &step.each {
            not_columns.extend(each.into.iter().map(String::as_str));
            out.push(each.column.clone());
        }
    }
    let mut templates: Vec<&str> = task.steps.iter().map(|s| s.template.as_str()).collect();
    templates.extend(task.steps.iter().filter_map(|s| s.join.as_deref()));
    let step_names: Vec<&str> = task.steps.iter().map(|s| s.name.as_str()).collect();
    let chain_columns = templates
        .into_iter()
        .filter_map(|t| spec::Template::parse(t).ok())
        .flat_map(|t| {
            t.columns()
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
    for c in prompt::columns(task).into_iter().chain(chain_columns) {
        if !step_names.contains(&c.as_str()) && !not_columns.contains(&c.as_str()) {
            out.push(c);
        }
    }
    if task.kind == TaskKind::Chain {
        // The reference may be an item's part (scored per item).
        out.retain(|c| !not_columns.contains(&c.as_str()));
    }
    let mut seen = Vec::new();
    out.retain(|c| {
        let new = !seen.contains(c);
        seen.push(c.clone());
        new
    });
    out
}

/// Examples of a task to run through a model: which rows of its dataset, in which shard, how.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// The task.
    pub task: &'a TaskSpec,
    /// The model (with its adapter merged).
    pub model: &'a LoadedModel,
    /// The task's dataset.
    pub table: &'a Table,
    /// Rows of `table` to run.
    pub indices: &'a [usize],
    /// The shard they belong to.
    pub shard: i32,
    /// Batch size, context and decoding.
    pub opts: &'a BatchOptions,
}

/// Run a batch of examples through the model.
pub fn run_batch(b: &Batch) -> Result<Vec<NewSample>, TaskError> {
    let task = b.task;
    match task.kind {
        TaskKind::LoglikPair => loglik_pair::run(b),
        TaskKind::Generation => generation::run(b),
        // The outputs are generated here; their scores come from the scorer (or an import).
        TaskKind::AttributeScores => generation::run(b),
        TaskKind::Classification => classification::run(b),
        TaskKind::Chain => Err(TaskError::Request(format!(
            "task `{}` runs in steps (tasks::chain), not in one batch",
            task.name
        ))),
        TaskKind::LmEval => match &b.opts.lm_eval {
            Some(p) => lmeval::run(b, p),
            None => Err(TaskError::Request(format!(
                "task `{}` needs its lm-eval requests (tasks::lmeval::prepare)",
                task.name
            ))),
        },
    }
}

/// lm-eval's metrics are computed with the task's documents ([`lmeval::metrics`]).
fn lm_eval_needs_documents(task: &TaskSpec) -> TaskError {
    TaskError::Request(format!(
        "task `{}` is an lm-eval task: its metrics need its documents (a worker computes them; `nlebench tasks score` scores responses files)",
        task.name
    ))
}

/// The task's metrics from its stored samples.
pub fn metrics(
    task: &TaskSpec,
    samples: &[sample::Model],
    boot: &Bootstrap,
) -> Result<Vec<MetricValue>, TaskError> {
    match task.kind {
        TaskKind::LoglikPair => loglik_pair::metrics(task, samples, boot),
        TaskKind::Generation => generation::metrics(task, samples, boot),
        TaskKind::AttributeScores => attributes::metrics(task, samples, boot),
        TaskKind::Classification => classification::metrics(task, samples, boot),
        TaskKind::Chain => chain::metrics(task, samples, boot),
        TaskKind::LmEval => Err(lm_eval_needs_documents(task)),
    }
}

/// The task's metrics from its stored samples with the model-based ones (entailment ratios,
/// MAUVE) computed by `models`, and a note for each metric left out and why.
pub fn metrics_with_models(
    task: &TaskSpec,
    samples: &[sample::Model],
    models: &generation::MetricModels,
    boot: &Bootstrap,
) -> Result<(Vec<MetricValue>, Vec<String>), TaskError> {
    let mut out = metrics(task, samples, boot)?;
    let mut notes = Vec::new();
    if task.kind == TaskKind::Generation {
        let (m, n) = generation::stored_model_metrics(task, samples, models, boot)?;
        out.extend(m);
        notes.extend(n);
    }
    if task.kind == TaskKind::AttributeScores {
        notes.extend(attributes::unscored_note(task, samples));
    }
    Ok((out, notes))
}

/// The task's metrics from an outputs file (no model, nothing stored).
pub fn score_table(
    task: &TaskSpec,
    table: &Table,
    req: &ScoreRequest,
) -> Result<ScoreOutcome, TaskError> {
    let table = &*requested_rows(table, req);
    match task.kind {
        TaskKind::LoglikPair => Ok(ScoreOutcome {
            metrics: loglik_pair::score_table(task, table, &req.bootstrap)?,
            rows_scored: table.rows.len(),
            rows_skipped: 0,
            notes: vec![],
        }),
        TaskKind::Generation | TaskKind::Chain => generation::score_table(task, table, req),
        TaskKind::AttributeScores => attributes::score_table(task, table, &req.bootstrap),
        TaskKind::Classification => classification::score_table(task, table, req),
        TaskKind::LmEval => Err(lm_eval_needs_documents(task)),
    }
}

/// Samples of an outputs file for `nlebench import` (after the paper filter, when asked).
pub fn import_samples(
    task: &TaskSpec,
    table: &Table,
    req: &ScoreRequest,
) -> Result<Vec<NewSample>, TaskError> {
    let table = &*requested_rows(table, req);
    let col = |role: &str| req.map.get(role).map(String::as_str);
    let need = |role: &str| {
        col(role).ok_or_else(|| {
            TaskError::Request(format!(
                "task `{}` needs `--map {role}=COLUMN` (columns: {})",
                task.name,
                table.columns.join(", ")
            ))
        })
    };
    let cell = |row: &crate::data::Row, c: Option<&str>| c.map(|c| crate::data::text(row, c));
    match task.kind {
        TaskKind::LmEval => Err(lm_eval_needs_documents(task)),
        TaskKind::Classification => classification::import_samples(task, table, req),
        TaskKind::Generation | TaskKind::Chain => {
            let (h, r) = (need("hyp")?, need("ref")?);
            let mut cols = vec![h, r];
            cols.extend(col("source"));
            cols.extend(col("prompt"));
            table.require(&cols, "name existing columns in --map")?;
            Ok(table
                .rows
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    let (output, reference) = (cell(row, Some(h)), cell(row, Some(r)));
                    let mut data = serde_json::json!({});
                    if let Some(source) = cell(row, col("source")) {
                        data["source"] = source.into();
                    }
                    // A chain's metrics score its last step's pairs: here the one pair.
                    if task.kind == TaskKind::Chain {
                        data["pairs"] = serde_json::json!([[
                            output.clone().unwrap_or_default(),
                            reference.clone().unwrap_or_default()
                        ]]);
                    }
                    NewSample {
                        idx: i as i64,
                        shard: 0,
                        prompt: cell(row, col("prompt").or(col("source"))).unwrap_or_default(),
                        output,
                        reference,
                        data,
                    }
                })
                .collect())
        }
        TaskKind::LoglikPair => {
            loglik_pair::score_table(task, table, &req.bootstrap)?; // validates the columns and numbers
            let group = task.fields.get("group").map(String::as_str);
            // The pair's sentences, as a run stores them (they say which examples these are):
            // `--map more=…,less=…`, else the task's columns, else the released files' names.
            let sentence = |role: &str, released: &str| {
                col(role)
                    .map(str::to_string)
                    .or_else(|| task.fields.get(role).cloned())
                    .filter(|c| table.columns.contains(c))
                    .or_else(|| table.columns.iter().find(|c| *c == released).cloned())
            };
            let (more, less) = (sentence("more", "sent_more"), sentence("less", "sent_less"));
            Ok(table
                .rows
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    let num = |c: &str| {
                        crate::data::text(row, c)
                            .trim()
                            .parse::<f64>()
                            .unwrap_or(f64::NAN)
                    };
                    NewSample {
                        idx: i as i64,
                        shard: 0,
                        prompt: cell(row, more.as_deref().or(col("source"))).unwrap_or_default(),
                        output: None,
                        reference: cell(row, less.as_deref()),
                        data: serde_json::json!({
                            "perp_more": num("perp_more"),
                            "perp_less": num("perp_less"),
                            "group": group.map(|g| crate::data::text(row, g)),
                        }),
                    }
                })
                .collect())
        }
        TaskKind::AttributeScores => {
            attributes::score_table(task, table, &req.bootstrap)?; // validates the columns and numbers
            Ok(table
                .rows
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    let scores: serde_json::Map<String, serde_json::Value> = task
                        .attributes
                        .iter()
                        .map(|a| {
                            let v = crate::data::text(row, a)
                                .trim()
                                .parse::<f64>()
                                .unwrap_or(f64::NAN);
                            (a.clone(), v.into())
                        })
                        .collect();
                    NewSample {
                        idx: i as i64,
                        shard: 0,
                        prompt: cell(row, col("source")).unwrap_or_default(),
                        output: cell(row, col("hyp")),
                        reference: None,
                        data: serde_json::Value::Object(scores),
                    }
                })
                .collect())
        }
    }
}

/// Metrics of samples not stored yet (as [`metrics`] computes them once they are).
pub fn metrics_of_new(
    task: &TaskSpec,
    samples: &[NewSample],
    req: &ScoreRequest,
) -> Result<(Vec<MetricValue>, Vec<String>), TaskError> {
    metrics_with_models(task, &as_stored(samples), &req.models, &req.bootstrap)
}

/// Samples not stored yet, as the store gives them back (for their metrics).
pub fn as_stored(samples: &[NewSample]) -> Vec<sample::Model> {
    let now = chrono::Utc::now();
    samples
        .iter()
        .map(|s| sample::Model {
            id: 0,
            run_id: 0,
            idx: s.idx,
            shard: s.shard,
            prompt: s.prompt.clone(),
            output: s.output.clone(),
            reference: s.reference.clone(),
            data: s.data.to_string(),
            worker: None,
            created_at: now,
        })
        .collect()
}
