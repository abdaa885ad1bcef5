//! Reading weights: safetensors (single or sharded, memory-mapped) or `pytorch_model.bin`;
//! every tensor the network takes is remembered, so adapters can be merged into a copy
//! without reading the base model from disk again.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};

use super::error::{EngineError, Result};
use super::files::ModelFiles;

/// Tensors by name, as the network took them (in the model's dtype).
pub type TensorMap = HashMap<String, Tensor>;

/// A backend that passes requests on and remembers what it returned.
struct Recorder {
    inner: Box<dyn SimpleBackend>,
    seen: Arc<Mutex<TensorMap>>,
}

impl SimpleBackend for Recorder {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let t = self.inner.get(s, name, h, dtype, dev)?;
        self.seen
            .lock()
            .expect("recorder lock")
            .insert(name.to_string(), t.clone());
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let t = self.inner.get_unchecked(name, dtype, dev)?;
        self.seen
            .lock()
            .expect("recorder lock")
            .insert(name.to_string(), t.clone());
        Ok(t)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.inner.contains_tensor(name)
    }
}

/// A var builder over a model's weight files that records the tensors taken from it.
pub fn recording_builder(
    files: &ModelFiles,
    dtype: DType,
    device: &Device,
) -> Result<(VarBuilder<'static>, Arc<Mutex<TensorMap>>)> {
    let inner: Box<dyn SimpleBackend> = if files.weights.iter().all(|w| is_safetensors(w)) {
        for w in &files.weights {
            check_safetensors(w)?;
        }
        // SAFETY: the weight files are memory-mapped read-only; they live in a model
        // directory or the Hugging Face cache and are not modified while being read.
        let st = unsafe { MmapedSafetensors::multi(&files.weights) }.map_err(|e| {
            EngineError::CorruptWeights {
                path: files.weights[0].clone(),
                message: e.to_string(),
            }
        })?;
        Box::new(st)
    } else {
        let mut map = TensorMap::new();
        for w in &files.weights {
            let tensors =
                candle_core::pickle::read_all(w).map_err(|e| EngineError::CorruptWeights {
                    path: w.clone(),
                    message: format!("cannot read the PyTorch checkpoint: {e}"),
                })?;
            map.extend(tensors);
        }
        Box::new(map)
    };
    let seen = Arc::new(Mutex::new(TensorMap::new()));
    let backend = Recorder {
        inner,
        seen: seen.clone(),
    };
    Ok((
        VarBuilder::from_backend(Box::new(backend), dtype, device.clone()),
        seen,
    ))
}

fn is_safetensors(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "safetensors")
}

/// Check every safetensors file's header and size (cheap: no tensor data is read).
pub fn check_weights(files: &ModelFiles) -> Result<()> {
    files
        .weights
        .iter()
        .filter(|w| is_safetensors(w))
        .try_for_each(|w| check_safetensors(w))
}

/// Check a safetensors file's header and size before mapping it, so that a corrupt or
/// truncated file gives a clear error instead of a crash.
fn check_safetensors(path: &Path) -> Result<()> {
    use std::io::Read;
    let corrupt = |message: String| EngineError::CorruptWeights {
        path: path.to_path_buf(),
        message,
    };
    let io = |source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let mut n = [0u8; 8];
    f.read_exact(&mut n)
        .map_err(|_| corrupt(format!("the file has only {len} bytes")))?;
    let header_len = u64::from_le_bytes(n);
    if header_len > len.saturating_sub(8) || header_len > 100_000_000 {
        return Err(corrupt(format!(
            "the header claims {header_len} bytes but the file has {len}"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    f.read_exact(&mut header)
        .map_err(|e| corrupt(format!("cannot read the header: {e}")))?;
    let v: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| corrupt(format!("the header is not valid JSON: {e}")))?;
    let data_len = len - 8 - header_len;
    let end = v
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .filter_map(|(_, t)| t.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    if end > data_len {
        return Err(corrupt(format!(
            "tensors need {end} bytes of data but the file holds {data_len} (truncated?)"
        )));
    }
    Ok(())
}
