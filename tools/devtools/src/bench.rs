//! `nlebench-dev bench engine`: the engine's throughput and peak memory on a fixed workload (token
//! ids written by tools/bench/engine_reference.py, which measures transformers on the same ids),
//! with the scoring workload's FLOP/s; `bench gemm`: the machine's matrix-multiply rate, the
//! peak that FLOP/s is a fraction of.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, anyhow};
use engine::files::in_dir;
use engine::{
    GenerationConfig, LoadedModel, Request, generate, generate_continuous, perplexities_of_ids,
};
use serde::Deserialize;

use crate::args::{BenchEngineArgs, BenchGemmArgs, BenchMetricsArgs, BenchPhase, GemmKernel};
use crate::report::median;

#[derive(Debug, Deserialize)]
struct Workload {
    ppl_token_ids: Vec<Vec<u32>>,
    ppl_batch_size: usize,
    gen_prompt_ids: Vec<Vec<u32>>,
    gen_new_tokens: usize,
}

/// Prompts, each with its own number of new tokens (standing in for where EOS would end it),
/// and the rows kept in flight.
#[derive(Debug, Deserialize)]
struct ContinuousWorkload {
    prompt_ids: Vec<Vec<u32>>,
    max_new_tokens: Vec<usize>,
    slots: usize,
}

/// The workload of a phase.
enum Job {
    Ppl(Workload),
    Gen(Workload),
    Continuous(ContinuousWorkload),
}

/// Peak resident memory of this process in MiB (Linux `VmHWM`).
pub(crate) fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

pub fn gemm(a: BenchGemmArgs) -> anyhow::Result<ExitCode> {
    use candle_core::{Device, Tensor};
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (a.m, a.k), &dev)?;
    let y = Tensor::randn(0f32, 1.0, (a.k, a.n), &dev)?;
    let packed = match a.kernel {
        GemmKernel::Packed => {
            let isa = linear::Isa::detect()
                .ok_or_else(|| anyhow!("this CPU has no packed kernel (AVX-512 or AVX2/FMA)"))?;
            let w = y.flatten_all()?.to_vec1::<f32>()?;
            Some((
                linear::PackedWeight::from_rows(&w, a.k, a.n, isa, linear::Precision::F32),
                x.flatten_all()?.to_vec1::<f32>()?,
            ))
        }
        GemmKernel::Candle => None,
    };
    let mut secs = Vec::new();
    for i in 0..=a.repeats {
        let start = Instant::now();
        match &packed {
            Some((w, xs)) => drop(w.product(xs, None)),
            // The product is computed before the clock stops.
            None => drop(x.matmul(&y)?.sum_all()?.to_scalar::<f32>()?),
        }
        if i > 0 {
            secs.push(start.elapsed().as_secs_f64());
        }
    }
    if secs.is_empty() {
        return Err(anyhow!("--repeats must be at least 1"));
    }
    let flop = 2.0 * (a.m * a.k * a.n) as f64;
    let gflops: Vec<f64> = secs.iter().map(|s| flop / s / 1e9).collect();
    let report = serde_json::json!({
        "m": a.m, "k": a.k, "n": a.n,
        "kernel": format!("{:?}", a.kernel).to_lowercase(),
        "median_gflops": median(&gflops),
        "gflops": gflops,
        "threads": std::env::var("RAYON_NUM_THREADS").ok(),
        "gemm_kernels": engine::device::cpu_gemm_kernels(),
    });
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "f32 GEMM {}×{}×{} ({:?}): median {:.1} GFLOP/s over {} run(s) ({:?}); {}",
            a.m,
            a.k,
            a.n,
            a.kernel,
            median(&gflops),
            gflops.len(),
            gflops,
            engine::device::cpu_gemm_kernels()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Forward FLOPs of scoring `lens`-token texts with a GPT-2-shaped model (config.json keys
/// `n_layer`, `n_embd`, `vocab_size`): per token 2·(12·L·d² + d·V) for the layers' and the
/// head's matrices, per text 4·L·d·T² for attention over its T tokens. `None` for other
/// shapes.
fn scoring_flop(model: &std::path::Path, lens: &[usize]) -> Option<f64> {
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("config.json")).ok()?).ok()?;
    let get = |k: &str| cfg.get(k).and_then(serde_json::Value::as_f64);
    let (l, d, v) = (get("n_layer")?, get("n_embd")?, get("vocab_size")?);
    Some(
        lens.iter()
            .map(|&t| {
                let t = t as f64;
                t * 2.0 * (12.0 * l * d * d + d * v) + 4.0 * l * d * t * t
            })
            .sum(),
    )
}

pub fn engine(a: BenchEngineArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&a.inputs)
        .with_context(|| format!("cannot read {}", a.inputs.display()))?;
    let not_a_workload = |script: &str| {
        format!(
            "{} is not a workload of tools/bench/{script}",
            a.inputs.display()
        )
    };
    let job = match a.phase {
        BenchPhase::Continuous => Job::Continuous(
            serde_json::from_str(&text)
                .with_context(|| not_a_workload("continuous_reference.py"))?,
        ),
        phase => {
            let w: Workload = serde_json::from_str(&text)
                .with_context(|| not_a_workload("engine_reference.py"))?;
            if matches!(phase, BenchPhase::Ppl) {
                Job::Ppl(w)
            } else {
                Job::Gen(w)
            }
        }
    };
    let device = engine::device::select(types::DeviceSpec::Auto)?;
    let t0 = Instant::now();
    let model = LoadedModel::load(&in_dir(&a.model, None)?, a.dtype, &device)?;
    let load_s = t0.elapsed().as_secs_f64();
    let mut runs = Vec::new();
    let mut output = serde_json::Value::Null;
    for i in 0..=a.repeats {
        let start = Instant::now();
        output = match &job {
            Job::Ppl(w) => {
                let s = perplexities_of_ids(
                    &model,
                    w.ppl_token_ids.clone(),
                    &engine::Scoring {
                        batch: engine::BatchSize::Fixed(w.ppl_batch_size),
                        max_tokens: None,
                        layout: a.layout,
                    },
                )?;
                serde_json::json!(s.iter().map(|x| x.perplexity).collect::<Vec<_>>())
            }
            Job::Gen(w) => {
                let cfg = GenerationConfig {
                    max_new_tokens: Some(w.gen_new_tokens),
                    min_new_tokens: w.gen_new_tokens,
                    ..GenerationConfig::default()
                };
                let g = generate(&model, &w.gen_prompt_ids, &cfg)?;
                serde_json::json!(g.iter().map(|x| x.tokens.clone()).collect::<Vec<_>>())
            }
            Job::Continuous(cw) => {
                // The warm-up generates two tokens for two prompts, not the whole workload.
                let requests: Vec<Request> = cw
                    .prompt_ids
                    .iter()
                    .zip(&cw.max_new_tokens)
                    .take(if i == 0 { 2 } else { usize::MAX })
                    .map(|(p, &n)| Request {
                        prompt: p.clone(),
                        max_new_tokens: Some(if i == 0 { 2 } else { n }),
                    })
                    .collect();
                // EOS never ends a row: each runs to its own limit, as the workload says.
                let cfg = GenerationConfig {
                    min_new_tokens: cw.max_new_tokens.iter().copied().max().unwrap_or(0),
                    ..GenerationConfig::default()
                };
                let g = generate_continuous(&model, &requests, &cfg, cw.slots, |_, _| Ok(()))?;
                serde_json::json!(g.iter().map(|x| x.tokens.clone()).collect::<Vec<_>>())
            }
        };
        let secs = start.elapsed().as_secs_f64();
        if i > 0 {
            runs.push(secs); // the first run warms caches and is not counted
        }
    }
    if runs.is_empty() {
        return Err(anyhow!("--repeats must be at least 1"));
    }
    let work = match &job {
        Job::Ppl(w) => w.ppl_token_ids.len() as f64,
        Job::Gen(w) => (w.gen_prompt_ids.len() * w.gen_new_tokens) as f64,
        Job::Continuous(cw) => cw.max_new_tokens.iter().sum::<usize>() as f64,
    };
    let rates: Vec<f64> = runs.iter().map(|s| work / s).collect();
    let seconds = median(&runs);
    let median = median(&rates);
    let gflops = match &job {
        Job::Ppl(w) => {
            let lens: Vec<usize> = w.ppl_token_ids.iter().map(Vec::len).collect();
            scoring_flop(&a.model, &lens).map(|f| f / seconds / 1e9)
        }
        _ => None,
    };
    let unit = match a.phase {
        BenchPhase::Ppl => "sentences/s",
        BenchPhase::Gen | BenchPhase::Continuous => "new tokens/s",
    };
    let report = serde_json::json!({
        "engine": "nlebench",
        "phase": format!("{:?}", a.phase).to_lowercase(),
        "layout": a.layout,
        "unit": unit,
        "median": median,
        "rates": rates,
        "seconds": runs,
        "load_seconds": load_s,
        "peak_rss_mib": peak_rss_mib(),
        "threads": std::env::var("RAYON_NUM_THREADS").ok(),
        "device": engine::device::name(&device),
        "gemm_kernels": engine::device::cpu_gemm_kernels(),
        "model_gflops": gflops,
        "output": output,
    });
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{:?}: median {median:.2} {unit} over {} run(s) ({:?}); peak RSS {:.0} MiB{}",
            a.phase,
            runs.len(),
            rates,
            peak_rss_mib().unwrap_or(0.0),
            gflops.map_or(String::new(), |g| format!("; model {g:.1} GFLOP/s"))
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The released outputs scored by the metrics benchmark: (file, hypothesis column, reference
/// column), the same pairs as tools/reference/text_metrics.py.
pub const METRIC_PAIRS: &[(&str, &str, &str)] = &[
    (
        "cot/scene1/CoT_23B_s1_contain.csv",
        "generated_text",
        "positive_sample",
    ),
    (
        "cot/scene1/CoT_23B_s1_contain.csv",
        "generated_text_s1",
        "positive_sample",
    ),
    (
        "cot/scene1/CoT_3B_s1_contain.csv",
        "generated_text",
        "positive_sample",
    ),
    (
        "cot/scene1/CoT_3B_s1_contain.csv",
        "generated_text_s1",
        "positive_sample",
    ),
    (
        "cot/scene1/CoT_6B_s1_contain.csv",
        "generated_text",
        "positive_sample",
    ),
    (
        "cot/scene1/CoT_6B_s1_contain.csv",
        "generated_text_s1",
        "positive_sample",
    ),
    (
        "cot/scene1/doc_grounded_qa_s1_GPT3.5.csv",
        "generated_text",
        "positive_sample",
    ),
    (
        "cot/scene1/doc_grounded_qa_s1_GPT3.5.csv",
        "generated_text_s1",
        "positive_sample",
    ),
    (
        "toxicity/toxicity_369M.csv",
        "generated_no_369M",
        "prompt_no",
    ),
    ("toxicity/toxicity_3B.csv", "generated_no_3B", "prompt_no"),
    (
        "toxicity/toxicity_3B_continue.csv",
        "generated_no_3Bc",
        "prompt_no",
    ),
    ("toxicity/toxicity_23B.csv", "generated_no_23B", "prompt_no"),
    (
        "toxicity/toxicity_6B_nb-gptj.csv",
        "generated_no_6B",
        "prompt_no",
    ),
];

pub fn metrics(a: BenchMetricsArgs) -> anyhow::Result<ExitCode> {
    use metrics::bootstrap::Bootstrap;
    use metrics::generation::{from_pairs, text_metrics};
    let wanted: Vec<String> = spec::TaskKind::Generation
        .metrics()
        .iter()
        .filter(|m| from_pairs(m))
        .map(|s| s.to_string())
        .collect();
    // Python's reference computes no intervals: neither do we here.
    let boot = Bootstrap {
        iterations: 0,
        ..Bootstrap::default()
    };
    let mut inputs = Vec::new();
    for (file, h, r) in METRIC_PAIRS {
        let t = worker::data::read(&a.data.join(file), spec::DataFormat::Csv)?;
        let pairs: Vec<(String, String)> = t
            .rows
            .iter()
            .map(|row| (worker::data::text(row, h), worker::data::text(row, r)))
            .collect();
        inputs.push(pairs);
    }
    let n: usize = inputs.iter().map(Vec::len).sum();
    let mut seconds = Vec::new();
    let mut checksum = 0.0;
    for i in 0..=a.repeats {
        let start = Instant::now();
        checksum = 0.0;
        for pairs in &inputs {
            let m = text_metrics(
                pairs.iter().map(|(h, r)| (h.as_str(), r.as_str())),
                &wanted,
                &boot,
            );
            if let Some(e) = m.missing {
                return Err(anyhow!("{e}"));
            }
            checksum += m
                .metrics
                .iter()
                .map(|x| x.value)
                .filter(|v| v.is_finite())
                .sum::<f64>();
        }
        if i > 0 {
            seconds.push(start.elapsed().as_secs_f64());
        }
    }
    let mut sorted = seconds.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let report = serde_json::json!({
        "engine": "nlebench", "pairs": n, "metrics": wanted, "seconds": seconds, "median_seconds": median,
        "threads": rayon::current_num_threads(), "checksum": checksum,
    });
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{n} pairs, {} metrics each: median {median:.3} s over {} run(s) ({} threads)",
            wanted.len(),
            seconds.len(),
            rayon::current_num_threads()
        );
    }
    Ok(ExitCode::SUCCESS)
}
