//! `nlebench eval`'s sweep: a one-line evaluation's flags written as a sweep file, named by a
//! hash of its contents so that the same flags give the same sweep (and reuse its finished
//! cells).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The flags of `nlebench eval`.
#[derive(Debug, Clone, Default)]
pub struct EvalRequest {
    /// A model source (`hf:…`, `path:…`, `random:…`) or a catalog name.
    pub model: String,
    /// A LoRA adapter source.
    pub adapter: Option<String>,
    /// Task names, as given.
    pub tasks: Vec<String>,
    /// Only the first N examples of each task.
    pub limit: Option<u64>,
    /// Examples per forward pass.
    pub batch_size: Option<u64>,
    /// Few-shot examples before every prompt (0: zero-shot).
    pub num_fewshot: u32,
    /// `TASK=SOURCE` dataset replacements, as given.
    pub datasets: Vec<String>,
    /// `TASK=SOURCE` few-shot pools, as given (for `num_fewshot` without the Hub).
    pub fewshot_datasets: Vec<String>,
    /// The sweep's name instead of one made from the flags.
    pub name: Option<String>,
    /// Seed of sampling decoders and example draws.
    pub seed: u64,
    /// Prompts through the model's chat template.
    pub apply_chat_template: bool,
    /// The system turn of those conversations.
    pub system_prompt: Option<String>,
    /// Few-shot examples as turns of their own.
    pub fewshot_as_multiturn: bool,
    /// Folders of lm-eval task files for `lm-eval:NAME` tasks (lm-eval's `--include_path`).
    pub include_path: Vec<std::path::PathBuf>,
}

/// A flag of `nlebench eval` that cannot become a sweep, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag} {problem}\n  fix: {fix}")]
pub struct EvalError {
    /// The flag, as typed (`--tasks`).
    pub flag: &'static str,
    /// What is wrong with its value.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

/// The sweep file's contents, in the order written.
#[derive(Serialize)]
struct Body<'a> {
    tasks: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    lm_eval_include: Vec<String>,
    seeds: [u64; 1],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    datasets: BTreeMap<&'a str, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    fewshot_datasets: BTreeMap<&'a str, String>,
    models: [Model; 1],
    settings: [Setting; 1],
}

#[derive(Serialize)]
struct Model {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    adapters: Vec<Adapter>,
}

#[derive(Serialize)]
struct Adapter {
    name: String,
    source: String,
}

#[derive(Serialize)]
struct Setting {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_fewshot: Option<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    chat_template: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_prompt: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    fewshot_as_multiturn: bool,
}

#[derive(Serialize)]
struct File<'a> {
    name: &'a str,
    description: String,
    #[serde(flatten)]
    body: &'a Body<'a>,
}

impl EvalRequest {
    /// The sweep's name and file text; relative `path:` sources are made absolute against
    /// `cwd`, since the file lives elsewhere. Nothing is written.
    pub fn sweep_file(&self, cwd: &Path) -> Result<(String, String), EvalError> {
        let tasks: Vec<&str> = self
            .tasks
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .collect();
        if tasks.is_empty() {
            return Err(EvalError {
                flag: "--tasks",
                problem: "names no task".into(),
                fix: "e.g. --tasks no-crows-pairs,no-boolq (see `nlebench tasks list`)".into(),
            });
        }
        let datasets = sources("--dataset", &self.datasets, &tasks, cwd)?;
        let fewshot_datasets = sources("--fewshot-dataset", &self.fewshot_datasets, &tasks, cwd)?;
        if let Some(name) = &self.name
            && (name.trim().is_empty() || name.contains(['/', '\\']))
        {
            return Err(EvalError {
                flag: "--name",
                problem: format!("`{name}` cannot name a sweep"),
                fix: "give a name without slashes, e.g. --name my-eval".into(),
            });
        }
        let catalog_name = !self.model.contains(':');
        let model = Model {
            name: if catalog_name {
                self.model.clone()
            } else {
                short_name(&self.model)
            },
            source: (!catalog_name).then(|| absolute(&self.model, cwd)),
            adapters: self
                .adapter
                .iter()
                .map(|a| Adapter {
                    name: short_name(a),
                    source: absolute(a, cwd),
                })
                .collect(),
        };
        let mut setting = match self.limit {
            Some(n) => format!("first-{n}"),
            None => "all-examples".into(),
        };
        if self.num_fewshot > 0 {
            setting.push_str(&format!("-{}-shot", self.num_fewshot));
        }
        if (self.system_prompt.is_some() || self.fewshot_as_multiturn) && !self.apply_chat_template
        {
            return Err(EvalError {
                flag: if self.system_prompt.is_some() {
                    "--system-prompt"
                } else {
                    "--fewshot-as-multiturn"
                },
                problem: "acts only through the model's chat template".into(),
                fix: "add --apply-chat-template".into(),
            });
        }
        if self.apply_chat_template {
            setting.push_str("-chat");
            if self.fewshot_as_multiturn {
                setting.push_str("-multiturn");
            }
            if let Some(p) = &self.system_prompt {
                setting.push_str(&format!(
                    "-system-{}",
                    &hex::encode(Sha256::digest(p.as_bytes()))[..6]
                ));
            }
        }
        let body = Body {
            tasks: tasks.clone(),
            // Absolute: the sweep file lives elsewhere.
            lm_eval_include: self
                .include_path
                .iter()
                .map(|p| cwd.join(p).display().to_string())
                .collect(),
            seeds: [self.seed],
            datasets,
            fewshot_datasets,
            models: [model],
            settings: [Setting {
                name: setting,
                limit: self.limit,
                batch_size: self.batch_size,
                num_fewshot: (self.num_fewshot > 0).then_some(self.num_fewshot),
                chat_template: self.apply_chat_template,
                system_prompt: self.system_prompt.clone(),
                fewshot_as_multiturn: self.fewshot_as_multiturn,
            }],
        };
        let body_text = to_toml(&body);
        let name = self.name.clone().unwrap_or_else(|| {
            format!(
                "eval-{}",
                &hex::encode(Sha256::digest(body_text.as_bytes()))[..10]
            )
        });
        let file = File {
            name: &name,
            description: format!("nlebench eval of {} on {}", self.model, tasks.join(", ")),
            body: &body,
        };
        let text = format!(
            "# Written by `nlebench eval`; the same flags give the same sweep.\n{}",
            to_toml(&file)
        );
        Ok((name, text))
    }
}

/// `TASK=SOURCE` pairs of `flag` for tasks among `tasks`, with relative paths made absolute.
fn sources<'a>(
    flag: &'static str,
    given: &'a [String],
    tasks: &[&str],
    cwd: &Path,
) -> Result<BTreeMap<&'a str, String>, EvalError> {
    let mut out = BTreeMap::new();
    for d in given {
        let Some((task, source)) = d.split_once('=') else {
            return Err(EvalError {
                flag,
                problem: format!("`{d}`: expected TASK=SOURCE"),
                fix: format!("e.g. {flag} no-boolq=path:data/boolq.jsonl"),
            });
        };
        let task = task.trim();
        if !tasks.contains(&task) {
            return Err(EvalError {
                flag,
                problem: format!("`{d}`: task `{task}` is not among --tasks"),
                fix: format!("add {task} to --tasks, or drop this {flag}"),
            });
        }
        out.insert(task, absolute(source.trim(), cwd));
    }
    Ok(out)
}

/// TOML of a value whose fields are all strings, numbers and tables of them.
fn to_toml(value: &impl Serialize) -> String {
    // Strings, integers, lists and tables of them always serialize.
    toml::to_string(value).unwrap_or_else(|e| unreachable!("eval's sweep is TOML: {e}"))
}

/// `path:REL` against `cwd`; other sources as they are.
fn absolute(source: &str, cwd: &Path) -> String {
    match source.strip_prefix("path:") {
        Some(p) if Path::new(p).is_relative() => format!("path:{}", cwd.join(p).display()),
        _ => source.to_string(),
    }
}

/// A model or adapter name from its source: the last part of the path or repository, with
/// `@REV`/`@SEED` kept as `-REV` (`random:norgpt-tiny@1` → `norgpt-tiny-1`).
fn short_name(source: &str) -> String {
    let body = source.split_once(':').map_or(source, |(_, b)| b);
    let last = body
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(body);
    last.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(model: &str, tasks: &[&str]) -> EvalRequest {
        EvalRequest {
            model: model.into(),
            tasks: tasks.iter().map(|t| t.to_string()).collect(),
            limit: Some(8),
            ..EvalRequest::default()
        }
    }

    fn parse(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn lm_eval_folders_are_written_absolute() {
        let mut a = args("random:norgpt-tiny@1", &["lm-eval:norcommonsenseqa_nob"]);
        a.include_path = vec!["tasks/noreval".into(), "/opt/lm_eval/tasks".into()];
        let (_, text) = a.sweep_file(Path::new("/work")).unwrap();
        let t = parse(&text);
        assert_eq!(
            t["lm_eval_include"].as_array().unwrap(),
            &vec![
                toml::Value::from("/work/tasks/noreval"),
                toml::Value::from("/opt/lm_eval/tasks")
            ],
            "{text}"
        );
        assert!(
            !parse(&args("m", &["t"]).sweep_file(Path::new("/w")).unwrap().1)
                .contains_key("lm_eval_include")
        );
    }

    #[test]
    fn the_same_flags_name_the_same_sweep_and_others_another() {
        let cwd = Path::new("/work");
        let a = args("random:norgpt-tiny@1", &["no-crows-pairs"]);
        let (name, text) = a.sweep_file(cwd).unwrap();
        assert_eq!(a.sweep_file(cwd).unwrap().0, name);
        assert!(name.starts_with("eval-") && name.len() == 15, "{name}");
        let t = parse(&text);
        assert_eq!(t["name"].as_str(), Some(name.as_str()));
        let model = &t["models"][0];
        assert_eq!(model["name"].as_str(), Some("norgpt-tiny-1"), "{text}");
        assert_eq!(model["source"].as_str(), Some("random:norgpt-tiny@1"));
        let setting = &t["settings"][0];
        assert_eq!(setting["name"].as_str(), Some("first-8"), "{text}");
        assert_eq!(setting["limit"].as_integer(), Some(8));
        let mut b = args("random:norgpt-tiny@1", &["no-crows-pairs"]);
        b.limit = Some(9);
        assert_ne!(b.sweep_file(cwd).unwrap().0, name);
    }

    #[test]
    fn relative_paths_are_made_absolute_and_names_quoted() {
        let mut a = args("path:models/my \"odd\" model", &["no-boolq"]);
        a.adapter = Some("hf:NorGLM/NorGPT-369M-lora@main".into());
        a.datasets = vec!["no-boolq=path:data/b.jsonl".into()];
        let (_, text) = a.sweep_file(Path::new("/work")).unwrap();
        let t = parse(&text);
        assert_eq!(
            t["datasets"]["no-boolq"].as_str(),
            Some("path:/work/data/b.jsonl"),
            "{text}"
        );
        let model = &t["models"][0];
        assert_eq!(
            model["source"].as_str(),
            Some("path:/work/models/my \"odd\" model"),
            "{text}"
        );
        assert_eq!(
            model["adapters"][0]["name"].as_str(),
            Some("NorGPT-369M-lora-main"),
            "{text}"
        );
        assert_eq!(t["tasks"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_catalog_name_has_no_source_and_bad_datasets_are_refused() {
        let (_, text) = args("norgpt-369m", &["no-boolq"])
            .sweep_file(Path::new("/"))
            .unwrap();
        let model = parse(&text)["models"][0].clone();
        assert_eq!(model["name"].as_str(), Some("norgpt-369m"), "{text}");
        assert!(model.get("source").is_none(), "{text}");
        let mut a = args("norgpt-369m", &["no-boolq"]);
        a.datasets = vec!["no-boolq".into()];
        let e = a.sweep_file(Path::new("/")).unwrap_err().to_string();
        assert!(
            e.starts_with("--dataset") && e.contains("expected TASK=SOURCE"),
            "{e}"
        );
        let e = args("x", &[" "])
            .sweep_file(Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--tasks names no task"), "{e}");
    }
}
