//! The weight dtype a model runs in.

use serde::{Deserialize, Serialize};

/// Weight dtype used for inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// 32-bit float (the default; exact parity with transformers on CPU).
    #[default]
    F32,
    /// 16-bit float.
    F16,
    /// bfloat16.
    Bf16,
}

impl Dtype {
    /// Lower-case name as written in spec files.
    pub fn as_str(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
            Dtype::Bf16 => "bf16",
        }
    }
}

impl std::str::FromStr for Dtype {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Dtype::F32, Dtype::F16, Dtype::Bf16]
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| format!("unknown dtype `{s}`; use f32, f16 or bf16"))
    }
}
