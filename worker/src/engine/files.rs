//! Finding a model's files in Hugging Face layout, from any source.

use std::path::{Path, PathBuf};

use orchestrator::spec::Source;

use super::error::{EngineError, Result};
use super::hub::{self, RepoKind};
use super::random;

/// The files of a model in Hugging Face layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    /// The directory.
    pub dir: PathBuf,
    /// config.json.
    pub config: PathBuf,
    /// tokenizer.json.
    pub tokenizer: PathBuf,
    /// model.safetensors, or the shards listed in model.safetensors.index.json.
    pub weights: Vec<PathBuf>,
    /// Hub commit, or the seed of a random model.
    pub revision: Option<String>,
}

/// Files a model needs at the Hub, for downloads.
const HUB_FILES: &[&str] = &["config.json", "tokenizer.json"];

/// Locate (and for Hub sources download when missing, for random sources generate) a model.
pub fn locate(source: &Source, models_dir: &Path, download: bool) -> Result<ModelFiles> {
    match source {
        Source::Path { path } => in_dir(path, None),
        Source::Random { preset, seed } => {
            let dir = random::ensure(preset, *seed, models_dir)?;
            in_dir(&dir, Some(seed.to_string()))
        }
        Source::Hf { repo, revision } => {
            let rev = revision.as_deref().unwrap_or("main");
            if let Some((dir, commit)) = hub::cached_snapshot(RepoKind::Model, repo, rev)
                && let Ok(files) = in_dir(&dir, Some(commit))
            {
                return Ok(files);
            }
            if !download {
                return Err(not_available(repo, rev, "downloads are off".into()));
            }
            pull(repo, rev, true)
        }
    }
}

/// Download a Hub model's config, tokenizer and weights into the cache.
pub fn pull(repo: &str, revision: &str, progress: bool) -> Result<ModelFiles> {
    let (dir, commit) = hub::download(RepoKind::Model, repo, revision, HUB_FILES, progress)
        .map_err(|m| not_available(repo, revision, m))?;
    let weights = if let Ok(index) = hub::download(
        RepoKind::Model,
        repo,
        revision,
        &["model.safetensors.index.json"],
        false,
    ) {
        shard_names(&index.0.join("model.safetensors.index.json"))?
    } else {
        vec!["model.safetensors".to_string()]
    };
    let names: Vec<&str> = weights.iter().map(String::as_str).collect();
    hub::download(RepoKind::Model, repo, revision, &names, progress)
        .map_err(|m| not_available(repo, revision, m))?;
    in_dir(&dir, Some(commit))
}

fn not_available(repo: &str, revision: &str, message: String) -> EngineError {
    EngineError::NotAvailable {
        repo: repo.to_string(),
        revision: revision.to_string(),
        cache: hub::cache_dir(),
        message,
    }
}

/// The files of a model directory.
pub fn in_dir(dir: &Path, revision: Option<String>) -> Result<ModelFiles> {
    if !dir.is_dir() {
        return Err(EngineError::ModelDirMissing(dir.to_path_buf()));
    }
    let need = |name: &str, fix: &str| -> Result<PathBuf> {
        let p = dir.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            Err(EngineError::MissingFile {
                dir: dir.to_path_buf(),
                file: name.to_string(),
                fix: fix.to_string(),
            })
        }
    };
    let config = need(
        "config.json",
        "the directory must hold a Hugging Face model (config.json, tokenizer.json, model.safetensors)",
    )?;
    let tokenizer = need(
        "tokenizer.json",
        "save the tokenizer with `tokenizer.save_pretrained(DIR)` (a fast tokenizer writes tokenizer.json)",
    )?;
    let index = dir.join("model.safetensors.index.json");
    let weights = if index.is_file() {
        shard_names(&index)?
            .into_iter()
            .map(|n| need(&n, "download the missing shard again"))
            .collect::<Result<Vec<_>>>()?
    } else if dir.join("model.safetensors").is_file() {
        vec![dir.join("model.safetensors")]
    } else if dir.join("pytorch_model.bin.index.json").is_file() {
        shard_names(&dir.join("pytorch_model.bin.index.json"))?
            .into_iter()
            .map(|n| need(&n, "download the missing shard again"))
            .collect::<Result<Vec<_>>>()?
    } else if dir.join("pytorch_model.bin").is_file() {
        vec![dir.join("pytorch_model.bin")]
    } else {
        return Err(EngineError::MissingFile {
            dir: dir.to_path_buf(),
            file: "model.safetensors".into(),
            fix: "put the model weights (model.safetensors, sharded model-*.safetensors with \
                  model.safetensors.index.json, or pytorch_model.bin) in the directory"
                .into(),
        });
    };
    Ok(ModelFiles {
        dir: dir.to_path_buf(),
        config,
        tokenizer,
        weights,
        revision,
    })
}

fn shard_names(index: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(index).map_err(|source| EngineError::Io {
        path: index.to_path_buf(),
        source,
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| EngineError::Config {
        path: index.to_path_buf(),
        message: format!("not valid JSON: {e}"),
    })?;
    let map = v
        .get("weight_map")
        .and_then(serde_json::Value::as_object)
        .ok_or_else(|| EngineError::Config {
            path: index.to_path_buf(),
            message: "no `weight_map` object".into(),
        })?;
    let mut names: Vec<String> = map
        .values()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}
