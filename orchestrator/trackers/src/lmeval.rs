//! A sweep's runs in lm-evaluation-harness's output layout, as `lm_eval --output_path DIR
//! --log_samples` writes it: per model configuration (model, adapter, setting, seed) a folder
//! with `results_DATE.json` (every task's metrics under `results`, with `versions`, `n-shot`,
//! `configs`, `n-samples` and the evaluation `config`) and `samples_TASK_DATE.jsonl` (one line
//! per example: `doc_id`, `doc`, `target`, `arguments`, `resps`, `filtered_resps`, `filter`,
//! `metrics` and the three hashes). Tools that read lm-eval's files (its `make_table`, the
//! Open LLM Leaderboard's parsers, Zeno) read these.
//!
//! What lm-eval has no place for goes under the extra top-level key `nlebench` of the results
//! (per task: run id, fingerprint, cell and the metrics' bootstrap intervals); lm-eval's
//! `_stderr` values are `"N/A"`, since nlebench computes intervals, not standard errors. `DATE`
//! is the configuration's last finish time, so exporting again rewrites the same files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use spec::TaskKind;
use spec::manifest::{FewShot, RunManifest};
use store::{RunStatus, RunSummary, Store, StoreError};

/// What went wrong writing the files, or reading the store.
#[derive(Debug, thiserror::Error)]
pub enum LmEvalError {
    #[error("cannot write {}: {source}\n  fix: give a folder you can write to", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "sweep `{sweep}` has no finished run to export\n  fix: wait for its runs (`nlebench status {sweep}`), or export another sweep"
    )]
    NothingFinished { sweep: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an export wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// The results files, one per model configuration.
    pub results: Vec<PathBuf>,
    /// Runs exported (finished ones), one samples file each.
    pub runs: usize,
    /// Runs left out because they have not finished.
    pub unfinished: usize,
}

/// The filter name lm-eval gives results without a filter pipeline.
const FILTER: &str = "none";

/// Write the finished runs of sweep `sweep` of `store` under folder `dir`.
pub async fn export(store: &Store, sweep: &str, dir: &Path) -> Result<Report, LmEvalError> {
    let status = store.sweep_status(sweep).await?;
    let mut groups: BTreeMap<String, Vec<(&RunSummary, RunManifest)>> = BTreeMap::new();
    let mut report = Report::default();
    for r in &status.runs {
        if r.run.status != RunStatus::Done {
            report.unfinished += 1;
            continue;
        }
        let manifest = r.run.manifest()?;
        groups
            .entry(configuration(&manifest))
            .or_default()
            .push((r, manifest));
    }
    if groups.is_empty() {
        return Err(LmEvalError::NothingFinished {
            sweep: sweep.to_string(),
        });
    }
    for (name, runs) in &groups {
        let folder = dir.join(sanitize(name));
        let last = runs
            .iter()
            .filter_map(|(r, _)| r.run.finished_at)
            .max()
            .unwrap_or(status.sweep.created_at);
        // lm-eval's `datetime.now().isoformat().replace(":", "-")`.
        let date_id = last.format("%Y-%m-%dT%H-%M-%S%.6f").to_string();
        let results = results_json(sweep, name, runs, last.timestamp() as f64);
        for (r, manifest) in runs {
            let samples = store.samples(r.run.id).await?;
            let mut jsonl = Vec::new();
            for s in &samples {
                let lines = match &manifest.task.lm_eval {
                    Some(l) => lm_eval_sample_lines(l, s),
                    None => vec![sample_json(manifest, s)],
                };
                for line in lines {
                    serde_json::to_writer(&mut jsonl, &line)
                        .map_err(|e| StoreError::Encode(e.to_string()))?;
                    jsonl.push(b'\n');
                }
            }
            let file = format!("samples_{}_{date_id}.jsonl", lm_eval_name(&manifest.task));
            write(&folder, &file, &jsonl)?;
            report.runs += 1;
        }
        let text =
            serde_json::to_vec_pretty(&results).map_err(|e| StoreError::Encode(e.to_string()))?;
        report
            .results
            .push(write(&folder, &format!("results_{date_id}.json"), &text)?);
    }
    Ok(report)
}

/// The model configuration a run belongs to: its model, adapter, setting and seed (lm-eval
/// writes one results file per model and its arguments).
fn configuration(m: &RunManifest) -> String {
    let mut name = m.model.name.clone();
    if let Some(a) = &m.adapter {
        name.push('+');
        name.push_str(&a.name);
    }
    format!("{name}/{}/seed{}", m.setting.name, m.seed)
}

/// lm-eval's folder name for a model: `/` becomes `__`; what a file name cannot hold, `_`.
fn sanitize(name: &str) -> String {
    name.replace('/', "__")
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.+=@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The task's name in lm-eval's files: an lm-eval task's own (so lm-eval's tools find it).
fn lm_eval_name(task: &spec::TaskSpec) -> &String {
    task.lm_eval.as_ref().map_or(&task.name, |l| &l.task)
}

/// What lm-eval calls a task's output type (an lm-eval task's own, from its file).
fn output_type(task: &spec::TaskSpec) -> &str {
    match task.kind {
        TaskKind::Generation | TaskKind::Chain | TaskKind::AttributeScores => "generate_until",
        TaskKind::Classification => "multiple_choice",
        TaskKind::LoglikPair => "loglikelihood",
        TaskKind::LmEval => task
            .lm_eval
            .as_ref()
            .and_then(|l| l.config.get("output_type"))
            .and_then(Value::as_str)
            .unwrap_or("multiple_choice"),
    }
}

/// The results file of model configuration `name` of sweep `sweep`.
fn results_json(sweep: &str, name: &str, runs: &[(&RunSummary, RunManifest)], date: f64) -> Value {
    let (mut results, mut configs, mut versions, mut n_shot, mut n_samples, mut ours) = (
        Map::new(),
        Map::new(),
        Map::new(),
        Map::new(),
        Map::new(),
        Map::new(),
    );
    for (r, m) in runs {
        // An lm-eval task under lm-eval's own name, so that its tools find it.
        let task = lm_eval_name(&m.task);
        let mut metrics = Map::from_iter([("alias".to_string(), json!(task))]);
        let mut intervals = Map::new();
        for v in &r.metrics {
            metrics.insert(format!("{},{FILTER}", v.name), json!(v.value));
            metrics.insert(format!("{}_stderr,{FILTER}", v.name), json!("N/A"));
            if let (Some(low), Some(high)) = (v.ci_low, v.ci_high) {
                intervals.insert(v.name.clone(), json!([low, high]));
            }
        }
        results.insert(task.clone(), Value::Object(metrics));
        let k = m.fewshot.as_ref().map_or(0, |f| f.k);
        configs.insert(
            task.clone(),
            json!({
                "task": task,
                "description": m.task.description,
                "output_type": output_type(&m.task),
                "doc_to_text": m.task.template,
                "num_fewshot": k,
                "target_delimiter": FewShot::TARGET_DELIMITER,
                "fewshot_delimiter": FewShot::FEWSHOT_DELIMITER,
                "generation_kwargs": m.setting.decoding,
                "metric_list": m.task.metrics.iter().map(|n| json!({"metric": n})).collect::<Vec<_>>(),
                "metadata": {"version": m.task.version},
            }),
        );
        versions.insert(task.clone(), json!(m.task.version));
        n_shot.insert(task.clone(), json!(k));
        n_samples.insert(
            task.clone(),
            json!({"original": m.dataset.rows, "effective": r.samples_done}),
        );
        ours.insert(
            task.clone(),
            json!({
                "run_id": r.run.id,
                "cell": r.cell,
                "fingerprint": r.run.fingerprint,
                "intervals": intervals,
            }),
        );
    }
    let (_, first) = &runs[0];
    let mut model_args = vec![
        format!("source={}", first.model.source),
        format!("dtype={}", first.model.dtype.as_str()),
    ];
    if let Some(a) = &first.adapter {
        model_args.push(format!("adapter={}", a.source));
    }
    json!({
        "results": results,
        "group_subtasks": results.keys().map(|t| (t.clone(), json!([]))).collect::<Map<_, _>>(),
        "configs": configs,
        "versions": versions,
        "n-shot": n_shot,
        "n-samples": n_samples,
        "config": {
            "model": "nlebench",
            "model_args": model_args.join(","),
            "batch_size": first.setting.batch_size,
            "limit": first.setting.limit,
            "random_seed": first.seed,
            "fewshot_seed": first.seed,
            "bootstrap_iters": 0,
        },
        "git_hash": null,
        "date": date,
        "model_name": name,
        "model_name_sanitized": sanitize(name),
        "nlebench": {"sweep": sweep, "engine_version": first.engine_version, "tasks": ours},
    })
}

/// One line of a samples file, as lm-eval's `EvaluationTracker.save_results_samples` writes
/// it: the request's arguments as `gen_args_I.arg_J`, responses as strings.
fn sample_json(m: &RunManifest, s: &store::entities::sample::Model) -> Value {
    let reference = s.reference.clone().unwrap_or_default();
    let output = s.output.clone().unwrap_or_default();
    let mut doc = Map::from_iter([
        ("prompt".to_string(), json!(s.prompt)),
        ("reference".to_string(), json!(reference)),
    ]);
    if let Value::Object(data) = s.data_json() {
        doc.extend(data);
    }
    let doc = Value::Object(doc);
    // Python's `json.dumps(doc, indent=2, ensure_ascii=False)`, which lm-eval hashes.
    let doc_text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    let gen_kwargs = serde_json::to_value(&m.setting.decoding).unwrap_or(Value::Null);
    json!({
        "doc_id": s.idx,
        "doc": doc,
        "target": reference,
        "arguments": {"gen_args_0": {"arg_0": s.prompt, "arg_1": gen_kwargs}},
        "resps": [[output]],
        "filtered_resps": [output],
        "filter": FILTER,
        "metrics": m.task.metrics,
        "doc_hash": hash(&doc_text),
        "prompt_hash": hash(&s.prompt),
        "target_hash": hash(&reference),
    })
}

/// The lines lm-eval writes for one document of an lm-eval task, one per filter: the
/// document, each request's arguments, its responses and filtered responses (as lm-eval's
/// `sanitize_list` writes them: numbers and flags as Python's `str`), the target, and the
/// document's value of each metric that is a mean over documents.
fn lm_eval_sample_lines(l: &spec::LmEvalTask, s: &store::entities::sample::Model) -> Vec<Value> {
    let data = s.data_json();
    let doc: Value = s
        .reference
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or(Value::Null);
    let empty = Vec::new();
    let responses = data["responses"].as_array().unwrap_or(&empty);
    let mut arguments = Map::new();
    for (i, a) in data["arguments"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .enumerate()
    {
        let args = a.as_array().unwrap_or(&empty).iter().enumerate();
        let args = args.map(|(j, v)| {
            // A context stored as `null` is the sample's prompt.
            let v = if j == 0 && v.is_null() {
                json!(s.prompt)
            } else {
                v.clone()
            };
            (format!("arg_{j}"), v)
        });
        arguments.insert(format!("gen_args_{i}"), Value::Object(args.collect()));
    }
    let resps: Vec<Value> = responses.iter().map(|r| json!([py_str(r)])).collect();
    let mut filters: Vec<(String, Vec<Value>)> = match data["filtered"].as_object() {
        Some(f) => f
            .iter()
            .map(|(name, r)| {
                let r = r.as_array().unwrap_or(&empty);
                (name.clone(), r.iter().map(py_str).collect())
            })
            .collect(),
        None => vec![],
    };
    if filters.is_empty() {
        filters.push((FILTER.into(), responses.iter().map(py_str).collect()));
    }
    let target = py_text(&data["target"]);
    let doc_text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    filters
        .into_iter()
        .map(|(filter, filtered)| {
            let suffix = format!(",{filter}");
            let metrics: Vec<(String, &String)> = l
                .metrics
                .iter()
                .filter_map(|(name, key)| Some((key.strip_suffix(&suffix)?.to_string(), name)))
                .collect();
            let mut line = Map::from_iter([
                ("doc_id".to_string(), json!(s.idx)),
                ("doc".into(), doc.clone()),
                ("target".into(), json!(target)),
                ("arguments".into(), Value::Object(arguments.clone())),
                ("resps".into(), json!(resps)),
                ("filtered_resps".into(), json!(filtered)),
                ("filter".into(), json!(filter)),
                (
                    "metrics".into(),
                    json!(metrics.iter().map(|(m, _)| m).collect::<Vec<_>>()),
                ),
                ("doc_hash".into(), json!(hash(&doc_text))),
                ("prompt_hash".into(), json!(hash(&s.prompt))),
                ("target_hash".into(), json!(hash(&target))),
            ]);
            for (metric, name) in metrics {
                if let Some(v) = data["values"].get(name.as_str()) {
                    line.insert(metric, v.clone());
                }
            }
            Value::Object(line)
        })
        .collect()
}

/// A response as lm-eval's `sanitize_list` writes it: a (log-likelihood, is-greedy) pair as
/// two texts, a number or a text as its Python `str`.
fn py_str(r: &Value) -> Value {
    match r {
        Value::Array(items) => Value::Array(items.iter().map(py_str).collect()),
        v => json!(py_text(v)),
    }
}

/// Python's `str` of a JSON value: a text as is, `True`/`False`, floats as `repr` writes them,
/// lists as their `repr`.
fn py_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Number(n) if n.is_f64() => py_float(n.as_f64().unwrap_or(f64::NAN)),
        Value::Number(n) => n.to_string(),
        Value::Null => "None".into(),
        Value::Array(items) => {
            let items: Vec<String> = items
                .iter()
                .map(|i| match i {
                    Value::String(s) if s.contains('\'') && !s.contains('"') => format!("\"{s}\""),
                    Value::String(s) => {
                        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
                    }
                    other => py_text(other),
                })
                .collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(_) => v.to_string(),
    }
}

/// Python's `repr` of a float: the shortest text that reads back, in exponent form below
/// 1e-4 and from 1e16 on (`1e-05`, `1.5e+16`).
fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let e = if x == 0.0 {
        0
    } else {
        x.abs().log10().floor() as i32
    };
    if (-4..16).contains(&e) {
        let s = format!("{x}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let s = format!("{x:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        format!("{mantissa}e{sign}{digits:0>2}")
    }
}

/// lm-eval's `hash_string`: hex SHA-256 of the UTF-8 text.
fn hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn write(folder: &Path, file: &str, bytes: &[u8]) -> Result<PathBuf, LmEvalError> {
    let path = folder.join(file);
    std::fs::create_dir_all(folder)
        .and_then(|()| std::fs::write(&path, bytes))
        .map_err(|source| LmEvalError::Write {
            path: path.clone(),
            source,
        })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_are_lm_evals_sanitized_model_names() {
        assert_eq!(
            sanitize("NorGLM/NorGPT-369M/all examples/seed0"),
            "NorGLM__NorGPT-369M__all_examples__seed0"
        );
    }

    #[test]
    fn floats_and_lists_are_written_as_pythons_str() {
        // python3 -c 'print([str(x) for x in (-4.0, -1.25, 1e-05, 0.0001, -12345.678, 1.5e16)])'
        let floats = [-4.0, -1.25, 1e-05, 0.0001, -12345.678, 1.5e16];
        let got: Vec<String> = floats.iter().map(|x| py_float(*x)).collect();
        assert_eq!(
            got,
            ["-4.0", "-1.25", "1e-05", "0.0001", "-12345.678", "1.5e+16"]
        );
        // python3 -c "print(str(['Oslo', \"Bjørn's\", 3]), str(True))"
        assert_eq!(
            py_text(&json!(["Oslo", "Bjørn's", 3])),
            "['Oslo', \"Bjørn's\", 3]"
        );
        assert_eq!(py_str(&json!([-0.5, true])), json!(["-0.5", "True"]));
    }

    #[test]
    fn hashes_are_hex_sha256_of_the_utf8_text() {
        // python3 -c 'import hashlib; print(hashlib.sha256("Hvem bor på øya?".encode()).hexdigest())'
        assert_eq!(
            hash("Hvem bor på øya?"),
            "23cff0554d1365aa13137fbe0ffb4103a37b96b02eda4842b94ba3f1bf5f3103"
        );
    }
}
