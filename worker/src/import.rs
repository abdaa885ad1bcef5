//! Outputs produced elsewhere (e.g. the authors' released files) as a run to store: its
//! samples, its metrics and a manifest that records the file by content.

use std::path::{Path, PathBuf};

use engine::EngineError;
use engine::content::HashCache;
use spec::manifest::{ModelManifest, RunManifest};
use spec::resolve::{ResolvedDataset, ResolvedModel};
use spec::{DataFormat, Dtype, Setting, Source, TaskKind, TaskSpec};
use store::{MetricValue, NewSample};

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
    /// Metrics left out, and why.
    pub notes: Vec<String>,
}

/// How an outputs file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// A table (CSV, JSON Lines, JSON or Parquet, by the file's extension) whose columns
    /// `--map` names.
    #[default]
    Table,
    /// lm-evaluation-harness's `samples_TASK_DATE.jsonl` (`crate::data::lmeval`); the column
    /// map defaults to its outputs and targets.
    LmEval,
}

impl Layout {
    /// The column map an lm-eval file needs for `task`, under the roles `req` leaves unset:
    /// outputs, targets and prompts, and the document field the task reads as its source.
    fn defaults(self, task: &TaskSpec, table: &crate::data::Table) -> Vec<(&'static str, String)> {
        if self == Layout::Table {
            return Vec::new();
        }
        let mut map = match task.kind {
            TaskKind::Classification => vec![("pred", "output".into()), ("label", "target".into())],
            _ => vec![("hyp", "output".into()), ("ref", "target".into())],
        };
        map.push(("prompt", "prompt".into()));
        if let Some(field) = task.fields.get("source") {
            let column = format!("doc.{field}");
            if table.columns.contains(&column) {
                map.push(("source", column));
            }
        }
        map
    }
}

/// Read `file`, laid out as `layout`, as outputs of `task` by model `model` (columns mapped
/// by `req`; an lm-eval file fills in the roles `req` leaves unset).
pub fn prepare(
    task: &TaskSpec,
    model: &str,
    file: &Path,
    layout: Layout,
    req: &mut ScoreRequest,
) -> Result<Imported, ImportError> {
    let file = std::fs::canonicalize(file).map_err(|source| ImportError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    let table = match layout {
        Layout::Table => crate::data::read(
            &file,
            DataFormat::from_path(&file).unwrap_or(DataFormat::Csv),
        )?,
        Layout::LmEval => crate::data::lmeval::read(&file)?,
    };
    for (role, column) in layout.defaults(task, &table) {
        req.map.entry(role.to_string()).or_insert(column);
    }
    let req = &*req;
    let samples = import_samples(task, &table, req)?;
    if samples.is_empty() {
        return Err(ImportError::Empty {
            file,
            filtered: req.filter_paper,
        });
    }
    let (metrics, notes) = metrics_of_new(task, &samples, req)?;
    let sha = HashCache::new(None).sha256(&file)?;
    let map: Vec<String> = req.map.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let filter = if req.filter_paper {
        " filter=paper"
    } else {
        ""
    };
    let layout = match layout {
        Layout::Table => "",
        Layout::LmEval => " lm-eval",
    };
    let setting = format!("import{layout} {}{filter}", map.join(" "));
    let dataset = ResolvedDataset {
        revision: format!("sha256:{sha}"),
        rows: table.rows.len() as u64,
    };
    let setting = Setting {
        name: setting.trim().to_string(),
        ..Setting::default()
    };
    Ok(imported(
        file,
        model,
        sha,
        None,
        task.clone(),
        dataset,
        setting,
        samples,
        metrics,
        notes,
    ))
}

/// The run that imports `file`'s outputs of `task` by `model` (the file's SHA-256 `sha`
/// standing for the model's weights; `chat_template` the digest of the template it was
/// prompted through): its manifest and cell in the imports sweep, with its samples, metrics
/// and notes.
#[allow(clippy::too_many_arguments)]
fn imported(
    file: PathBuf,
    model: &str,
    sha: String,
    chat_template: Option<String>,
    task: TaskSpec,
    dataset: ResolvedDataset,
    setting: Setting,
    samples: Vec<NewSample>,
    metrics: Vec<MetricValue>,
    notes: Vec<String>,
) -> Imported {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let manifest = RunManifest {
        model: ModelManifest {
            name: model.to_string(),
            source: Source::Path { path: file.clone() },
            dtype: Dtype::F32,
            resolved: ResolvedModel {
                revision: None,
                content_id: Some(sha),
                random_weights: false,
                arch: "import".into(),
                memory: None,
                chat_template,
            },
        },
        adapter: None,
        dataset,
        setting,
        fewshot: None,
        seed: 0,
        n_expected: samples.len() as u64,
        engine_version: "import".into(),
        task,
    };
    Imported {
        cell_key: format!("{model}/{}/{name}", manifest.task.name),
        file,
        manifest,
        samples,
        metrics,
        notes,
    }
}

/// lm-eval's samples file of lm-eval task `l` (`samples_TASK_DATE.jsonl`, written by
/// `lm_eval --log_samples` or by `nlebench export --to lm-eval`) as a run of that task by
/// `model`: each document's responses (`resps`) stored as a run of the task stores them, after
/// its requests' arguments are checked against those nlebench builds from the task file with
/// `shots` few-shot examples; the metrics computed from them as for a run.
pub fn prepare_lm_eval(
    l: &spec::LmEvalTask,
    model: &str,
    file: &Path,
    shots: Option<u32>,
    chat: Option<&crate::tasks::conversation::ChatPrompting>,
    data: &crate::data::lmeval_tasks::TaskData,
    bootstrap: &metrics::bootstrap::Bootstrap,
) -> Result<Imported, ImportError> {
    use crate::tasks::lmeval;

    let file = std::fs::canonicalize(file).map_err(|source| ImportError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    let documents = crate::data::lmeval::documents(&file)?;
    let p = lmeval::prepare(l, shots, None, data, chat)?;
    let bad = |line: u64, message: String| {
        ImportError::Data(Box::new(DataError::Parse {
            path: file.clone(),
            line,
            message,
            fix: "import against the task file and settings the samples were made with (--include-path, --num-fewshot, and --apply-chat-template with --system-instruction and --fewshot-as-multiturn for lm-eval's chat flags)".into(),
        }))
    };
    let mut samples: Vec<NewSample> = Vec::with_capacity(documents.len());
    for d in &documents {
        if d.doc_id >= p.docs() {
            return Err(bad(
                d.line,
                format!(
                    "document {}, but `{}` has {} documents",
                    d.doc_id,
                    l.task,
                    p.docs()
                ),
            ));
        }
        let requests = &p.requests[p.by_doc(d.doc_id)];
        if d.resps.len() != requests.len() {
            return Err(bad(
                d.line,
                format!(
                    "{} responses for the {} requests nlebench builds for document {}",
                    d.resps.len(),
                    requests.len(),
                    d.doc_id
                ),
            ));
        }
        for (k, r) in requests.iter().enumerate() {
            let theirs = d.arguments.as_ref().map(|a| a.get(k));
            // Generation arguments are lm-eval's normalised ones; the texts must be equal.
            let same = theirs.is_none_or(|t| {
                t.is_some_and(|t| {
                    r.arguments
                        .iter()
                        .enumerate()
                        .all(|(j, a)| a.is_object() || t.get(j) == Some(a))
                })
            });
            if !same {
                return Err(bad(
                    d.line,
                    format!(
                        "request {k} of document {} is not the one nlebench builds from {}: {} (nlebench: {})",
                        d.doc_id,
                        l.file.display(),
                        theirs
                            .flatten()
                            .map_or("missing".into(), |t| serde_json::json!(t).to_string()),
                        serde_json::Value::Array(r.arguments.clone())
                    ),
                ));
            }
        }
        let responses = d
            .resps
            .iter()
            .zip(requests)
            .enumerate()
            .map(|(k, (written, r))| {
                crate::data::lmeval::response(written, r.request_type).ok_or_else(|| {
                    bad(
                        d.line,
                        format!(
                            "response {k} of document {} is not a {} response: {written}",
                            d.doc_id, r.request_type
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        samples.push(lmeval::sample(&p, d.doc_id, 0, responses, 0, &l.metrics)?);
    }
    if samples.is_empty() {
        return Err(ImportError::Empty {
            file,
            filtered: false,
        });
    }
    let metrics = lmeval::metrics(l, &p, &crate::tasks::as_stored(&samples), bootstrap)?;
    let sha = HashCache::new(None).sha256(&file)?;
    let (rows, revision) = lmeval::documents(l, data)?;
    let setting = Setting {
        name: if chat.is_some() {
            "import lm-eval chat".into()
        } else {
            "import lm-eval".into()
        },
        num_fewshot: shots,
        chat_template: chat.is_some(),
        system_prompt: chat.and_then(|c| c.system_prompt.clone()),
        fewshot_as_multiturn: chat.is_some_and(|c| c.fewshot_as_multiturn),
        ..Setting::default()
    };
    Ok(imported(
        file,
        model,
        sha,
        chat.map(|c| c.template.digest()),
        TaskSpec::of_lm_eval(l.clone()),
        ResolvedDataset { revision, rows },
        setting,
        samples,
        metrics,
        vec![],
    ))
}

/// Scores computed elsewhere for the samples of a stored run (`import --onto RUN`): one
/// update per row of `file` (`idx` and one column per attribute of the task; rows of other
/// runs, by a `run_id` column, are left out), and the run's metrics with the scores merged.
#[derive(Debug)]
pub struct Scores {
    /// The file, made absolute.
    pub file: PathBuf,
    /// (sample index, attribute → score) per row.
    pub updates: Vec<(i64, serde_json::Map<String, serde_json::Value>)>,
    /// The run's metrics once the scores are in.
    pub metrics: Vec<MetricValue>,
}

/// Read per-sample attribute scores for run `run_id` of `task` from `file` and check them
/// against the run's stored `samples`; nothing is written here.
pub fn scores_onto(
    task: &TaskSpec,
    run_id: i64,
    samples: &[store::entities::sample::Model],
    file: &Path,
    bootstrap: &metrics::bootstrap::Bootstrap,
) -> Result<Scores, ImportError> {
    let file = std::fs::canonicalize(file).map_err(|source| ImportError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    if task.attributes.is_empty() {
        return Err(TaskError::Request(format!(
            "run {run_id} is of task `{}`, which has no attribute scores to import (import --onto brings the scores of attribute-scores tasks such as no-crows-pairs-toxicity)",
            task.name
        ))
        .into());
    }
    let table = crate::data::read(
        &file,
        DataFormat::from_path(&file).unwrap_or(DataFormat::Csv),
    )?;
    let mut needed = vec!["idx"];
    needed.extend(task.attributes.iter().map(String::as_str));
    table.require(
        &needed,
        "export the samples with `nlebench export SWEEP --samples` and add one score column per attribute",
    )?;
    let has_run = table.columns.iter().any(|c| c == "run_id");
    let bad = |row: usize, column: &str, value: &str, what: &str| {
        ImportError::Data(Box::new(DataError::Parse {
            path: file.clone(),
            line: row as u64 + 2,
            message: format!("row {}: `{column}` is `{value}`, {what}", row + 1),
            fix: "give every row the sample's index and a number per attribute".into(),
        }))
    };
    let stored: std::collections::HashSet<i64> = samples.iter().map(|s| s.idx).collect();
    let mut updates = Vec::new();
    for (i, row) in table.rows.iter().enumerate() {
        let cell = |c: &str| crate::data::text(row, c);
        if has_run && cell("run_id").trim() != run_id.to_string() {
            continue;
        }
        let idx_text = cell("idx");
        let idx = idx_text
            .trim()
            .parse::<i64>()
            .map_err(|_| bad(i, "idx", &idx_text, "not a whole number"))?;
        if !stored.contains(&idx) {
            return Err(bad(
                i,
                "idx",
                &idx_text,
                &format!("not a sample of run {run_id}"),
            ));
        }
        let mut scores = serde_json::Map::new();
        for a in &task.attributes {
            let v = cell(a);
            let x = v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad(i, a, &v, "not a number"))?;
            scores.insert(a.clone(), x.into());
        }
        updates.push((idx, scores));
    }
    if updates.is_empty() {
        return Err(ImportError::Empty {
            file,
            filtered: false,
        });
    }
    let by_idx: std::collections::HashMap<i64, &serde_json::Map<String, serde_json::Value>> =
        updates.iter().map(|(i, m)| (*i, m)).collect();
    let merged: Vec<store::entities::sample::Model> = samples
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if let Some(add) = by_idx.get(&s.idx) {
                s.data = s.data_merged(add);
            }
            s
        })
        .collect();
    let metrics = crate::tasks::metrics(task, &merged, bootstrap)?;
    Ok(Scores {
        file,
        updates,
        metrics,
    })
}
