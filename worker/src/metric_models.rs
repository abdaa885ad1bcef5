//! The models of the model-based metrics (the NLI classifier of the entailment ratios, the
//! feature model of MAUVE), loaded once per worker and kept for the runs that follow.

use std::sync::{Arc, Mutex};

use candle_core::Device;
use engine::bert::BertClassifier;
use engine::{Locations, ModelCache};
use spec::{Dtype, Source, TaskSpec};

use crate::tasks::generation::MetricModels;

/// Tokens of each text MAUVE's feature model reads (the authors' 256).
pub const MAUVE_MAX_TOKENS: usize = 256;

/// Keeps the last NLI classifier and feature model loaded.
#[derive(Debug, Default)]
pub struct MetricModelCache {
    lm: ModelCache,
    nli: Mutex<Option<(String, Arc<BertClassifier>)>>,
    toxicity: Mutex<Option<(String, Arc<BertClassifier>)>>,
}

impl MetricModelCache {
    /// The models `task` names for the metrics it computes; one that cannot be loaded is
    /// left out with the reason.
    pub fn models_for(
        &self,
        task: &TaskSpec,
        at: &Locations,
        device: &Device,
        download: bool,
    ) -> MetricModels {
        let mut out = MetricModels::default();
        let wants = |name: &str| task.metrics.iter().any(|m| m == name);
        if metrics::entailment::NAMES.iter().any(|n| wants(n))
            && let Some(src) = &task.nli_model
        {
            match self.nli(src, at, device, download) {
                Ok(clf) => out.nli = Some(clf),
                Err(e) => out.missing.push(format!(
                    "entailment ratios left out: the NLI model {src} could not be loaded: {}",
                    one_line(&e)
                )),
            }
        }
        if wants("mauve")
            && let Some(src) = &task.mauve_model
        {
            match self.lm.get(src, Dtype::F32, None, at, device) {
                Ok(lm) => out.mauve = Some((lm, MAUVE_MAX_TOKENS)),
                Err(e) => out.missing.push(format!(
                    "MAUVE left out: the feature model {src} could not be loaded: {}",
                    one_line(&e)
                )),
            }
        }
        out
    }

    fn nli(
        &self,
        src: &Source,
        at: &Locations,
        device: &Device,
        download: bool,
    ) -> Result<Arc<BertClassifier>, engine::EngineError> {
        classifier(&self.nli, src, at, device, download)
    }

    /// The local toxicity classifier `src` (kept for the next runs).
    pub fn toxicity(
        &self,
        src: &Source,
        at: &Locations,
        device: &Device,
        download: bool,
    ) -> Result<Arc<BertClassifier>, engine::EngineError> {
        classifier(&self.toxicity, src, at, device, download)
    }
}

/// The classifier in `slot` if it is `src`, else `src` loaded into it.
fn classifier(
    slot: &Mutex<Option<(String, Arc<BertClassifier>)>>,
    src: &Source,
    at: &Locations,
    device: &Device,
    download: bool,
) -> Result<Arc<BertClassifier>, engine::EngineError> {
    let key = src.to_string();
    let mut slot = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((k, clf)) = slot.as_ref()
        && *k == key
    {
        return Ok(clf.clone());
    }
    let files = engine::locate(src, at, download)?;
    let clf = Arc::new(BertClassifier::load(&files, device)?);
    *slot = Some((key, clf.clone()));
    Ok(clf)
}

/// An error's text on one line (a run's notes are one per line).
fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
