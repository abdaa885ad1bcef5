//! The memory a run needs: its model's weights in the run's dtype, plus the KV cache of its
//! batch at full context. Workers compare it with what they offer before claiming a job
//! (memory admission).

use crate::manifest::RunManifest;
use crate::resolve::ModelMemory;
use types::Dtype;

/// Bytes per value in `dtype`.
fn bytes(dtype: Dtype) -> u64 {
    match dtype {
        Dtype::F32 => 4,
        Dtype::F16 | Dtype::Bf16 => 2,
    }
}

/// MiB a job of the run of `m` needs ([`need_of`]). `None` for manifests without the model's
/// size (written before admission existed): those are never refused.
pub fn need_mb(m: &RunManifest) -> Option<u64> {
    Some(need_of(
        m.model.resolved.memory?,
        m.model.dtype,
        m.setting.batch_size,
        m.setting.max_tokens,
    ))
}

/// MiB for a model of `size` in `dtype`: its weights plus the KV cache of `batch_size` rows (1
/// when the setting names none: the worker then sizes batches to its memory budget) of
/// `max_tokens` tokens (else the model's context).
pub fn need_of(
    size: ModelMemory,
    dtype: Dtype,
    batch_size: Option<u32>,
    max_tokens: Option<u32>,
) -> u64 {
    let b = bytes(dtype);
    let rows = u64::from(batch_size.unwrap_or(1));
    let tokens = max_tokens.map_or(size.context, |t| u64::from(t).min(size.context));
    (size.parameters * b + size.kv_per_token * b * rows * tokens).div_ceil(1 << 20)
}

/// Whether a worker offering `capacity_mb` (`None`: unknown) can take a job needing `need_mb`.
pub fn fits(need_mb: Option<u64>, capacity_mb: Option<u64>) -> bool {
    match (need_mb, capacity_mb) {
        (Some(need), Some(have)) => need <= have,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_needs_its_weights_and_the_kv_cache_of_its_batch() {
        // NorGPT-3B's shape.
        let size = ModelMemory {
            parameters: 2_953_202_940,
            kv_per_token: 2 * 32 * 2688,
            context: 2048,
        };
        // bf16, 8 rows of 512 tokens: 5.5 GiB of weights and 1.3 GiB of cache.
        let weights = 2_953_202_940u64 * 2;
        let cache = 2 * 32 * 2688 * 2 * 8 * 512;
        let want = (weights + cache).div_ceil(1 << 20);
        assert_eq!(need_of(size, Dtype::Bf16, Some(8), Some(512)), want);
        // f32 doubles both; no batch size: one row; no token limit: the whole context.
        assert_eq!(
            need_of(size, Dtype::F32, None, None),
            (2_953_202_940u64 * 4 + 2 * 32 * 2688 * 4 * 2048).div_ceil(1 << 20)
        );
        assert!(fits(Some(want), Some(80 * 1024)));
        assert!(!fits(Some(want), Some(4 * 1024)));
        assert!(
            fits(None, Some(1)),
            "a manifest without sizes is never refused"
        );
        assert!(
            fits(Some(1 << 40), None),
            "a worker without a capacity takes all"
        );
    }
}
