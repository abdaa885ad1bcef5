//! `nlebench export`: a sweep's runs and metrics as CSV or JSON, or sent to MLflow or written
//! as lm-evaluation-harness files.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::args::{ExportArgs, Format, Global};
use crate::context;

pub async fn export(g: &Global, a: ExportArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    if let Some(to) = &a.to {
        return to_tracker(&store, &a.sweep, to, a.experiment.as_deref()).await;
    }
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    if a.samples {
        write_rows(&mut out, a.format, &store.export_samples(&a.sweep).await?)?;
    } else {
        write_rows(&mut out, a.format, &store.export_rows(&a.sweep).await?)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `--to mlflow URL` or `--to lm-eval DIR`: send the sweep's runs there and say what changed.
async fn to_tracker(
    store: &store::Store,
    sweep: &str,
    to: &[String],
    experiment: Option<&str>,
) -> anyhow::Result<ExitCode> {
    const FIX: &str = "--to mlflow http://HOST:PORT, or --to lm-eval DIR";
    let [tool, target] = to else {
        anyhow::bail!("--to takes a tool and where to send the runs\n  fix: {FIX}");
    };
    match tool.as_str() {
        "mlflow" => to_mlflow(store, sweep, target, experiment).await,
        "lm-eval" if experiment.is_none() => to_lm_eval(store, sweep, target).await,
        "lm-eval" => anyhow::bail!(
            "--experiment names an MLflow experiment; lm-eval files have none\n  fix: leave out --experiment"
        ),
        _ => anyhow::bail!(
            "unknown tool `{tool}` in --to\n  fix: {FIX} (MLflow and lm-evaluation-harness are supported)"
        ),
    }
}

async fn to_mlflow(
    store: &store::Store,
    sweep: &str,
    url: &str,
    experiment: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let experiment = experiment.unwrap_or(sweep);
    let credentials = crate::environment::mlflow_credentials();
    let r = trackers::mlflow::export(store, sweep, url, &credentials, experiment).await?;
    outln!(
        "sweep {sweep} → MLflow experiment `{experiment}` (id {}) at {}: {} run(s) created, {} updated, {} unchanged",
        r.experiment_id,
        store::redact(url),
        r.created,
        r.updated,
        r.unchanged
    );
    if r.no_artifacts {
        eprintln!(
            "note: the server does not proxy artifacts, so the samples were not uploaded; start it with --serve-artifacts (the default of `mlflow server`)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn to_lm_eval(store: &store::Store, sweep: &str, dir: &str) -> anyhow::Result<ExitCode> {
    let r = trackers::lmeval::export(store, sweep, std::path::Path::new(dir)).await?;
    outln!(
        "sweep {sweep} → lm-evaluation-harness files under {dir}: {} run(s) in {} results file(s) and {} samples file(s)",
        r.runs,
        r.results.len(),
        r.runs
    );
    for path in &r.results {
        outln!("  {}", path.display());
    }
    if r.unfinished > 0 {
        eprintln!(
            "note: {} run(s) not finished were left out; export again when they are",
            r.unfinished
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn write_rows<T: serde::Serialize>(
    out: &mut dyn Write,
    format: Format,
    rows: &[T],
) -> anyhow::Result<()> {
    match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            for r in rows {
                w.serialize(r)?;
            }
            w.flush()?;
        }
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, rows)?;
            writeln!(out)?;
        }
    }
    Ok(())
}
