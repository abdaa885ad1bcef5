//! `nlebench perplexity`: the perplexity of each line of a file, without the store.

use std::process::ExitCode;

use anyhow::anyhow;
use engine::{BatchSize, Scoring, perplexities};

use crate::args::{Global, PerplexityArgs};
use crate::context;

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
    let model = context::load_model(g, &a.model)?;
    context::warn_random(&model);
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
