//! `nlebench import`: store outputs produced elsewhere (e.g. the authors' released files) as a
//! finished run with source `import`, its samples and its metrics; rescoring works on it as on
//! any run.

use std::process::ExitCode;

use anyhow::anyhow;
use engine::content::HashCache;
use metrics::bootstrap::Bootstrap;
use orchestrator::manifest::{ModelManifest, RunManifest};
use orchestrator::resolve::{ResolvedDataset, ResolvedModel};
use orchestrator::spec::{DataFormat, Dtype, Setting, Source};
use worker::tasks::{ScoreRequest, import_samples, metrics_of_new};

use crate::args::{Global, ImportArgs, RowFilter};
use crate::{context, render};

pub async fn import(g: &Global, a: ImportArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let tasks = context::tasks(&s, None)?;
    let task = context::task(&tasks, &a.task)?;
    let file = std::fs::canonicalize(&a.file)
        .map_err(|e| anyhow!("cannot read {}: {e}", a.file.display()))?;
    let table = worker::data::read(
        &file,
        DataFormat::from_path(&file).unwrap_or(DataFormat::Csv),
    )?;
    let req = ScoreRequest {
        map: a.map.clone().unwrap_or_default(),
        filter_paper: matches!(a.filter, Some(RowFilter::Paper)),
        nli: None,
        mauve: None,
        bootstrap: Bootstrap::with_iterations(s.bootstrap_iterations),
    };
    let samples = import_samples(task, &table, &req)?;
    if samples.is_empty() {
        return Err(anyhow!(
            "no rows of {} are left to import{}\n  fix: check the file and the filter",
            file.display(),
            if req.filter_paper {
                " after the paper filter"
            } else {
                ""
            }
        ));
    }
    let metrics = metrics_of_new(task, &samples, &req.bootstrap)?;
    let sha = HashCache::new(None).sha256(&file)?;
    let map: Vec<String> = req.map.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let setting = format!(
        "import {}{}",
        map.join(" "),
        if req.filter_paper {
            " filter=paper"
        } else {
            ""
        }
    );
    let manifest = RunManifest {
        model: ModelManifest {
            name: a.model.clone(),
            source: Source::Path { path: file.clone() },
            dtype: Dtype::F32,
            resolved: ResolvedModel {
                revision: None,
                content_id: Some(sha.clone()),
                random_weights: false,
                arch: "import".into(),
            },
        },
        adapter: None,
        task: task.clone(),
        dataset: ResolvedDataset {
            revision: format!("sha256:{sha}"),
            rows: table.rows.len() as u64,
        },
        setting: Setting {
            name: setting.trim().to_string(),
            limit: None,
            batch_size: None,
            max_tokens: None,
            decoding: None,
        },
        seed: 0,
        n_expected: samples.len() as u64,
        engine_version: "import".into(),
    };
    let store = context::store_migrated(&s).await?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let key = format!("{}/{}/{name}", a.model, task.name);
    let run_id = store
        .import_run(&a.sweep, &key, &manifest, &samples, &metrics)
        .await?;
    outln!(
        "imported {} sample(s) of {} as run {run_id} (sweep {}, model {}, task {})",
        samples.len(),
        file.display(),
        a.sweep,
        a.model,
        task.name
    );
    outln!("{}", render::metrics_table(&metrics));
    Ok(ExitCode::SUCCESS)
}
