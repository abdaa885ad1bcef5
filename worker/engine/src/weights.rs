//! Reading weights: safetensors (single or sharded, read tensor by tensor so that peak memory
//! stays near the model's size) or `pytorch_model.bin`; every tensor the network takes is
//! remembered, so adapters can be merged into a copy without reading the base model again.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

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
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_string(), t.clone());
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let t = self.inner.get_unchecked(name, dtype, dev)?;
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        let mut tensors = HashMap::new();
        for (i, w) in files.weights.iter().enumerate() {
            for (name, entry) in check_safetensors(w)? {
                tensors.insert(name, (i, entry));
            }
        }
        let files = files
            .weights
            .iter()
            .map(|w| {
                std::fs::File::open(w).map_err(|source| EngineError::Io {
                    path: w.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Box::new(FileSafetensors { files, tensors })
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

/// A tensor's place in a safetensors file.
#[derive(Debug, Clone)]
struct Entry {
    dtype: DType,
    shape: Vec<usize>,
    /// Absolute byte range in the file.
    start: u64,
    end: u64,
}

/// Safetensors files read with positioned reads, one tensor at a time.
struct FileSafetensors {
    files: Vec<std::fs::File>,
    tensors: HashMap<String, (usize, Entry)>,
}

impl SimpleBackend for FileSafetensors {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let t = self.get_unchecked(name, dtype, dev)?;
        if t.shape() != &s {
            candle_core::bail!(
                "shape mismatch for {name}, expected {s:?}, got {:?}",
                t.shape()
            )
        }
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let (file, e) = self
            .tensors
            .get(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("cannot find tensor {name}")))?;
        let mut bytes = vec![0u8; (e.end - e.start) as usize];
        self.files[*file].read_exact_at(&mut bytes, e.start)?;
        Tensor::from_raw_buffer(&bytes, e.dtype, &e.shape, dev)?.to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}

fn safetensors_dtype(s: &str) -> Option<DType> {
    Some(match s {
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "F64" => DType::F64,
        "U8" => DType::U8,
        "U32" => DType::U32,
        "I64" => DType::I64,
        _ => return None,
    })
}

/// Check every safetensors file's header and size (cheap: no tensor data is read).
pub fn check_weights(files: &ModelFiles) -> Result<()> {
    files
        .weights
        .iter()
        .filter(|w| is_safetensors(w))
        .try_for_each(|w| check_safetensors(w).map(|_| ()))
}

/// The number of weights in the model's files: exact for safetensors (from the headers), the
/// bytes over 4 for a PyTorch `.bin` (whose pickle is not read here; f32 checkpoints).
pub fn parameter_count(files: &ModelFiles) -> Result<u64> {
    let mut n = 0u64;
    for w in &files.weights {
        if is_safetensors(w) {
            n += check_safetensors(w)?
                .values()
                .map(|e| e.shape.iter().product::<usize>() as u64)
                .sum::<u64>();
        } else {
            let len = std::fs::metadata(w)
                .map_err(|source| EngineError::Io {
                    path: w.clone(),
                    source,
                })?
                .len();
            n += len / 4;
        }
    }
    Ok(n)
}

/// Read and check a safetensors file's header and size, so that a corrupt or truncated file
/// gives a clear error instead of a crash; returns where each tensor is.
fn check_safetensors(path: &Path) -> Result<HashMap<String, Entry>> {
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
    let mut entries = HashMap::new();
    for (name, t) in v.as_object().into_iter().flatten() {
        if name == "__metadata__" {
            continue;
        }
        let bad = || corrupt(format!("the header entry of `{name}` is malformed"));
        let dtype_name = t.get("dtype").and_then(|d| d.as_str()).ok_or_else(bad)?;
        let shape: Vec<usize> = t
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(bad)?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize).ok_or_else(bad))
            .collect::<Result<_>>()?;
        let offsets = t
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .ok_or_else(bad)?;
        let (a, b) = match offsets.as_slice() {
            [a, b] => (a.as_u64().ok_or_else(bad)?, b.as_u64().ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        if b > data_len || a > b {
            return Err(corrupt(format!(
                "tensor `{name}` needs bytes up to {b} but the file holds {data_len} (truncated?)"
            )));
        }
        let Some(dtype) = safetensors_dtype(dtype_name) else {
            // Tensors of other types (e.g. bool buffers) are never read by the networks.
            continue;
        };
        let need = shape.iter().product::<usize>() * dtype.size_in_bytes();
        if need as u64 != b - a {
            return Err(corrupt(format!(
                "tensor `{name}` has {} bytes for {need} needed",
                b - a
            )));
        }
        let base = 8 + header_len;
        entries.insert(
            name.clone(),
            Entry {
                dtype,
                shape,
                start: base + a,
                end: base + b,
            },
        );
    }
    Ok(entries)
}
