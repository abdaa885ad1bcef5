//! `nlebench import`: store outputs produced elsewhere (e.g. the authors' released files) as a
//! finished run with source `import`, its samples and its metrics; rescoring works on it as on
//! any run.

use std::process::ExitCode;

use metrics::bootstrap::Bootstrap;
use worker::tasks::ScoreRequest;

use crate::args::{Global, ImportArgs, RowFilter};
use crate::{context, render};

pub async fn import(g: &Global, a: ImportArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let tasks = context::tasks(&s, None)?;
    let task = context::task(&tasks, &a.task)?;
    let req = ScoreRequest {
        map: a.map.clone().unwrap_or_default(),
        filter_paper: matches!(a.filter, Some(RowFilter::Paper)),
        nli: None,
        mauve: None,
        bootstrap: Bootstrap::with_iterations(s.bootstrap_iterations),
    };
    let import = worker::import::prepare(task, &a.model, &a.file, &req)?;
    let store = context::store_migrated(&s).await?;
    let run_id = store
        .import_run(
            &a.sweep,
            &import.cell_key,
            &import.manifest,
            &import.samples,
            &import.metrics,
        )
        .await?;
    outln!(
        "imported {} sample(s) of {} as run {run_id} (sweep {}, model {}, task {})",
        import.samples.len(),
        import.file.display(),
        a.sweep,
        a.model,
        task.name
    );
    outln!("{}", render::metrics_table(&import.metrics));
    Ok(ExitCode::SUCCESS)
}
