//! The local Hugging Face cache and the Hub downloader.
//!
//! Lookups follow the cache layout of `huggingface_hub`
//! (`{models,datasets}--ORG--NAME/{refs,snapshots}/` under [`HubSettings::cache`]), so models
//! downloaded with Python tools are found too. Downloads use `hf-hub` (at the settings'
//! endpoint) and are skipped when the settings are offline.

use std::path::{Path, PathBuf};

use hf_hub::{Repo, RepoType};
use types::HubSettings;

/// Model or dataset repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    /// `models--ORG--NAME`.
    Model,
    /// `datasets--ORG--NAME`.
    Dataset,
}

impl RepoKind {
    fn repo_type(self) -> RepoType {
        match self {
            RepoKind::Model => RepoType::Model,
            RepoKind::Dataset => RepoType::Dataset,
        }
    }
}

fn repo_dir(hub: &HubSettings, kind: RepoKind, repo: &str) -> PathBuf {
    hub.cache
        .join(Repo::new(repo.to_string(), kind.repo_type()).folder_name())
}

/// The snapshot directory and commit of `repo@revision` if it is in the cache.
pub fn cached_snapshot(
    hub: &HubSettings,
    kind: RepoKind,
    repo: &str,
    revision: &str,
) -> Option<(PathBuf, String)> {
    let dir = repo_dir(hub, kind, repo);
    let commit = match std::fs::read_to_string(dir.join("refs").join(revision)) {
        Ok(c) => c.trim().to_string(),
        Err(_) => revision.to_string(),
    };
    let snap = dir.join("snapshots").join(&commit);
    snap.is_dir().then_some((snap, commit))
}

/// Download the files `pick` chooses from the repository's file list (for datasets, the
/// named file) into the cache; returns the snapshot directory and commit.
pub fn download(
    hub: &HubSettings,
    kind: RepoKind,
    repo: &str,
    revision: &str,
    pick: &dyn Fn(&[String]) -> Vec<String>,
    progress: bool,
) -> Result<(PathBuf, String), String> {
    if hub.offline {
        return Err("HF_HUB_OFFLINE is set".into());
    }
    let mut builder =
        hf_hub::api::sync::ApiBuilder::from_cache(hf_hub::Cache::new(hub.cache.clone()));
    if let Some(endpoint) = &hub.endpoint {
        builder = builder.with_endpoint(endpoint.clone());
    }
    let api = builder
        .with_progress(progress)
        .with_retries(1)
        .build()
        .map_err(|e| e.to_string())?;
    let r = api.repo(Repo::with_revision(
        repo.to_string(),
        kind.repo_type(),
        revision.to_string(),
    ));
    let info = r
        .info()
        .map_err(|e| format!("the Hub is unreachable: {e}"))?;
    let names: Vec<String> = info.siblings.iter().map(|s| s.rfilename.clone()).collect();
    let wanted = pick(&names);
    if wanted.is_empty() {
        return Err(format!(
            "none of the repository's files is usable ({})",
            names.join(", ")
        ));
    }
    let mut last = None;
    for f in &wanted {
        last = Some(r.get(f).map_err(|e| format!("downloading {f}: {e}"))?);
    }
    let snapshot = last
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| repo_dir(hub, kind, repo).join("snapshots").join(&info.sha));
    Ok((snapshot, info.sha))
}

/// The files of a model repository the engine needs: config, tokenizer files, the chat
/// template and weights (safetensors, else PyTorch `.bin`, with their shard indexes).
pub fn model_files(names: &[String]) -> Vec<String> {
    let has = |n: &str| names.iter().any(|x| x == n);
    let mut out: Vec<String> = [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "special_tokens_map.json",
        "generation_config.json",
    ]
    .into_iter()
    .filter(|n| has(n))
    .map(str::to_string)
    .collect();
    let safetensors: Vec<String> = names
        .iter()
        .filter(|n| {
            !n.contains('/')
                && (n.ends_with(".safetensors") || n.as_str() == "model.safetensors.index.json")
        })
        .cloned()
        .collect();
    if safetensors.iter().any(|n| n.ends_with(".safetensors")) {
        out.extend(safetensors);
    } else {
        out.extend(
            names
                .iter()
                .filter(|n| {
                    n.starts_with("pytorch_model")
                        && (n.ends_with(".bin") || n.ends_with(".bin.index.json"))
                })
                .cloned(),
        );
    }
    out
}

/// The files of a PEFT adapter repository.
pub fn adapter_files(names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for n in ["adapter_config.json", "adapter_model.safetensors"] {
        if names.iter().any(|x| x == n) {
            out.push(n.into());
        }
    }
    if !out.iter().any(|n| n == "adapter_model.safetensors")
        && names.iter().any(|x| x == "adapter_model.bin")
    {
        out.push("adapter_model.bin".into());
    }
    out
}
