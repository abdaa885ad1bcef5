//! Finding a model's files in Hugging Face layout, from any source.

use std::path::{Path, PathBuf};

use types::{HubSettings, Source};

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

/// Where model sources are found: random models are written under `models_dir`, Hub models
/// are read from (and downloaded into) the cache of `hub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locations {
    /// Generated random-weight models.
    pub models_dir: PathBuf,
    /// The Hugging Face cache and Hub access.
    pub hub: HubSettings,
}

/// Locate (and for Hub sources download when missing, for random sources generate) a model.
pub fn locate(source: &Source, at: &Locations, download: bool) -> Result<ModelFiles> {
    match source {
        Source::Path { path } => in_dir(path, None),
        Source::Random { preset, seed } => {
            let dir = random::ensure(preset, *seed, &at.models_dir)?;
            in_dir(&dir, Some(seed.to_string()))
        }
        Source::Hf { repo, revision } => {
            let rev = revision.as_deref().unwrap_or("main");
            if let Some((dir, commit)) = hub::cached_snapshot(&at.hub, RepoKind::Model, repo, rev)
                && let Ok(files) = in_dir(&dir, Some(commit))
            {
                return Ok(files);
            }
            if !download {
                return Err(not_available(
                    &at.hub,
                    repo,
                    rev,
                    "downloads are off".into(),
                ));
            }
            pull(&at.hub, repo, rev, true)
        }
    }
}

/// Download a Hub model's config, tokenizer and weights into the cache.
pub fn pull(hub: &HubSettings, repo: &str, revision: &str, progress: bool) -> Result<ModelFiles> {
    let (dir, commit) = hub::download(
        hub,
        RepoKind::Model,
        repo,
        revision,
        &hub::model_files,
        progress,
    )
    .map_err(|m| not_available(hub, repo, revision, m))?;
    in_dir(&dir, Some(commit))
}

/// Locate (downloading from the Hub when missing) a PEFT adapter directory; returns it and
/// its Hub commit.
pub fn locate_adapter(
    source: &Source,
    hub: &HubSettings,
    download: bool,
) -> Result<(PathBuf, Option<String>)> {
    let dir_ok = |d: &Path| d.join("adapter_config.json").is_file();
    match source {
        Source::Path { path } if dir_ok(path) => Ok((path.clone(), None)),
        Source::Path { path } if !path.is_dir() => Err(EngineError::ModelDirMissing(path.clone())),
        Source::Path { path } => Err(EngineError::MissingFile {
            dir: path.clone(),
            file: "adapter_config.json".into(),
            fix: "point the adapter source at a PEFT adapter directory".into(),
        }),
        Source::Hf { repo, revision } => {
            let rev = revision.as_deref().unwrap_or("main");
            if let Some((dir, commit)) = hub::cached_snapshot(hub, RepoKind::Model, repo, rev)
                && dir_ok(&dir)
            {
                return Ok((dir, Some(commit)));
            }
            if !download {
                return Err(not_available(hub, repo, rev, "downloads are off".into()));
            }
            let (dir, commit) =
                hub::download(hub, RepoKind::Model, repo, rev, &hub::adapter_files, true)
                    .map_err(|m| not_available(hub, repo, rev, m))?;
            Ok((dir, Some(commit)))
        }
        Source::Random { .. } => Err(EngineError::Adapter {
            dir: PathBuf::from(source.to_string()),
            message: "adapters cannot be random".into(),
            fix: "use `hf:ORG/NAME` or `path:DIR`".into(),
        }),
    }
}

fn not_available(hub: &HubSettings, repo: &str, revision: &str, message: String) -> EngineError {
    EngineError::NotAvailable {
        repo: repo.to_string(),
        revision: revision.to_string(),
        cache: hub.cache.clone(),
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
