//! Keeps the last base model loaded, and the last adapter merged into it, so consecutive
//! jobs on the same model do not reload it and switching adapters never rereads the base.

use std::sync::{Arc, Mutex};

use candle_core::Device;
use types::{Dtype, Source};

use super::error::Result;
use super::files::{Locations, locate, locate_adapter};
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
        at: &Locations,
        device: &Device,
    ) -> Result<Arc<LoadedModel>> {
        let key = format!("{source}|{}", dtype.as_str());
        let base = self.base(&key, || {
            let files = locate(source, at, true)?;
            LoadedModel::load(&files, dtype, device)
        })?;
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
        let (dir, _) = locate_adapter(adapter, &at.hub, true)?;
        let merged = Arc::new(merge(&base, &Adapter::load(&dir)?, &adapter.to_string())?);
        *slot = Some((akey, merged.clone()));
        Ok(merged)
    }

    /// The source of the base model held now (`None` while none is, or while one is loading).
    pub fn held_source(&self) -> Option<String> {
        let slot = self.base.try_lock().ok()?;
        slot.as_ref()
            .and_then(|(key, _)| key.rsplit_once('|'))
            .map(|(source, _)| source.to_string())
    }

    /// The base model under `key`, from the cache or else from `load`. A load that fails or
    /// panics leaves the cache empty and usable (a poisoned lock is taken over, not
    /// propagated), so one bad model cannot take the worker down.
    fn base(
        &self,
        key: &str,
        load: impl FnOnce() -> Result<LoadedModel>,
    ) -> Result<Arc<LoadedModel>> {
        let mut slot = self
            .base
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((k, m)) = slot.as_ref()
            && k == key
        {
            return Ok(m.clone());
        }
        *slot = None; // free the old model before loading the next
        *self
            .merged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        let model = Arc::new(load()?);
        self.loads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *slot = Some((key.to_string(), model.clone()));
        Ok(model)
    }

    /// How many times a base model was loaded from disk.
    pub fn loads(&self) -> usize {
        self.loads.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_load_leaves_the_cache_usable() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModelCache::default();
        let source = Source::Random {
            preset: "norgpt-tiny".into(),
            seed: 1,
        };
        let at = Locations {
            models_dir: dir.path().to_path_buf(),
            hub: types::HubSettings::at(dir.path().join("hub")),
        };
        let load = || cache.get(&source, Dtype::F32, None, &at, &Device::Cpu);
        load().unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cache.base("other", || panic!("a model that panics while loading"))
        }));
        assert!(panicked.is_err());
        assert!(
            cache.base.is_poisoned(),
            "the panic happened under the lock"
        );
        let m = load().unwrap();
        assert_eq!(m.arch, "gpt2");
        assert_eq!(cache.loads(), 2, "loaded again: the panic emptied the slot");
        assert!(load().is_ok() && cache.loads() == 2, "and cached again");
    }
}
