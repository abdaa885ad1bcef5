//! Deterministic random-weight models in Hugging Face layout (`random:PRESET@SEED` sources and
//! `nlebench models random`): NorGPT-shaped GPT-2 configs with the project's Norwegian BPE
//! tokenizer. Their config.json is marked so every result on them says "random weights".

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::config::RANDOM_WEIGHTS_KEY;
use super::error::{EngineError, Result};

/// The Norwegian byte-level BPE tokenizer (made by tools/parity/make_gpt2_fixture.py).
pub const TOKENIZER_JSON: &str = include_str!("../assets/tokenizer-nb-bpe.json");

/// A preset: GPT-2 shape.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    /// Name used in `random:NAME`.
    pub name: &'static str,
    /// Blocks.
    pub n_layer: usize,
    /// Hidden size.
    pub n_embd: usize,
    /// Heads.
    pub n_head: usize,
    /// Context length.
    pub n_positions: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// What it is for.
    pub about: &'static str,
}

/// Available presets.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "norgpt-tiny",
        n_layer: 2,
        n_embd: 64,
        n_head: 4,
        n_positions: 256,
        vocab_size: 1024,
        about: "2 layers, 64 hidden: quickstart and tests",
    },
    Preset {
        name: "norgpt-small",
        n_layer: 4,
        n_embd: 256,
        n_head: 8,
        n_positions: 512,
        vocab_size: 1024,
        about: "4 layers, 256 hidden: workloads that take a few seconds",
    },
    Preset {
        name: "norgpt-369m",
        n_layer: 24,
        n_embd: 1024,
        n_head: 16,
        n_positions: 2048,
        vocab_size: 64000,
        about: "the exact shape of NorGLM/NorGPT-369M: benchmarks",
    },
    Preset {
        name: "norgpt-3b",
        n_layer: 32,
        n_embd: 2688,
        n_head: 32,
        n_positions: 2048,
        vocab_size: 64000,
        about: "the shape of NorGLM/NorGPT-3B (12 GB in f32): GPU benchmarks",
    },
];

/// The preset called `name`.
pub fn preset(name: &str) -> Result<Preset> {
    PRESETS
        .iter()
        .copied()
        .find(|p| p.name == name)
        .ok_or_else(|| {
            EngineError::UnknownPreset(
                name.to_string(),
                PRESETS
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })
}

/// The directory a random model lives in under `models_dir`.
pub fn dir_for(preset: &str, seed: u64, models_dir: &Path) -> PathBuf {
    models_dir.join(format!("random-{preset}-seed{seed}"))
}

/// A staging directory this old is a remnant of a writer that died mid-write (writing takes
/// seconds; the models directory may be shared by hosts, so a writer's PID says nothing).
const STALE_STAGING: Duration = Duration::from_secs(3600);

/// Make sure the model exists under `models_dir` (writing it when missing); returns its dir.
/// Safe when several processes ask at once: each writes its own copy and the first rename
/// wins; a complete directory is never replaced (the content is the same), so a reader
/// never sees it half written or gone. Staging directories left by writers killed mid-write
/// are removed once [`STALE_STAGING`] old, so that they do not fill the disk over months.
pub fn ensure(preset_name: &str, seed: u64, models_dir: &Path) -> Result<PathBuf> {
    let p = preset(preset_name)?;
    let dir = dir_for(preset_name, seed, models_dir);
    remove_stale_staging(&dir);
    if complete(&dir) {
        return Ok(dir);
    }
    let tmp = stage(&p, seed, &dir)?;
    if std::fs::rename(&tmp, &dir).is_err() {
        if complete(&dir) {
            let _ = std::fs::remove_dir_all(&tmp);
        } else {
            // A remnant of an interrupted older write: replace it.
            replace(&tmp, &dir)?;
        }
    }
    Ok(dir)
}

/// How the names of `out`'s staging directories begin (then the writer's PID and call).
fn staging_prefix(out: &Path) -> String {
    let name = out.file_name().and_then(|n| n.to_str()).unwrap_or("model");
    format!(".{name}.tmp-")
}

/// Remove `out`'s staging directories older than [`STALE_STAGING`] (best effort).
fn remove_stale_staging(out: &Path) {
    let prefix = staging_prefix(out);
    let Some(Ok(entries)) = out.parent().map(std::fs::read_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&prefix));
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        if ours && age.is_some_and(|a| a >= STALE_STAGING) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether `dir` holds a written model.
fn complete(dir: &Path) -> bool {
    dir.join("model.safetensors").is_file() && dir.join("config.json").is_file()
}

/// Write the model of `preset` with `seed` to `out`, replacing what is there (atomically for
/// readers of the new files: a temp dir is renamed).
pub fn write(p: &Preset, seed: u64, out: &Path) -> Result<()> {
    let tmp = stage(p, seed, out)?;
    replace(&tmp, out)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError {
    let path = path.to_path_buf();
    move |source| EngineError::Io { path, source }
}

/// `out` replaced by `tmp`.
fn replace(tmp: &Path, out: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(out);
    std::fs::rename(tmp, out).map_err(io(out))
}

/// The model written to a fresh temp dir beside `out` (unique per process and call); returns
/// the temp dir.
fn stage(p: &Preset, seed: u64, out: &Path) -> Result<PathBuf> {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let parent = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let tmp = parent.join(format!(
        "{}{}-{}",
        staging_prefix(out),
        std::process::id(),
        CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;

    let config = serde_json::json!({
        "activation_function": "gelu_fast",
        "architectures": ["GPT2LMHeadModel"],
        "bos_token_id": 0,
        "eos_token_id": 0,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-5,
        "model_type": "gpt2",
        "n_embd": p.n_embd,
        "n_head": p.n_head,
        "n_inner": 4 * p.n_embd,
        "n_layer": p.n_layer,
        "n_positions": p.n_positions,
        "scale_attn_by_inverse_layer_idx": false,
        "scale_attn_weights": true,
        "tokenizer_class": "GPT2TokenizerFast",
        "torch_dtype": "float32",
        "vocab_size": p.vocab_size,
        RANDOM_WEIGHTS_KEY: true,
        "nlebench_preset": p.name,
        "nlebench_seed": seed,
    });
    let write_file = |name: &str, text: String| -> Result<()> {
        let path = tmp.join(name);
        std::fs::write(&path, text).map_err(io(&path))
    };
    write_file("config.json", format!("{config:#}\n"))?;
    write_file("tokenizer.json", TOKENIZER_JSON.to_string())?;
    let special = serde_json::json!({
        "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"
    });
    write_file("special_tokens_map.json", special.to_string() + "\n")?;
    let mut tok_cfg = special.clone();
    tok_cfg["model_max_length"] = p.n_positions.into();
    tok_cfg["tokenizer_class"] = "GPT2Tokenizer".into();
    tok_cfg["add_prefix_space"] = false.into();
    write_file("tokenizer_config.json", tok_cfg.to_string() + "\n")?;
    write_file(
        "README.md",
        format!(
            "# RANDOM WEIGHTS — not a trained model\n\nWritten by `nlebench` from preset `{}` with seed {seed}: \
             GPT-2 shape ({} layers, {} hidden, {} heads, vocabulary {}), weights drawn from N(0, 0.02).\n\
             Results on this model measure the tool, not Norwegian language ability.\n",
            p.name, p.n_layer, p.n_embd, p.n_head, p.vocab_size
        ),
    )?;

    let tensors = weights(p, seed)?;
    let st = tmp.join("model.safetensors");
    candle_core::safetensors::save(&tensors, &st)?;
    shareable(&tmp)?;
    Ok(tmp)
}

/// Make a written model readable by everyone who may read the data directory (files 0644,
/// the directory 0755), whatever the umask: a team shares generated models on one disk.
fn shareable(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let set = |p: &Path, mode: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(io(p))
        };
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            set(&entry.map_err(io(dir))?.path(), 0o644)?;
        }
        set(dir, 0o755)?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn weights(p: &Preset, seed: u64) -> Result<HashMap<String, Tensor>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    #[allow(clippy::expect_used)] // constant parameters: a positive standard deviation
    let normal = Normal::new(0.0f32, 0.02).expect("valid normal");
    let dev = Device::Cpu;
    let c = p.n_embd;
    let mut t = HashMap::new();
    let mut randn = |shape: (usize, usize)| -> Result<Tensor> {
        let v: Vec<f32> = (0..shape.0 * shape.1)
            .map(|_| normal.sample(&mut rng))
            .collect();
        Ok(Tensor::from_vec(v, shape, &dev)?)
    };
    let zeros = |n: usize| Tensor::zeros(n, candle_core::DType::F32, &dev);
    let ones = |n: usize| Tensor::ones(n, candle_core::DType::F32, &dev);
    t.insert("transformer.wte.weight".into(), randn((p.vocab_size, c))?);
    t.insert("transformer.wpe.weight".into(), randn((p.n_positions, c))?);
    for i in 0..p.n_layer {
        let pre = format!("transformer.h.{i}");
        for (name, n_in, n_out) in [
            ("attn.c_attn", c, 3 * c),
            ("attn.c_proj", c, c),
            ("mlp.c_fc", c, 4 * c),
            ("mlp.c_proj", 4 * c, c),
        ] {
            t.insert(format!("{pre}.{name}.weight"), randn((n_in, n_out))?);
            t.insert(format!("{pre}.{name}.bias"), zeros(n_out)?);
        }
        for ln in ["ln_1", "ln_2"] {
            t.insert(format!("{pre}.{ln}.weight"), ones(c)?);
            t.insert(format!("{pre}.{ln}.bias"), zeros(c)?);
        }
    }
    t.insert("transformer.ln_f.weight".into(), ones(c)?);
    t.insert("transformer.ln_f.bias".into(), zeros(c)?);
    Ok(t)
}
