//! `nlebench generate` and `nlebench perplexity`: run a model directly, without the store.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::anyhow;
use engine::{
    BatchSize, GenerationConfig, LoadedModel, ModelCache, Scoring, generate as run_generate,
    perplexities,
};
use spec::{Dtype, Source};

use crate::args::{DtypeArg, GenerateArgs, Global, ModelArgs, PerplexityArgs};
use crate::context;

/// A source as given on the command line; a bare existing directory means `path:DIR`.
pub(crate) fn source(s: &str) -> anyhow::Result<Source> {
    if !s.contains(':') && Path::new(s).is_dir() {
        return Ok(Source::Path {
            path: std::fs::canonicalize(s)?,
        });
    }
    let cwd = std::env::current_dir()?;
    Source::parse(s, &cwd).map_err(|e| anyhow!("`{s}`: {}\n  fix: {}", e.problem, e.fix))
}

fn load(g: &Global, m: &ModelArgs) -> anyhow::Result<Arc<LoadedModel>> {
    let s = context::settings(g)?;
    let dtype = match m.dtype {
        DtypeArg::F32 => Dtype::F32,
        DtypeArg::F16 => Dtype::F16,
        DtypeArg::Bf16 => Dtype::Bf16,
    };
    let adapter = m.adapter.as_deref().map(source).transpose()?;
    Ok(ModelCache::default().get(
        &source(&m.model)?,
        dtype,
        adapter.as_ref(),
        &context::locations(&s),
        &engine::device::select(s.device)?,
    )?)
}

fn warn_random(model: &LoadedModel) {
    if model.random_weights {
        eprintln!(
            "note: {} has RANDOM WEIGHTS; its output is noise",
            model.dir.display()
        );
    }
}

pub fn generate(g: &Global, a: GenerateArgs) -> anyhow::Result<ExitCode> {
    let model = load(g, &a.model)?;
    warn_random(&model);
    let cfg = GenerationConfig {
        max_new_tokens: a.max_new_tokens,
        max_length: a.max_length,
        min_new_tokens: a.min_new_tokens,
        do_sample: a.do_sample,
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        num_beams: a.num_beams,
        length_penalty: a.length_penalty,
        no_repeat_ngram_size: a.no_repeat_ngram_size,
        repetition_penalty: a.repetition_penalty,
        stop_strings: a.stop.clone(),
        seed: a.seed,
    };
    let prompts = a
        .prompt
        .iter()
        .map(|p| model.encode(p))
        .collect::<Result<Vec<_>, _>>()?;
    let out = run_generate(&model, &prompts, &cfg)?;
    for (p, o) in a.prompt.iter().zip(&out) {
        if o.prompt_dropped > 0 {
            eprintln!(
                "note: the prompt {:?} was cut to its last {} tokens ({} dropped) to fit the context",
                p.chars().take(40).collect::<String>(),
                o.prompt_tokens,
                o.prompt_dropped
            );
        }
    }
    if a.json {
        let gens: Vec<_> = a
            .prompt
            .iter()
            .zip(&out)
            .map(|(p, o)| {
                serde_json::json!({
                    "prompt": p, "tokens": o.tokens, "text": o.text, "stop": o.stop,
                    "prompt_tokens": o.prompt_tokens, "prompt_dropped": o.prompt_dropped,
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "model": a.model.model, "adapter": a.model.adapter, "random_weights": model.random_weights,
                "decoding": cfg, "generations": gens,
            }))?
        );
    } else {
        for o in &out {
            outln!("{}", o.text);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn perplexity(g: &Global, a: PerplexityArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&a.input)
        .map_err(|e| anyhow!("cannot read {}: {e}", a.input.display()))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return Err(anyhow!(
            "{} has no non-empty lines\n  fix: write one text per line",
            a.input.display()
        ));
    }
    let model = load(g, &a.model)?;
    warn_random(&model);
    let budget = context::settings(g)?.memory_budget_mb;
    let batch = BatchSize::of_setting(a.batch_size, budget);
    let scoring = Scoring {
        batch,
        max_tokens: a.max_tokens,
        layout: a.layout,
    };
    let scores = perplexities(&model, &lines, &scoring)?;
    let mean = scores.iter().map(|s| s.perplexity).sum::<f64>() / scores.len() as f64;
    let truncated = scores.iter().filter(|s| s.truncated).count();
    if truncated > 0 {
        eprintln!("note: {truncated} text(s) were cut at the context limit (flagged `truncated`)");
    }
    if a.json {
        let texts: Vec<_> = lines
            .iter()
            .zip(&scores)
            .map(|(t, s)| {
                serde_json::json!({
                    "text": t, "perplexity": s.perplexity, "n_tokens": s.n_tokens,
                    "nll_sum": s.nll_sum, "truncated": s.truncated,
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "model": a.model.model, "adapter": a.model.adapter, "random_weights": model.random_weights,
                "mean_perplexity": mean, "texts": texts,
            }))?
        );
    } else {
        let mut table = crate::render::table(&["perplexity", "tokens", "text"], &[0, 1]);
        for (t, s) in lines.iter().zip(&scores) {
            table.add_row(vec![
                format!("{:.4}", s.perplexity),
                s.n_tokens.to_string(),
                t.to_string(),
            ]);
        }
        outln!("{table}");
        outln!("mean perplexity {mean:.4} over {} text(s)", scores.len());
    }
    Ok(ExitCode::SUCCESS)
}
