//! The engine's side of the model-based metrics: a BERT classifier for the entailment
//! ratios and a causal LM's last hidden state as MAUVE's features, behind the traits the
//! metrics crate defines.

use candle_core::DType;
use metrics::entailment::NliClassifier;
use metrics::mauve::Featurizer;

use crate::bert::BertClassifier;
use crate::model::{LoadedModel, Step};
use crate::{EngineError, Result};

/// Rows per forward pass of the NLI classifier.
const NLI_BATCH: usize = 8;

impl NliClassifier for BertClassifier {
    type Error = EngineError;

    fn label_names(&self) -> &[String] {
        &self.labels
    }

    /// The argmax label of every text, in batches of texts of similar length.
    fn classify(&self, texts: &[String]) -> Result<Vec<usize>> {
        let ids = texts
            .iter()
            .map(|t| self.encode(t))
            .collect::<Result<Vec<_>>>()?;
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut out = vec![0usize; ids.len()];
        for chunk in order.chunks(NLI_BATCH) {
            let rows: Vec<Vec<u32>> = chunk.iter().map(|&i| ids[i].clone()).collect();
            let argmax: Vec<u32> = self
                .logits(&rows)
                .and_then(|l| l.to_dtype(DType::F32)?.argmax(1)?.to_vec1())
                .map_err(EngineError::from)?;
            for (&i, a) in chunk.iter().zip(argmax) {
                out[i] = a as usize;
            }
        }
        Ok(out)
    }
}

/// MAUVE's featurization: the final hidden state at the last of each text's first
/// `max_tokens` tokens under a causal LM (the authors used gpt2-large and 256 tokens).
#[derive(Debug, Clone, Copy)]
pub struct LastHiddenState<'a> {
    /// The causal LM.
    pub model: &'a LoadedModel,
    /// Tokens kept per text.
    pub max_tokens: usize,
}

impl Featurizer for LastHiddenState<'_> {
    type Error = EngineError;

    fn features(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let model = self.model;
        let mut out = Vec::with_capacity(texts.len());
        for t in texts {
            let mut ids = model.encode(t)?;
            ids.truncate(self.max_tokens.min(model.max_positions));
            if ids.is_empty() {
                continue;
            }
            let n = ids.len();
            let step = Step {
                positions: vec![(0..n as u32).collect()],
                key_mask: vec![vec![1; n]],
                ids: vec![ids],
            };
            let h = model.hidden(&step, None)?;
            let last: Vec<f32> = h
                .narrow(1, n - 1, 1)
                .and_then(|x| x.flatten_all()?.to_dtype(DType::F32)?.to_vec1())
                .map_err(EngineError::from)?;
            out.push(last);
        }
        Ok(out)
    }
}
