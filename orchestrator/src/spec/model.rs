//! Model entries (in sweeps and in the catalog `experiments/models/catalog.toml`).

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;
use types::Dtype;

use super::error::SpecError;
use super::load::load_toml;

/// An adapter entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterEntry {
    /// Short name, unique per model.
    pub name: Spanned<String>,
    /// `hf:ORG/NAME[@REV]` or `path:DIR`.
    pub source: Spanned<String>,
}

/// A model entry as written, in a sweep's `[[models]]` or in the catalog.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// Short name, unique in the sweep.
    pub name: Spanned<String>,
    /// Where the weights are; may be left out for models in the catalog.
    pub source: Option<Spanned<String>>,
    /// Inference dtype.
    pub dtype: Option<Dtype>,
    /// Architecture, for the record (`gpt2`, `llama`, …).
    pub arch: Option<String>,
    /// Parameter count, for the record.
    pub params: Option<String>,
    /// Free text.
    pub notes: Option<String>,
    /// LoRA adapters to evaluate on top of this model (each adds cells).
    #[serde(default)]
    pub adapters: Vec<AdapterEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    models: Vec<ModelEntry>,
}

/// The model catalog: known models by name with their sources.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Entries as written.
    pub models: Vec<ModelEntry>,
    /// Contents of the catalog file (for error locations).
    pub text: String,
    /// Where it was read from.
    pub path: std::path::PathBuf,
}

impl Catalog {
    /// Read the catalog; a missing file gives an empty catalog.
    pub fn load(path: &Path) -> Result<Catalog, SpecError> {
        if !path.exists() {
            return Ok(Catalog {
                path: path.to_path_buf(),
                ..Catalog::default()
            });
        }
        let (file, text): (CatalogFile, String) = load_toml(path)?;
        Ok(Catalog {
            models: file.models,
            text,
            path: path.to_path_buf(),
        })
    }

    /// The entry called `name`.
    pub fn get(&self, name: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.name.get_ref() == name)
    }
}
