//! `nlebench tasks list` and `nlebench tasks requests`.

use std::process::ExitCode;

use anyhow::Context as _;
use comfy_table::{ColumnConstraint, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use harness::{Kind, TaskIndex};
use worker::data::lmeval_tasks::TaskData;
use worker::tasks::conversation::ChatPrompting;

use crate::args::{Global, LmEvalTasksOpts, TasksListArgs, TasksRequestsArgs, TasksScoreArgs};
use crate::{context, environment};

/// A table sized to the terminal; when piped, to $COLUMNS (else 100 characters).
fn table() -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if !t.is_tty() {
        let width = environment::columns().unwrap_or(100);
        t.set_width(width);
    }
    t
}

pub fn list(g: &Global, a: TasksListArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let lmeval = if a.include_path.is_empty() {
        None
    } else {
        Some(TaskIndex::build(&a.include_path)?)
    };
    // With --include-path the lm-eval tasks are listed wherever this runs; the NLEBench task
    // files' absence is then a note, not a failure.
    let tasks = match context::tasks(&s, None) {
        Ok(t) => t,
        Err(e) if lmeval.is_some() => {
            eprintln!("NLEBench task files not listed: {e:#}");
            Default::default()
        }
        Err(e) => return Err(e),
    };
    if a.json {
        // The task files' list; with --include-path, {"tasks": that list, "lm_eval": entries}.
        let v: Vec<_> = tasks.iter().collect();
        let mut out = serde_json::to_value(&v)?;
        if let Some(index) = &lmeval {
            out = serde_json::json!({ "tasks": out });
            out["lm_eval"] = index
                .entries()
                .map(|e| {
                    serde_json::json!({
                        "name": e.name,
                        "kind": kind_name(&e.kind),
                        "file": e.file,
                        "tasks": match &e.kind { Kind::Tag(t) => t.iter().cloned().collect(), _ => Vec::new() },
                    })
                })
                .collect();
        }
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table();
    t.set_header(["task", "v", "kind", "metrics", "dataset", "description"]);
    for task in tasks.iter() {
        let dataset = match &task.dataset.file {
            Some(f) => format!("{} ({f})", task.dataset.source),
            None => task.dataset.source.to_string(),
        };
        // The primary metric and how many others (all of them in `--json`).
        let metrics = match task.metrics.len() {
            0 | 1 => task.primary_metric.clone(),
            n => format!("{} (+{})", task.primary_metric, n - 1),
        };
        t.add_row([
            task.name.clone(),
            task.version.to_string(),
            task.kind.as_str().to_string(),
            metrics,
            dataset,
            task.description.clone(),
        ]);
    }
    // Names, versions and kinds are never wrapped; metrics, datasets and descriptions are.
    for i in 0..3 {
        if let Some(c) = t.column_mut(i) {
            c.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    outln!("{t}");
    if let Some(index) = lmeval {
        let mut t = table();
        t.set_header(["lm-eval task", "kind", "source"]);
        for e in index.entries() {
            let source = match (&e.kind, &e.file) {
                (Kind::Tag(tasks), _) => format!("tag of {} tasks", tasks.len()),
                (_, Some(f)) => f.display().to_string(),
                (_, None) => String::new(),
            };
            t.add_row([e.name.clone(), kind_name(&e.kind).to_string(), source]);
        }
        if let Some(c) = t.column_mut(0) {
            c.set_constraint(ColumnConstraint::ContentWidth);
        }
        outln!("{t}");
        for (file, why) in &index.skipped {
            eprintln!("skipped {}: {why}", file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn kind_name(k: &Kind) -> &'static str {
    match k {
        Kind::Task => "task",
        Kind::Group => "group",
        Kind::Tag(_) => "tag",
    }
}

/// An lm-eval task ready to score: its name, documents and requests.
struct Built {
    name: String,
    task: harness::Task,
    requests: Vec<harness::Request>,
    shots: usize,
}

/// The tasks `o` names, loaded and their requests built as lm-eval builds them (the prompts
/// through `chat` where given).
fn build(o: &LmEvalTasksOpts, chat: Option<&ChatPrompting>) -> anyhow::Result<Vec<Built>> {
    let index = TaskIndex::build(&o.include_path)?;
    let hub = environment::hub();
    let data = TaskData {
        download: !hub.offline,
        hub,
    };
    let mut out = Vec::new();
    for name in &o.tasks {
        for r in index.expand(name)? {
            let config = harness::task_config(&r)?;
            let shots = config.shots(o.num_fewshot);
            let task = harness::Task::load(config, &data, shots)?;
            let requests = worker::tasks::lmeval::requests(&task, shots, o.seed, o.limit, chat)
                .with_context(|| format!("building the requests of `{}`", r.name))?;
            out.push(Built {
                name: r.name,
                task,
                requests,
                shots,
            });
        }
    }
    Ok(out)
}

/// `nlebench tasks requests`: each named task's requests, as lm-eval's `build_all_requests`
/// builds them, from the task files under `--include-path`.
pub fn requests(a: TasksRequestsArgs) -> anyhow::Result<ExitCode> {
    let chat = a
        .apply_chat_template
        .as_deref()
        .map(|dir| {
            ChatPrompting::of_model_dir(dir, a.system_instruction.clone(), a.fewshot_as_multiturn)
        })
        .transpose()?;
    let built = build(&a.lm_eval, chat.as_ref())?;
    if a.json {
        let out: serde_json::Map<String, serde_json::Value> = built
            .iter()
            .map(|b| Ok((b.name.clone(), serde_json::to_value(&b.requests)?)))
            .collect::<anyhow::Result<_>>()?;
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table();
    t.set_header([
        "task",
        "output type",
        "documents",
        "shots",
        "requests",
        "file",
    ]);
    for b in &built {
        let docs = b.requests.last().map_or(0, |q| q.doc_id + 1);
        t.add_row([
            b.name.clone(),
            b.task.config.output_type.as_str().to_string(),
            docs.to_string(),
            b.shots.to_string(),
            b.requests.len().to_string(),
            b.task.config.file.display().to_string(),
        ]);
    }
    outln!("{t}");
    Ok(ExitCode::SUCCESS)
}

/// `nlebench tasks score`: each named task's metrics from a model's responses to its
/// requests, as lm-eval's evaluator computes them.
pub fn score(a: TasksScoreArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&a.responses)
        .with_context(|| format!("reading {}", a.responses.display()))?;
    let mut responses: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .with_context(|| format!("{}: expected {{task: [responses]}}", a.responses.display()))?;
    let built = build(&a.lm_eval, None)?;
    let mut out = serde_json::Map::new();
    let mut t = table();
    t.set_header(["task", "metric", "filter", "value"]);
    for b in &built {
        let r = responses.remove(&b.name).with_context(|| {
            format!(
                "{}: no responses for task `{}`",
                a.responses.display(),
                b.name
            )
        })?;
        let r: Vec<harness::Response> = serde_json::from_value(r).with_context(|| {
            format!(
                "{}: task `{}`: each response is [loglikelihood, is_greedy], a number or a text",
                a.responses.display(),
                b.name
            )
        })?;
        let values = harness::score(&b.task, &b.requests, &r)?.values;
        for (key, v) in &values {
            let (metric, filter) = key.split_once(',').unwrap_or((key, ""));
            t.add_row([
                b.name.clone(),
                metric.to_string(),
                filter.to_string(),
                format!("{v:.4}"),
            ]);
        }
        out.insert(b.name.clone(), serde_json::to_value(values)?);
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        outln!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}
