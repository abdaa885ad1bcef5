//! A task's configuration as lm-eval's `TaskConfig` holds it: the keys of a merged task file,
//! typed, with lm-eval's defaults and the few-shot settings that inherit from the task's.

use std::path::PathBuf;

use serde_json::Value as Json;

use crate::Error;
use crate::hooks::{DocsHook, TextHook};
use crate::yaml::{FunctionRef, Map, Node};

/// What a task asks of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputType {
    /// One log-likelihood per choice (`acc`, `acc_norm`).
    MultipleChoice,
    /// The log-likelihood of a continuation.
    Loglikelihood,
    /// The rolling log-likelihood of a whole text (perplexity).
    LoglikelihoodRolling,
    /// A generation, stopped at `until`.
    GenerateUntil,
}

impl OutputType {
    fn parse(s: &str) -> Option<OutputType> {
        Some(match s {
            "multiple_choice" => OutputType::MultipleChoice,
            "loglikelihood" => OutputType::Loglikelihood,
            "loglikelihood_rolling" => OutputType::LoglikelihoodRolling,
            "generate_until" => OutputType::GenerateUntil,
            _ => return None,
        })
    }

    /// lm-eval's name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputType::MultipleChoice => "multiple_choice",
            OutputType::Loglikelihood => "loglikelihood",
            OutputType::LoglikelihoodRolling => "loglikelihood_rolling",
            OutputType::GenerateUntil => "generate_until",
        }
    }
}

/// A `doc_to_text`, `doc_to_target` or `doc_to_choice` value.
#[derive(Debug, Clone, PartialEq)]
pub enum DocField {
    /// A field name, or else a Jinja template.
    Text(String),
    /// A constant integer (an index into the choices).
    Int(i64),
    /// A constant list (of choices, or of targets).
    List(Vec<Json>),
    /// A ported prompt function.
    Function(TextHook),
}

/// The few-shot sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampler {
    /// lm-eval's `default`: `Random(seed).sample` over the few-shot documents.
    Default,
    /// `first_n`: the first documents in order.
    FirstN,
}

/// `fewshot_config`, its unset keys taken from the task's. (`fewshot_indices` is accepted and,
/// as in lm-eval 0.4.13, which never hands it to the sampler, has no effect.)
#[derive(Debug, Clone)]
pub struct FewshotConfig {
    /// The sampler.
    pub sampler: Sampler,
    /// The split the shots come from (`fewshot_split`).
    pub split: Option<String>,
    /// The hook applied to that split.
    pub process_docs: Option<DocsHook>,
    /// Shots written in the file.
    pub samples: Option<Vec<Json>>,
    /// Prompt of a shot.
    pub doc_to_text: Option<DocField>,
    /// Choices of a shot.
    pub doc_to_choice: Option<DocField>,
    /// Answer of a shot.
    pub doc_to_target: Option<DocField>,
    /// Prefix of a shot's answer.
    pub gen_prefix: Option<String>,
    /// Between shots.
    pub fewshot_delimiter: String,
    /// Between a shot's prompt and its answer.
    pub target_delimiter: String,
}

/// A task file's configuration.
#[derive(Debug, Clone)]
pub struct TaskConfig {
    /// The task's name.
    pub task: String,
    /// The file it was read from.
    pub file: PathBuf,
    /// The Hub dataset, or `json`/`csv`/`parquet` for local files.
    pub dataset_path: Option<String>,
    /// The dataset's configuration name.
    pub dataset_name: Option<String>,
    /// Arguments to `load_dataset` (`data_files`, …).
    pub dataset_kwargs: Option<Json>,
    /// Split names.
    pub training_split: Option<String>,
    /// Split names.
    pub validation_split: Option<String>,
    /// Split names.
    pub test_split: Option<String>,
    /// The hook applied to every split.
    pub process_docs: Option<DocsHook>,
    /// The prompt.
    pub doc_to_text: Option<DocField>,
    /// The answer.
    pub doc_to_target: Option<DocField>,
    /// The choices.
    pub doc_to_choice: Option<DocField>,
    /// Text before everything (a field name or a template).
    pub description: String,
    /// Between a prompt and its answer.
    pub target_delimiter: String,
    /// Between shots.
    pub fewshot_delimiter: String,
    /// Few-shot settings.
    pub fewshot: FewshotConfig,
    /// Shots, when the file sets them.
    pub num_fewshot: Option<i64>,
    /// The metrics, as written.
    pub metric_list: Option<Json>,
    /// The request kind.
    pub output_type: OutputType,
    /// Generation arguments with lm-eval's defaults filled in.
    pub generation_kwargs: Option<Json>,
    /// Samples per document.
    pub repeats: i64,
    /// Output filters, as written.
    pub filter_list: Option<Json>,
    /// Prefix of the answer.
    pub gen_prefix: Option<String>,
    /// `metadata`, as written.
    pub metadata: Json,
    /// `process_results`, kept for the metrics.
    pub process_results: Option<FunctionRef>,
    /// Metrics whose `aggregation` is a `!function`, by metric name.
    pub aggregation_functions: std::collections::BTreeMap<String, FunctionRef>,
    /// `task_alias`.
    pub task_alias: Option<String>,
}

/// Keys lm-eval reads as structure, not task settings.
const STRUCTURAL: [&str; 3] = ["tag", "group", "task_list"];

impl TaskConfig {
    /// The few-shot examples per document when `asked` are asked for, as lm-eval's
    /// `simple_evaluate` decides: the file's 0 stands, otherwise the ones asked for, the
    /// file's, or none.
    pub fn shots(&self, asked: Option<usize>) -> usize {
        match (asked, self.num_fewshot) {
            (_, Some(0)) => 0,
            (Some(k), _) => k,
            (None, Some(n)) => usize::try_from(n).unwrap_or(0),
            (None, None) => 0,
        }
    }

    /// Type the merged keys of `file` as lm-eval's `TaskConfig(**cfg)` does; an unknown key,
    /// a value of the wrong type or a setting nlebench cannot honour is an error naming it.
    pub fn from_map(map: &Map, file: PathBuf) -> Result<TaskConfig, Error> {
        let err = |key: &str, message: String| Error::Key {
            file: file.clone(),
            key: key.to_string(),
            message,
        };
        let get = |key: &str| map.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let string = |key: &str| -> Result<Option<String>, Error> {
            match get(key) {
                None | Some(Node::Null) => Ok(None),
                Some(Node::Str(s)) => Ok(Some(s.clone())),
                Some(Node::Int(i)) => Ok(Some(i.to_string())),
                Some(other) => Err(err(
                    key,
                    format!("expected text, found {}", other.to_json()),
                )),
            }
        };
        let docs_hook = |key: &str, node: Option<&Node>| -> Result<Option<DocsHook>, Error> {
            match node {
                None | Some(Node::Null) => Ok(None),
                Some(Node::Function(f)) => DocsHook::resolve(f)
                    .map(Some)
                    .map_err(|e| err(key, e.to_string())),
                Some(other) => Err(err(
                    key,
                    format!(
                        "expected `!function module.name`, found {}",
                        other.to_json()
                    ),
                )),
            }
        };
        let field = |key: &str, node: Option<&Node>| -> Result<Option<DocField>, Error> {
            Ok(match node {
                None | Some(Node::Null) => None,
                Some(Node::Str(s)) => Some(DocField::Text(s.clone())),
                Some(Node::Int(i)) => Some(DocField::Int(*i)),
                Some(Node::Bool(b)) => Some(DocField::Int(i64::from(*b))),
                Some(Node::List(l)) => Some(DocField::List(l.iter().map(Node::to_json).collect())),
                Some(Node::Map(m)) if key.ends_with("doc_to_choice") => {
                    Some(DocField::List(m.iter().map(|(_, v)| v.to_json()).collect()))
                }
                Some(Node::Function(f)) => Some(DocField::Function(
                    TextHook::resolve(f).map_err(|e| err(key, e.to_string()))?,
                )),
                Some(other) => {
                    return Err(err(key, format!("unsupported value {}", other.to_json())));
                }
            })
        };

        for (key, value) in map {
            match key.as_str() {
                k if STRUCTURAL.contains(&k) => {}
                "task"
                | "task_alias"
                | "dataset_path"
                | "dataset_name"
                | "dataset_kwargs"
                | "training_split"
                | "validation_split"
                | "test_split"
                | "fewshot_split"
                | "process_docs"
                | "doc_to_text"
                | "doc_to_target"
                | "doc_to_choice"
                | "process_results"
                | "description"
                | "target_delimiter"
                | "fewshot_delimiter"
                | "fewshot_config"
                | "num_fewshot"
                | "metric_list"
                | "output_type"
                | "generation_kwargs"
                | "repeats"
                | "filter_list"
                | "should_decontaminate"
                | "doc_to_decontamination_query"
                | "gen_prefix"
                | "metadata"
                | "unsafe_code" => {}
                "doc_to_image" | "doc_to_audio" if *value == Node::Null => {}
                "doc_to_image" | "doc_to_audio" => {
                    return Err(err(
                        key,
                        "multimodal tasks are not supported: nlebench evaluates text models".into(),
                    ));
                }
                "use_prompt" | "custom_dataset" | "class" => {
                    return Err(err(key, "this needs lm-eval's Python (promptsource, a custom dataset or task class); nlebench runs no Python".into()));
                }
                _ => return Err(err(key, "not a key of lm-eval's TaskConfig".into())),
            }
        }

        let task =
            string("task")?.ok_or_else(|| err("task", "a task file names its task".into()))?;
        let output_type = match string("output_type")? {
            None => OutputType::GenerateUntil,
            Some(s) => OutputType::parse(&s).ok_or_else(|| {
                err("output_type", format!("`{s}` is not one of multiple_choice, loglikelihood, loglikelihood_rolling, generate_until"))
            })?,
        };
        let description = string("description")?.unwrap_or_default();
        let target_delimiter = string("target_delimiter")?.unwrap_or_else(|| " ".into());
        let fewshot_delimiter = string("fewshot_delimiter")?.unwrap_or_else(|| "\n\n".into());
        let process_docs = docs_hook("process_docs", get("process_docs"))?;
        let doc_to_text = field("doc_to_text", get("doc_to_text"))?;
        let doc_to_target = field("doc_to_target", get("doc_to_target"))?;
        let doc_to_choice = field("doc_to_choice", get("doc_to_choice"))?;
        let gen_prefix = string("gen_prefix")?;
        let num_fewshot = match get("num_fewshot") {
            None | Some(Node::Null) => None,
            Some(Node::Int(i)) if *i >= 0 => Some(*i),
            Some(other) => {
                return Err(err(
                    "num_fewshot",
                    format!("expected a count, found {}", other.to_json()),
                ));
            }
        };
        let repeats = match get("repeats") {
            None | Some(Node::Null) => 1,
            Some(Node::Int(i)) if *i >= 1 => *i,
            Some(other) => {
                return Err(err(
                    "repeats",
                    format!("expected a count, found {}", other.to_json()),
                ));
            }
        };
        let json = |key: &str| get(key).filter(|n| **n != Node::Null).map(Node::to_json);

        // `generation_kwargs` as `TaskConfig.__post_init__` completes it.
        let generation_kwargs = match json("generation_kwargs") {
            Some(Json::Object(mut g)) => {
                if let Some(t) = g.get("temperature").and_then(Json::as_f64) {
                    g.insert("temperature".into(), Json::from(t));
                }
                g.entry("until")
                    .or_insert_with(|| Json::from(vec![fewshot_delimiter.clone()]));
                Some(Json::Object(g))
            }
            Some(other) => {
                return Err(err(
                    "generation_kwargs",
                    format!("expected a mapping, found {other}"),
                ));
            }
            None if output_type == OutputType::GenerateUntil => Some(serde_json::json!({
                "temperature": 0.0, "do_sample": false, "max_gen_toks": 256,
                "until": [fewshot_delimiter.clone()],
            })),
            None => None,
        };

        let fs = match get("fewshot_config") {
            None | Some(Node::Null) => Vec::new(),
            Some(Node::Map(m)) => m.clone(),
            Some(other) => {
                return Err(err(
                    "fewshot_config",
                    format!("expected a mapping, found {}", other.to_json()),
                ));
            }
        };
        let fs_get = |key: &str| fs.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let fs_string = |key: &str, inherited: Option<String>| -> Result<Option<String>, Error> {
            match fs_get(key) {
                None => Ok(inherited),
                Some(Node::Null) => Ok(None),
                Some(Node::Str(s)) => Ok(Some(s.clone())),
                Some(other) => Err(err(
                    &format!("fewshot_config.{key}"),
                    format!("expected text, found {}", other.to_json()),
                )),
            }
        };
        for (key, _) in &fs {
            if !matches!(
                key.as_str(),
                "sampler"
                    | "split"
                    | "process_docs"
                    | "fewshot_indices"
                    | "samples"
                    | "doc_to_text"
                    | "doc_to_choice"
                    | "doc_to_target"
                    | "gen_prefix"
                    | "fewshot_delimiter"
                    | "target_delimiter"
            ) {
                return Err(err(
                    &format!("fewshot_config.{key}"),
                    "not a key of lm-eval's FewshotConfig".into(),
                ));
            }
        }
        let sampler = match fs_get("sampler") {
            None | Some(Node::Null) => Sampler::Default,
            Some(Node::Str(s)) if s == "default" => Sampler::Default,
            Some(Node::Str(s)) if s == "first_n" => Sampler::FirstN,
            Some(other) => {
                return Err(err(
                    "fewshot_config.sampler",
                    format!(
                        "{} is not one of lm-eval's samplers: default, first_n",
                        other.to_json()
                    ),
                ));
            }
        };
        let fewshot = FewshotConfig {
            sampler,
            split: fs_string("split", string("fewshot_split")?)?,
            process_docs: match fs_get("process_docs") {
                None => process_docs,
                node => docs_hook("fewshot_config.process_docs", node)?,
            },
            samples: match fs_get("samples") {
                None | Some(Node::Null) => None,
                Some(Node::List(l)) => Some(l.iter().map(Node::to_json).collect()),
                Some(other) => {
                    return Err(err(
                        "fewshot_config.samples",
                        format!("expected a list of documents, found {}", other.to_json()),
                    ));
                }
            },
            doc_to_text: match fs_get("doc_to_text") {
                None => doc_to_text.clone(),
                node => field("fewshot_config.doc_to_text", node)?,
            },
            doc_to_choice: match fs_get("doc_to_choice") {
                None => doc_to_choice.clone(),
                node => field("fewshot_config.doc_to_choice", node)?,
            },
            doc_to_target: match fs_get("doc_to_target") {
                None => doc_to_target.clone(),
                node => field("fewshot_config.doc_to_target", node)?,
            },
            gen_prefix: fs_string("gen_prefix", gen_prefix.clone())?,
            fewshot_delimiter: fs_string("fewshot_delimiter", Some(fewshot_delimiter.clone()))?
                .unwrap_or_default(),
            target_delimiter: fs_string("target_delimiter", Some(target_delimiter.clone()))?
                .unwrap_or_default(),
        };

        Ok(TaskConfig {
            dataset_path: string("dataset_path")?,
            dataset_name: string("dataset_name")?,
            dataset_kwargs: json("dataset_kwargs"),
            training_split: string("training_split")?,
            validation_split: string("validation_split")?,
            test_split: string("test_split")?,
            process_docs,
            doc_to_text,
            doc_to_target,
            doc_to_choice,
            description,
            target_delimiter,
            fewshot_delimiter,
            fewshot,
            num_fewshot,
            metric_list: json("metric_list"),
            output_type,
            generation_kwargs,
            repeats,
            filter_list: json("filter_list"),
            gen_prefix,
            metadata: json("metadata").unwrap_or(Json::Null),
            process_results: match get("process_results") {
                Some(Node::Function(f)) => Some(f.clone()),
                _ => None,
            },
            aggregation_functions: match get("metric_list") {
                Some(Node::List(l)) => l
                    .iter()
                    .filter_map(|m| match (m.get("metric"), m.get("aggregation")) {
                        (Some(Node::Str(name)), Some(Node::Function(f))) => {
                            Some((name.clone(), f.clone()))
                        }
                        _ => None,
                    })
                    .collect(),
                _ => Default::default(),
            },
            task_alias: string("task_alias")?,
            task,
            file,
        })
    }
}
