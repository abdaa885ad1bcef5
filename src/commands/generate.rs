//! `nlebench generate`: generate text with a model (and adapter), without the store.

use std::process::ExitCode;

use engine::{GenerationConfig, generate as run_generate};

use crate::args::{GenerateArgs, Global};
use crate::context;

pub fn generate(g: &Global, a: GenerateArgs) -> anyhow::Result<ExitCode> {
    let model = context::load_model(g, &a.model)?;
    context::warn_random(&model);
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
