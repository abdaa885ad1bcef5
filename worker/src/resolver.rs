//! The orchestrator's [`Resolver`], backed by the engine: checks at submission that models
//! and datasets exist and are usable, and identifies their content for fingerprints.

use spec::resolve::{ModelMemory, ResolveError, ResolvedDataset, ResolvedModel, Resolver};
use spec::{Source, TaskSpec};

use crate::data;
use crate::tasks::required_columns;
use engine::config::ModelConfig;
use engine::content::HashCache;
use engine::files::locate_adapter;
use engine::lora::Adapter;
use engine::model::{check_weights, load_tokenizer};
use engine::{ENGINE_VERSION, Locations, locate};

/// Resolves sources on this machine.
#[derive(Debug, Clone)]
pub struct EngineResolver {
    /// Where random-weight models are written and the Hugging Face cache is.
    pub locations: Locations,
    /// Remembered file hashes.
    pub hashes: HashCache,
    /// Download Hub models and datasets that are not cached.
    pub download: bool,
}

/// Split an error's text into problem and fix (errors print "PROBLEM\n  fix: FIX").
pub fn split_fix(e: &dyn std::fmt::Display) -> ResolveError {
    let s = e.to_string();
    match s.split_once("\n  fix: ") {
        Some((p, f)) => ResolveError {
            problem: p.to_string(),
            fix: f.to_string(),
        },
        None => ResolveError {
            problem: s,
            fix: "see the message".into(),
        },
    }
}

impl Resolver for EngineResolver {
    fn model(&self, source: &Source) -> Result<ResolvedModel, ResolveError> {
        let files = locate(source, &self.locations, self.download).map_err(|e| split_fix(&e))?;
        let cfg = ModelConfig::load(&files.config).map_err(|e| split_fix(&e))?;
        load_tokenizer(&files, cfg.model.vocab_size()).map_err(|e| split_fix(&e))?;
        check_weights(&files).map_err(|e| split_fix(&e))?;
        let content_id = match source {
            Source::Path { .. } => Some(self.hashes.model_id(&files).map_err(|e| split_fix(&e))?),
            _ => None,
        };
        let memory = ModelMemory {
            parameters: engine::weights::parameter_count(&files).map_err(|e| split_fix(&e))?,
            kv_per_token: cfg.model.kv_per_token() as u64,
            context: cfg.model.max_positions() as u64,
        };
        let chat_template = match chat::ChatTemplate::from_dir(&files.dir) {
            Ok(Some(t)) => {
                t.check().map_err(|e| ResolveError {
                    problem: e.to_string(),
                    fix: "evaluate without `chat_template = true`, or repair the template".into(),
                })?;
                Some(t.digest())
            }
            Ok(None) => None,
            Err(e) => return Err(split_fix(&e)),
        };
        Ok(ResolvedModel {
            revision: files.revision.clone(),
            content_id,
            random_weights: cfg.random_weights,
            arch: cfg.model.arch().to_string(),
            memory: Some(memory),
            chat_template,
        })
    }

    fn adapter(&self, source: &Source) -> Result<ResolvedModel, ResolveError> {
        let (dir, commit) = locate_adapter(source, &self.locations.hub, self.download)
            .map_err(|e| split_fix(&e))?;
        let adapter = Adapter::load(&dir).map_err(|e| split_fix(&e))?;
        let content_id = match source {
            Source::Path { .. } => {
                let mut ids = vec![];
                for f in [
                    "adapter_config.json",
                    "adapter_model.safetensors",
                    "adapter_model.bin",
                ] {
                    let p = dir.join(f);
                    if p.is_file() {
                        ids.push(self.hashes.sha256(&p).map_err(|e| split_fix(&e))?);
                    }
                }
                Some(ids.join("+"))
            }
            _ => None,
        };
        Ok(ResolvedModel {
            revision: commit,
            content_id,
            random_weights: false,
            arch: format!(
                "lora-{}",
                adapter
                    .config
                    .task_type
                    .as_deref()
                    .unwrap_or("causal_lm")
                    .to_lowercase()
            ),
            memory: None,
            chat_template: None,
        })
    }

    fn dataset(&self, task: &TaskSpec) -> Result<ResolvedDataset, ResolveError> {
        if let Some(l) = &task.lm_eval {
            let data = data::lmeval_tasks::TaskData {
                hub: self.locations.hub.clone(),
                download: self.download,
            };
            let (rows, revision) =
                crate::tasks::lmeval::documents(l, &data).map_err(|e| split_fix(&e))?;
            return Ok(ResolvedDataset { revision, rows });
        }
        let (path, commit) = data::locate(&task.dataset, &self.locations.hub, self.download)
            .map_err(|e| split_fix(&e))?;
        let table = data::read(&path, task.dataset.format).map_err(|e| split_fix(&e))?;
        let table = data::examples::select(&task.dataset, table).map_err(|e| split_fix(&e))?;
        check_examples(task, &table).map_err(|e| split_fix(&e))?;
        let revision = match commit {
            Some(c) => c,
            None => format!(
                "sha256:{}",
                self.hashes.sha256(&path).map_err(|e| split_fix(&e))?
            ),
        };
        Ok(ResolvedDataset {
            revision,
            rows: table.rows.len() as u64,
        })
    }

    fn engine_version(&self) -> &str {
        ENGINE_VERSION
    }
}

/// Every example has the task's fields as text, and every list a chain step runs over parses.
fn check_examples(task: &TaskSpec, table: &data::Table) -> Result<(), data::DataError> {
    let lists: Vec<&spec::ListColumn> = task.steps.iter().filter_map(|s| s.each.as_ref()).collect();
    let columns = required_columns(task);
    let text_columns: Vec<&str> = columns
        .iter()
        .map(String::as_str)
        .filter(|c| !lists.iter().any(|l| l.column == *c))
        .collect();
    data::examples::check_fields(table, &text_columns)?;
    for list in lists {
        table.require(&[list.column.as_str()], "fix `each` in the task file")?;
        for row in 0..table.rows.len() {
            data::examples::items(table, row, list)?;
        }
    }
    Ok(())
}

/// lm-evaluation-harness's task files for the spec: `lm-eval:NAME` in a sweep.
#[derive(Debug, Clone, Copy, Default)]
pub struct LmEvalReader;

impl spec::LmEvalTasks for LmEvalReader {
    fn expand(
        &self,
        name: &str,
        include: &[std::path::PathBuf],
    ) -> Result<Vec<spec::LmEvalTask>, ResolveError> {
        crate::tasks::lmeval::expand(name, include).map_err(|e| {
            let mut e = split_fix(&e);
            if e.fix == "see the message" {
                e.fix = "name a task, group or tag of the folders in `lm_eval_include` (`nlebench tasks list --include-path DIR` lists them)".into();
            }
            e
        })
    }
}
