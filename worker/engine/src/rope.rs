//! Rotary position embeddings with transformers' scalings (`rope_type` default, linear,
//! dynamic, yarn, llama3), each computed as `modeling_rope_utils.py` computes it, in f32.

use candle_core::{DType, Device, Result, Tensor};
use serde_json::Value;

/// The `rope_type`s this engine computes.
pub const SUPPORTED: &str = "rope scaling default, linear, dynamic, yarn and llama3";

/// How the rotary frequencies are scaled.
#[derive(Debug, Clone, PartialEq)]
pub enum Scaling {
    /// `1 / theta^(2i / d)`.
    Default,
    /// Frequencies divided by `factor` (position interpolation).
    Linear { factor: f64 },
    /// Dynamic NTK: the base grows with the text's length beyond `max_positions`.
    Dynamic { factor: f64, max_positions: usize },
    /// YaRN: interpolation ramped over dimensions, cos and sin multiplied by `attention`.
    Yarn {
        factor: f64,
        original: usize,
        beta_fast: f64,
        beta_slow: f64,
        truncate: bool,
        attention: f64,
    },
    /// Llama 3.x: low frequencies divided by `factor`, a smooth ramp between.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original: usize,
    },
}

/// Why config.json's rotary parameters cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RopeError {
    /// A scaling (or option) this engine does not compute: the file is fine.
    Unsupported(String),
    /// A supported scaling lacks a parameter it needs: the file is incomplete.
    Missing(String),
}

/// A rotary embedding's base and scaling, as config.json states them.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeSpec {
    /// `rope_theta`.
    pub theta: f64,
    /// `rope_type` and its parameters.
    pub scaling: Scaling,
}

impl RopeSpec {
    /// Unscaled rotary embedding with base `theta`.
    pub fn plain(theta: f64) -> RopeSpec {
        RopeSpec {
            theta,
            scaling: Scaling::Default,
        }
    }

    /// Read `params` (a `rope_parameters` or `rope_scaling` object, or none) with `theta` as the
    /// base where `params` states none; `max_positions` is the config's
    /// `max_position_embeddings`. Errs with the unsupported feature's name.
    pub fn parse(
        params: Option<&Value>,
        theta: f64,
        max_positions: usize,
    ) -> std::result::Result<RopeSpec, RopeError> {
        let Some(p) = params.filter(|p| !p.is_null()) else {
            return Ok(RopeSpec::plain(theta));
        };
        let theta = p.get("rope_theta").and_then(Value::as_f64).unwrap_or(theta);
        let kind = p
            .get("rope_type")
            .or_else(|| p.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("default");
        let num = |key: &str| p.get(key).and_then(Value::as_f64);
        let missing =
            |key: &str| RopeError::Missing(format!("rope scaling `{kind}` without `{key}`"));
        let need = |key: &str| num(key).ok_or_else(|| missing(key));
        if num("partial_rotary_factor").is_some_and(|f| f != 1.0) {
            return Err(RopeError::Unsupported(
                "`partial_rotary_factor` other than 1".into(),
            ));
        }
        let original = || {
            p.get("original_max_position_embeddings")
                .and_then(Value::as_u64)
                .map(|n| n as usize)
                .ok_or_else(|| missing("original_max_position_embeddings"))
        };
        let scaling = match kind {
            "default" => Scaling::Default,
            "linear" => Scaling::Linear {
                factor: need("factor")?,
            },
            "dynamic" => Scaling::Dynamic {
                factor: need("factor")?,
                max_positions,
            },
            "yarn" => {
                let original = original()?;
                let factor = num("factor").unwrap_or(max_positions as f64 / original as f64);
                let mscale = |scale: f64, m: f64| {
                    if scale <= 1.0 {
                        1.0
                    } else {
                        0.1 * m * scale.ln() + 1.0
                    }
                };
                let attention = match (
                    num("attention_factor"),
                    num("mscale"),
                    num("mscale_all_dim"),
                ) {
                    (Some(a), _, _) => a,
                    (None, Some(m), Some(all)) if m != 0.0 && all != 0.0 => {
                        mscale(factor, m) / mscale(factor, all)
                    }
                    _ => mscale(factor, 1.0),
                };
                Scaling::Yarn {
                    factor,
                    original,
                    beta_fast: num("beta_fast").filter(|b| *b != 0.0).unwrap_or(32.0),
                    beta_slow: num("beta_slow").filter(|b| *b != 0.0).unwrap_or(1.0),
                    truncate: p.get("truncate").and_then(Value::as_bool).unwrap_or(true),
                    attention,
                }
            }
            "llama3" => Scaling::Llama3 {
                factor: need("factor")?,
                low_freq_factor: need("low_freq_factor")?,
                high_freq_factor: need("high_freq_factor")?,
                original: original()?,
            },
            other => return Err(RopeError::Unsupported(format!("rope scaling `{other}`"))),
        };
        Ok(RopeSpec { theta, scaling })
    }
}

/// Rotary position tables for one head size and [`RopeSpec`].
#[derive(Debug, Clone)]
pub struct Rotary {
    dim: usize,
    spec: RopeSpec,
    /// Frequencies for texts within the trained length.
    inv_freq: Vec<f32>,
    /// cos and sin are multiplied by this (YaRN's attention factor; 1 otherwise).
    attention: f32,
}

/// `1 / theta^(2i / dim)` in f32, as transformers computes it.
fn base_frequencies(theta: f64, dim: usize) -> Vec<f32> {
    let theta = theta as f32;
    (0..dim / 2)
        .map(|i| 1.0 / theta.powf((2 * i) as f32 / dim as f32))
        .collect()
}

impl Rotary {
    /// Tables for heads of `dim` rotated dimensions.
    pub fn new(dim: usize, spec: &RopeSpec) -> Rotary {
        let base = base_frequencies(spec.theta, dim);
        let (inv_freq, attention) = match spec.scaling {
            Scaling::Default | Scaling::Dynamic { .. } => (base, 1.0),
            Scaling::Linear { factor } => (base.iter().map(|f| f / factor as f32).collect(), 1.0),
            Scaling::Yarn {
                factor,
                original,
                beta_fast,
                beta_slow,
                truncate,
                attention,
            } => (
                yarn(
                    spec.theta,
                    dim,
                    factor,
                    original,
                    (beta_fast, beta_slow),
                    truncate,
                ),
                attention as f32,
            ),
            Scaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original,
            } => (
                llama3(&base, factor, low_freq_factor, high_freq_factor, original),
                1.0,
            ),
        };
        Rotary {
            dim,
            spec: spec.clone(),
            inv_freq,
            attention,
        }
    }

    /// Whether the frequencies depend on the text's length (dynamic NTK), so that the caller
    /// must say how long each query's text is ([`Rotary::tables`]).
    pub fn length_dependent(&self) -> bool {
        matches!(self.spec.scaling, Scaling::Dynamic { .. })
    }

    /// Dynamic NTK's frequencies for a text of `len` positions (transformers'
    /// `_compute_dynamic_ntk_parameters`).
    fn dynamic(&self, len: usize) -> Option<Vec<f32>> {
        let Scaling::Dynamic {
            factor,
            max_positions,
        } = self.spec.scaling
        else {
            return None;
        };
        if len <= max_positions {
            return None;
        }
        let d = self.dim as f64;
        let base = self.spec.theta
            * ((factor * len as f64 / max_positions as f64) - (factor - 1.0)).powf(d / (d - 2.0));
        Some(base_frequencies(base, self.dim))
    }

    /// cos and sin for per-row positions `[B, T]`, in `dtype`. `lengths` (`[B][T]`, only read
    /// when [`Rotary::length_dependent`]) gives the length of the text each query belongs to,
    /// as transformers takes it: its largest position in this pass, plus one.
    pub fn tables(
        &self,
        positions: &[Vec<u32>],
        lengths: Option<&[Vec<u32>]>,
        dtype: DType,
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        let b = positions.len();
        let t = positions.first().map_or(0, Vec::len);
        let h = self.inv_freq.len();
        let mut cos = Vec::with_capacity(b * t * h);
        let mut sin = Vec::with_capacity(b * t * h);
        // Dynamic NTK's frequencies for the last length seen (a text's queries come together).
        let mut scaled: Option<(u32, Vec<f32>)> = None;
        for (r, row) in positions.iter().enumerate() {
            for (i, &p) in row.iter().enumerate() {
                let len = lengths.map_or(0, |l| l[r][i]);
                if scaled.as_ref().is_none_or(|(l, _)| *l != len) {
                    scaled = self.dynamic(len as usize).map(|f| (len, f));
                }
                let freq = scaled.as_ref().map_or(&self.inv_freq, |(_, f)| f);
                for &f in freq {
                    let a = p as f32 * f;
                    cos.push(a.cos() * self.attention);
                    sin.push(a.sin() * self.attention);
                }
            }
        }
        Ok((
            Tensor::from_vec(cos, (b, t, h), device)?.to_dtype(dtype)?,
            Tensor::from_vec(sin, (b, t, h), device)?.to_dtype(dtype)?,
        ))
    }
}

/// Llama 3's frequencies (`_compute_llama3_parameters`).
fn llama3(base: &[f32], factor: f64, low: f64, high: f64, original: usize) -> Vec<f32> {
    let (factor, low, high, old) = (factor as f32, low as f32, high as f32, original as f32);
    let (low_wavelen, high_wavelen) = (old / low, old / high);
    base.iter()
        .map(|&f| {
            let wavelen = 2.0 * std::f32::consts::PI / f;
            if wavelen < high_wavelen {
                f
            } else if wavelen > low_wavelen {
                f / factor
            } else {
                let smooth = (old / wavelen - low) / (high - low);
                (1.0 - smooth) * f / factor + smooth * f
            }
        })
        .collect()
}

/// YaRN's frequencies (`_compute_yarn_parameters`).
fn yarn(
    theta: f64,
    dim: usize,
    factor: f64,
    original: usize,
    (beta_fast, beta_slow): (f64, f64),
    truncate: bool,
) -> Vec<f32> {
    let d = dim as f64;
    let correction = |rotations: f64| {
        d * (original as f64 / (rotations * 2.0 * std::f64::consts::PI)).ln() / (2.0 * theta.ln())
    };
    let (mut low, mut high) = (correction(beta_fast), correction(beta_slow));
    if truncate {
        (low, high) = (low.floor(), high.ceil());
    }
    let (low, mut high) = (low.max(0.0) as f32, high.min(d - 1.0) as f32);
    if low == high {
        high += 0.001;
    }
    let theta = theta as f32;
    (0..dim / 2)
        .map(|i| {
            let pos_freq = theta.powf((2 * i) as f32 / dim as f32);
            let extrapolation = 1.0 / pos_freq;
            let interpolation = 1.0 / (factor as f32 * pos_freq);
            let ramp = ((i as f32 - low) / (high - low)).clamp(0.0, 1.0);
            let keep = 1.0 - ramp;
            interpolation * (1.0 - keep) + extrapolation * keep
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_scalings_and_missing_keys_are_named() {
        let parse = |v: Value| RopeSpec::parse(Some(&v), 10000.0, 128);
        assert_eq!(
            parse(serde_json::json!({"rope_type": "longrope"})).unwrap_err(),
            RopeError::Unsupported("rope scaling `longrope`".into())
        );
        assert_eq!(
            parse(serde_json::json!({"rope_type": "llama3", "factor": 8.0})).unwrap_err(),
            RopeError::Missing("rope scaling `llama3` without `low_freq_factor`".into())
        );
        let spec = parse(serde_json::json!({"type": "linear", "factor": 2.0})).unwrap();
        assert_eq!(spec.scaling, Scaling::Linear { factor: 2.0 });
        assert_eq!(RopeSpec::parse(None, 5.0, 1).unwrap(), RopeSpec::plain(5.0));
    }

    #[test]
    fn dynamic_frequencies_change_only_beyond_the_trained_length() {
        let spec = RopeSpec::parse(
            Some(&serde_json::json!({"rope_type": "dynamic", "factor": 2.0})),
            10000.0,
            12,
        )
        .unwrap();
        let r = Rotary::new(16, &spec);
        assert!(r.dynamic(12).is_none());
        let long = r.dynamic(20).unwrap();
        assert!(long[1] < r.inv_freq[1], "a longer text rotates more slowly");
        assert_eq!(long[0], r.inv_freq[0]);
    }
}
