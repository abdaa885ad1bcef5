//! Keeps the last loaded model so consecutive jobs on it do not reload it.

use std::sync::{Arc, Mutex};

use candle_core::Device;
use orchestrator::spec::{Dtype, Source};

use super::error::Result;
use super::files::locate;
use super::model::LoadedModel;

/// A one-entry model cache shared by a worker's jobs.
#[derive(Debug, Default)]
pub struct ModelCache {
    last: Mutex<Option<(String, Arc<LoadedModel>)>>,
    loads: std::sync::atomic::AtomicUsize,
}

impl ModelCache {
    /// The model for `source` in `dtype`, loading it unless it is the last one used.
    pub fn get(
        &self,
        source: &Source,
        dtype: Dtype,
        models_dir: &std::path::Path,
        device: &Device,
    ) -> Result<Arc<LoadedModel>> {
        let key = format!("{source}|{}", dtype.as_str());
        let mut last = self.last.lock().expect("model cache lock");
        if let Some((k, m)) = last.as_ref()
            && *k == key
        {
            return Ok(m.clone());
        }
        *last = None; // free the old model before loading the next
        let files = locate(source, models_dir, true)?;
        let model = Arc::new(LoadedModel::load(&files, dtype, device)?);
        self.loads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *last = Some((key, model.clone()));
        Ok(model)
    }

    /// How many times a model was loaded from disk.
    pub fn loads(&self) -> usize {
        self.loads.load(std::sync::atomic::Ordering::Relaxed)
    }
}
