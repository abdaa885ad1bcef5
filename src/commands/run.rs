//! `nlebench run`: submit a sweep, evaluate it with in-process workers, print the results.

use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use store::RunStatus;
use tokio::sync::watch;

use crate::args::{Global, RunArgs};
use crate::commands::submit;
use crate::{context, render};

pub async fn run(g: &Global, a: RunArgs, hooks: &worker::Hooks) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let sweep = context::sweep(&s, &a.sweep)?;
    context::writable_data_dir(&s)?;
    let cells = orchestrator::submit::manifests(&sweep, &context::resolver(&s))?;
    let store = context::store_migrated(&s).await?;
    let mut queue = context::queue(&s).await?;
    let done = orchestrator::submit::submit(&store, &mut queue, sweep, cells, a.force).await?;
    submit::print_plan(&done.sweep, &done.cells, false);
    let name = done.sweep.name.clone();

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut workers = Vec::new();
    for i in 0..a.workers.max(1) {
        let (s, store, queue, stop) = (s.clone(), store.clone(), queue.clone(), stop_rx.clone());
        let opts = worker::lifecycle::WorkerOptions {
            forget_on_stop: true,
            ..context::worker_options(None, Some(i), None, hooks)
        };
        workers.push(tokio::spawn(async move {
            worker::lifecycle::run(&s, store, queue, opts, stop).await
        }));
    }

    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} samples · {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut interrupted = false;
    let status = loop {
        let status = store.sweep_status(&name).await?;
        let expected: u64 = status.runs.iter().map(|r| r.run.n_expected as u64).sum();
        let stored: u64 = status.runs.iter().map(|r| r.samples_done).sum();
        bar.set_length(expected);
        bar.set_position(stored.min(expected));
        bar.set_message(
            status
                .counts()
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        if status.finished() {
            break status;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(300)) => {}
            _ = tokio::signal::ctrl_c() => {
                interrupted = true;
                break status;
            }
        }
    };
    bar.finish_and_clear();
    if interrupted {
        eprintln!("stopping after the current batch (Ctrl-C again stops at once)");
        tokio::spawn(async {
            let _ = tokio::signal::ctrl_c().await;
            std::process::exit(130);
        });
    }
    let _ = stop_tx.send(true);
    for w in workers {
        w.await??;
    }
    if interrupted {
        eprintln!("interrupted: finished work is stored; run the same command again to continue");
        return Ok(ExitCode::from(130));
    }
    render::results(&status, a.detail);
    if a.serve.is_none() {
        outln!(
            "stored in {}: `nlebench serve` shows them in the browser, `nlebench report {name}` sets them beside the paper's baselines",
            store::redact(&s.database_url)
        );
    }
    let failed = status.runs.iter().any(|r| r.run.status != RunStatus::Done);
    if let Some(addr) = a.serve {
        let serve = crate::args::ServeArgs {
            addr,
            public: false,
            secure_cookies: false,
            cache_ms: 2000,
            trusted_proxies: vec![],
            store: a.store.clone(),
        };
        crate::commands::serve::serve(g, serve).await?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
