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
    let request = EvalRequest {
        model: a.model.clone(),
        adapter: a.adapter.clone(),
        tasks: a.tasks.clone(),
        limit: a.limit,
        batch_size: a.batch_size,
        num_fewshot: a.num_fewshot,
        datasets: a.datasets.clone(),
        seed: a.seed,
    };
    let (name, text) = request.sweep_file(&cwd)?;
    let dir = s.data_dir.join("eval");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
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
    };
    crate::commands::run::run(g, run, hooks).await
}
