//! `nlebench-dev bench device`: scoring and generation throughput of the engine on a device (the
//! GPU check, tools/gpu/check.sh) on a seeded synthetic workload, with peak device memory and
//! decode's share of the memory bandwidth (every decode step reads all weights once).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, anyhow};
use candle_core::Device;
use engine::files::in_dir;
use engine::{BatchSize, GenerationConfig, LoadedModel, Scoring, generate, perplexities_of_ids};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use types::{Dtype, Source};

use crate::args::BenchDeviceArgs;
use crate::report::median;

/// The seed of the synthetic token ids.
const SEED: u64 = 20261130;

/// Bytes per weight in `dtype`.
fn dtype_bytes(dtype: Dtype) -> u64 {
    match dtype {
        Dtype::F32 => 4,
        Dtype::F16 | Dtype::Bf16 => 2,
    }
}

/// Parameters of the model in `dir`: the f32 safetensors files' sizes over 4 (random models
/// and the fixtures are f32; the header is a few kB).
fn parameters(dir: &std::path::Path) -> anyhow::Result<u64> {
    let mut bytes = 0;
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "safetensors") {
            bytes += p.metadata()?.len();
        }
    }
    Ok(bytes / 4)
}

/// Random ids in `[0, vocab)`: `n` rows of `lo..=hi` tokens.
fn ids(rng: &mut ChaCha8Rng, n: usize, lo: usize, hi: usize, vocab: u32) -> Vec<Vec<u32>> {
    (0..n)
        .map(|_| {
            let len = rng.random_range(lo..=hi);
            (0..len).map(|_| rng.random_range(0..vocab)).collect()
        })
        .collect()
}

/// The device memory in use now, in bytes (CUDA: the driver's count, which includes the
/// memory other processes hold; the caller subtracts what was in use before the model).
fn device_memory_used(device: &Device) -> Option<u64> {
    match device {
        #[cfg(feature = "cuda")]
        Device::Cuda(c) => c
            .cuda_stream()
            .context()
            .mem_get_info()
            .ok()
            .map(|(free, total)| (total - free) as u64),
        _ => None,
    }
}

/// Samples [`device_memory_used`] every 10 ms on its own thread; the peak when stopped.
struct MemoryPeak {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Option<u64>>,
}

impl MemoryPeak {
    fn start(device: &Device) -> MemoryPeak {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, device) = (stop.clone(), device.clone());
        let thread = std::thread::spawn(move || {
            let mut peak = device_memory_used(&device);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(device_memory_used(&device));
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            peak.max(device_memory_used(&device))
        });
        MemoryPeak { stop, thread }
    }

    fn stop(self) -> Option<u64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().ok().flatten()
    }
}

/// Run `f` once to warm up and `repeats` times timed; the median seconds.
fn timed(repeats: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut secs = Vec::new();
    for i in 0..=repeats {
        let start = Instant::now();
        f()?;
        if i > 0 {
            secs.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(median(&secs))
}

/// The directory of `--model`: a directory as given, or a random model written when missing.
fn model_dir(model: &str, models_dir: &Path) -> anyhow::Result<PathBuf> {
    if !model.starts_with("random:") {
        return Ok(PathBuf::from(model));
    }
    match Source::parse(model, Path::new(".")) {
        Ok(Source::Random { preset, seed }) => {
            let t = Instant::now();
            let dir = engine::random::ensure(&preset, seed, models_dir)?;
            eprintln!(
                "random model {preset}@{seed} in {} ({:.1} s)",
                dir.display(),
                t.elapsed().as_secs_f64()
            );
            Ok(dir)
        }
        Ok(other) => Err(anyhow!("--model {model} names {other}, not a random model")),
        Err(e) => Err(anyhow!("--model {model}: {}; {}", e.problem, e.fix)),
    }
}

pub fn run(a: BenchDeviceArgs) -> anyhow::Result<ExitCode> {
    if a.repeats == 0 {
        return Err(anyhow!("--repeats must be at least 1"));
    }
    let dir = model_dir(&a.model, &a.models_dir)?;
    let device = engine::device::select(a.device)?;
    let before = device_memory_used(&device);
    let peak = MemoryPeak::start(&device);
    let t0 = Instant::now();
    let model = LoadedModel::load(&in_dir(&dir, None)?, a.dtype, &device)?;
    let load_s = t0.elapsed().as_secs_f64();
    let vocab = model.config.vocab_size() as u32;
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);

    let texts = ids(
        &mut rng,
        a.sentences,
        a.sentence_tokens.div_ceil(2).max(2),
        a.sentence_tokens.max(2),
        vocab,
    );
    let score_s = timed(a.repeats, || {
        let scoring = Scoring {
            batch: BatchSize::Fixed(a.score_batch),
            ..Scoring::default()
        };
        perplexities_of_ids(&model, texts.clone(), &scoring)?;
        Ok(())
    })?;
    let weight_bytes = parameters(&dir)? * dtype_bytes(a.dtype);

    let prompts: Vec<(usize, Vec<Vec<u32>>)> = a
        .batch_sizes
        .iter()
        .map(|&b| (b, ids(&mut rng, b, a.prompt_tokens, a.prompt_tokens, vocab)))
        .collect();
    if let Some(path) = &a.workload_out {
        let workload = serde_json::json!({
            "model": a.model, "model_dir": dir, "dtype": a.dtype.as_str(), "repeats": a.repeats,
            "scoring": { "batch": a.score_batch, "texts": texts },
            "generation": prompts.iter().map(|(b, p)| serde_json::json!({"batch": b, "prompts": p})).collect::<Vec<_>>(),
            "new_tokens": a.new_tokens,
        });
        std::fs::write(path, serde_json::to_string(&workload)?)
            .with_context(|| format!("cannot write the workload to {}", path.display()))?;
    }
    let mut generation = Vec::new();
    for (b, prompts) in &prompts {
        let b = *b;
        let cfg = GenerationConfig {
            max_new_tokens: Some(a.new_tokens),
            min_new_tokens: a.new_tokens,
            ..GenerationConfig::default()
        };
        let secs = timed(a.repeats, || {
            generate(&model, prompts, &cfg)?;
            Ok(())
        })?;
        let tokens_s = (b * a.new_tokens) as f64 / secs;
        // Each step of the batch reads every weight once: a lower bound on the bytes moved.
        let steps_s = a.new_tokens as f64 / secs;
        let bandwidth_share = a
            .bandwidth_gbs
            .map(|gbs| weight_bytes as f64 * steps_s / (gbs * 1e9));
        generation.push(serde_json::json!({
            "batch": b, "seconds": secs, "tokens_per_s": tokens_s,
            "steps_per_s": steps_s, "bandwidth_share": bandwidth_share,
        }));
    }
    let peak = peak.stop();
    let peak_mib = match (peak, before) {
        (Some(p), Some(b)) => Some(p.saturating_sub(b) as f64 / 1048576.0),
        _ => None,
    };
    let report = serde_json::json!({
        "model": a.model,
        "device": engine::device::name(&device),
        "dtype": a.dtype.as_str(),
        "parameters": parameters(&dir)?,
        "weight_bytes": weight_bytes,
        "load_seconds": load_s,
        "scoring": {
            "texts": a.sentences, "tokens_up_to": a.sentence_tokens, "batch": a.score_batch,
            "seconds": score_s, "sentences_per_s": a.sentences as f64 / score_s,
        },
        "generation": generation,
        "prompt_tokens": a.prompt_tokens,
        "new_tokens": a.new_tokens,
        "bandwidth_gbs": a.bandwidth_gbs,
        "peak_device_mib": peak_mib,
        "peak_rss_mib": crate::bench::peak_rss_mib(),
    });
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} {} on {}: load {load_s:.1} s; scoring {:.1} sentences/s (batch {})",
            a.model,
            a.dtype.as_str(),
            engine::device::name(&device),
            a.sentences as f64 / score_s,
            a.score_batch
        );
        for g in &generation {
            println!(
                "  generation batch {}: {:.1} new tokens/s{}",
                g["batch"],
                g["tokens_per_s"].as_f64().unwrap_or(0.0),
                g["bandwidth_share"]
                    .as_f64()
                    .map_or(String::new(), |s| format!(
                        ", decode at {:.0} % of the memory bandwidth",
                        100.0 * s
                    ))
            );
        }
        if let Some(m) = peak_mib {
            println!("  peak device memory {m:.0} MiB");
        }
    }
    Ok(ExitCode::SUCCESS)
}
