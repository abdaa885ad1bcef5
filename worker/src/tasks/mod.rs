//! Task kinds: how a task's examples become samples, and samples become metrics.

pub mod loglik_pair;

use orchestrator::spec::{TaskKind, TaskSpec};
use orchestrator::store::{MetricValue, NewSample, entities::sample};

use crate::data::{DataError, Table};
use crate::engine::{EngineError, LoadedModel};

/// Errors of running or scoring a task.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The data is not as the task expects.
    #[error(transparent)]
    Data(#[from] DataError),
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
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// Texts per forward pass (`None`: as many as fit the memory budget).
    pub batch_size: Option<usize>,
    /// Context limit in tokens.
    pub max_tokens: Option<usize>,
}

/// The columns a task reads from its dataset.
pub fn required_columns(task: &TaskSpec) -> Vec<&str> {
    let (required, _) = task.kind.fields();
    required
        .iter()
        .filter_map(|k| task.fields.get(*k).map(String::as_str))
        .chain(task.fields.get("group").map(String::as_str))
        .collect()
}

/// Run examples `indices` of `table` through the model.
pub fn run_batch(
    task: &TaskSpec,
    model: &LoadedModel,
    table: &Table,
    indices: &[usize],
    shard: i32,
    opts: BatchOptions,
) -> Result<Vec<NewSample>, TaskError> {
    match task.kind {
        TaskKind::LoglikPair => loglik_pair::run(task, model, table, indices, shard, opts),
    }
}

/// The task's metrics from its stored samples.
pub fn metrics(task: &TaskSpec, samples: &[sample::Model]) -> Result<Vec<MetricValue>, TaskError> {
    match task.kind {
        TaskKind::LoglikPair => loglik_pair::metrics(task, samples),
    }
}

/// The task's metrics from an outputs file (no model, nothing stored).
pub fn score_table(task: &TaskSpec, table: &Table) -> Result<Vec<MetricValue>, TaskError> {
    match task.kind {
        TaskKind::LoglikPair => loglik_pair::score_table(task, table),
    }
}
