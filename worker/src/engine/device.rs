//! Choosing where inference runs: `NLEBENCH_DEVICE` = `auto` (CUDA when the binary was built
//! with the `cuda` feature and a GPU is present, else CPU), `cpu`, or `cuda[:N]`.

use candle_core::Device;

use super::error::{EngineError, Result};

/// The device named by `spec` (`auto`, `cpu`, `cuda`, `cuda:N`).
pub fn select(spec: &str) -> Result<Device> {
    let gpu = |n: usize| {
        Device::new_cuda(n).map_err(|e| {
            EngineError::Generation(format!(
                "device `{spec}` is not available: {e} (CUDA needs a binary built with `--features cuda`)"
            ))
        })
    };
    match spec {
        "auto" => Ok(Device::cuda_if_available(0).unwrap_or(Device::Cpu)),
        "cpu" => Ok(Device::Cpu),
        "cuda" => gpu(0),
        s => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => gpu(n),
            None => Err(EngineError::Generation(format!(
                "unknown device `{s}`; use auto, cpu, cuda or cuda:N"
            ))),
        },
    }
}

/// The device chosen by `NLEBENCH_DEVICE` (default `auto`).
pub fn from_env() -> Result<Device> {
    select(&std::env::var("NLEBENCH_DEVICE").unwrap_or_else(|_| "auto".into()))
}

/// A short name for records: `cpu` or `cuda:N`.
pub fn name(d: &Device) -> String {
    match d.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
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
    fn cpu_is_always_there_and_unknown_devices_are_rejected() {
        assert!(matches!(select("cpu").unwrap(), Device::Cpu));
        assert!(select("auto").is_ok());
        let e = select("tpu").unwrap_err();
        assert!(e.to_string().contains("unknown device `tpu`"), "{e}");
    }
}
