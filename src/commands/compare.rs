//! `nlebench compare RUN_A RUN_B`: per metric, both runs' means on their shared examples, the
//! difference, and its p-value (McNemar for yes/no metrics, the exact randomization test for
//! at most 16 examples, else the paired bootstrap), with Holm's correction across metrics.

use std::process::ExitCode;

use analysis::compare::{Options, stored};

use crate::args::{CompareArgs, Global};
use crate::context;

pub async fn compare(g: &Global, a: CompareArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    let opts = Options {
        iterations: a.iterations,
        seed: a.seed,
    };
    let c = stored(&store, a.a, a.b, opts).await?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&c)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "run {} vs run {}: {} shared example(s) (matched by their inputs; {} only in A, {} only in B); every value below is on the shared examples; p-values Holm-corrected across the {} metric(s)",
        a.a,
        a.b,
        c.shared,
        c.only_a,
        c.only_b,
        c.tests.len()
    );
    let mut t = crate::render::table(
        &["metric", "n", "A", "B", "B − A", "test", "p", "p (Holm)"],
        &[1, 2, 3, 4, 6, 7],
    );
    for m in &c.tests {
        let num = |x: f64| metrics::format_value(&m.metric, x);
        t.add_row(vec![
            m.metric.clone(),
            m.n.to_string(),
            num(m.a),
            num(m.b),
            num(m.delta),
            m.test.label().to_string(),
            format!("{:.4}", m.p),
            format!("{:.4}", m.p_holm),
        ]);
    }
    outln!("{t}");
    if let Some(d) = c.disagreements.first() {
        outln!(
            "{} example(s) where {} changed ({} worse in B); the largest: example {} of A ({} → {}); all with --json",
            c.disagreements.len(),
            d.metric,
            c.disagreements.iter().filter(|d| d.regression).count(),
            d.idx_a,
            metrics::format_value(&d.metric, d.a),
            metrics::format_value(&d.metric, d.b)
        );
    }
    Ok(ExitCode::SUCCESS)
}
