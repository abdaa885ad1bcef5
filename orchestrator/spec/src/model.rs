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
    /// The tasks the adapter was trained for; cells are made only for these (all when absent).
    pub tasks: Option<Spanned<Vec<String>>>,
}

/// A published adapter in the catalog, bound to its base model and its tasks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogAdapter {
    /// The adapter family, the name sweeps use (`Instruction`, `NO-BoolQ`, …).
    pub name: Spanned<String>,
    /// The catalog model it was trained on.
    pub base: Spanned<String>,
    /// `hf:ORG/NAME[@REV]` or `path:DIR`.
    pub source: Spanned<String>,
    /// The tasks it was trained for.
    pub tasks: Spanned<Vec<String>>,
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
    /// The tasks this model is for (e.g. a model fine-tuned for summarization); all when absent.
    pub tasks: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    models: Vec<ModelEntry>,
    #[serde(default)]
    adapters: Vec<CatalogAdapter>,
}

/// The model catalog: known models by name with their sources.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Entries as written.
    pub models: Vec<ModelEntry>,
    /// Published adapters, by family and base model.
    pub adapters: Vec<CatalogAdapter>,
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
            adapters: file.adapters,
            text,
            path: path.to_path_buf(),
        })
    }

    /// The entry called `name`.
    pub fn get(&self, name: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.name.get_ref() == name)
    }

    /// The adapter of family `family` trained on the catalog model `base`.
    pub fn adapter(&self, family: &str, base: &str) -> Option<&CatalogAdapter> {
        self.adapters
            .iter()
            .find(|a| a.name.get_ref() == family && a.base.get_ref() == base)
    }

    /// Whether the catalog has adapters of family `family`.
    pub fn has_family(&self, family: &str) -> bool {
        self.adapters.iter().any(|a| a.name.get_ref() == family)
    }

    /// Adapter families, sorted, once each.
    pub fn families(&self) -> Vec<&str> {
        let mut f: Vec<&str> = self
            .adapters
            .iter()
            .map(|a| a.name.get_ref().as_str())
            .collect();
        f.sort_unstable();
        f.dedup();
        f
    }
}
