//! `nlebench compare RUN_A RUN_B`: per metric, both runs' means on their shared examples, the
//! difference, and its p-value (McNemar for yes/no metrics, the exact randomization test for
//! at most 16 examples, else the paired bootstrap), with Holm's correction across metrics.

use std::process::ExitCode;

use analysis::compare::{Options, stored};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, Table};

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
        "run {} vs run {}: {} shared example(s); p-values Holm-corrected across the {} metric(s)",
        a.a,
        a.b,
        c.shared,
        c.tests.len()
    );
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["metric", "n", "A", "B", "B − A", "test", "p", "p (Holm)"]);
    for m in &c.tests {
        let num = |x: f64| metrics::format_value(&m.metric, x);
        t.add_row(vec![
            Cell::new(&m.metric),
            Cell::new(m.n).set_alignment(CellAlignment::Right),
            Cell::new(num(m.a)).set_alignment(CellAlignment::Right),
            Cell::new(num(m.b)).set_alignment(CellAlignment::Right),
            Cell::new(num(m.delta)).set_alignment(CellAlignment::Right),
            Cell::new(m.test.label()),
            Cell::new(format!("{:.4}", m.p)).set_alignment(CellAlignment::Right),
            Cell::new(format!("{:.4}", m.p_holm)).set_alignment(CellAlignment::Right),
        ]);
    }
    outln!("{t}");
    Ok(ExitCode::SUCCESS)
}
