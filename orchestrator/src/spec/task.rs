//! Task definitions: one TOML file per NLEBench task in `experiments/tasks/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::error::SpecError;
use super::load::load_toml;
use types::Source;

/// How a task is run. Each kind has its own required dataset fields and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    /// Score two texts per example by log-likelihood (perplexity), e.g. CrowS-Pairs bias.
    LoglikPair,
    /// Generate a text per example from a prompt template and score it against a reference.
    Generation,
    /// Aggregate scores an external classifier gave each output (e.g. Perspective API
    /// toxicity attributes); scores imported or released outputs only.
    AttributeScores,
    /// Classify each example's text with a sequence-classification head (the paper's NLU
    /// tasks with SEQ_CLS adapters) and compare the argmax with the label.
    Classification,
}

impl TaskKind {
    /// Dataset fields the kind needs (`[fields]` keys) and the ones it may use.
    pub fn fields(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            TaskKind::LoglikPair => (&["more", "less"], &["group"]),
            TaskKind::Generation => (&["reference"], &["source"]),
            TaskKind::AttributeScores => (&[], &["text", "prompt"]),
            TaskKind::Classification => (&["label"], &[]),
        }
    }

    /// Metrics the kind can compute.
    pub fn metrics(self) -> &'static [&'static str] {
        match self {
            TaskKind::LoglikPair => &["bias_paper", "bias_standard"],
            TaskKind::Generation => &[
                "bleu",
                "bleu_corpus",
                "rouge_1",
                "rouge_2",
                "rouge_l",
                "distinct_1",
                "distinct_2",
                "distinct_3",
                "distinct_4",
                "distinct_std_1",
                "distinct_std_2",
                "distinct_std_3",
                "distinct_std_4",
                "entr",
                "entr_valid",
                "usr",
                "contradiction_ratio",
                "entailment_ratio",
                "neutral_ratio",
                "mauve",
            ],
            TaskKind::AttributeScores => &["attribute_mean", "attribute_share"],
            TaskKind::Classification => &["accuracy", "f1", "f1_macro", "mcc"],
        }
    }

    /// Whether decoding parameters change the kind's outputs.
    pub fn uses_decoding(self) -> bool {
        match self {
            TaskKind::LoglikPair => false,
            TaskKind::Generation => true,
            TaskKind::AttributeScores => false,
            TaskKind::Classification => false,
        }
    }

    /// The kebab-case name used in task files.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::LoglikPair => "loglik-pair",
            TaskKind::Generation => "generation",
            TaskKind::AttributeScores => "attribute-scores",
            TaskKind::Classification => "classification",
        }
    }
}

/// File format of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// A JSON array of objects.
    Json,
}

impl DataFormat {
    /// The format implied by a file name's extension.
    pub fn from_path(path: &Path) -> Option<DataFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(DataFormat::Csv),
            "jsonl" => Some(DataFormat::Jsonl),
            "json" => Some(DataFormat::Json),
            _ => None,
        }
    }
}

/// `[dataset]` of a task file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSection {
    /// `hf:ORG/NAME[@REV]` or `path:FILE`.
    pub source: Spanned<String>,
    /// File inside a Hub dataset repository.
    pub file: Option<String>,
    /// Split name, for the record.
    pub split: Option<String>,
    /// File format; inferred from the file name when absent.
    pub format: Option<DataFormat>,
}

/// A task file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskFile {
    name: Spanned<String>,
    version: u32,
    kind: TaskKind,
    description: Option<String>,
    primary_metric: Spanned<String>,
    metrics: Spanned<Vec<String>>,
    dataset: DatasetSection,
    fields: Spanned<BTreeMap<String, String>>,
    template: Option<Spanned<String>>,
    #[serde(default)]
    attributes: Vec<String>,
    labels: Option<Spanned<Vec<String>>>,
}

/// Where a task's examples come from, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRef {
    /// The source.
    pub source: Source,
    /// File inside a Hub repository (Hub sources only).
    pub file: Option<String>,
    /// Split name, if any.
    pub split: Option<String>,
    /// File format.
    pub format: DataFormat,
}

/// A validated task definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Unique task name, e.g. `no-crows-pairs`.
    pub name: String,
    /// Bumped whenever anything that changes outputs changes.
    pub version: u32,
    /// How the task is run.
    pub kind: TaskKind,
    /// One line for people.
    pub description: String,
    /// The metric shown first.
    pub primary_metric: String,
    /// Metrics computed for each run.
    pub metrics: Vec<String>,
    /// The examples.
    pub dataset: DatasetRef,
    /// Task-kind field name → dataset column.
    pub fields: BTreeMap<String, String>,
    /// Prompt template with `{column}` placeholders (generation tasks); tasks without one can
    /// only score imported outputs.
    pub template: Option<String>,
    /// Score columns aggregated by `attribute-scores` tasks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<String>,
    /// Label values of `classification` tasks in class-index order (`["False", "True"]`):
    /// dataset labels and predictions may be these values or their indices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// The file the task was read from.
    #[serde(skip)]
    pub path: PathBuf,
    /// Where the dataset source was written: file, line, column and key.
    #[serde(skip)]
    pub dataset_origin: Option<(PathBuf, usize, usize, String)>,
}

impl TaskSpec {
    /// Read and validate a task file. Relative `path:` sources are relative to the file.
    pub fn load(path: &Path) -> Result<TaskSpec, SpecError> {
        Self::load_with_section(path).map(|(t, _)| t)
    }

    fn load_with_section(path: &Path) -> Result<(TaskSpec, DatasetSection), SpecError> {
        let (file, text): (TaskFile, String) = load_toml(path)?;
        let at = |span, key: &str, problem: String, fix: &str| {
            SpecError::at(path, &text, Some(span), key, problem, fix)
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let dataset = dataset_ref(&file.dataset, None, base)
            .map_err(|(span, problem, fix)| at(span, "dataset.source", problem, &fix))?;
        check_fields(&file, &at)?;
        check_metrics(&file, &at)?;
        let labels = check_labels(&file, &at)?;
        let kind = file.kind;
        let spec = TaskSpec {
            labels,
            name: file.name.into_inner(),
            version: file.version,
            kind,
            description: file.description.unwrap_or_default(),
            primary_metric: file.primary_metric.into_inner(),
            metrics: file.metrics.into_inner(),
            dataset,
            dataset_origin: {
                let (line, col) = super::error::line_col(&text, file.dataset.source.span().start);
                Some((path.to_path_buf(), line, col, "dataset.source".into()))
            },
            fields: file.fields.into_inner(),
            template: file.template.map(Spanned::into_inner),
            attributes: file.attributes.clone(),
            path: path.to_path_buf(),
        };
        Ok((spec, file.dataset))
    }
}

/// Where a task file's problem is: (span, key, problem, fix) → the located error.
type At<'a> = dyn Fn(std::ops::Range<usize>, &str, String, &str) -> SpecError + 'a;

/// `[fields]` has every field the kind needs and none it does not know.
fn check_fields(file: &TaskFile, at: &At) -> Result<(), SpecError> {
    let kind = file.kind;
    let (required, optional) = kind.fields();
    for need in required {
        if !file.fields.get_ref().contains_key(*need) {
            return Err(at(
                file.fields.span(),
                "fields",
                format!("task kind `{}` needs `fields.{need}`", kind.as_str()),
                &format!("add `{need} = \"COLUMN\"` under [fields]"),
            ));
        }
    }
    if let Some(extra) = file
        .fields
        .get_ref()
        .keys()
        .find(|k| !required.contains(&k.as_str()) && !optional.contains(&k.as_str()))
    {
        return Err(at(
            file.fields.span(),
            &format!("fields.{extra}"),
            format!(
                "task kind `{}` has no field `{extra}`; expected {}",
                kind.as_str(),
                required
                    .iter()
                    .chain(optional)
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "remove it or rename it",
        ));
    }
    Ok(())
}

/// Every metric is one the kind computes, and the primary metric is among them.
fn check_metrics(file: &TaskFile, at: &At) -> Result<(), SpecError> {
    let kind = file.kind;
    let known = kind.metrics();
    for m in file.metrics.get_ref() {
        if !known.contains(&m.as_str()) {
            return Err(at(
                file.metrics.span(),
                "metrics",
                format!(
                    "unknown metric `{m}` for task kind `{}`; expected one of {}",
                    kind.as_str(),
                    known.join(", ")
                ),
                "remove it or use a metric the task kind computes",
            ));
        }
    }
    if !file
        .metrics
        .get_ref()
        .contains(file.primary_metric.get_ref())
    {
        return Err(at(
            file.primary_metric.span(),
            "primary_metric",
            format!("`{}` is not among `metrics`", file.primary_metric.get_ref()),
            "name one of the task's metrics",
        ));
    }
    Ok(())
}

/// Classification tasks have two or more labels (two for binary `f1`); others have none.
fn check_labels(file: &TaskFile, at: &At) -> Result<Vec<String>, SpecError> {
    let kind = file.kind;
    let labels = file
        .labels
        .as_ref()
        .map(|l| l.get_ref().clone())
        .unwrap_or_default();
    match (&file.labels, kind == TaskKind::Classification) {
        (Some(l), true) if l.get_ref().len() < 2 => {
            return Err(at(
                l.span(),
                "labels",
                "a classification task needs at least two labels".into(),
                "list the label values in class-index order, e.g. labels = [\"False\", \"True\"]",
            ));
        }
        (None, true) => {
            return Err(at(
                file.name.span(),
                "labels",
                "a classification task needs `labels`".into(),
                "add `labels = [\"False\", \"True\"]` (the label values in class-index order)",
            ));
        }
        (Some(l), false) => {
            return Err(at(
                l.span(),
                "labels",
                format!("task kind `{}` has no labels", kind.as_str()),
                "remove `labels`",
            ));
        }
        _ => {}
    }
    if kind == TaskKind::Classification
        && file.metrics.get_ref().iter().any(|m| m == "f1")
        && labels.len() != 2
    {
        return Err(at(
            file.metrics.span(),
            "metrics",
            format!(
                "binary `f1` needs two labels; this task has {}",
                labels.len()
            ),
            "use `f1_macro`",
        ));
    }
    Ok(labels)
}

type SpanProblem = (std::ops::Range<usize>, String, String);

/// Build a [`DatasetRef`] from a `[dataset]` section, or from a sweep's override source.
pub(crate) fn dataset_ref(
    section: &DatasetSection,
    override_source: Option<&Spanned<String>>,
    base: &Path,
) -> Result<DatasetRef, SpanProblem> {
    let raw = override_source.unwrap_or(&section.source);
    let source = Source::parse(raw.get_ref(), base).map_err(|e| (raw.span(), e.problem, e.fix))?;
    let (file, format_path) = match &source {
        Source::Hf { .. } => {
            let file = section.file.clone().ok_or_else(|| {
                (
                    raw.span(),
                    "a Hub dataset needs the file to read".to_string(),
                    "add `file = \"NAME.csv\"` to [dataset]".to_string(),
                )
            })?;
            let p = PathBuf::from(&file);
            (Some(file), p)
        }
        Source::Path { path } => (None, path.clone()),
        Source::Random { .. } => {
            return Err((
                raw.span(),
                "datasets cannot be `random:`".into(),
                "use `hf:ORG/NAME` with `file`, or `path:FILE`".into(),
            ));
        }
    };
    let format = section
        .format
        .or_else(|| DataFormat::from_path(&format_path))
        .ok_or_else(|| {
            (
                raw.span(),
                format!(
                    "cannot tell the format of `{}` from its extension",
                    format_path.display()
                ),
                "add `format = \"csv\"` (or jsonl, json) to [dataset]".to_string(),
            )
        })?;
    Ok(DatasetRef {
        source,
        file,
        split: section.split.clone(),
        format,
    })
}

/// All task definitions of a directory, by name.
#[derive(Debug, Clone, Default)]
pub struct TaskRegistry {
    tasks: BTreeMap<String, (TaskSpec, DatasetSection)>,
    /// The directory the tasks were read from.
    pub dir: PathBuf,
}

impl TaskRegistry {
    /// Read every `*.toml` in `dir`.
    pub fn load_dir(dir: &Path) -> Result<TaskRegistry, SpecError> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            SpecError::file(
                dir,
                format!("cannot read the task directory: {e}"),
                "run from the project root or set NLEBENCH_TASKS_DIR / --tasks-dir",
            )
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut tasks = BTreeMap::new();
        for path in paths {
            let (spec, section) = TaskSpec::load_with_section(&path)?;
            if let Some((other, _)) = tasks.get(&spec.name) {
                let other: &TaskSpec = other;
                return Err(SpecError::file(
                    &path,
                    format!(
                        "task `{}` is also defined in {}",
                        spec.name,
                        other.path.display()
                    ),
                    "give each task a unique name",
                ));
            }
            tasks.insert(spec.name.clone(), (spec, section));
        }
        Ok(TaskRegistry {
            tasks,
            dir: dir.to_path_buf(),
        })
    }

    /// The task called `name`.
    pub fn get(&self, name: &str) -> Option<&TaskSpec> {
        self.tasks.get(name).map(|(t, _)| t)
    }

    /// The `[dataset]` section of task `name`, for sweeps that override its source.
    pub(crate) fn dataset_section(&self, name: &str) -> Option<&DatasetSection> {
        self.tasks.get(name).map(|(_, d)| d)
    }

    /// All tasks, by name.
    pub fn iter(&self) -> impl Iterator<Item = &TaskSpec> {
        self.tasks.values().map(|(t, _)| t)
    }

    /// Task names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.tasks.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const GOOD: &str = r#"
name = "bias"
version = 2
kind = "loglik-pair"
primary_metric = "bias_paper"
metrics = ["bias_paper", "bias_standard"]
[dataset]
source = "hf:NorGLM/NO-CrowS-Pairs"
file = "crows_pairs_norwegian.csv"
[fields]
more = "sent_more_no"
less = "sent_less_no"
group = "bias_type"
"#;

    #[test]
    fn loads_a_valid_task() {
        let d = tempfile::tempdir().unwrap();
        let t = TaskSpec::load(&write(d.path(), "bias.toml", GOOD)).unwrap();
        assert_eq!(t.kind, TaskKind::LoglikPair);
        assert_eq!(t.dataset.format, DataFormat::Csv);
        assert_eq!(t.fields["more"], "sent_more_no");
    }

    #[test]
    fn missing_kind_field_is_reported() {
        let d = tempfile::tempdir().unwrap();
        let text = GOOD.replace("less = \"sent_less_no\"\n", "");
        let e = TaskSpec::load(&write(d.path(), "bias.toml", &text)).unwrap_err();
        assert_eq!(e.key, "fields");
        assert!(e.problem.contains("fields.less"), "{e}");
    }

    #[test]
    fn unknown_metric_and_kind_are_reported() {
        let d = tempfile::tempdir().unwrap();
        let text = GOOD.replace("\"bias_standard\"]", "\"bleu\"]");
        let e = TaskSpec::load(&write(d.path(), "bias.toml", &text)).unwrap_err();
        assert!(e.problem.contains("unknown metric `bleu`"), "{e}");
        let text = GOOD.replace("loglik-pair", "telepathy");
        let e = TaskSpec::load(&write(d.path(), "bias.toml", &text)).unwrap_err();
        assert_eq!(e.key, "kind");
        assert!(e.problem.contains("unknown variant"), "{e}");
        assert_eq!(e.location, Some((4, 8)));
    }

    const BOOLQ: &str = r#"
name = "boolq"
version = 1
kind = "classification"
primary_metric = "accuracy"
metrics = ["accuracy", "f1"]
labels = ["False", "True"]
template = "{passage} [SEP] {question}"
[dataset]
source = "path:val.jsonl"
[fields]
label = "label"
"#;

    #[test]
    fn classification_tasks_need_their_labels_and_only_they_have_them() {
        let d = tempfile::tempdir().unwrap();
        let t = TaskSpec::load(&write(d.path(), "b.toml", BOOLQ)).unwrap();
        assert_eq!(t.labels, ["False", "True"]);
        let text = BOOLQ.replace("labels = [\"False\", \"True\"]\n", "");
        let e = TaskSpec::load(&write(d.path(), "b.toml", &text)).unwrap_err();
        assert_eq!(e.key, "labels");
        assert!(e.problem.contains("needs `labels`"), "{e}");
        let text = BOOLQ.replace("[\"False\", \"True\"]", "[\"a\", \"b\", \"c\"]");
        let e = TaskSpec::load(&write(d.path(), "b.toml", &text)).unwrap_err();
        assert!(e.problem.contains("binary `f1` needs two labels"), "{e}");
        let text = GOOD.replace("[dataset]", "labels = [\"a\", \"b\"]\n[dataset]");
        let e = TaskSpec::load(&write(d.path(), "bias.toml", &text)).unwrap_err();
        assert!(e.problem.contains("has no labels"), "{e}");
    }

    #[test]
    fn registry_rejects_duplicate_names() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.toml", GOOD);
        write(d.path(), "b.toml", GOOD);
        let e = TaskRegistry::load_dir(d.path()).unwrap_err();
        assert!(e.problem.contains("also defined"), "{e}");
    }
}
