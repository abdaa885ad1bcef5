//! Checking that a cell's model, adapter and dataset exist, and identifying their content.
//!
//! The orchestrator never loads models or datasets itself; the binary hands it a
//! [`Resolver`] implemented by the worker crate.

use crate::{Source, TaskSpec};

/// What a model or adapter source resolved to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResolvedModel {
    /// Hub commit (or revision as given when it cannot be resolved offline); seed of a random model.
    pub revision: Option<String>,
    /// Hash identifying the files of a local model (config, tokenizer, weight names and sizes).
    pub content_id: Option<String>,
    /// The weights are random (no trained model behind the numbers).
    pub random_weights: bool,
    /// Architecture from config.json (`gpt2`, …).
    pub arch: String,
    /// What the model needs in memory (for admission; absent in manifests written before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ModelMemory>,
    /// SHA-256 of the model's chat template, when it ships one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template: Option<String>,
}

/// A model's size for memory admission ([`crate::admission`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelMemory {
    /// Weights in its files.
    pub parameters: u64,
    /// Values its KV cache keeps per token (keys and values of every layer).
    pub kv_per_token: u64,
    /// Context length in tokens.
    pub context: u64,
}

/// What a dataset resolved to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResolvedDataset {
    /// Hub commit, or the SHA-256 of a local file.
    pub revision: String,
    /// Number of examples.
    pub rows: u64,
}

/// Why a source could not be resolved, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveError {
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

/// Resolves sources for the planner (implemented by the worker crate).
pub trait Resolver: Send + Sync {
    /// Check a base model source and identify it.
    fn model(&self, source: &Source) -> Result<ResolvedModel, ResolveError>;
    /// Check an adapter source and identify it.
    fn adapter(&self, source: &Source) -> Result<ResolvedModel, ResolveError>;
    /// Check a task's dataset (it exists, has the task's columns) and count its examples.
    fn dataset(&self, task: &TaskSpec) -> Result<ResolvedDataset, ResolveError>;
    /// Version of the engine that will run the cells (part of every fingerprint).
    fn engine_version(&self) -> &str;
}
