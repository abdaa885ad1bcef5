//! `nlebench rescore`: recompute metrics from stored samples with the current metric
//! implementations, without a model. Stale runs (metrics from an older implementation) become
//! current.

use std::process::ExitCode;

use metrics::bootstrap::Bootstrap;
use store::RunStatus;

use crate::args::{Global, RescoreArgs};
use crate::context;

pub async fn rescore(g: &Global, a: RescoreArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    let runs = store.runs_for(&a.target).await?;
    let boot = Bootstrap::with_iterations(s.bootstrap_iterations);
    let (mut done, mut skipped) = (0, 0);
    let cache = worker::metric_models::MetricModelCache::default();
    let device = engine::device::select(s.device)?;
    for run in runs {
        if run.status != RunStatus::Done {
            outln!("run {}: {} — not finished, left alone", run.id, run.status);
            skipped += 1;
            continue;
        }
        let manifest = run.manifest()?;
        let samples = store.samples(run.id).await?;
        let locations = context::locations(&s);
        let (metrics, notes) = match &manifest.task.lm_eval {
            // An lm-eval task's metrics need its documents (its prompts are in its samples).
            Some(l) => {
                let data = worker::data::lmeval_tasks::TaskData {
                    download: !locations.hub.offline,
                    hub: locations.hub,
                };
                let p = worker::tasks::lmeval::prepare(
                    l,
                    manifest.setting.num_fewshot,
                    manifest.setting.limit,
                    &data,
                    None,
                )?;
                (
                    worker::tasks::lmeval::metrics(l, &p, &samples, &boot)?,
                    vec![],
                )
            }
            None => {
                let models = cache.models_for(&manifest.task, &locations, &device, true);
                worker::tasks::metrics_with_models(&manifest.task, &samples, &models, &boot)?
            }
        };
        store.replace_metrics(run.id, &metrics).await?;
        store.set_notes(run.id, &notes).await?;
        for note in &notes {
            outln!("run {}: note: {note}", run.id);
        }
        outln!(
            "run {}: {} metric(s) recomputed from {} sample(s) (task {} v{})",
            run.id,
            metrics.len(),
            samples.len(),
            manifest.task.name,
            manifest.task.version
        );
        done += 1;
    }
    outln!("rescored {done} run(s); {skipped} not finished");
    Ok(ExitCode::SUCCESS)
}
