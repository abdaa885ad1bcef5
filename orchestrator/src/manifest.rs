//! The run manifest: everything a worker needs to run a cell and everything that changes its
//! outputs, stored as JSON with the run. Its fingerprint is the hash of the output-relevant part.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::resolve::{ResolvedDataset, ResolvedModel};
use crate::spec::{Dtype, Setting, Source, TaskSpec};

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
    /// The seed.
    pub seed: u64,
    /// Number of samples the run produces.
    pub n_expected: u64,
    /// Engine version that runs it.
    pub engine_version: String,
}

impl RunManifest {
    /// Hex SHA-256 of the canonical JSON of everything that changes the run's outputs.
    ///
    /// Left out on purpose: names (model, setting, sweep), local paths (the content id
    /// stands for a local model, the file hash for a local dataset), batch size and the
    /// task's metric list (metrics are recomputed from samples without inference).
    pub fn fingerprint(&self) -> String {
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
        let bytes = serde_json::to_vec(&canonical).expect("JSON values always serialize");
        hex::encode(Sha256::digest(bytes))
    }
}
