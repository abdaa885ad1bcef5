//! A task with its documents, and the requests lm-eval's `ConfigurableTask` builds from them
//! (`build_all_requests` → `fewshot_context` → `construct_requests`), reproduced step by step:
//! field names or Jinja for prompts, targets and choices, few-shot samples drawn as lm-eval
//! draws them, the delimiters placed where lm-eval places them.

use std::path::Path;

use serde::Serialize;
use serde_json::Value as Json;

use crate::config::{DocField, OutputType, Sampler, TaskConfig};
use crate::prompt::{Chat, ends_with_whitespace, index, qa_turn, render, system};
use crate::pyrandom::PyRandom;
use crate::{Error, jinja, literal, python};

/// What a task file asks for its dataset.
#[derive(Debug, Clone, Copy)]
pub struct DatasetSpec<'a> {
    /// `dataset_path`: a Hub dataset, or `json`/`csv`/`parquet`/`text` for local files.
    pub path: Option<&'a str>,
    /// `dataset_name`: the dataset's configuration.
    pub name: Option<&'a str>,
    /// `dataset_kwargs` (`data_files`, …).
    pub kwargs: Option<&'a Json>,
    /// The task file, for errors.
    pub file: &'a Path,
}

/// Reads a split of a task's dataset (the Hub's cache, local files): the caller's side.
pub trait Datasets {
    /// The documents of `split`, in order, each a JSON object with every column.
    fn split(&self, spec: &DatasetSpec<'_>, split: &str) -> Result<Vec<Json>, String>;
}

/// One request, as lm-eval's `Instance` holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Request {
    /// The document's index among the evaluated documents.
    pub doc_id: usize,
    /// The request's index within the document (the choice, for multiple choice).
    pub idx: usize,
    /// `loglikelihood`, `loglikelihood_rolling` or `generate_until`.
    pub request_type: &'static str,
    /// `[context, continuation]`, `[text]` or `[context, generation arguments]`.
    pub arguments: Vec<Json>,
}

/// A task ready to build requests.
pub struct Task {
    /// Its configuration.
    pub config: TaskConfig,
    /// The evaluated documents (the test split, else the validation split), processed.
    pub docs: Vec<Json>,
    features: Vec<String>,
    fewshot_docs: Option<Vec<Json>>,
    /// `doc_to_text` gives a choice index: one context per choice (Winogrande's form).
    pub(crate) multiple_input: bool,
    /// `doc_to_target` gives a list: several right answers.
    pub(crate) multiple_target: bool,
}

impl Task {
    /// Load the evaluated documents (and, when shots are wanted, the few-shot ones).
    pub fn load(config: TaskConfig, data: &dyn Datasets, shots: usize) -> Result<Task, Error> {
        let spec = DatasetSpec {
            path: config.dataset_path.as_deref(),
            name: config.dataset_name.as_deref(),
            kwargs: config.dataset_kwargs.as_ref(),
            file: &config.file,
        };
        let split =
            |name: &str, hook: Option<crate::hooks::DocsHook>| -> Result<Vec<Json>, Error> {
                let docs = data.split(&spec, name).map_err(|message| Error::Data {
                    task: config.task.clone(),
                    split: name.to_string(),
                    message,
                })?;
                match hook {
                    Some(h) => h.apply(docs).map_err(|message| Error::Data {
                        task: config.task.clone(),
                        split: name.to_string(),
                        message: format!("process_docs: {message}"),
                    }),
                    None => Ok(docs),
                }
            };
        let eval_split = config
            .test_split
            .as_deref()
            .or(config.validation_split.as_deref())
            .ok_or_else(|| Error::Key {
                file: config.file.clone(),
                key: "test_split".into(),
                message: "the task has neither a test_split nor a validation_split to evaluate"
                    .into(),
            })?;
        let docs = split(eval_split, config.process_docs)?;
        let features: Vec<String> = match docs.first() {
            Some(Json::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let fewshot_docs = if shots == 0 {
            None
        } else if let Some(s) = &config.fewshot.split {
            Some(split(s, config.fewshot.process_docs)?)
        } else if let Some(samples) = &config.fewshot.samples {
            Some(samples.clone())
        } else if let Some(s) = &config.training_split {
            Some(split(s, config.process_docs)?)
        } else if let Some(s) = &config.validation_split {
            Some(split(s, config.process_docs)?)
        } else {
            Some(docs.clone())
        };
        let mut task = Task {
            config,
            docs,
            features,
            fewshot_docs,
            multiple_input: false,
            multiple_target: false,
        };
        if let Some(first) = task.docs.first().cloned()
            && task.config.doc_to_choice.is_some()
        {
            let text = task.doc_to_text(&first, None).map_err(|m| task.err(0, m))?;
            task.multiple_input = text.is_i64() || text.is_u64();
        }
        if let Some(first) = task.docs.first().cloned() {
            task.multiple_target = task
                .doc_to_target(&first, None)
                .map_err(|m| task.err(0, m))?
                .is_array();
        }
        Ok(task)
    }

    fn err(&self, doc_id: usize, message: String) -> Error {
        Error::Doc {
            task: self.config.task.clone(),
            doc_id,
            message,
        }
    }

    /// Every request for the first `limit` documents with `shots` few-shot examples drawn with
    /// `seed` (lm-eval's `fewshot_random_seed`, 1234 by default), in (document, index) order.
    pub fn requests(
        &self,
        shots: usize,
        seed: i64,
        limit: Option<usize>,
    ) -> Result<Vec<Request>, Error> {
        self.requests_with(shots, seed, limit, None)
    }

    /// [`Task::requests`], the prompts through `chat` (lm-eval's `--apply_chat_template`).
    pub fn requests_with(
        &self,
        shots: usize,
        seed: i64,
        limit: Option<usize>,
        chat: Option<&Chat>,
    ) -> Result<Vec<Request>, Error> {
        let mut rng = PyRandom::new(seed);
        let mut out = Vec::new();
        for (doc_id, doc) in self
            .docs
            .iter()
            .enumerate()
            .take(limit.unwrap_or(usize::MAX))
        {
            let reqs = self
                .doc_requests(doc_id, doc, shots, &mut rng, chat)
                .map_err(|m| self.err(doc_id, m))?;
            out.extend(reqs);
        }
        if out.is_empty() {
            return Err(self.err(0, "the task has no documents to evaluate".into()));
        }
        Ok(out)
    }

    fn doc_requests(
        &self,
        doc_id: usize,
        doc: &Json,
        shots: usize,
        rng: &mut PyRandom,
        chat: Option<&Chat>,
    ) -> Result<Vec<Request>, String> {
        let contexts = self.context(doc, shots, rng, chat)?;
        let cfg = &self.config;
        let request = |idx: usize, request_type: &'static str, arguments: Vec<Json>| Request {
            doc_id,
            idx,
            request_type,
            arguments,
        };
        Ok(match cfg.output_type {
            OutputType::Loglikelihood => {
                vec![request(
                    0,
                    "loglikelihood",
                    vec![
                        Json::String(contexts[0].clone()),
                        self.doc_to_target(doc, None)?,
                    ],
                )]
            }
            OutputType::LoglikelihoodRolling => {
                vec![request(
                    0,
                    "loglikelihood_rolling",
                    vec![self.doc_to_target(doc, None)?],
                )]
            }
            OutputType::GenerateUntil => vec![request(
                0,
                "generate_until",
                vec![
                    Json::String(contexts[0].clone()),
                    cfg.generation_kwargs.clone().unwrap_or(Json::Null),
                ],
            )],
            OutputType::MultipleChoice => {
                // Through a chat template, the choices follow the prompt directly unless a
                // generation prefix that ends in no whitespace precedes them.
                let delim = match (&cfg.gen_prefix, chat) {
                    (_, None) => cfg.target_delimiter.as_str(),
                    (Some(p), Some(_)) if !p.is_empty() && !ends_with_whitespace(p) => {
                        cfg.target_delimiter.as_str()
                    }
                    (_, Some(_)) => "",
                };
                let choices = self.doc_to_choice(doc, None)?;
                let mut args: Vec<(String, String)> = if self.multiple_input {
                    let cont = python::str_of_json(&self.doc_to_target(doc, None)?);
                    contexts
                        .iter()
                        .map(|c| (c.clone(), format!("{delim}{cont}")))
                        .collect()
                } else {
                    choices
                        .iter()
                        .map(|c| {
                            (
                                contexts[0].clone(),
                                format!("{delim}{}", python::str_of_json(c)),
                            )
                        })
                        .collect()
                };
                let mutual_info = cfg
                    .metric_list
                    .as_ref()
                    .and_then(Json::as_array)
                    .is_some_and(|l| {
                        l.iter().any(|m| {
                            m.get("metric").and_then(Json::as_str) == Some("acc_mutual_info")
                        })
                    });
                if mutual_info {
                    args.extend(
                        choices
                            .iter()
                            .map(|c| (String::new(), format!("{delim}{}", python::str_of_json(c)))),
                    );
                }
                args.into_iter()
                    .enumerate()
                    .map(|(i, (c, k))| {
                        request(i, "loglikelihood", vec![Json::String(c), Json::String(k)])
                    })
                    .collect()
            }
        })
    }

    /// `fewshot_context`: the system instruction and description, the shots, then the
    /// document's prompt (one context per choice for multiple-input tasks), as plain text or
    /// through `chat`.
    fn context(
        &self,
        doc: &Json,
        shots: usize,
        rng: &mut PyRandom,
        chat: Option<&Chat>,
    ) -> Result<Vec<String>, String> {
        let cfg = &self.config;
        let fs = &cfg.fewshot;
        let description = self
            .resolve(doc, Some(&cfg.description))?
            .unwrap_or_default();
        let mut turns = system(
            chat.and_then(|c| c.system),
            &description,
            &cfg.fewshot_delimiter,
        );
        if shots > 0 {
            let eval_doc = (fs.split == cfg.test_split).then_some(doc);
            for shot in self.sample(shots, eval_doc, rng)? {
                let mut q = self.doc_to_text(&shot, fs.doc_to_text.as_ref())?;
                let mut c = match &fs.doc_to_choice {
                    Some(f) if !is_empty_field(f) => Some(self.doc_to_choice(&shot, Some(f))?),
                    _ => None,
                };
                let a = self.doc_to_target(&shot, fs.doc_to_target.as_ref())?;
                let prefix = self.resolve(&shot, fs.gen_prefix.as_deref())?;
                if self.multiple_input {
                    let i = q
                        .as_i64()
                        .ok_or("a shot's doc_to_text is not a choice index")?;
                    q = index(c.as_deref().unwrap_or_default(), i)?.clone();
                    c = None;
                }
                turns.extend(qa_turn(
                    &q,
                    c.as_deref(),
                    Some(&a),
                    prefix.as_deref(),
                    &fs.target_delimiter,
                    &fs.fewshot_delimiter,
                )?);
            }
        }
        let prefix = self.resolve(doc, cfg.gen_prefix.as_deref())?;
        let prefix = prefix.as_deref();
        let q = self.doc_to_text(doc, None)?;
        let c = match &cfg.doc_to_choice {
            Some(_) => Some(self.doc_to_choice(doc, None)?),
            None => None,
        };
        self.doc_to_target(doc, None)?;
        if self.multiple_input {
            let mut contexts = Vec::new();
            for choice in c.unwrap_or_default() {
                let mut t = turns.clone();
                t.extend(qa_turn(&choice, None, None, prefix, "", "")?);
                contexts.push(render(t, chat, prefix)?);
            }
            return Ok(contexts);
        }
        turns.extend(qa_turn(
            &q,
            c.as_deref(),
            None,
            prefix,
            &cfg.target_delimiter,
            "",
        )?);
        Ok(vec![render(turns, chat, prefix)?])
    }

    /// The sampler's `sample(n, eval_doc)`.
    fn sample(
        &self,
        n: usize,
        eval_doc: Option<&Json>,
        rng: &mut PyRandom,
    ) -> Result<Vec<Json>, String> {
        let docs = self.fewshot_docs.as_deref().unwrap_or_default();
        let short = |have: usize| {
            format!("{n} shots were asked for, but the few-shot split has {have} documents")
        };
        match self.config.fewshot.sampler {
            Sampler::FirstN => {
                let pool: Vec<&Json> = docs.iter().filter(|d| eval_doc != Some(*d)).collect();
                if n > pool.len() {
                    return Err(short(pool.len()));
                }
                Ok(pool[..n].iter().map(|d| (*d).clone()).collect())
            }
            Sampler::Default => {
                let Some(eval_doc) = eval_doc else {
                    let picked = rng.sample(docs.len(), n).ok_or_else(|| short(docs.len()))?;
                    return Ok(picked.into_iter().map(|i| docs[i].clone()).collect());
                };
                let picked = rng
                    .sample(docs.len(), n + 1)
                    .ok_or_else(|| short(docs.len()))?;
                let res: Vec<Json> = picked
                    .into_iter()
                    .map(|i| docs[i].clone())
                    .filter(|d| d != eval_doc)
                    .take(n)
                    .collect();
                if res.len() == n {
                    return Ok(res);
                }
                let pool: Vec<&Json> = docs.iter().filter(|d| *d != eval_doc).collect();
                let picked = rng.sample(pool.len(), n).ok_or_else(|| short(pool.len()))?;
                Ok(picked.into_iter().map(|i| pool[i].clone()).collect())
            }
        }
    }

    /// `resolve_field`: a field's value, else the text rendered as a template; nothing for an
    /// empty or absent setting.
    fn resolve(&self, doc: &Json, field: Option<&str>) -> Result<Option<String>, String> {
        let Some(f) = field.filter(|f| !f.is_empty()) else {
            return Ok(None);
        };
        if let Some(v) = doc.get(f) {
            return Ok(Some(python::str_of_json(v)));
        }
        jinja::render(f, doc).map(Some)
    }

    fn is_feature(&self, name: &str) -> bool {
        self.features.iter().any(|f| f == name)
    }

    /// `doc_to_text`: a field, a rendered template (digits read as a choice index when the
    /// task has choices), a constant or a ported function.
    pub(crate) fn doc_to_text(&self, doc: &Json, field: Option<&DocField>) -> Result<Json, String> {
        let field = field
            .or(self.config.doc_to_text.as_ref())
            .ok_or("the task has no doc_to_text")?;
        match field {
            DocField::Int(i) => Ok(Json::from(*i)),
            DocField::Text(t) if self.is_feature(t) => {
                Ok(doc.get(t).cloned().unwrap_or(Json::Null))
            }
            DocField::Text(t) => {
                let s = jinja::render(t, doc).map_err(|e| format!("doc_to_text: {e}"))?;
                if is_digits(&s) && self.config.doc_to_choice.is_some() {
                    return literal::parse(&s).map_err(|e| format!("doc_to_text: {e}"));
                }
                Ok(Json::String(s))
            }
            DocField::Function(h) => h
                .apply(doc)
                .map(Json::String)
                .map_err(|e| format!("doc_to_text: {e}")),
            DocField::List(_) => Err("doc_to_text cannot be a list".into()),
        }
    }

    /// A document's target as lm-eval writes it in its samples (`doc_to_target`).
    pub fn target(&self, doc: &Json) -> Result<Json, Error> {
        self.doc_to_target(doc, None).map_err(|message| Error::Key {
            file: self.config.file.clone(),
            key: "doc_to_target".into(),
            message,
        })
    }

    /// `doc_to_target`: as `doc_to_text`, and a rendered `[...]` read as a list.
    pub(crate) fn doc_to_target(
        &self,
        doc: &Json,
        field: Option<&DocField>,
    ) -> Result<Json, String> {
        let field = field
            .or(self.config.doc_to_target.as_ref())
            .ok_or("the task has no doc_to_target")?;
        match field {
            DocField::Int(i) => Ok(Json::from(*i)),
            DocField::List(l) => Ok(Json::Array(l.clone())),
            DocField::Text(t) if self.is_feature(t) => {
                Ok(doc.get(t).cloned().unwrap_or(Json::Null))
            }
            DocField::Text(t) => {
                let s = jinja::render(t, doc).map_err(|e| format!("doc_to_target: {e}"))?;
                if is_digits(&s) && self.config.doc_to_choice.is_some() {
                    return literal::parse(&s).map_err(|e| format!("doc_to_target: {e}"));
                }
                if s.len() >= 2 && s.starts_with('[') && s.ends_with(']') {
                    return Ok(literal::parse(&s).unwrap_or(Json::String(s)));
                }
                Ok(Json::String(s))
            }
            DocField::Function(h) => h
                .apply(doc)
                .map(Json::String)
                .map_err(|e| format!("doc_to_target: {e}")),
        }
    }

    /// `doc_to_choice`: a field holding a list, a template rendering a Python list, a list.
    pub(crate) fn doc_to_choice(
        &self,
        doc: &Json,
        field: Option<&DocField>,
    ) -> Result<Vec<Json>, String> {
        let field = field
            .or(self.config.doc_to_choice.as_ref())
            .ok_or("the task has no doc_to_choice")?;
        let v = match field {
            DocField::List(l) => return Ok(l.clone()),
            DocField::Text(t) if self.is_feature(t) => doc.get(t).cloned().unwrap_or(Json::Null),
            DocField::Text(t) => {
                let s = jinja::render(t, doc).map_err(|e| format!("doc_to_choice: {e}"))?;
                literal::parse(&s).map_err(|e| {
                    format!("doc_to_choice rendered {s:?}, which is not a Python literal: {e}")
                })?
            }
            DocField::Function(h) => {
                return Err(format!("doc_to_choice: {h:?} returns text, not choices"));
            }
            DocField::Int(i) => return Err(format!("doc_to_choice cannot be the number {i}")),
        };
        match v {
            Json::Array(l) => Ok(l),
            Json::Object(m) => Ok(m.into_iter().map(|(_, v)| v).collect()),
            other => Err(format!("doc_to_choice gave {other}, not a list")),
        }
    }
}

fn is_empty_field(f: &DocField) -> bool {
    matches!(f, DocField::List(l) if l.is_empty()) || matches!(f, DocField::Text(t) if t.is_empty())
}

/// Python's `str.isdigit` on the text as a whole (not empty, every character a digit).
fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}
