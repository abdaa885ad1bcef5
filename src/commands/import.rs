//! `nlebench import`: store outputs produced elsewhere (e.g. the authors' released files) as a
//! finished run with source `import`, its samples and its metrics; rescoring works on it as on
//! any run.

use std::process::ExitCode;

use anyhow::Context as _;

use metrics::bootstrap::Bootstrap;
use worker::metric_models::MetricModelCache;
use worker::tasks::ScoreRequest;

use orchestrator::config::Settings;

use crate::args::{Global, ImportArgs, ImportFormat, RowFilter};
use crate::{context, render};

pub async fn import(g: &Global, a: ImportArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    if let Some(run_id) = a.onto {
        return onto(&s, run_id, &a).await;
    }
    let (Some(task_name), Some(model)) = (&a.task, &a.model) else {
        anyhow::bail!("give --task and --model (or --onto RUN to add scores to a stored run)");
    };
    if let Some(name) = task_name.strip_prefix(spec::LmEvalTask::PREFIX) {
        return lm_eval(&s, name, model, &a).await;
    }
    let tasks = context::tasks(&s, None)?;
    let task = context::task(&tasks, task_name)?;
    let mut req = ScoreRequest {
        map: a.map.clone().unwrap_or_default(),
        filter_paper: matches!(a.filter, Some(RowFilter::Paper)),
        models: MetricModelCache::default().models_for(
            task,
            &context::locations(&s),
            &engine::device::select(s.device)?,
            true,
        ),
        bootstrap: Bootstrap::with_iterations(s.bootstrap_iterations),
    };
    let import = worker::import::prepare(task, model, &a.file, a.format.into(), &mut req)?;
    for note in &import.notes {
        eprintln!("note: {note}");
    }
    store_import(&s, &a.sweep, model, import).await
}

/// Store `import` as a finished run of sweep `sweep` and print it.
async fn store_import(
    s: &Settings,
    sweep: &str,
    model: &str,
    import: worker::import::Imported,
) -> anyhow::Result<ExitCode> {
    let store = context::store_migrated(s).await?;
    let run_id = store
        .import_run(
            sweep,
            &import.cell_key,
            &import.manifest,
            &import.samples,
            &import.metrics,
        )
        .await?;
    store.set_notes(run_id, &import.notes).await?;
    outln!(
        "imported {} sample(s) of {} as run {run_id} (sweep {sweep}, model {model}, task {})",
        import.samples.len(),
        import.file.display(),
        import.manifest.task.name
    );
    outln!("{}", render::metrics_table(&import.metrics));
    Ok(ExitCode::SUCCESS)
}

/// `import --format lm-eval --task lm-eval:NAME --include-path DIR`: lm-eval's samples of
/// its tasks (one file, or each task's in the folder lm-eval wrote for a model), read from the
/// task files as runs of those tasks read them.
async fn lm_eval(
    s: &Settings,
    name: &str,
    model: &str,
    a: &ImportArgs,
) -> anyhow::Result<ExitCode> {
    if !matches!(a.format, ImportFormat::LmEval) {
        anyhow::bail!(
            "--task lm-eval:{name} imports lm-eval's samples file\n  fix: add --format lm-eval"
        );
    }
    if a.include_path.is_empty() {
        anyhow::bail!(
            "--task lm-eval:{name} is read from its task file\n  fix: name the folder of lm-eval task files with --include-path DIR"
        );
    }
    let cwd = std::env::current_dir()?;
    let include: Vec<std::path::PathBuf> = a.include_path.iter().map(|p| cwd.join(p)).collect();
    let tasks = worker::tasks::lmeval::expand(name, &include)?;
    // A folder lm-eval wrote: each task's newest samples file. A file: the one task's.
    let files: Vec<std::path::PathBuf> = if a.file.is_dir() {
        tasks
            .iter()
            .map(|l| {
                worker::data::lmeval::samples_file(&a.file, &l.task)?.with_context(|| {
                    format!(
                        "{} holds no samples_{}_DATE.jsonl\n  fix: give the folder lm-eval wrote for one model (OUTPUT_PATH/MODEL), run with --log_samples",
                        a.file.display(),
                        l.task
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?
    } else if tasks.len() == 1 {
        vec![a.file.clone()]
    } else {
        let names: Vec<&str> = tasks.iter().map(|t| t.task.as_str()).collect();
        anyhow::bail!(
            "lm-eval:{name} stands for {} tasks ({}), and {} is one file\n  fix: give the folder lm-eval wrote (--file DIR), or one task (--task lm-eval:TASK)",
            names.len(),
            names.join(", "),
            a.file.display()
        );
    };
    let locations = context::locations(s);
    let data = worker::data::lmeval_tasks::TaskData {
        download: !locations.hub.offline,
        hub: locations.hub,
    };
    let boot = Bootstrap::with_iterations(s.bootstrap_iterations);
    let chat = a
        .apply_chat_template
        .as_deref()
        .map(|dir| {
            worker::tasks::conversation::ChatPrompting::of_model_dir(
                dir,
                a.system_instruction.clone(),
                a.fewshot_as_multiturn,
            )
        })
        .transpose()?;
    // Every file is read and checked before any is stored.
    let imports = tasks
        .iter()
        .zip(&files)
        .map(|(l, file)| {
            worker::import::prepare_lm_eval(
                l,
                model,
                file,
                a.num_fewshot,
                chat.as_ref(),
                &data,
                &boot,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    for import in imports {
        store_import(s, &a.sweep, model, import).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `import --onto RUN`: per-sample scores computed elsewhere, merged into the run's samples,
/// and its metrics recomputed, in one transaction.
async fn onto(s: &Settings, run_id: i64, a: &ImportArgs) -> anyhow::Result<ExitCode> {
    let store = context::store_migrated(s).await?;
    let run = store.runs_for(&format!("run:{run_id}")).await?.remove(0);
    let manifest = run.manifest()?;
    let samples = store.samples(run_id).await?;
    let boot = Bootstrap::with_iterations(s.bootstrap_iterations);
    let scores = worker::import::scores_onto(&manifest.task, run_id, &samples, &a.file, &boot)?;
    store
        .add_sample_scores(run_id, &scores.updates, &scores.metrics)
        .await?;
    let samples = store.samples(run_id).await?;
    let notes: Vec<String> = worker::tasks::attributes::unscored_note(&manifest.task, &samples)
        .into_iter()
        .collect();
    store.set_notes(run_id, &notes).await?;
    outln!(
        "added {} score(s) of {} sample(s) of run {run_id} (task {}) from {}",
        manifest.task.attributes.len(),
        scores.updates.len(),
        manifest.task.name,
        scores.file.display()
    );
    outln!("{}", render::metrics_table(&scores.metrics));
    Ok(ExitCode::SUCCESS)
}
