//! Where the Hugging Face cache is and how the Hub is reached: what the binary reads from
//! `HF_HUB_CACHE` (or `HF_HOME`), `HF_HUB_OFFLINE` and `HF_ENDPOINT` and hands to the engine
//! and the dataset loaders, which read no environment themselves.

use std::path::PathBuf;

/// The Hugging Face cache and Hub access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSettings {
    /// The cache directory (`{models,datasets}--ORG--NAME/…` below it, as `huggingface_hub`
    /// lays it out).
    pub cache: PathBuf,
    /// Never download (`HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// Another Hub than huggingface.co (`HF_ENDPOINT`).
    pub endpoint: Option<String>,
}

impl HubSettings {
    /// Settings with the cache at `cache`, online, at the default endpoint.
    pub fn at(cache: impl Into<PathBuf>) -> HubSettings {
        HubSettings {
            cache: cache.into(),
            offline: false,
            endpoint: None,
        }
    }
}
