//! lm-evaluation-harness task files read with lm-eval's semantics, NorEval's included: the
//! YAML (`include`, `!function`, tags and groups), the configuration with lm-eval's defaults,
//! the documents a task evaluates, few-shot examples drawn as lm-eval draws them, and every
//! request lm-eval would send a model (`loglikelihood`, `loglikelihood_rolling`,
//! `generate_until`), byte for byte. Jinja runs in `minijinja` with Python's printing; the
//! Python hooks of NorEval's task files are ported by name (`hooks`). Reading datasets is the
//! caller's (`Datasets`).

use std::path::{Path, PathBuf};

pub mod config;
pub mod hooks;
pub mod index;
mod jinja;
pub mod literal;
pub mod prompt;
mod pyrandom;
mod python;
pub mod score;
pub mod task;
pub mod yaml;

pub use config::{OutputType, TaskConfig};
pub use index::{Entry, Kind, TaskIndex, TaskRef};
pub use prompt::{Chat, RenderChat};
pub use score::{Response, Scores, metric_keys, score};
pub use task::{DatasetSpec, Datasets, Request, Task};

/// lm-eval's default few-shot seed (`--seed`'s fourth value).
pub const DEFAULT_FEWSHOT_SEED: i64 = 1234;

/// Why a task could not be read or its requests built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A task file could not be read.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A key of a task file is wrong.
    #[error("{}: `{key}`: {message}", file.display())]
    Key {
        /// The task file.
        file: PathBuf,
        /// The key.
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// A `!function` has no port.
    #[error("`!function {function}` (declared in {}): {why}", dir.display())]
    Function {
        /// The qualified name.
        function: String,
        /// The folder of the file that declared it.
        dir: PathBuf,
        /// Why it cannot run.
        why: String,
    },
    /// No task, group or tag has this name.
    #[error("no lm-eval task, group or tag is named `{name}`: {hint}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// Close names, or where to look.
        hint: String,
    },
    /// A split could not be read.
    #[error("task `{task}`, split `{split}`: {message}")]
    Data {
        /// The task.
        task: String,
        /// The split.
        split: String,
        /// What went wrong.
        message: String,
    },
    /// A document could not be turned into requests.
    #[error("task `{task}`, document {doc_id}: {message}")]
    Doc {
        /// The task.
        task: String,
        /// The document's index.
        doc_id: usize,
        /// What went wrong.
        message: String,
    },
}

impl Error {
    pub(crate) fn file(path: &Path, message: impl Into<String>) -> Error {
        Error::File {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// The keys of the task `r` as read: its file with its includes and the overrides of the
/// group that named it.
pub fn task_map(r: &TaskRef) -> Result<yaml::Map, Error> {
    let mut map = yaml::load(&r.file)?;
    for (k, v) in &r.overrides {
        yaml::set(&mut map, k, v.clone());
    }
    yaml::set(&mut map, "task", yaml::Node::Str(r.name.clone()));
    Ok(map)
}

/// The configuration of the task `r` (its file with the overrides of the group that named it).
pub fn task_config(r: &TaskRef) -> Result<TaskConfig, Error> {
    TaskConfig::from_map(&task_map(r)?, r.file.clone())
}
