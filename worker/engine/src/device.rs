//! Opening the configured device ([`DeviceSpec`]): `auto` is CUDA when the binary was built
//! with the `cuda` feature and a GPU is present, else the CPU.

use candle_core::Device;
use types::DeviceSpec;

use super::error::{EngineError, Result};

/// Open the device `spec` names.
pub fn select(spec: DeviceSpec) -> Result<Device> {
    let gpu = |n: usize| {
        Device::new_cuda(n).map_err(|e| {
            EngineError::Generation(format!(
                "device `{spec}` is not available: {e} (CUDA needs a binary built with `--features cuda`)"
            ))
        })
    };
    match spec {
        DeviceSpec::Auto => Ok(Device::cuda_if_available(0).unwrap_or(Device::Cpu)),
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Cuda(n) => gpu(n),
    }
}

/// A short name for records: `cpu` or `cuda:N`.
pub fn name(d: &Device) -> String {
    match d.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// The CPU kernels that run on this machine, for records: `nlebench-linear`'s for the linear
/// layers (AVX-512 or AVX2, else candle's matmul), `nlebench-attention`'s for f32 attention, and
/// `gemm`'s, which candle's matmul uses for the rest (f16/bf16 attention): AVX-512 (`x86-v4`),
/// AVX2 with FMA (`x86-v3`), or portable.
pub fn cpu_gemm_kernels() -> String {
    let linear = linear::Isa::detect().map_or("candle's matmul", linear::Isa::name);
    let mut gemm = "portable";
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            gemm = "x86-v3 (AVX2, FMA)";
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            gemm = "x86-v4 (AVX-512)";
        }
    }
    let attention = attention::kernel_name();
    format!(
        "linear layers: packed {linear}; f32 attention: {attention}; other products: gemm {gemm}"
    )
}

/// The memory jobs on `device` can use, in bytes: the GPU's total memory, or the machine's
/// (`MemTotal` of /proc/meminfo) on the CPU. `None` where it cannot be read.
pub fn memory_bytes(device: &Device) -> Option<u64> {
    match device {
        #[cfg(feature = "cuda")]
        Device::Cuda(c) => c.cuda_stream().context().total_mem().ok().map(|b| b as u64),
        Device::Cpu => std::fs::read_to_string("/proc/meminfo")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse::<u64>()
            .ok()
            .map(|kb| kb * 1024),
        _ => None,
    }
}

/// Whether an error is an out-of-memory failure of the device (then a smaller batch may fit).
pub fn is_oom(e: &EngineError) -> bool {
    let s = e.to_string().to_lowercase();
    s.contains("out of memory") || s.contains("cuda_error_out_of_memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_always_there() {
        assert!(matches!(select(DeviceSpec::Cpu).unwrap(), Device::Cpu));
        assert!(select(DeviceSpec::Auto).is_ok());
    }

    #[test]
    fn the_machines_memory_is_read() {
        let bytes = memory_bytes(&Device::Cpu).unwrap();
        assert!(bytes > 64 << 20, "{bytes} bytes");
    }
}
