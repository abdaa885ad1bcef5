//! The run manifest: everything a worker needs to run a cell and everything that changes its
//! outputs, stored as JSON with the run. Its fingerprint is the hash of the output-relevant part.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::resolve::{ResolvedDataset, ResolvedModel};
use crate::{DatasetRef, Dtype, Setting, Source, TaskSpec};

/// Version of the fingerprint encoding; bump when the encoding changes.
pub const FINGERPRINT_VERSION: u32 = 1;

/// The base model of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelManifest {
    /// Name in the sweep.
    pub name: String,
    /// Where it is.
    pub source: Source,
    /// Inference dtype.
    pub dtype: Dtype,
    /// What the source resolved to at submission.
    pub resolved: ResolvedModel,
}

/// The adapter of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterManifest {
    /// Name in the sweep.
    pub name: String,
    /// Where it is.
    pub source: Source,
    /// What the source resolved to at submission.
    pub resolved: ResolvedModel,
}

/// Few-shot prompting of a run: `k` examples of the task's pool before each prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FewShot {
    /// Examples per prompt.
    pub k: u32,
    /// The pool (the task's `[fewshot]`).
    pub dataset: DatasetRef,
    /// What the pool resolved to at submission.
    pub resolved: ResolvedDataset,
}

impl FewShot {
    /// Between an example's prompt and its answer (lm-evaluation-harness's `target_delimiter`).
    pub const TARGET_DELIMITER: &str = " ";
    /// Between two examples, and before the prompt (lm-evaluation-harness's
    /// `fewshot_delimiter`).
    pub const FEWSHOT_DELIMITER: &str = "\n\n";
}

/// Everything about a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    /// The base model.
    pub model: ModelManifest,
    /// The adapter, if any.
    pub adapter: Option<AdapterManifest>,
    /// The task, with its dataset.
    pub task: TaskSpec,
    /// The dataset as resolved.
    pub dataset: ResolvedDataset,
    /// The setting.
    pub setting: Setting,
    /// Few-shot prompting (the setting's `num_fewshot`), when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fewshot: Option<FewShot>,
    /// The seed.
    pub seed: u64,
    /// Number of samples the run produces.
    pub n_expected: u64,
    /// Engine version that runs it.
    pub engine_version: String,
}

impl RunManifest {
    /// The fields that change scores, as shown when runs are compared: task, task version,
    /// prompt template, decoding, dtype and engine version (empty where not set).
    pub fn score_fields(&self) -> [(&'static str, String); 6] {
        [
            ("task", self.task.name.clone()),
            ("task version", self.task.version.to_string()),
            (
                "prompt template",
                self.task.template.clone().unwrap_or_default(),
            ),
            ("decoding", self.decoding_json()),
            ("dtype", self.model.dtype.as_str().to_string()),
            ("engine version", self.engine_version.clone()),
        ]
    }

    /// The setting's decoding as compact JSON; empty when it has none.
    pub fn decoding_json(&self) -> String {
        self.setting
            .decoding
            .as_ref()
            .and_then(|d| serde_json::to_string(d).ok())
            .unwrap_or_default()
    }

    /// Hex SHA-256 of the canonical JSON of everything that changes the run's outputs.
    ///
    /// Left out on purpose: names (model, setting, sweep), local paths (the content id
    /// stands for a local model, the file hash for a local dataset), batch size and the
    /// task's metric list (metrics are recomputed from samples without inference).
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.canonical().as_bytes()))
    }

    /// The canonical JSON the fingerprint hashes.
    pub fn canonical(&self) -> String {
        let where_from = |source: &Source, resolved: &ResolvedModel| match source {
            Source::Path { .. } => serde_json::json!({
                "kind": "path", "content_id": resolved.content_id,
            }),
            Source::Hf { repo, .. } => serde_json::json!({
                "kind": "hf", "repo": repo, "revision": resolved.revision,
            }),
            Source::Random { preset, seed } => serde_json::json!({
                "kind": "random", "preset": preset, "seed": seed,
            }),
        };
        let dataset_source = match &self.task.dataset.source {
            Source::Hf { repo, .. } => serde_json::json!({
                "kind": "hf", "repo": repo, "file": self.task.dataset.file,
            }),
            _ => serde_json::json!({ "kind": "file" }),
        };
        let canonical = serde_json::json!({
            "fingerprint_version": FINGERPRINT_VERSION,
            "engine_version": self.engine_version,
            "model": {
                "source": where_from(&self.model.source, &self.model.resolved),
                "dtype": self.model.dtype.as_str(),
            },
            "adapter": self.adapter.as_ref().map(|a| where_from(&a.source, &a.resolved)),
            "task": {
                "name": self.task.name,
                "version": self.task.version,
                "kind": self.task.kind.as_str(),
                "fields": self.task.fields,
            },
            "dataset": {
                "source": dataset_source,
                "revision": self.dataset.revision,
                "format": self.task.dataset.format,
            },
            "decoding": if self.task.kind.uses_decoding() { serde_json::to_value(&self.setting.decoding).ok() } else { None },
            "max_tokens": self.setting.max_tokens,
            "limit": self.setting.limit,
            "seed": self.seed,
        });
        // Keys are sorted (BTreeMap) or inserted in the fixed order written here, so the
        // compact encoding is canonical.
        let mut canonical = canonical;
        // Optional parts are added only when present, so the fingerprints of tasks without
        // them stay as they were.
        let task = &self.task;
        if let Some(t) = &task.template {
            canonical["task"]["template"] = t.as_str().into();
        }
        if self.setting.chat_template {
            canonical["chat"] = serde_json::json!({
                "template": self.model.resolved.chat_template,
                "system_prompt": self.setting.system_prompt,
                "fewshot_as_multiturn": self.setting.fewshot_as_multiturn,
            });
        }
        let mut optional = |key: &str, value: serde_json::Value, present: bool| {
            if present {
                canonical["task"][key] = value;
            }
        };
        optional(
            "template_when_empty",
            serde_json::json!(task.template_when_empty),
            !task.template_when_empty.is_empty(),
        );
        optional(
            "input_limit",
            serde_json::json!(task.input_limit),
            task.input_limit.is_some(),
        );
        optional(
            "steps",
            serde_json::json!(task.steps),
            !task.steps.is_empty(),
        );
        optional(
            "label_words",
            serde_json::json!([task.label_words, task.zero_shot_template]),
            !task.label_words.is_empty(),
        );
        optional(
            "rows",
            serde_json::json!(task.dataset.rows),
            task.dataset.rows.is_some(),
        );
        optional(
            "explode",
            serde_json::json!(task.dataset.explode),
            task.dataset.explode.is_some(),
        );
        if let Some(l) = &task.lm_eval {
            // The task file as read, and the setting's number of shots (else the file's). Not
            // where its data files lie: the documents' hash (the dataset revision) stands for
            // them.
            let mut config = l.config.clone();
            if let Some(c) = config.as_object_mut() {
                c.remove("dataset_kwargs");
            }
            canonical["task"]["lm_eval"] = serde_json::json!({
                "task": l.task,
                "config": config,
                "num_fewshot": self.setting.num_fewshot,
            });
        }
        if let Some(n) = self.setting.sample {
            canonical["sample"] = serde_json::json!([n, self.setting.sample_seed]);
        }
        if let Some(f) = &self.fewshot {
            let source = match &f.dataset.source {
                Source::Hf { repo, .. } => serde_json::json!({
                    "kind": "hf", "repo": repo, "file": f.dataset.file,
                }),
                _ => serde_json::json!({ "kind": "file" }),
            };
            canonical["fewshot"] = serde_json::json!({
                "k": f.k,
                "source": source,
                "revision": f.resolved.revision,
                "rows": f.dataset.rows,
            });
        }
        canonical.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::{DataFormat, DatasetRef, TaskKind};

    fn manifest() -> RunManifest {
        RunManifest {
            model: ModelManifest {
                name: "m".into(),
                source: Source::Hf {
                    repo: "NorGLM/NorGPT-369M".into(),
                    revision: None,
                },
                dtype: Dtype::F32,
                resolved: ResolvedModel {
                    revision: Some("ce2a4927".into()),
                    content_id: None,
                    random_weights: false,
                    arch: "gpt2".into(),
                    memory: None,
                    chat_template: None,
                },
            },
            adapter: None,
            task: TaskSpec {
                name: "no-crows-pairs".into(),
                version: 1,
                kind: TaskKind::LoglikPair,
                description: String::new(),
                primary_metric: "bias_paper".into(),
                metrics: vec!["bias_paper".into()],
                dataset: DatasetRef {
                    source: Source::Path {
                        path: PathBuf::from("/data/pairs.csv"),
                    },
                    file: None,
                    split: None,
                    format: DataFormat::Csv,
                    rows: None,
                    explode: None,
                },
                fewshot: None,
                fields: BTreeMap::from([
                    ("more".into(), "sent_more_no".into()),
                    ("less".into(), "sent_less_no".into()),
                ]),
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
                path: PathBuf::new(),
                dataset_origin: None,
                lm_eval: None,
            },
            dataset: ResolvedDataset {
                revision: "sha256:abc".into(),
                rows: 10,
            },
            setting: Setting {
                name: "s".into(),
                limit: Some(5),
                batch_size: Some(8),
                ..Setting::default()
            },
            fewshot: None,
            seed: 0,
            n_expected: 5,
            engine_version: "0.1.0".into(),
        }
    }

    #[test]
    fn canonical_encoding_is_sorted_compact_json() {
        assert_eq!(
            manifest().canonical(),
            r#"{"adapter":null,"dataset":{"format":"csv","revision":"sha256:abc","source":{"kind":"file"}},"decoding":null,"engine_version":"0.1.0","fingerprint_version":1,"limit":5,"max_tokens":null,"model":{"dtype":"f32","source":{"kind":"hf","repo":"NorGLM/NorGPT-369M","revision":"ce2a4927"}},"seed":0,"task":{"fields":{"less":"sent_less_no","more":"sent_more_no"},"kind":"loglik-pair","name":"no-crows-pairs","version":1}}"#
        );
    }

    #[test]
    fn fingerprint_is_stable_across_processes_and_versions() {
        // The SHA-256 of the canonical string above (checked with Python hashlib). A fixed
        // manifest has a fixed fingerprint: if this changes, stored runs would no
        // longer be found, so bump FINGERPRINT_VERSION on purpose instead.
        assert_eq!(
            manifest().fingerprint(),
            "d4146f3e2a240a1b798095aafab19fc36c8e7d1e521e9c05ddcccd14b296fa94"
        );
    }

    #[test]
    fn fingerprint_ignores_what_does_not_change_outputs() {
        // A task's few-shot pool changes nothing until a setting asks for examples.
        let mut m = manifest();
        m.task.fewshot = Some(m.task.dataset.clone());
        assert_eq!(m.fingerprint(), manifest().fingerprint());

        let base = manifest().fingerprint();
        let mut m = manifest();
        m.model.name = "other".into();
        m.setting.name = "other".into();
        m.setting.batch_size = Some(1);
        m.task.metrics.push("bias_standard".into());
        m.task.description = "changed".into();
        m.task.dataset.source = Source::Path {
            path: PathBuf::from("/elsewhere/pairs.csv"),
        };
        assert_eq!(m.fingerprint(), base);
    }

    #[test]
    fn an_lm_eval_tasks_fingerprint_holds_its_file_and_shots_but_not_where_its_data_lies() {
        let lm_eval = |text: &str, files: &str| {
            let mut m = manifest();
            m.task = TaskSpec::of_lm_eval(crate::LmEvalTask {
                task: "sum_p0".into(),
                group: None,
                include: vec![PathBuf::from("/tasks")],
                file: PathBuf::from("/tasks/sum_p0.yaml"),
                config: serde_json::json!({
                    "task": "sum_p0", "doc_to_text": text,
                    "dataset_kwargs": {"data_files": {"test": files}},
                }),
                metrics: vec![("acc".into(), "acc,none".into())],
            });
            m
        };
        let base = lm_eval("{{question}}", "/a/test.jsonl");
        assert_eq!(
            lm_eval("{{question}}", "/b/test.jsonl").fingerprint(),
            base.fingerprint(),
            "the documents' hash stands for the data files"
        );
        assert_ne!(
            lm_eval("Q: {{question}}", "/a/test.jsonl").fingerprint(),
            base.fingerprint()
        );
        let mut shots = base.clone();
        shots.setting.num_fewshot = Some(5);
        assert_ne!(shots.fingerprint(), base.fingerprint());
        assert_ne!(base.fingerprint(), manifest().fingerprint());
    }

    #[test]
    fn fingerprint_changes_with_everything_that_changes_outputs() {
        let base = manifest().fingerprint();
        let changes: Vec<fn(&mut RunManifest)> = vec![
            |m| m.setting.limit = Some(6),
            |m| m.seed = 1,
            |m| m.task.version = 2,
            |m| m.engine_version = "0.2.0".into(),
            |m| m.dataset.revision = "sha256:def".into(),
            |m| m.model.dtype = Dtype::F16,
            |m| m.model.resolved.revision = Some("other".into()),
            |m| m.setting.max_tokens = Some(128),
            |m| {
                m.setting.limit = None;
                m.setting.sample = Some(5);
            },
            |m| m.task.template_when_empty = [("input".into(), "{a} :".into())].into(),
            |m| m.task.dataset.rows = Some(crate::RowRange::parse("80%:").unwrap()),
            |m| {
                m.task.steps = vec![crate::ChainStep {
                    name: "s".into(),
                    template: "{a}".into(),
                    each: None,
                    join: None,
                }]
            },
            |m| {
                m.task.fields.insert("group".into(), "bias_type".into());
            },
            |m| {
                m.adapter = Some(AdapterManifest {
                    name: "a".into(),
                    source: Source::Hf {
                        repo: "NorGLM/x".into(),
                        revision: None,
                    },
                    resolved: ResolvedModel {
                        revision: Some("r".into()),
                        content_id: None,
                        random_weights: false,
                        arch: "lora".into(),
                        memory: None,
                        chat_template: None,
                    },
                })
            },
            |m| {
                m.fewshot = Some(FewShot {
                    k: 2,
                    dataset: m.task.dataset.clone(),
                    resolved: ResolvedDataset {
                        revision: "sha256:pool".into(),
                        rows: 20,
                    },
                })
            },
        ];
        for (i, change) in changes.into_iter().enumerate() {
            let mut m = manifest();
            change(&mut m);
            assert_ne!(
                m.fingerprint(),
                base,
                "change {i} must change the fingerprint"
            );
        }
    }

    #[test]
    fn a_chat_setting_fingerprints_the_template_system_prompt_and_turns() {
        // A model's template counts only when the setting uses it.
        let mut m = manifest();
        m.model.resolved.chat_template = Some("a".repeat(64));
        assert_eq!(m.fingerprint(), manifest().fingerprint());
        m.setting.chat_template = true;
        let chat = m.fingerprint();
        assert_ne!(chat, manifest().fingerprint());
        let variants: Vec<fn(&mut RunManifest)> = vec![
            |m| m.model.resolved.chat_template = Some("b".repeat(64)),
            |m| m.setting.system_prompt = Some("Svar kort.".into()),
            |m| m.setting.fewshot_as_multiturn = true,
        ];
        for (i, change) in variants.into_iter().enumerate() {
            let mut v = m.clone();
            change(&mut v);
            assert_ne!(v.fingerprint(), chat, "variant {i}");
        }
    }
}
