//! Outputs produced elsewhere (e.g. the authors' released files) as a run to store: its
//! samples, its metrics and a manifest that records the file by content.

use std::path::{Path, PathBuf};

use engine::EngineError;
use engine::content::HashCache;
use orchestrator::manifest::{ModelManifest, RunManifest};
use orchestrator::resolve::{ResolvedDataset, ResolvedModel};
use orchestrator::spec::{DataFormat, Dtype, Setting, Source, TaskSpec};
use orchestrator::store::{MetricValue, NewSample};

use crate::data::DataError;
use crate::tasks::{ScoreRequest, TaskError, import_samples, metrics_of_new};

/// Why a file cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a table of the task's columns.
    #[error(transparent)]
    Data(Box<DataError>),
    /// The rows do not fit the task.
    #[error(transparent)]
    Task(Box<TaskError>),
    /// Hashing the file failed.
    #[error(transparent)]
    Hash(#[from] EngineError),
    /// No row is left to import.
    #[error("no rows of {} are left to import{}\n  fix: check the file and the filter", .file.display(), if *.filtered { " after the paper filter" } else { "" })]
    Empty {
        /// The file.
        file: PathBuf,
        /// The paper filter was applied.
        filtered: bool,
    },
}

impl From<DataError> for ImportError {
    fn from(e: DataError) -> Self {
        ImportError::Data(Box::new(e))
    }
}

impl From<TaskError> for ImportError {
    fn from(e: TaskError) -> Self {
        ImportError::Task(Box::new(e))
    }
}

/// A file's outputs, ready for `Store::import_run`.
#[derive(Debug)]
pub struct Imported {
    /// The file, made absolute.
    pub file: PathBuf,
    /// Its cell in the imports sweep: `MODEL/TASK/FILE`.
    pub cell_key: String,
    /// The run's manifest (the file by its SHA-256, the column map as the setting).
    pub manifest: RunManifest,
    /// One sample per row kept.
    pub samples: Vec<NewSample>,
    /// The task's metrics of those samples.
    pub metrics: Vec<MetricValue>,
}

/// Read `file` as outputs of `task` by model `model` (columns mapped by `req`).
pub fn prepare(
    task: &TaskSpec,
    model: &str,
    file: &Path,
    req: &ScoreRequest,
) -> Result<Imported, ImportError> {
    let file = std::fs::canonicalize(file).map_err(|source| ImportError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    let table = crate::data::read(
        &file,
        DataFormat::from_path(&file).unwrap_or(DataFormat::Csv),
    )?;
    let samples = import_samples(task, &table, req)?;
    if samples.is_empty() {
        return Err(ImportError::Empty {
            file,
            filtered: req.filter_paper,
        });
    }
    let metrics = metrics_of_new(task, &samples, &req.bootstrap)?;
    let sha = HashCache::new(None).sha256(&file)?;
    let map: Vec<String> = req.map.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let filter = if req.filter_paper {
        " filter=paper"
    } else {
        ""
    };
    let setting = format!("import {}{filter}", map.join(" "));
    let manifest = RunManifest {
        model: ModelManifest {
            name: model.to_string(),
            source: Source::Path { path: file.clone() },
            dtype: Dtype::F32,
            resolved: ResolvedModel {
                revision: None,
                content_id: Some(sha.clone()),
                random_weights: false,
                arch: "import".into(),
            },
        },
        adapter: None,
        task: task.clone(),
        dataset: ResolvedDataset {
            revision: format!("sha256:{sha}"),
            rows: table.rows.len() as u64,
        },
        setting: Setting {
            name: setting.trim().to_string(),
            limit: None,
            batch_size: None,
            max_tokens: None,
            decoding: None,
        },
        seed: 0,
        n_expected: samples.len() as u64,
        engine_version: "import".into(),
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Imported {
        cell_key: format!("{model}/{}/{name}", task.name),
        file,
        manifest,
        samples,
        metrics,
    })
}
