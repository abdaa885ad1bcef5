//! `nlebench eval`: a one-line evaluation. The flags become a sweep file under the data
//! directory, named by a hash of its contents (the same flags reuse the same sweep and its
//! finished cells), which then runs as `nlebench run` would run it.

use std::process::ExitCode;

use anyhow::Context;
use spec::eval::EvalRequest;

use crate::args::{EvalArgs, Global, RunArgs};
use crate::context;

pub async fn eval(g: &Global, a: EvalArgs, hooks: &worker::Hooks) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let cwd = std::env::current_dir().context("the current directory cannot be read")?;
    // A bare directory is a local model, as for the other commands.
    let model = if !a.model.contains(':') && std::path::Path::new(&a.model).is_dir() {
        format!("path:{}", a.model)
    } else {
        a.model.clone()
    };
    let request = EvalRequest {
        model,
        adapter: a.adapter.clone(),
        tasks: a.tasks.clone(),
        limit: a.limit,
        batch_size: a.batch_size,
        num_fewshot: a.num_fewshot,
        datasets: a.datasets.clone(),
        fewshot_datasets: a.fewshot_datasets.clone(),
        name: a.name.clone(),
        seed: a.seed,
        apply_chat_template: a.apply_chat_template,
        system_prompt: a.system_prompt.clone(),
        fewshot_as_multiturn: a.fewshot_as_multiturn,
        include_path: a.include_path.clone(),
    };
    let (name, text) = request.sweep_file(&cwd)?;
    let dir = s.data_dir.join("eval");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{name}.toml"));
    // Checked as `run` reads it before it is kept: bad flags leave no sweep file behind.
    let draft = dir.join(format!(".{name}.toml.draft"));
    std::fs::write(&draft, &text).with_context(|| format!("cannot write {}", draft.display()))?;
    let checked = context::sweep(&s, &draft).map_err(|e| flag_error(&a, e));
    if let Err(e) = checked {
        let _ = std::fs::remove_file(&draft);
        return Err(e);
    }
    std::fs::rename(&draft, &path).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "sweep {name}: {} (`nlebench run` takes it as it is)",
        path.display()
    );
    let run = RunArgs {
        sweep: path,
        force: a.force,
        workers: a.workers,
        detail: a.detail,
        serve: None,
        store: a.store.clone(),
        spec: a.spec.clone(),
        worker: a.worker.clone(),
        device: a.device.clone(),
        metric: a.metric.clone(),
    };
    crate::commands::run::run(g, run, hooks).await
}

/// A sweep error of eval's own sweep file, said as the flag that caused it.
fn flag_error(a: &EvalArgs, e: anyhow::Error) -> anyhow::Error {
    let text = e.to_string();
    let flag = if text.contains("unknown task") || text.contains("tasks") {
        "--tasks"
    } else if text.contains("datasets.") {
        "--dataset"
    } else if text.contains("fewshot_datasets.") {
        "--fewshot-dataset"
    } else if text.contains("num_fewshot") || text.contains("few-shot") {
        "--num-fewshot"
    } else if text.contains("models[0].adapters") {
        "--adapter"
    } else if text.contains("models[0]") || text.contains("catalog") {
        "--model"
    } else {
        return e;
    };
    let problem = text
        .lines()
        .find(|l| !l.trim_start().starts_with("fix:") && !l.trim().is_empty())
        .unwrap_or(&text);
    let fix = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("fix:"))
        .unwrap_or(" see `nlebench eval --help`");
    let problem = problem
        .split_once(": ")
        .filter(|(place, _)| place.contains(".toml"))
        .map_or(problem, |(_, rest)| rest);
    anyhow::anyhow!(
        "{flag} (model {}, tasks {}): {problem}\n  fix:{fix}",
        a.model,
        a.tasks.join(",")
    )
}
