//! Sweep files: models × adapters × tasks × settings × seeds, with include/exclude rules.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::error::SpecError;
use super::load::load_toml;
use super::model::{Catalog, ModelEntry};
use super::task::{DatasetRef, LmEvalTask, TaskKind, TaskRegistry, TaskSpec, dataset_ref};
use types::Dtype;
use types::Source;

/// Decoding parameters for generation tasks (recorded with each run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decoding {
    /// Sample instead of greedy/beam decoding.
    #[serde(default)]
    pub do_sample: bool,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling mass.
    pub top_p: Option<f64>,
    /// Top-k sampling.
    pub top_k: Option<u32>,
    /// Beam width.
    pub num_beams: Option<u32>,
    /// Most new tokens.
    pub max_new_tokens: Option<u32>,
    /// Fewest new tokens.
    pub min_new_tokens: Option<u32>,
    /// Most tokens including the prompt.
    pub max_length: Option<u32>,
    /// Forbid repeating n-grams of this size.
    pub no_repeat_ngram_size: Option<u32>,
    /// Repetition penalty.
    pub repetition_penalty: Option<f64>,
}

/// A setting as written in `[[settings]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingEntry {
    name: Spanned<String>,
    limit: Option<u64>,
    sample: Option<u64>,
    #[serde(default)]
    sample_seed: u64,
    batch_size: Option<u32>,
    max_tokens: Option<u32>,
    decoding: Option<Decoding>,
    num_fewshot: Option<u32>,
    #[serde(default)]
    chat_template: bool,
    system_prompt: Option<String>,
    #[serde(default)]
    fewshot_as_multiturn: bool,
}

/// A named variant of how tasks are run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    /// Unique in the sweep.
    pub name: String,
    /// Evaluate only the first `limit` examples.
    pub limit: Option<u64>,
    /// Evaluate `sample` examples drawn at random (with `sample_seed`), in file order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<u64>,
    /// Seed of the example draw.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sample_seed: u64,
    /// Examples per forward pass (does not change results).
    pub batch_size: Option<u32>,
    /// Context limit in tokens; longer inputs are truncated and the truncation recorded.
    pub max_tokens: Option<u32>,
    /// Decoding for generation tasks.
    pub decoding: Option<Decoding>,
    /// Examples of the task's `[fewshot]` pool put before each prompt (none: zero-shot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_fewshot: Option<u32>,
    /// Prompts go through the model's chat template as a conversation (lm-evaluation-harness's
    /// `--apply_chat_template`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub chat_template: bool,
    /// The system turn of that conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Few-shot examples as alternating user and assistant turns (lm-evaluation-harness's
    /// `--fewshot_as_multiturn`), not written into the one user turn.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fewshot_as_multiturn: bool,
}

fn is_zero(x: &u64) -> bool {
    *x == 0
}

/// An include or exclude rule; every given field must match.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Model name.
    pub model: Option<Spanned<String>>,
    /// Adapter name, or `none` for the base model.
    pub adapter: Option<Spanned<String>>,
    /// Task name.
    pub task: Option<Spanned<String>>,
    /// Setting name.
    pub setting: Option<Spanned<String>>,
    /// Seed.
    pub seed: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    name: Spanned<String>,
    owner: Option<String>,
    description: Option<String>,
    #[serde(default)]
    priority: i32,
    shard_size: Option<Spanned<u64>>,
    seeds: Option<Spanned<Vec<u64>>>,
    tasks: Spanned<Vec<Spanned<String>>>,
    /// Folders of lm-evaluation-harness task files (lm-eval's `--include-path`) for the
    /// `lm-eval:NAME` tasks, relative to the sweep file.
    #[serde(default)]
    lm_eval_include: Vec<Spanned<String>>,
    /// Catalog adapter families evaluated on every model of the sweep that has them.
    #[serde(default)]
    adapters: Vec<Spanned<String>>,
    #[serde(default)]
    datasets: BTreeMap<Spanned<String>, Spanned<String>>,
    /// Few-shot pools instead of the tasks' own `[fewshot]` (in their dataset's layout).
    #[serde(default)]
    fewshot_datasets: BTreeMap<Spanned<String>, Spanned<String>>,
    metric_models: Option<MetricModels>,
    models: Spanned<Vec<ModelEntry>>,
    #[serde(default)]
    settings: Vec<SettingEntry>,
    #[serde(default)]
    include: Vec<Rule>,
    #[serde(default)]
    exclude: Vec<Rule>,
}

/// `[metric_models]` of a sweep: the models of the model-based metrics for every task, in
/// place of the task files' own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricModels {
    nli_model: Option<Spanned<String>>,
    mauve_model: Option<Spanned<String>>,
    toxicity_model: Option<Spanned<String>>,
}

/// A model of the sweep with its source resolved against the catalog.
#[derive(Debug, Clone)]
pub struct ModelRef {
    /// Name in the sweep.
    pub name: String,
    /// Parsed source.
    pub source: Source,
    /// Inference dtype.
    pub dtype: Dtype,
    /// Architecture noted in the catalog, if any.
    pub arch: Option<String>,
    /// Adapters to evaluate on top of the model.
    pub adapters: Vec<AdapterRef>,
    /// The tasks the model is for (all when `None`).
    pub tasks: Option<Vec<String>>,
    /// Where the source was written (file, text span) for error messages.
    pub origin: Origin,
}

/// An adapter bound to a model.
#[derive(Debug, Clone)]
pub struct AdapterRef {
    /// Name, unique per model.
    pub name: String,
    /// Parsed source.
    pub source: Source,
    /// The tasks it was trained for (all when `None`): cells are made only for these.
    pub tasks: Option<Vec<String>>,
    /// Where the source was written.
    pub origin: Origin,
}

impl ModelRef {
    /// Whether the model with `adapter` (or alone) is run on `task`.
    pub fn runs(&self, adapter: Option<&AdapterRef>, task: &str) -> bool {
        let allows = |tasks: &Option<Vec<String>>| {
            tasks.as_ref().is_none_or(|t| t.iter().any(|x| x == task))
        };
        allows(&self.tasks) && adapter.is_none_or(|a| allows(&a.tasks))
    }
}

/// The place in a file a value came from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The file.
    pub file: PathBuf,
    /// Its contents.
    pub text: std::sync::Arc<str>,
    /// The byte span of the value.
    pub span: Range<usize>,
    /// The key path.
    pub key: String,
}

impl Origin {
    /// An error at this place.
    pub fn error(&self, problem: impl Into<String>, fix: impl Into<String>) -> SpecError {
        SpecError::at(
            &self.file,
            &self.text,
            Some(self.span.clone()),
            self.key.clone(),
            problem,
            fix,
        )
    }
}

/// A validated sweep.
#[derive(Debug, Clone)]
pub struct SweepSpec {
    /// Unique sweep name.
    pub name: String,
    /// Who owns it.
    pub owner: Option<String>,
    /// What it is for.
    pub description: Option<String>,
    /// Queue priority (higher first).
    pub priority: i32,
    /// Examples per job; larger runs are split into shards of this size.
    pub shard_size: u64,
    /// Seeds; each adds cells.
    pub seeds: Vec<u64>,
    /// Models with their adapters.
    pub models: Vec<ModelRef>,
    /// Tasks, with dataset overrides applied.
    pub tasks: Vec<TaskSpec>,
    /// Settings.
    pub settings: Vec<Setting>,
    pub(crate) include: Vec<Rule>,
    pub(crate) exclude: Vec<Rule>,
    /// The sweep file.
    pub path: PathBuf,
    /// Its contents, stored with the sweep.
    pub text: String,
}

/// Default number of examples per job.
pub const DEFAULT_SHARD_SIZE: u64 = 256;

impl SweepSpec {
    /// Read and validate a sweep file against the task registry and the model catalog.
    pub fn load(
        path: &Path,
        tasks: &TaskRegistry,
        catalog: &Catalog,
    ) -> Result<SweepSpec, SpecError> {
        let (file, text): (SweepFile, String) = load_toml(path)?;
        let l = Loader {
            path,
            base: path.parent().unwrap_or(Path::new(".")),
            shared: text.clone().into(),
            text,
        };
        let (shard_size, seeds) = l.sizes(&file)?;
        let task_specs = l.tasks(&file, tasks)?;
        l.check_families(&file, catalog, tasks)?;
        let models = l.models(&file, catalog)?;
        let settings = l.settings(&file)?;
        let spec = SweepSpec {
            name: file.name.into_inner(),
            owner: file.owner,
            description: file.description,
            priority: file.priority,
            shard_size,
            seeds,
            models,
            tasks: task_specs,
            settings,
            include: file.include,
            exclude: file.exclude,
            path: path.to_path_buf(),
            text: l.text.clone(),
        };
        l.check_rules(&spec)?;
        Ok(spec)
    }

    fn check_rule(&self, r: &Rule) -> Result<(), (Range<usize>, &'static str, String)> {
        let known = |field: &'static str, v: &Option<Spanned<String>>, names: Vec<&str>| {
            if let Some(v) = v
                && !names.contains(&v.get_ref().as_str())
            {
                return Err((
                    v.span(),
                    field,
                    format!(
                        "`{}` is not a {field} of this sweep; expected one of {}",
                        v.get_ref(),
                        names.join(", ")
                    ),
                ));
            }
            Ok(())
        };
        known(
            "model",
            &r.model,
            self.models.iter().map(|m| m.name.as_str()).collect(),
        )?;
        let mut adapters: BTreeSet<&str> = BTreeSet::from(["none"]);
        for m in &self.models {
            adapters.extend(m.adapters.iter().map(|a| a.name.as_str()));
        }
        known("adapter", &r.adapter, adapters.into_iter().collect())?;
        known(
            "task",
            &r.task,
            self.tasks.iter().map(|t| t.name.as_str()).collect(),
        )?;
        known(
            "setting",
            &r.setting,
            self.settings.iter().map(|s| s.name.as_str()).collect(),
        )?;
        Ok(())
    }
}

fn override_dataset(
    section: &super::task::DatasetSection,
    source: &Spanned<String>,
    base: &Path,
) -> Result<DatasetRef, (Range<usize>, String, String)> {
    dataset_ref(section, Some(source), base)
}

fn dedup(v: &[u64]) -> Vec<u64> {
    let mut out = Vec::new();
    for x in v {
        if !out.contains(x) {
            out.push(*x);
        }
    }
    out
}

/// Reads one sweep file: each step validates a part of it and says where a problem is.
struct Loader<'a> {
    path: &'a Path,
    /// Relative `path:` sources are relative to the sweep's folder.
    base: &'a Path,
    text: String,
    shared: std::sync::Arc<str>,
}

impl Loader<'_> {
    fn err(&self, span: Range<usize>, key: &str, problem: String, fix: &str) -> SpecError {
        SpecError::at(self.path, &self.text, Some(span), key, problem, fix)
    }

    fn origin(&self, span: Range<usize>, key: String) -> Origin {
        Origin {
            file: self.path.to_path_buf(),
            text: self.shared.clone(),
            span,
            key,
        }
    }

    /// The name must not be empty; shard size and seeds default when not given.
    fn sizes(&self, file: &SweepFile) -> Result<(u64, Vec<u64>), SpecError> {
        if file.name.get_ref().trim().is_empty() {
            return Err(self.err(
                file.name.span(),
                "name",
                "the sweep name is empty".into(),
                "give the sweep a name",
            ));
        }
        let shard_size = match &file.shard_size {
            Some(s) if *s.get_ref() == 0 => {
                return Err(self.err(
                    s.span(),
                    "shard_size",
                    "shard_size must be at least 1".into(),
                    "set shard_size to the number of examples per job, e.g. 256",
                ));
            }
            Some(s) => *s.get_ref(),
            None => DEFAULT_SHARD_SIZE,
        };
        let seeds = match &file.seeds {
            Some(s) if s.get_ref().is_empty() => {
                return Err(self.err(
                    s.span(),
                    "seeds",
                    "seeds is empty, so the sweep has no cells".into(),
                    "list at least one seed, e.g. seeds = [0]",
                ));
            }
            Some(s) => dedup(s.get_ref()),
            None => vec![0],
        };
        Ok((shard_size, seeds))
    }

    /// The tasks named, runnable and listed once, with their dataset overrides applied.
    fn tasks(&self, file: &SweepFile, tasks: &TaskRegistry) -> Result<Vec<TaskSpec>, SpecError> {
        let mut task_specs: Vec<TaskSpec> = Vec::new();
        let include: Vec<PathBuf> = file
            .lm_eval_include
            .iter()
            .map(|d| self.base.join(d.get_ref()))
            .collect();
        if let Some(d) = file
            .lm_eval_include
            .iter()
            .zip(&include)
            .find(|(_, p)| !p.is_dir())
        {
            return Err(self.err(
                d.0.span(),
                "lm_eval_include",
                format!("{} is not a folder", d.1.display()),
                "name folders of lm-eval task files, relative to the sweep file",
            ));
        }
        for (i, t) in file.tasks.get_ref().iter().enumerate() {
            let name = t.get_ref();
            let key = format!("tasks[{i}]");
            if let Some(lm_eval_name) = name.strip_prefix(LmEvalTask::PREFIX) {
                let specs = tasks
                    .lm_eval(lm_eval_name, &include)
                    .map_err(|e| self.err(t.span(), &key, e.problem, &e.fix))?;
                for spec in specs {
                    if task_specs.iter().any(|s| s.name == spec.name) {
                        return Err(self.err(
                            t.span(),
                            &key,
                            format!("task `{}` is listed twice (through `{name}`)", spec.name),
                            "list each task once, directly or through one group or tag",
                        ));
                    }
                    task_specs.push(spec);
                }
                continue;
            }
            let Some(spec) = tasks.get(name) else {
                return Err(self.err(
                    t.span(),
                    &key,
                    format!(
                        "unknown task `{name}`; known tasks in {}: {}",
                        tasks.dir.display(),
                        tasks.names().join(", ")
                    ),
                    "use one of the known task names, or add a task file",
                ));
            };
            if !spec.is_runnable() {
                return Err(self.err(
                    t.span(),
                    &key,
                    format!(
                        "task `{name}` has no prompt template, so it cannot be run; it scores imported outputs"
                    ),
                    "use `nlebench score` / `nlebench import` with its outputs, or add `template` to the task file",
                ));
            }
            if task_specs.iter().any(|s| &s.name == name) {
                return Err(self.err(
                    t.span(),
                    &key,
                    format!("task `{name}` is listed twice"),
                    "list each task once",
                ));
            }
            task_specs.push(spec.clone());
        }
        if let Some(mm) = &file.metric_models {
            for (raw, key) in [
                (&mm.nli_model, "nli_model"),
                (&mm.mauve_model, "mauve_model"),
                (&mm.toxicity_model, "toxicity_model"),
            ] {
                let Some(raw) = raw else { continue };
                let source = Source::parse(raw.get_ref(), self.base).map_err(|e| {
                    self.err(
                        raw.span(),
                        &format!("metric_models.{key}"),
                        e.problem,
                        &e.fix,
                    )
                })?;
                for t in &mut task_specs {
                    match key {
                        "nli_model" => t.nli_model = Some(source.clone()),
                        "mauve_model" => t.mauve_model = Some(source.clone()),
                        _ => t.toxicity_model = Some(source.clone()),
                    }
                }
            }
        }
        if task_specs.is_empty() {
            return Err(self.err(
                file.tasks.span(),
                "tasks",
                "tasks is empty, so the sweep has no cells".into(),
                "list at least one task, e.g. tasks = [\"no-crows-pairs\"]",
            ));
        }
        // `[datasets]` replaces a task's examples, `[fewshot_datasets]` its few-shot pool.
        let overrides = file.datasets.iter().map(|(t, s)| (t, s, false));
        let pools = file.fewshot_datasets.iter().map(|(t, s)| (t, s, true));
        for (task_name, source, pool) in overrides.chain(pools) {
            let (table, what, remove) = match pool {
                false => ("datasets", "dataset override", "the override"),
                true => ("fewshot_datasets", "few-shot pool", "the pool"),
            };
            let key = format!("{table}.{}", task_name.get_ref());
            let spec = task_specs
                .iter_mut()
                .find(|s| &s.name == task_name.get_ref());
            let section = tasks.dataset_section(task_name.get_ref());
            let (Some(spec), Some(section)) = (spec, section) else {
                return Err(self.err(
                    task_name.span(),
                    &key,
                    format!(
                        "{what} for `{}`, which is not among the sweep's tasks",
                        task_name.get_ref()
                    ),
                    &format!("remove {remove} or add the task to `tasks`"),
                ));
            };
            if pool && !matches!(spec.kind, TaskKind::Generation | TaskKind::Classification) {
                return Err(self.err(
                    task_name.span(),
                    &key,
                    format!(
                        "few-shot examples are for generation and classification tasks, not `{}` tasks",
                        spec.kind.as_str()
                    ),
                    "remove the pool",
                ));
            }
            let dataset = override_dataset(section, source, self.base)
                .map_err(|(span, problem, fix)| self.err(span, &key, problem, &fix))?;
            if pool {
                spec.fewshot = Some(dataset);
            } else {
                spec.dataset = dataset;
                let (line, col) = super::error::line_col(&self.text, source.span().start);
                spec.dataset_origin = Some((self.path.to_path_buf(), line, col, key));
            }
        }
        Ok(task_specs)
    }

    /// The models, each with a source (its own or the catalog's) and its adapters.
    fn models(&self, file: &SweepFile, catalog: &Catalog) -> Result<Vec<ModelRef>, SpecError> {
        if file.models.get_ref().is_empty() {
            return Err(self.err(
                file.models.span(),
                "models",
                "the sweep lists no models".into(),
                "add a [[models]] table with `name` and `source`",
            ));
        }
        let mut models: Vec<ModelRef> = Vec::new();
        for (i, entry) in file.models.get_ref().iter().enumerate() {
            let key = format!("models[{i}]");
            let name = entry.name.get_ref().clone();
            if models.iter().any(|m| m.name == name) {
                return Err(self.err(
                    entry.name.span(),
                    &format!("{key}.name"),
                    format!("model name `{name}` is used twice"),
                    "give each model entry a unique name",
                ));
            }
            let from_catalog = catalog.get(&name);
            let (source, origin) = self.model_source(&key, entry, catalog)?;
            models.push(ModelRef {
                dtype: entry
                    .dtype
                    .or(from_catalog.and_then(|c| c.dtype))
                    .unwrap_or_default(),
                arch: entry
                    .arch
                    .clone()
                    .or_else(|| from_catalog.and_then(|c| c.arch.clone())),
                adapters: self.adapters(&key, entry, &file.adapters, catalog)?,
                tasks: entry
                    .tasks
                    .as_ref()
                    .or(from_catalog.and_then(|c| c.tasks.as_ref()))
                    .map(|t| t.get_ref().clone()),
                name,
                source,
                origin,
            });
        }
        Ok(models)
    }

    /// A model's source, from its entry or else from the catalog, parsed where it is written.
    fn model_source(
        &self,
        key: &str,
        entry: &ModelEntry,
        catalog: &Catalog,
    ) -> Result<(Source, Origin), SpecError> {
        let name = entry.name.get_ref();
        let (raw, origin, base) = match (&entry.source, catalog.get(name)) {
            (Some(s), _) => (s, self.origin(s.span(), format!("{key}.source")), self.base),
            (
                None,
                Some(ModelEntry {
                    source: Some(s), ..
                }),
            ) => (
                s,
                Origin {
                    file: catalog.path.clone(),
                    text: catalog.text.clone().into(),
                    span: s.span(),
                    key: format!("models.{name}.source"),
                },
                catalog.path.parent().unwrap_or(Path::new(".")),
            ),
            _ => {
                return Err(self.err(
                    entry.name.span(),
                    &format!("{key}.source"),
                    format!(
                        "model `{name}` has no `source` and is not in the catalog {}",
                        catalog.path.display()
                    ),
                    "add `source = \"hf:ORG/NAME\"` or `source = \"path:DIR\"`",
                ));
            }
        };
        let source =
            Source::parse(raw.get_ref(), base).map_err(|e| origin.error(e.problem, e.fix))?;
        Ok((source, origin))
    }

    /// A model's adapters: its own entries, then the sweep's catalog families trained on it;
    /// unique names other than `none`, `hf:` or `path:` sources.
    fn adapters(
        &self,
        key: &str,
        entry: &ModelEntry,
        families: &[Spanned<String>],
        catalog: &Catalog,
    ) -> Result<Vec<AdapterRef>, SpecError> {
        let mut adapters: Vec<AdapterRef> = Vec::new();
        let mut add = |name: &Spanned<String>,
                       name_key: String,
                       raw: &str,
                       origin: Origin,
                       base: &Path,
                       tasks: Option<Vec<String>>|
         -> Result<(), SpecError> {
            let aname = name.get_ref().clone();
            if aname == "none" || adapters.iter().any(|x| x.name == aname) {
                return Err(self.err(
                    name.span(),
                    &name_key,
                    format!("adapter name `{aname}` is reserved or used twice"),
                    "give each adapter of a model a unique name other than `none`",
                ));
            }
            let source = Source::parse(raw, base).map_err(|e| origin.error(e.problem, e.fix))?;
            if matches!(source, Source::Random { .. }) {
                return Err(origin.error(
                    "adapters cannot be `random:`",
                    "use `hf:ORG/NAME` or `path:DIR`",
                ));
            }
            adapters.push(AdapterRef {
                name: aname,
                source,
                tasks,
                origin,
            });
            Ok(())
        };
        for (j, a) in entry.adapters.iter().enumerate() {
            let akey = format!("{key}.adapters[{j}]");
            let origin = self.origin(a.source.span(), format!("{akey}.source"));
            add(
                &a.name,
                format!("{akey}.name"),
                a.source.get_ref(),
                origin,
                self.base,
                a.tasks.as_ref().map(|t| t.get_ref().clone()),
            )?;
        }
        for family in families {
            if let Some(a) = catalog.adapter(family.get_ref(), entry.name.get_ref()) {
                let origin = Origin {
                    file: catalog.path.clone(),
                    text: catalog.text.clone().into(),
                    span: a.source.span(),
                    key: format!("adapters.{}.source", family.get_ref()),
                };
                add(
                    family,
                    "adapters".into(),
                    a.source.get_ref(),
                    origin,
                    catalog.path.parent().unwrap_or(Path::new(".")),
                    Some(a.tasks.get_ref().clone()),
                )?;
            }
        }
        Ok(adapters)
    }

    /// Every adapter family the sweep names is in the catalog, bound to known tasks.
    fn check_families(
        &self,
        file: &SweepFile,
        catalog: &Catalog,
        registry: &TaskRegistry,
    ) -> Result<(), SpecError> {
        let named = |a: &&super::model::CatalogAdapter| {
            file.adapters
                .iter()
                .any(|f| f.get_ref() == a.name.get_ref())
        };
        for a in catalog.adapters.iter().filter(named) {
            if let Some(t) = a.tasks.get_ref().iter().find(|t| registry.get(t).is_none()) {
                return Err(SpecError::at(
                    &catalog.path,
                    &catalog.text,
                    Some(a.tasks.span()),
                    format!("adapters.{}.tasks", a.name.get_ref()),
                    format!(
                        "unknown task `{t}`; known tasks: {}",
                        registry.names().join(", ")
                    ),
                    "name tasks of experiments/tasks/",
                ));
            }
        }
        for (i, family) in file.adapters.iter().enumerate() {
            if !catalog.has_family(family.get_ref()) {
                return Err(self.err(
                    family.span(),
                    &format!("adapters[{i}]"),
                    format!(
                        "`{}` is not an adapter family of the catalog {}; known: {}",
                        family.get_ref(),
                        catalog.path.display(),
                        catalog.families().join(", ")
                    ),
                    "name a family of the catalog's [[adapters]], or give the adapter under [[models.adapters]] with its source",
                ));
            }
        }
        Ok(())
    }

    /// The settings, uniquely named with positive sizes; one `default` setting when none.
    fn settings(&self, file: &SweepFile) -> Result<Vec<Setting>, SpecError> {
        let mut settings: Vec<Setting> = Vec::new();
        for (i, s) in file.settings.iter().enumerate() {
            let name = s.name.get_ref().clone();
            if settings.iter().any(|x| x.name == name) {
                return Err(self.err(
                    s.name.span(),
                    &format!("settings[{i}].name"),
                    format!("setting name `{name}` is used twice"),
                    "give each setting a unique name",
                ));
            }
            if s.limit == Some(0)
                || s.sample == Some(0)
                || s.batch_size == Some(0)
                || s.max_tokens == Some(0)
            {
                return Err(self.err(
                    s.name.span(),
                    &format!("settings[{i}]"),
                    "limit, sample, batch_size and max_tokens must be at least 1 when given".into(),
                    "remove the key or give a whole number ≥ 1",
                ));
            }
            if !s.chat_template && (s.system_prompt.is_some() || s.fewshot_as_multiturn) {
                return Err(self.err(
                    s.name.span(),
                    &format!("settings[{i}]"),
                    "`system_prompt` and `fewshot_as_multiturn` only act through a chat template"
                        .into(),
                    "add `chat_template = true` to the setting, or remove them",
                ));
            }
            if s.fewshot_as_multiturn && s.num_fewshot.unwrap_or(0) == 0 {
                return Err(self.err(
                    s.name.span(),
                    &format!("settings[{i}]"),
                    "`fewshot_as_multiturn` needs few-shot examples".into(),
                    "give the setting `num_fewshot`, or remove `fewshot_as_multiturn`",
                ));
            }
            if s.limit.is_some() && s.sample.is_some() {
                return Err(self.err(
                    s.name.span(),
                    &format!("settings[{i}]"),
                    "`limit` (the first examples) and `sample` (examples drawn at random) exclude each other".into(),
                    "keep one of them",
                ));
            }
            settings.push(Setting {
                name,
                limit: s.limit,
                sample: s.sample,
                sample_seed: s.sample_seed,
                batch_size: s.batch_size,
                max_tokens: s.max_tokens,
                decoding: s.decoding.clone(),
                // 0 is zero-shot, as when the key is absent (the same fingerprint).
                num_fewshot: s.num_fewshot.filter(|&k| k > 0),
                chat_template: s.chat_template,
                system_prompt: s.system_prompt.clone(),
                fewshot_as_multiturn: s.fewshot_as_multiturn,
            });
        }
        if settings.is_empty() {
            settings.push(Setting {
                name: "default".into(),
                ..Setting::default()
            });
        }
        Ok(settings)
    }

    /// Include and exclude rules name models, adapters, tasks and settings of the sweep.
    fn check_rules(&self, spec: &SweepSpec) -> Result<(), SpecError> {
        for (kind, rules) in [("include", &spec.include), ("exclude", &spec.exclude)] {
            for (i, r) in rules.iter().enumerate() {
                spec.check_rule(r).map_err(|(span, field, problem)| {
                    self.err(
                        span,
                        &format!("{kind}[{i}].{field}"),
                        problem,
                        "name a model, adapter, task or setting of this sweep",
                    )
                })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::expand;

    const TASK: &str = r#"
name = "bias"
version = 1
kind = "loglik-pair"
primary_metric = "bias_paper"
metrics = ["bias_paper"]
[dataset]
source = "hf:NorGLM/NO-CrowS-Pairs"
file = "pairs.csv"
[fields]
more = "a"
less = "b"
"#;

    const CATALOG: &str = r#"
[[models]]
name = "NorGPT-369M"
source = "hf:NorGLM/NorGPT-369M"
arch = "gpt2"
"#;

    struct Fixture {
        dir: tempfile::TempDir,
        tasks: TaskRegistry,
        catalog: Catalog,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tasks")).unwrap();
        std::fs::write(dir.path().join("tasks/bias.toml"), TASK).unwrap();
        std::fs::write(dir.path().join("catalog.toml"), CATALOG).unwrap();
        let tasks = TaskRegistry::load_dir(&dir.path().join("tasks")).unwrap();
        let catalog = Catalog::load(&dir.path().join("catalog.toml")).unwrap();
        Fixture {
            dir,
            tasks,
            catalog,
        }
    }

    fn load(f: &Fixture, text: &str) -> Result<SweepSpec, SpecError> {
        let p = f.dir.path().join("sweep.toml");
        std::fs::write(&p, text).unwrap();
        SweepSpec::load(&p, &f.tasks, &f.catalog)
    }

    const GRID: &str = r#"
name = "grid"
tasks = ["bias"]
seeds = [1, 2]
[datasets]
bias = "path:data/local.csv"
[[models]]
name = "NorGPT-369M"
[[models.adapters]]
name = "a1"
source = "hf:NorGLM/NorGPT-369M-Instruction-peft"
[[models.adapters]]
name = "a2"
source = "path:adapters/a2"
[[models]]
name = "m2"
source = "path:models/m2"
dtype = "bf16"
[[settings]]
name = "s1"
limit = 10
[[settings]]
name = "s2"
"#;

    #[test]
    fn the_grid_is_models_with_adapters_times_tasks_settings_and_seeds() {
        let f = fixture();
        let s = load(&f, GRID).unwrap();
        assert_eq!(s.models[0].source.to_string(), "hf:NorGLM/NorGPT-369M");
        assert_eq!(s.models[1].dtype, Dtype::Bf16);
        assert_eq!(
            s.models[1].source,
            Source::Path {
                path: f.dir.path().join("models/m2")
            }
        );
        assert_eq!(
            s.tasks[0].dataset.source,
            Source::Path {
                path: f.dir.path().join("data/local.csv")
            }
        );
        let cells = expand(&s);
        assert_eq!(cells.len(), (3 + 1) * 2 * 2);
        let keys: Vec<String> = cells.iter().map(|c| c.key()).collect();
        assert_eq!(keys[0], "NorGPT-369M/bias/s1/seed=1");
        assert!(keys.contains(&"NorGPT-369M+a2/bias/s2/seed=2".to_string()));
        let unique: BTreeSet<&String> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "cell keys are unique");
    }

    #[test]
    fn include_and_exclude_rules_filter_cells() {
        let f = fixture();
        let text = format!(
            "{GRID}\n[[exclude]]\nadapter = \"a1\"\n\n[[exclude]]\nseed = 2\nsetting = \"s2\"\n"
        );
        let s = load(&f, &text).unwrap();
        // 16 cells - 4 with a1 - 3 remaining (s2, seed 2) cells.
        assert_eq!(expand(&s).len(), 9);
        let text = format!(
            "{GRID}\n[[include]]\nmodel = \"m2\"\n\n[[include]]\nadapter = \"a2\"\nseed = 1\n"
        );
        let s = load(&f, &text).unwrap();
        let keys: Vec<String> = expand(&s).iter().map(|c| c.key()).collect();
        assert_eq!(keys.len(), 4 + 2, "{keys:?}");
        assert!(
            keys.iter()
                .all(|k| k.starts_with("m2/") || k.starts_with("NorGPT-369M+a2/"))
        );
    }

    #[test]
    fn rules_must_name_things_of_the_sweep() {
        let f = fixture();
        let e = load(&f, &format!("{GRID}\n[[exclude]]\nmodel = \"m3\"\n")).unwrap_err();
        assert_eq!(e.key, "exclude[0].model");
        assert!(
            e.problem.contains("`m3` is not a model of this sweep"),
            "{e}"
        );
    }

    #[test]
    fn names_must_be_unique_and_models_need_a_source() {
        let f = fixture();
        let e = load(&f, &GRID.replace("name = \"m2\"", "name = \"NorGPT-369M\"")).unwrap_err();
        assert!(e.problem.contains("used twice"), "{e}");
        assert_eq!(e.key, "models[1].name");
        let e = load(
            &f,
            "name = \"x\"\ntasks = [\"bias\"]\n[[models]]\nname = \"unknown\"\n",
        )
        .unwrap_err();
        assert!(
            e.problem
                .contains("has no `source` and is not in the catalog"),
            "{e}"
        );
        assert_eq!(e.location, Some((4, 8)));
    }

    #[test]
    fn dataset_overrides_must_name_a_task_of_the_sweep() {
        let f = fixture();
        let e = load(
            &f,
            &GRID.replace("bias = \"path:data/local.csv\"", "other = \"path:x.csv\""),
        )
        .unwrap_err();
        assert_eq!(e.key, "datasets.other");
        assert!(e.problem.contains("not among the sweep's tasks"), "{e}");
    }

    #[test]
    fn empty_lists_and_zero_sizes_are_rejected() {
        let f = fixture();
        for (text, key) in [
            (GRID.replace("seeds = [1, 2]", "seeds = []"), "seeds"),
            (GRID.replace("tasks = [\"bias\"]", "tasks = []"), "tasks"),
            (
                GRID.replace("seeds = [1, 2]", "shard_size = 0"),
                "shard_size",
            ),
            (GRID.replace("limit = 10", "limit = 0"), "settings[0]"),
        ] {
            let e = load(&f, &text).unwrap_err();
            assert_eq!(e.key, key, "{e}");
        }
    }

    #[test]
    fn chat_keys_need_the_template_and_multiturn_needs_examples() {
        let f = fixture();
        let ok = load(
            &f,
            &GRID.replace(
                "limit = 10",
                "limit = 10\nchat_template = true\nsystem_prompt = \"Svar kort.\"",
            ),
        )
        .unwrap();
        assert!(ok.settings[0].chat_template);
        assert_eq!(ok.settings[0].system_prompt.as_deref(), Some("Svar kort."));
        for (extra, says) in [
            ("system_prompt = \"x\"", "only act through a chat template"),
            (
                "chat_template = true\nfewshot_as_multiturn = true",
                "needs few-shot examples",
            ),
        ] {
            let e = load(
                &f,
                &GRID.replace("limit = 10", &format!("limit = 10\n{extra}")),
            )
            .unwrap_err();
            assert_eq!(e.key, "settings[0]", "{e}");
            assert!(e.to_string().contains(says), "{e}");
        }
    }
}
