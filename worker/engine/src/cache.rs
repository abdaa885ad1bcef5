//! Keeps the last base model loaded, and the last adapter merged into it, so consecutive
//! jobs on the same model do not reload it and switching adapters never rereads the base.

use std::sync::{Arc, Mutex};

use candle_core::Device;
use types::{Dtype, Source};

use super::error::Result;
use super::files::{locate, locate_adapter};
use super::lora::{Adapter, merge};
use super::model::LoadedModel;

type Slot = Mutex<Option<(String, Arc<LoadedModel>)>>;

/// A model cache shared by a worker's jobs: one base model and one merged adapter.
#[derive(Debug, Default)]
pub struct ModelCache {
    base: Slot,
    merged: Slot,
    loads: std::sync::atomic::AtomicUsize,
}

impl ModelCache {
    /// The model for `source` in `dtype` with `adapter` merged, loading the base only when it
    /// is not the last base used.
    pub fn get(
        &self,
        source: &Source,
        dtype: Dtype,
        adapter: Option<&Source>,
        models_dir: &std::path::Path,
        device: &Device,
    ) -> Result<Arc<LoadedModel>> {
        let key = format!("{source}|{}", dtype.as_str());
        let base = {
            let mut slot = self
                .base
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match slot.as_ref() {
                Some((k, m)) if *k == key => m.clone(),
                _ => {
                    *slot = None; // free the old model before loading the next
                    *self
                        .merged
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                    let files = locate(source, models_dir, true)?;
                    let model = Arc::new(LoadedModel::load(&files, dtype, device)?);
                    self.loads
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    *slot = Some((key.clone(), model.clone()));
                    model
                }
            }
        };
        let Some(adapter) = adapter else {
            return Ok(base);
        };
        let akey = format!("{key}|{adapter}");
        let mut slot = self
            .merged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((k, m)) = slot.as_ref()
            && *k == akey
        {
            return Ok(m.clone());
        }
        *slot = None;
        let (dir, _) = locate_adapter(adapter, true)?;
        let merged = Arc::new(merge(&base, &Adapter::load(&dir)?, &adapter.to_string())?);
        *slot = Some((akey, merged.clone()));
        Ok(merged)
    }

    /// How many times a base model was loaded from disk.
    pub fn loads(&self) -> usize {
        self.loads.load(std::sync::atomic::Ordering::Relaxed)
    }
}
