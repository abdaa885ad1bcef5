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

/// Texts per forward pass of MAUVE's featurizer.
const FEATURE_BATCH: usize = 8;

/// MAUVE's featurization: the final hidden state at the last of each text's first
/// `max_tokens` tokens under a causal LM (the authors used gpt2-large and 256 tokens). Texts go
/// through the model [`FEATURE_BATCH`] at a time, right-padded among texts of similar length;
/// on the CPU each text's features are bitwise those it gets alone (the engine's
/// batch-invariant products and attention).
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
        let mut ids = Vec::with_capacity(texts.len());
        for t in texts {
            let mut i = model.encode(t)?;
            i.truncate(self.max_tokens.min(model.max_positions));
            if !i.is_empty() {
                ids.push(i);
            }
        }
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut out = vec![Vec::new(); ids.len()];
        for chunk in order.chunks(FEATURE_BATCH) {
            let width = chunk.iter().map(|&i| ids[i].len()).max().unwrap_or(0);
            let mut step = Step {
                ids: Vec::with_capacity(chunk.len()),
                positions: Vec::with_capacity(chunk.len()),
                key_mask: Vec::with_capacity(chunk.len()),
            };
            for &i in chunk {
                let (row, pad) = (&ids[i], width - ids[i].len());
                step.ids.push(
                    row.iter()
                        .copied()
                        .chain(std::iter::repeat_n(0, pad))
                        .collect(),
                );
                step.key_mask.push(
                    std::iter::repeat_n(1, row.len())
                        .chain(std::iter::repeat_n(0, pad))
                        .collect(),
                );
                step.positions.push((0..width as u32).collect());
            }
            let h = model.hidden(&step, None)?.to_dtype(DType::F32)?;
            for (r, &i) in chunk.iter().enumerate() {
                let last = ids[i].len() - 1;
                out[i] = h
                    .get(r)
                    .and_then(|x| x.get(last))
                    .and_then(|x| x.to_vec1())
                    .map_err(EngineError::from)?;
            }
        }
        Ok(out)
    }
}
