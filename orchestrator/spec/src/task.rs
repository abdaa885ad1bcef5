//! Task definitions: one TOML file per NLEBench task in `experiments/tasks/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::error::SpecError;
use super::load::load_toml;
use super::resolve::ResolveError;
use super::sweep::Decoding;
use super::template::Template;
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
    /// tasks with SEQ_CLS adapters) and compare the argmax with the label; without a head,
    /// zero-shot by the log-likelihood of the task's label words.
    Classification,
    /// Generate in steps (`[[steps]]`), each step's output in the next step's prompt; the
    /// last step's output is scored like `generation`.
    Chain,
    /// An lm-evaluation-harness task (`lm-eval:NAME` in a sweep, never a task file's kind):
    /// its requests built and its metrics computed as lm-eval does ([`LmEvalTask`]).
    LmEval,
}

impl TaskKind {
    /// Dataset fields the kind needs (`[fields]` keys) and the ones it may use.
    pub fn fields(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            TaskKind::LoglikPair => (&["more", "less"], &["group"]),
            TaskKind::Generation => (&["reference"], &["source"]),
            TaskKind::AttributeScores => (&[], &["text", "prompt"]),
            TaskKind::Classification => (&["label"], &[]),
            TaskKind::Chain => (&["reference"], &["source"]),
            TaskKind::LmEval => (&[], &[]),
        }
    }

    /// Metrics the kind can compute.
    pub fn metrics(self) -> &'static [&'static str] {
        match self {
            TaskKind::LoglikPair => &["bias_paper", "bias_standard"],
            TaskKind::Generation | TaskKind::Chain => &[
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
                "long_inputs",
            ],
            TaskKind::AttributeScores => &["attribute_mean", "attribute_share"],
            TaskKind::Classification => &["accuracy", "f1", "f1_macro", "mcc"],
            // The task file's `metric_list`.
            TaskKind::LmEval => &[],
        }
    }

    /// Whether decoding parameters change the kind's outputs.
    pub fn uses_decoding(self) -> bool {
        match self {
            TaskKind::LoglikPair => false,
            TaskKind::Generation | TaskKind::Chain => true,
            // Runnable attribute tasks generate the outputs that get scored.
            TaskKind::AttributeScores => true,
            TaskKind::Classification => false,
            // A `generate_until` task's `generation_kwargs` are in its configuration.
            TaskKind::LmEval => false,
        }
    }

    /// The kebab-case name used in task files.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::LoglikPair => "loglik-pair",
            TaskKind::Generation => "generation",
            TaskKind::AttributeScores => "attribute-scores",
            TaskKind::Classification => "classification",
            TaskKind::Chain => "chain",
            TaskKind::LmEval => "lm-eval",
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
    /// A JSON array of objects (records), or an object of equal-length arrays (columns).
    Json,
    /// Apache Parquet (as the Hub's dataset viewer converts datasets).
    Parquet,
}

impl DataFormat {
    /// The format implied by a file name's extension.
    pub fn from_path(path: &Path) -> Option<DataFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(DataFormat::Csv),
            "jsonl" => Some(DataFormat::Jsonl),
            "json" => Some(DataFormat::Json),
            "parquet" => Some(DataFormat::Parquet),
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
    /// Which rows are the examples, e.g. `"80%:"` (the last 20 %).
    pub rows: Option<Spanned<String>>,
    /// A list column whose items become the examples.
    pub explode: Option<ListColumn>,
}

/// A column holding a list of tuples (a Python literal such as `[('q', 'a'), …]` or JSON),
/// each item's parts named by `into`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListColumn {
    /// The column.
    pub column: String,
    /// Names of each item's parts, in order.
    pub into: Vec<String>,
}

/// One end of a row range: a row number or a percentage of the rows (rounded down, as
/// Python's `int(len(df) * p)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowBound {
    /// Row number (0-based).
    Row(u64),
    /// Percent of the rows.
    Percent(u8),
}

impl RowBound {
    /// The row number this bound means in a table of `n` rows.
    pub fn at(self, n: u64) -> u64 {
        match self {
            RowBound::Row(r) => r.min(n),
            RowBound::Percent(p) => n * u64::from(p) / 100,
        }
    }
}

/// Rows `start..end` of a dataset, written `"START:END"` with either end optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowRange {
    /// First row (inclusive); the first row when absent.
    pub start: Option<RowBound>,
    /// Last row (exclusive); the end when absent.
    pub end: Option<RowBound>,
}

impl RowRange {
    /// Parse `"80%:"`, `":100"`, `"10:20"`, `"0%:80%"`.
    pub fn parse(text: &str) -> Result<RowRange, String> {
        let bad = || {
            format!(
                "`{text}` is not a row range; write START:END with row numbers or percentages, e.g. \"80%:\" for the last 20 %"
            )
        };
        let (a, b) = text.split_once(':').ok_or_else(bad)?;
        let bound = |s: &str| -> Result<Option<RowBound>, String> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            match s.strip_suffix('%') {
                Some(p) => p
                    .parse::<u8>()
                    .ok()
                    .filter(|&p| p <= 100)
                    .map(|p| Some(RowBound::Percent(p)))
                    .ok_or_else(bad),
                None => s
                    .parse::<u64>()
                    .map(|r| Some(RowBound::Row(r)))
                    .map_err(|_| bad()),
            }
        };
        Ok(RowRange {
            start: bound(a)?,
            end: bound(b)?,
        })
    }

    /// The row numbers of a table of `n` rows.
    pub fn of(self, n: u64) -> std::ops::Range<u64> {
        let start = self.start.map_or(0, |b| b.at(n));
        let end = self.end.map_or(n, |b| b.at(n));
        start..end.max(start)
    }
}

/// Outputs the authors left empty: an example whose `column` has more than `max_words`
/// whitespace-separated words is not run; its output is empty and the sample is flagged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputLimit {
    /// The column counted.
    pub column: String,
    /// Most words an input may have.
    pub max_words: u64,
}

/// One step of a `chain` task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainStep {
    /// Name; later templates read this step's output as `{NAME}`.
    pub name: String,
    /// Prompt template: dataset columns, earlier steps, and the item's parts with `each`.
    pub template: String,
    /// Run the step once per item of a list column (e.g. once per question).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub each: Option<ListColumn>,
    /// How each item's output reads in later templates (`{output}` and the item's parts),
    /// concatenated; without it the outputs are joined by newlines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<String>,
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
    /// Where few-shot examples come from (generation and zero-shot classification).
    fewshot: Option<DatasetSection>,
    fields: Spanned<BTreeMap<String, String>>,
    template: Option<Spanned<String>>,
    #[serde(default)]
    template_when_empty: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    attributes: Vec<String>,
    labels: Option<Spanned<Vec<String>>>,
    label_words: Option<Spanned<Vec<String>>>,
    zero_shot_template: Option<Spanned<String>>,
    decoding: Option<Decoding>,
    input_limit: Option<InputLimit>,
    steps: Option<Spanned<Vec<ChainStep>>>,
    nli_model: Option<Spanned<String>>,
    mauve_model: Option<Spanned<String>>,
    toxicity_model: Option<Spanned<String>>,
    #[serde(default)]
    toxicity_labels: BTreeMap<String, String>,
    scorer_language: Option<String>,
    /// Equivalence margins of the reproduction report, per metric (in the metric's unit).
    margins: Option<Spanned<BTreeMap<String, f64>>>,
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
    /// Which rows are the examples (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<RowRange>,
    /// A list column whose items become the examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explode: Option<ListColumn>,
}

/// A validated task definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The examples few-shot prompts draw from (the task's `[fewshot]`; a train split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fewshot: Option<DatasetRef>,
    /// Task-kind field name → dataset column.
    pub fields: BTreeMap<String, String>,
    /// Prompt template with `{column}` placeholders (generation tasks); tasks without one can
    /// only score imported outputs.
    pub template: Option<String>,
    /// Templates used instead of `template` when a column is empty (column → template), e.g.
    /// the instruction form without input.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub template_when_empty: BTreeMap<String, String>,
    /// The decoding the task is run with unless a setting gives its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding: Option<Decoding>,
    /// Inputs too long to run (empty output, flagged), as in the authors' code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_limit: Option<InputLimit>,
    /// Steps of a `chain` task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<ChainStep>,
    /// Zero-shot classification (a model without a classification head): the label words in
    /// class-index order, each scored as the continuation of `zero_shot_template`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label_words: Vec<String>,
    /// The prompt whose continuations the label words are (zero-shot classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zero_shot_template: Option<String>,
    /// The NLI classifier of the entailment ratios (e.g. `hf:NorGLM/Entailment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nli_model: Option<Source>,
    /// The causal LM whose hidden states are MAUVE's features (e.g. `hf:openai-community/gpt2-large`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mauve_model: Option<Source>,
    /// Language the external scorer reads the outputs in (Perspective `languages`), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scorer_language: Option<String>,
    /// A Hugging Face sequence-classification model that scores the outputs of attribute
    /// tasks locally (instead of the Perspective API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toxicity_model: Option<Source>,
    /// Attribute → the local classifier's label (labels named as the attributes, ignoring
    /// case, need no entry).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub toxicity_labels: BTreeMap<String, String>,
    /// Score columns aggregated by `attribute-scores` tasks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<String>,
    /// Label values of `classification` tasks in class-index order (`["False", "True"]`):
    /// dataset labels and predictions may be these values or their indices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// The reproduction report's equivalence margin per metric, in the metric's unit: a value
    /// whose 90 % interval lies within baseline ± margin reproduces it (not in the
    /// fingerprint: it changes no output).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub margins: BTreeMap<String, f64>,
    /// The file the task was read from.
    #[serde(skip)]
    pub path: PathBuf,
    /// Where the dataset source was written: file, line, column and key.
    #[serde(skip)]
    pub dataset_origin: Option<(PathBuf, usize, usize, String)>,
    /// The lm-evaluation-harness task of an `lm-eval` task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lm_eval: Option<LmEvalTask>,
}

/// An lm-evaluation-harness task named in a sweep (`lm-eval:NAME`, where NAME is a task, or a
/// group or tag that stands for several), as resolved at submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmEvalTask {
    /// lm-eval's name of the task.
    pub task: String,
    /// The name the sweep gave, when it was a group or tag standing for this task (NorEval's
    /// prompt variants `_p0` … `_pN` under one name; their maximum and mean are reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The folders lm-eval's task files were read from (lm-eval's `--include-path`).
    pub include: Vec<PathBuf>,
    /// The task's file.
    pub file: PathBuf,
    /// The task's configuration as read (its file with its includes and the group's
    /// overrides), in the fingerprint: a changed file is another run.
    pub config: serde_json::Value,
    /// lm-eval's metric keys (`METRIC,FILTER`) under the names runs store them with.
    pub metrics: Vec<(String, String)>,
}

impl LmEvalTask {
    /// The name of such a task in a sweep and in runs: `lm-eval:TASK`.
    pub fn spec_name(task: &str) -> String {
        format!("{}{task}", LmEvalTask::PREFIX)
    }

    /// How a sweep names lm-eval tasks.
    pub const PREFIX: &str = "lm-eval:";
}

impl TaskSpec {
    /// The task spec of an lm-eval task: named `lm-eval:TASK`, its metrics lm-eval's; its
    /// "dataset" is its file (the documents are read through lm-eval's configuration).
    pub fn of_lm_eval(l: LmEvalTask) -> TaskSpec {
        let metrics: Vec<String> = l.metrics.iter().map(|(name, _)| name.clone()).collect();
        TaskSpec {
            name: LmEvalTask::spec_name(&l.task),
            version: 1,
            kind: TaskKind::LmEval,
            description: format!("lm-eval task `{}` ({})", l.task, l.file.display()),
            primary_metric: metrics.first().cloned().unwrap_or_default(),
            metrics,
            dataset: DatasetRef {
                source: Source::Path {
                    path: l.file.clone(),
                },
                file: None,
                split: None,
                format: DataFormat::Json,
                rows: None,
                explode: None,
            },
            fewshot: None,
            fields: BTreeMap::new(),
            template: None,
            template_when_empty: BTreeMap::new(),
            decoding: None,
            input_limit: None,
            steps: vec![],
            label_words: vec![],
            zero_shot_template: None,
            nli_model: None,
            mauve_model: None,
            scorer_language: None,
            toxicity_model: None,
            toxicity_labels: BTreeMap::new(),
            attributes: vec![],
            labels: vec![],
            margins: BTreeMap::new(),
            path: l.file.clone(),
            dataset_origin: None,
            lm_eval: Some(l),
        }
    }

    /// Whether a model can run the task (it has a prompt template or steps); the others
    /// only score imported outputs.
    pub fn is_runnable(&self) -> bool {
        match self.kind {
            TaskKind::LoglikPair => true,
            TaskKind::Chain => !self.steps.is_empty(),
            TaskKind::Generation | TaskKind::Classification | TaskKind::AttributeScores => {
                self.template.is_some()
            }
            TaskKind::LmEval => self.lm_eval.is_some(),
        }
    }

    /// Read and validate a task file. Relative `path:` sources are relative to the file.
    pub fn load(path: &Path) -> Result<TaskSpec, SpecError> {
        Self::load_with_section(path).map(|(t, _)| t)
    }

    fn load_with_section(path: &Path) -> Result<(TaskSpec, DatasetSection), SpecError> {
        let (file, text): (TaskFile, String) = load_toml(path)?;
        if file.kind == TaskKind::LmEval {
            return Err(SpecError::file(
                path,
                "`kind = \"lm-eval\"` is not a task file's kind: lm-eval's tasks are its own YAML files",
                "name the lm-eval task in the sweep as `lm-eval:NAME`, with its folder in `lm_eval_include`",
            ));
        }
        let at = |span, key: &str, problem: String, fix: &str| {
            SpecError::at(path, &text, Some(span), key, problem, fix)
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let dataset = dataset_ref(&file.dataset, None, base)
            .map_err(|(span, problem, fix)| at(span, "dataset.source", problem, &fix))?;
        let fewshot = file
            .fewshot
            .as_ref()
            .map(|s| {
                if !matches!(file.kind, TaskKind::Generation | TaskKind::Classification) {
                    return Err(at(
                        s.source.span(),
                        "fewshot",
                        format!(
                            "few-shot examples are for generation and classification tasks, not `{}` tasks",
                            file.kind.as_str()
                        ),
                        "remove the [fewshot] table",
                    ));
                }
                dataset_ref(s, None, base)
                    .map_err(|(span, problem, fix)| at(span, "fewshot.source", problem, &fix))
            })
            .transpose()?;
        check_fields(&file, &at)?;
        check_metrics(&file, &at)?;
        let labels = check_labels(&file, &at)?;
        check_templates(&file, &at)?;
        check_steps(&file, &at)?;
        check_label_words(&file, labels.len(), &at)?;
        let margins = check_margins(&file, &at)?;
        let metric_model = |raw: &Option<Spanned<String>>, key: &str| {
            raw.as_ref()
                .map(|r| {
                    Source::parse(r.get_ref(), base)
                        .map_err(|e| at(r.span(), key, e.problem, &e.fix))
                })
                .transpose()
        };
        let nli_model = metric_model(&file.nli_model, "nli_model")?;
        let mauve_model = metric_model(&file.mauve_model, "mauve_model")?;
        let toxicity_model = metric_model(&file.toxicity_model, "toxicity_model")?;
        let kind = file.kind;
        let spec = TaskSpec {
            labels,
            margins,
            nli_model,
            mauve_model,
            scorer_language: file.scorer_language.clone(),
            toxicity_model,
            toxicity_labels: file.toxicity_labels.clone(),
            template_when_empty: file
                .template_when_empty
                .iter()
                .map(|(k, v)| (k.clone(), v.get_ref().clone()))
                .collect(),
            decoding: file.decoding.clone(),
            input_limit: file.input_limit.clone(),
            steps: file
                .steps
                .as_ref()
                .map(|s| s.get_ref().clone())
                .unwrap_or_default(),
            label_words: file
                .label_words
                .as_ref()
                .map(|l| l.get_ref().clone())
                .unwrap_or_default(),
            zero_shot_template: file
                .zero_shot_template
                .as_ref()
                .map(|t| t.get_ref().clone()),
            name: file.name.into_inner(),
            version: file.version,
            kind,
            description: file.description.unwrap_or_default(),
            primary_metric: file.primary_metric.into_inner(),
            metrics: file.metrics.into_inner(),
            dataset,
            fewshot,
            lm_eval: None,
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

/// `[margins]`: one positive number per metric the task computes.
fn check_margins(file: &TaskFile, at: &At) -> Result<BTreeMap<String, f64>, SpecError> {
    let Some(margins) = &file.margins else {
        return Ok(BTreeMap::new());
    };
    for (metric, margin) in margins.get_ref() {
        if !file.metrics.get_ref().contains(metric) {
            return Err(at(
                margins.span(),
                "margins",
                format!("`{metric}` is not one of the task's metrics"),
                &format!(
                    "give margins for metrics in `metrics` ({})",
                    file.metrics.get_ref().join(", ")
                ),
            ));
        }
        if !(margin.is_finite() && *margin > 0.0) {
            return Err(at(
                margins.span(),
                "margins",
                format!("the margin of `{metric}` must be a number > 0, not {margin}"),
                "write the largest difference that still counts as the same, in the metric's unit",
            ));
        }
    }
    Ok(margins.get_ref().clone())
}

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

/// Every template parses (filters known, arguments valid).
fn check_templates(file: &TaskFile, at: &At) -> Result<(), SpecError> {
    let mut all: Vec<(&Spanned<String>, String)> = Vec::new();
    all.extend(file.template.iter().map(|t| (t, "template".to_string())));
    all.extend(
        file.template_when_empty
            .iter()
            .map(|(k, t)| (t, format!("template_when_empty.{k}"))),
    );
    all.extend(
        file.zero_shot_template
            .iter()
            .map(|t| (t, "zero_shot_template".to_string())),
    );
    for (t, key) in all {
        Template::parse(t.get_ref()).map_err(|e| {
            at(
                t.span(),
                &key,
                e,
                "use `{COLUMN}` or `{COLUMN|first_words:N}` / `{COLUMN|last_turn:MARKER}`",
            )
        })?;
    }
    if !file.template_when_empty.is_empty() && file.template.is_none() {
        let (k, t) = file
            .template_when_empty
            .iter()
            .next()
            .map(|(k, t)| (k.clone(), t.span()))
            .unwrap_or_default();
        return Err(at(
            t,
            &format!("template_when_empty.{k}"),
            "`template_when_empty` replaces `template`, which the task does not have".into(),
            "add `template`",
        ));
    }
    Ok(())
}

/// `chain` tasks have uniquely named steps with valid templates; other kinds have none.
fn check_steps(file: &TaskFile, at: &At) -> Result<(), SpecError> {
    let is_chain = file.kind == TaskKind::Chain;
    let Some(steps) = &file.steps else {
        if is_chain {
            return Err(at(
                file.name.span(),
                "steps",
                "a chain task needs `[[steps]]`".into(),
                "add at least two [[steps]] tables with `name` and `template`",
            ));
        }
        return Ok(());
    };
    if !is_chain {
        return Err(at(
            steps.span(),
            "steps",
            format!("task kind `{}` has no steps", file.kind.as_str()),
            "remove `[[steps]]` or use `kind = \"chain\"`",
        ));
    }
    if steps.get_ref().is_empty() {
        return Err(at(
            steps.span(),
            "steps",
            "a chain task needs at least one step".into(),
            "add [[steps]] tables with `name` and `template`",
        ));
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, step) in steps.get_ref().iter().enumerate() {
        let key = format!("steps[{i}]");
        let err = |problem: String, fix: &str| at(steps.span(), &key, problem, fix);
        if step.name.is_empty()
            || !step.name.chars().all(|c| c.is_alphanumeric() || c == '_')
            || seen.contains(&step.name.as_str())
        {
            return Err(err(
                format!(
                    "step name `{}` is empty, not a plain word, or used twice",
                    step.name
                ),
                "name each step uniquely with letters, digits and `_`",
            ));
        }
        for (t, what) in [
            (Some(&step.template), "template"),
            (step.join.as_ref(), "join"),
        ] {
            if let Some(t) = t {
                Template::parse(t)
                    .map_err(|e| err(format!("{what}: {e}"), "fix the placeholder"))?;
            }
        }
        if let Some(each) = &step.each
            && each.into.is_empty()
        {
            return Err(err(
                format!("step `{}`: `each.into` names no parts", step.name),
                "name the parts of each item, e.g. into = [\"question\", \"answer\"]",
            ));
        }
        seen.push(&step.name);
    }
    Ok(())
}

/// Label words: only for classification, one per label, with the prompt they continue.
fn check_label_words(file: &TaskFile, labels: usize, at: &At) -> Result<(), SpecError> {
    match (&file.label_words, &file.zero_shot_template) {
        (None, None) => Ok(()),
        (Some(w), _) if file.kind != TaskKind::Classification => Err(at(
            w.span(),
            "label_words",
            format!("task kind `{}` has no labels", file.kind.as_str()),
            "remove `label_words`",
        )),
        (Some(w), Some(_)) if w.get_ref().len() != labels => Err(at(
            w.span(),
            "label_words",
            format!("{} label words for {labels} labels", w.get_ref().len()),
            "give one word per label, in the order of `labels`",
        )),
        (Some(_), Some(_)) => Ok(()),
        (Some(w), None) => Err(at(
            w.span(),
            "zero_shot_template",
            "`label_words` need the prompt they continue".into(),
            "add `zero_shot_template`, e.g. \"{passage}\\nSpørsmål: {question}?\\nSvar:\"",
        )),
        (None, Some(t)) => Err(at(
            t.span(),
            "label_words",
            "`zero_shot_template` needs the label words".into(),
            "add `label_words`, one per label",
        )),
    }
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
                "add `format = \"csv\"` (or jsonl, json, parquet) to [dataset]".to_string(),
            )
        })?;
    let rows = match &section.rows {
        Some(r) => Some(RowRange::parse(r.get_ref()).map_err(|e| {
            (
                r.span(),
                e,
                "e.g. rows = \"80%:\" (the last 20 %) or rows = \":100\"".to_string(),
            )
        })?),
        None => None,
    };
    Ok(DatasetRef {
        source,
        file,
        split: section.split.clone(),
        format,
        rows,
        explode: section.explode.clone(),
    })
}

/// Reads lm-evaluation-harness's task files for the spec (implemented by the worker crate,
/// which reads lm-eval's YAML).
pub trait LmEvalTasks: Send + Sync {
    /// The tasks `name` stands for (a task, or a group's or tag's tasks in order) in the
    /// folders `include`.
    fn expand(&self, name: &str, include: &[PathBuf]) -> Result<Vec<LmEvalTask>, ResolveError>;
}

/// All task definitions of a directory, by name, and lm-eval's task files when the binary
/// gives a reader of them.
#[derive(Clone, Default)]
pub struct TaskRegistry {
    tasks: BTreeMap<String, (TaskSpec, DatasetSection)>,
    /// The directory the tasks were read from.
    pub dir: PathBuf,
    lm_eval: Option<std::sync::Arc<dyn LmEvalTasks>>,
}

impl std::fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskRegistry")
            .field("dir", &self.dir)
            .field("tasks", &self.names())
            .field("lm_eval", &self.lm_eval.is_some())
            .finish()
    }
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
            lm_eval: None,
        })
    }

    /// The registry with lm-eval's task files read through `reader` (`lm-eval:NAME` in sweeps).
    pub fn with_lm_eval(mut self, reader: std::sync::Arc<dyn LmEvalTasks>) -> TaskRegistry {
        self.lm_eval = Some(reader);
        self
    }

    /// The tasks the lm-eval name `name` stands for in the folders `include`, as task specs.
    pub(crate) fn lm_eval(
        &self,
        name: &str,
        include: &[PathBuf],
    ) -> Result<Vec<TaskSpec>, ResolveError> {
        let reader = self.lm_eval.as_ref().ok_or_else(|| ResolveError {
            problem: "this program reads no lm-eval task files".into(),
            fix: "run the sweep with `nlebench`".into(),
        })?;
        Ok(reader
            .expand(name, include)?
            .into_iter()
            .map(TaskSpec::of_lm_eval)
            .collect())
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
