//! lm-evaluation-harness tasks in sweeps (`lm-eval:NAME`): NorEval-style prompt variants (a
//! tag of `_p0`, `_p1` multiple-choice tasks) and a `generate_until` task on a random model
//! give a run per task with lm-eval's metrics
//! (those `nlebench tasks score` computes from the stored responses, the path checked against
//! lm-eval itself in `lmeval_tasks`), their best value (the maximum: accuracy) and mean as rows of their own in `status`,
//! the same responses at any batch size, and a killed worker's run finished without
//! recomputing what it stored.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Env;
use serde_json::Value;

/// Documents of the variants: `n` sums, the right answer first.
fn docs(n: usize) -> String {
    (0..n)
        .map(|i| {
            let (a, b) = (i % 17, i / 17 + 2);
            serde_json::json!({
                "question": format!("Hva er {a} pluss {b}?"),
                "topic": if i % 2 == 0 { "Regning" } else { "Matte" },
                "options": [(a + b).to_string(), (a + b + 1).to_string(), format!("{} eller {}", a, b)],
                "label": 0,
            })
            .to_string()
                + "\n"
        })
        .collect()
}

/// A folder of two prompt variants of one multiple-choice dataset (tag `sum`), as NorEval
/// writes them, over `n` documents.
fn variants(env: &Env, n: usize) -> std::path::PathBuf {
    let dir = env.dir.path().join("lm-eval-tasks");
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("sums.jsonl");
    std::fs::write(&data, docs(n)).unwrap();
    for (k, prompt) in [
        (0, "Spørsmål: {{question}}\\nSvar:"),
        (
            1,
            "{{topic}}. {{question}} ({{options | join(', ')}})\\nSvar:",
        ),
    ] {
        std::fs::write(
            dir.join(format!("sum_p{k}.yaml")),
            format!(
                "task: sum_p{k}\ntag: sum\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {}\noutput_type: multiple_choice\ntest_split: test\ndoc_to_text: \"{prompt}\"\ndoc_to_choice: options\ndoc_to_target: label\nmetric_list:\n  - metric: acc\n  - metric: acc_norm\n",
                data.display()
            ),
        )
        .unwrap();
    }
    // A generation task beside them (not a variant), scored by exact match.
    std::fs::write(
        dir.join("sum_gen.yaml"),
        format!(
            "task: sum_gen\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {}\noutput_type: generate_until\ntest_split: test\ndoc_to_text: \"{{{{question}}}}\\nSvar:\"\ndoc_to_target: \"{{{{options[0]}}}}\"\ngeneration_kwargs:\n  until: [\"\\n\"]\n  max_gen_toks: 6\nmetric_list:\n  - metric: exact_match\n",
            data.display()
        ),
    )
    .unwrap();
    dir
}

/// The sweep of the variants on a random NorGPT-small, `batch` documents per pass.
fn sweep(env: &Env, include: &Path, batch: u64) -> std::path::PathBuf {
    env.write(
        "lm.toml",
        &format!(
            "name = \"lm\"\ntasks = [\"lm-eval:sum\", \"lm-eval:sum_gen\"]\nlm_eval_include = [\"{}\"]\nshard_size = 1000\n\n[[models]]\nname = \"small\"\nsource = \"random:norgpt-small@3\"\n\n[[settings]]\nname = \"all\"\nbatch_size = {batch}\n",
            include.display()
        ),
    )
}

/// Each run's fingerprint, task, and its samples' (index, data), in task and index order.
fn samples(env: &Env) -> Vec<Vec<String>> {
    env.query(
        "SELECT r.fingerprint, r.task_name, CAST(s.idx AS TEXT), s.data FROM samples s JOIN runs r ON r.id = s.run_id ORDER BY r.task_name, s.idx",
    )
}

/// `nlebench import --format lm-eval --task TASK --include-path INCLUDE --model MODEL --file
/// FILE EXTRA...` in `env`.
fn import_lm_eval(
    env: &Env,
    task: &str,
    include: &Path,
    model: &str,
    file: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "import",
        "--format",
        "lm-eval",
        "--task",
        task,
        "--include-path",
        include.to_str().unwrap(),
        "--model",
        model,
        "--file",
        file.to_str().unwrap(),
    ];
    args.extend(extra);
    env.run(&args)
}

#[test]
fn a_sweep_runs_prompt_variants_with_their_maximum_and_mean_and_resumes() {
    const DOCS: usize = 400;
    // One store: a worker killed mid-run, then another finishing the job.
    let env = Env::embedded();
    let include = variants(&env, DOCS);
    let file = sweep(&env, &include, 2);
    let out = env.ok(&["submit", file.to_str().unwrap()]);
    assert!(
        out.contains("lm-eval:sum_p0") && out.contains("lm-eval:sum_p1"),
        "{out}"
    );
    let mut doomed = env.worker("doomed");
    let start = Instant::now();
    while env.count("SELECT COUNT(*) FROM samples") < 20 {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the worker stored nothing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    doomed.kill();
    let before = env.query(
        "SELECT CAST(run_id AS TEXT), CAST(idx AS TEXT), data, CAST(created_at AS TEXT) FROM samples ORDER BY run_id, idx",
    );
    assert!(
        before.len() < 3 * DOCS,
        "the worker was killed before it finished ({} samples)",
        before.len()
    );
    env.ok(&["worker", "--exit-when-idle", "6"]);
    let status = env.status("lm");
    let runs = status["runs"].as_array().unwrap();
    assert_eq!(
        runs.len(),
        3,
        "a run per variant and the generation task: {status}"
    );
    for r in runs {
        assert_eq!(r["status"], "done", "{r}");
        assert_eq!(r["samples"], DOCS as u64, "{r}");
    }
    let after = env.query(
        "SELECT CAST(run_id AS TEXT), CAST(idx AS TEXT), data, CAST(created_at AS TEXT) FROM samples ORDER BY run_id, idx",
    );
    for row in &before {
        assert!(
            after.contains(row),
            "a stored sample was recomputed: {row:?}"
        );
    }

    // Another store, another batch size, no interruption: the same responses and metrics.
    let other = Env::embedded();
    let include = variants(&other, DOCS);
    other.ok(&["run", sweep(&other, &include, 7).to_str().unwrap()]);
    // The same runs (the data files' place is not in the fingerprint, their documents are).
    assert_eq!(
        samples(&other),
        samples(&env),
        "the same runs and responses"
    );
    let metrics = |e: &Env| {
        e.query("SELECT r.task_name, m.name, CAST(m.value AS TEXT), CAST(m.n AS TEXT) FROM metrics m JOIN runs r ON r.id = m.run_id ORDER BY r.task_name, m.name")
    };
    assert_eq!(metrics(&other), metrics(&env));
    let stored = metrics(&other);
    other.ok(&["rescore", "lm"]);
    assert_eq!(metrics(&other), stored, "rescore computes the same metrics");

    // The metrics are those `tasks score` computes from the stored responses.
    let status = other.status("lm");
    for r in status["runs"].as_array().unwrap() {
        let task = r["cell"].as_str().unwrap().split('/').nth(1).unwrap();
        let task = task.strip_prefix("lm-eval:").unwrap();
        let responses: Vec<Value> = other
            .query(&format!(
                "SELECT s.data FROM samples s WHERE s.run_id = {} ORDER BY s.idx",
                r["run_id"]
            ))
            .iter()
            .flat_map(|row| {
                let data: Value = serde_json::from_str(&row[0]).unwrap();
                data["responses"].as_array().unwrap().clone()
            })
            .collect();
        let file = other.write(
            "responses.json",
            &serde_json::json!({ task: responses }).to_string(),
        );
        let scored: Value = serde_json::from_str(&other.ok(&[
            "tasks",
            "score",
            task,
            "--include-path",
            include.to_str().unwrap(),
            "--responses",
            file.to_str().unwrap(),
            "--json",
        ]))
        .unwrap();
        let stored = r["metrics"].as_object().unwrap();
        assert!(!stored.is_empty(), "{r}");
        for (name, value) in stored {
            assert_eq!(
                value,
                &scored[task][format!("{name},none")],
                "{task} {name}"
            );
        }
    }

    // The variants' best value (the maximum: higher accuracy is better) and mean.
    let by_task = |metric: &str| -> Vec<f64> {
        status["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["cell"].as_str().unwrap().contains("/lm-eval:sum_p"))
            .map(|r| r["metrics"][metric].as_f64().unwrap())
            .collect()
    };
    let rows = status["variants"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "acc and acc_norm: {rows:?}");
    for row in rows {
        let values = by_task(row["metric"].as_str().unwrap());
        assert_eq!(row["cell"], "small/lm-eval:sum/all/seed=0");
        assert_eq!(
            (row["variants"].as_u64(), row["of"].as_u64()),
            (Some(2), Some(2))
        );
        assert_eq!(row["n"], DOCS as u64);
        // Within an ulp or two: serde_json reads decimals fast, not always to the nearest f64.
        let near = |a: f64, b: f64| (a - b).abs() <= 1e-12;
        assert!(
            near(row["best"].as_f64().unwrap(), values[0].max(values[1])),
            "{row} {values:?}"
        );
        assert!(
            near(row["mean"].as_f64().unwrap(), (values[0] + values[1]) / 2.0),
            "{row} {values:?}"
        );
    }
    let text = other.ok(&["status", "lm"]);
    assert!(
        text.contains("prompt variants") && text.contains("small/lm-eval:sum/all/seed=0"),
        "{text}"
    );
    // `nlebench eval` takes them as lm-eval's command line does, and prints the variants.
    let out = other.ok(&[
        "eval",
        "--model",
        "random:norgpt-small@3",
        "--tasks",
        "lm-eval:sum",
        "--include-path",
        include.to_str().unwrap(),
        "--limit",
        "8",
    ]);
    assert!(
        out.contains("prompt variants") && out.contains("/lm-eval:sum/"),
        "{out}"
    );
    // The reproduction report shows them too (not judged: a baseline names one task).
    let md = other.ok(&["report", "lm"]);
    let section = &md[md.find("## Prompt variants").expect("a variants section")..];
    assert!(
        section.contains("| small/lm-eval:sum/all/seed=0 | acc |")
            && section.contains("| small/lm-eval:sum/all/seed=0 | acc_norm |"),
        "{md}"
    );
    let json: Value =
        serde_json::from_str(&other.ok(&["report", "lm", "--format", "json"])).unwrap();
    assert_eq!(json["variants"].as_array().unwrap().len(), 2, "{json}");
    // Exported to lm-eval's layout under lm-eval's own task names.
    let out = other.dir.path().join("lm-eval-out");
    other.ok(&["export", "lm", "--to", "lm-eval", out.to_str().unwrap()]);
    let folder = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut files: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let results = files.iter().find(|f| f.starts_with("results_")).unwrap();
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join(results)).unwrap()).unwrap();
    let mut tasks: Vec<&String> = results["results"].as_object().unwrap().keys().collect();
    tasks.sort();
    assert_eq!(tasks, ["sum_gen", "sum_p0", "sum_p1"], "{results}");
    assert_eq!(
        results["configs"]["sum_gen"]["output_type"],
        "generate_until"
    );
    // In lm-eval's own layout: a line per document with its requests and responses.
    let samples_of = |task: &str| {
        folder.join(
            files
                .iter()
                .find(|f| f.starts_with(&format!("samples_{task}_")))
                .unwrap_or_else(|| panic!("samples of {task} in {files:?}")),
        )
    };
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(samples_of("sum_p0"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["doc"]["question"], "Hva er 0 pluss 2?", "{first}");
    assert_eq!(first["target"], "0", "{first}");
    assert_eq!(
        first["arguments"]["gen_args_1"],
        serde_json::json!({"arg_0": "Spørsmål: Hva er 0 pluss 2?\nSvar:", "arg_1": " 3"}),
        "{first}"
    );
    let resps = first["resps"].as_array().unwrap();
    assert_eq!(resps.len(), 3, "{first}");
    assert!(
        resps
            .iter()
            .all(|r| r[0][0].as_str().unwrap().parse::<f64>().is_ok()
                && ["True", "False"].contains(&r[0][1].as_str().unwrap())),
        "{first}"
    );
    assert!(first["acc"] == 0.0 || first["acc"] == 1.0, "{first}");
    // Imported back as runs of the same tasks, they have the same metrics and intervals.
    let run_metrics = |e: &Env, run: &str| {
        e.query(&format!("SELECT name, CAST(value AS TEXT), CAST(ci_low AS TEXT), CAST(ci_high AS TEXT), CAST(n AS TEXT) FROM metrics WHERE run_id = {run} ORDER BY name"))
    };
    let run_of = |e: &Env, cell: &str| {
        e.query(&format!(
            "SELECT CAST(r.id AS TEXT) FROM runs r JOIN sweep_cells c ON c.run_id = r.id WHERE c.cell_key LIKE '{cell}'"
        ))[0][0]
            .clone()
    };
    for task in ["sum_gen", "sum_p0", "sum_p1"] {
        let out = import_lm_eval(
            &other,
            &format!("lm-eval:{task}"),
            &include,
            "small-again",
            &samples_of(task),
            &[],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = String::from_utf8_lossy(&out.stdout);
        assert!(out.contains(&format!("imported {DOCS} sample(s)")), "{out}");
        let original = run_of(&other, &format!("small/lm-eval:{task}/all/seed=0"));
        let imported = run_of(&other, &format!("small-again/lm-eval:{task}/%"));
        let want = run_metrics(&other, &original);
        assert!(!want.is_empty());
        assert_eq!(run_metrics(&other, &imported), want, "{task}");
    }
    // A file of other prompts (another few-shot setting) is refused, naming the request.
    let out = import_lm_eval(
        &other,
        "lm-eval:sum_p0",
        &include,
        "small-again",
        &samples_of("sum_p0"),
        &["--num-fewshot", "1"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("request 0 of document 0 is not the one nlebench builds")
            && err.contains(":1:")
            && err.contains("--num-fewshot"),
        "{err}"
    );
    // A tag stands for several tasks: one file is one task's.
    let out = import_lm_eval(
        &other,
        "lm-eval:sum",
        &include,
        "small-again",
        &samples_of("sum_p0"),
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("lm-eval:sum stands for 2 tasks"),
        "{err}"
    );
    // The folder lm-eval wrote for the model: each of the tag's tasks from its samples file.
    let out = import_lm_eval(
        &other,
        "lm-eval:sum",
        &include,
        "small-folder",
        &folder,
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.matches(&format!("imported {DOCS} sample(s)")).count(),
        2,
        "{out}"
    );
    for task in ["sum_p0", "sum_p1"] {
        let original = run_of(&other, &format!("small/lm-eval:{task}/all/seed=0"));
        let imported = run_of(&other, &format!("small-folder/lm-eval:{task}/%"));
        assert_eq!(
            run_metrics(&other, &imported),
            run_metrics(&other, &original),
            "{task}"
        );
    }
    // And on the sweep's page of the dashboard.
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let _server = common::Proc {
        child: other
            .cmd(&["serve", "--public", "--addr", &addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    };
    common::wait_for_port(port, Duration::from_secs(30), "dashboard did not start");
    let (code, _, page) = common::get(port, "/sweeps/lm");
    assert_eq!(code, 200, "{page}");
    let section = &page[page
        .find("<h2>Prompt variants</h2>")
        .expect("a variants section")..];
    let section = &section[..section.find("</table>").unwrap()];
    assert!(
        section.contains("small/lm-eval:sum/all/seed=0")
            && section.contains("acc_norm")
            && section.matches("<tr>").count() == 3,
        "{section}"
    );
    // The leaderboard ranks each model's best and mean over the variants.
    let (code, _, page) = common::get(port, "/leaderboard?metric=acc&random=true");
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains("lm-eval:sum · best over prompts")
            && page.contains("lm-eval:sum · mean over prompts")
            && page.contains("mean of 2 prompts")
            && page.contains("best of 2 prompts: lm-eval:sum_p"),
        "{page}"
    );
    // A model's best variant is not compared with another model's (they may be other tasks).
    let best =
        &page[page.find("best over prompts").unwrap()..page.find("mean over prompts").unwrap()];
    assert!(!best.contains("compare with #1"), "{best}");
    let (code, _, page) = common::get(port, "/sweeps/lm/report");
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains("<h2>Prompt variants</h2>") && page.contains("small/lm-eval:sum/all/seed=0"),
        "{page}"
    );
}

/// Metrics that are means over documents (`acc`, `acc_norm`, `exact_match`) carry their
/// bootstrap interval and each document's value, so `compare` tests two models' runs of an
/// lm-eval task per document (McNemar for yes/no values) on the documents they share.
#[test]
fn lm_eval_runs_carry_intervals_and_two_models_compare_per_document() {
    const DOCS: usize = 150;
    let env = Env::embedded();
    let include = variants(&env, DOCS);
    let file = env.write(
        "two.toml",
        &format!(
            "name = \"two\"\ntasks = [\"lm-eval:sum_p1\", \"lm-eval:sum_gen\"]\nlm_eval_include = [\"{}\"]\n\n[[models]]\nname = \"a\"\nsource = \"random:norgpt-small@3\"\n\n[[models]]\nname = \"b\"\nsource = \"random:norgpt-small@4\"\n\n[[settings]]\nname = \"all\"\n",
            include.display()
        ),
    );
    env.ok(&["run", file.to_str().unwrap()]);
    let id = |cell: &str| {
        env.query(&format!(
            "SELECT CAST(r.id AS TEXT) FROM runs r JOIN sweep_cells c ON c.run_id = r.id WHERE c.cell_key = '{cell}'"
        ))[0][0]
            .clone()
    };
    for model in ["a", "b"] {
        for (task, metrics) in [
            ("sum_p1", &["acc", "acc_norm"][..]),
            ("sum_gen", &["exact_match"][..]),
        ] {
            let run = id(&format!("{model}/lm-eval:{task}/all/seed=0"));
            let values: Vec<Value> = env
                .query(&format!(
                    "SELECT data FROM samples WHERE run_id = {run} ORDER BY idx"
                ))
                .iter()
                .map(|r| serde_json::from_str::<Value>(&r[0]).unwrap()["values"].clone())
                .collect();
            assert_eq!(values.len(), DOCS);
            for m in metrics {
                let row = env.query(&format!(
                    "SELECT CAST(value AS TEXT), CAST(ci_low AS TEXT), CAST(ci_high AS TEXT), CAST(n AS TEXT) FROM metrics WHERE run_id = {run} AND name = '{m}'"
                ));
                let [value, low, high, n] = &row[0][..] else {
                    panic!("{row:?}")
                };
                let (value, low, high): (f64, f64, f64) = (
                    value.parse().unwrap(),
                    low.parse().expect("an interval"),
                    high.parse().expect("an interval"),
                );
                assert_eq!(n, &DOCS.to_string());
                // Each document's value is 0 or 1, and their mean is the stored metric.
                let each: Vec<f64> = values.iter().map(|v| v[m].as_f64().unwrap()).collect();
                assert!(each.iter().all(|x| *x == 0.0 || *x == 1.0), "{m}: {each:?}");
                let mean = each.iter().sum::<f64>() / DOCS as f64;
                assert!(
                    (mean - value).abs() < 1e-12,
                    "{model} {task} {m}: {mean} {value}"
                );
                // A 95 % interval of a share over 150 documents: around it, some points wide.
                assert!(low <= value && value <= high, "{m}: {low} {value} {high}");
                if 0.0 < value && value < 1.0 {
                    assert!(high - low > 0.02 && high - low < 0.25, "{m}: {low} {high}");
                }
            }
        }
    }
    for (task, metrics) in [
        ("sum_p1", &["acc", "acc_norm"][..]),
        ("sum_gen", &["exact_match"][..]),
    ] {
        let (a, b) = (
            id(&format!("a/lm-eval:{task}/all/seed=0")),
            id(&format!("b/lm-eval:{task}/all/seed=0")),
        );
        let c: Value =
            serde_json::from_str(&env.ok(&["compare", &a, &b, "--json", "--iterations", "2000"]))
                .unwrap();
        assert_eq!(c["shared"], DOCS as u64, "{c}");
        let tests = c["tests"].as_array().unwrap();
        let names: Vec<&str> = tests
            .iter()
            .map(|t| t["metric"].as_str().unwrap())
            .collect();
        assert_eq!(names, metrics, "{c}");
        let stored = |run: &str, m: &str| -> f64 {
            env.query(&format!(
                "SELECT CAST(value AS TEXT) FROM metrics WHERE run_id = {run} AND name = '{m}'"
            ))[0][0]
                .parse()
                .unwrap()
        };
        for t in tests {
            let m = t["metric"].as_str().unwrap();
            assert_eq!(t["test"], "mcnemar", "{t}");
            assert_eq!(t["n"], DOCS as u64);
            let near = |x: &Value, y: f64| (x.as_f64().unwrap() - y).abs() < 1e-9;
            assert!(
                near(&t["a"], stored(&a, m)) && near(&t["b"], stored(&b, m)),
                "{t}"
            );
            let p = t["p"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&p), "{t}");
        }
        let table = env.ok(&["compare", &a, &b]);
        assert!(
            table.contains(&format!("{DOCS} shared example(s)")) && table.contains("McNemar exact"),
            "{table}"
        );
    }
}

/// A task file changed between submission and computation is not computed under the
/// submitted run's fingerprint: the run fails, naming the file and the fix.
#[test]
fn a_task_file_changed_after_submission_is_refused() {
    let env = Env::embedded();
    let include = variants(&env, 4);
    env.ok(&["submit", sweep(&env, &include, 2).to_str().unwrap()]);
    let file = include.join("sum_p0.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("Spørsmål:", "Oppgave:")).unwrap();
    env.ok(&["worker", "--exit-when-idle", "3"]);
    let status = env.status("lm");
    let run = status["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["cell"].as_str().unwrap().contains("sum_p0"))
        .unwrap();
    assert_eq!(run["status"], "failed", "{run}");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "{} changed since the run was submitted",
            file.display()
        )) && error.contains("submit the sweep again"),
        "{error}"
    );
}

/// A setting's `chat_template = true` (with its system prompt) prompts an lm-eval task
/// through the model's chat template as lm-eval's `--apply_chat_template` does: the same
/// requests `tasks requests --apply-chat-template` builds (the path checked against lm-eval
/// in `lmeval_tasks`), a run and fingerprint of its own, and metrics that rescore from the
/// prompts the samples keep.
#[test]
fn a_chat_template_setting_prompts_lm_eval_tasks_through_the_template() {
    let env = Env::embedded();
    let include = variants(&env, 6);
    let model = crate::chat_templates::chat_model(&env, "llama3");
    let file = env.write(
        "chat.toml",
        &format!(
            "name = \"chat\"\ntasks = [\"lm-eval:sum_p0\", \"lm-eval:sum_gen\"]\nlm_eval_include = [\"{}\"]\n\n[[models]]\nname = \"tiny-chat\"\nsource = \"path:{}\"\n\n[[settings]]\nname = \"plain\"\n\n[[settings]]\nname = \"chat\"\nchat_template = true\nsystem_prompt = \"Svar kort.\"\n",
            include.display(),
            model.display()
        ),
    );
    env.ok(&["run", file.to_str().unwrap()]);
    let status = env.status("chat");
    let runs = status["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "{status}");
    for r in runs {
        assert_eq!(r["status"], "done", "{r}");
    }
    let run = |cell: &str| -> Vec<String> {
        env.query(&format!(
            "SELECT CAST(r.id AS TEXT), r.fingerprint, s.data, s.prompt FROM runs r JOIN sweep_cells c ON c.run_id = r.id JOIN samples s ON s.run_id = r.id WHERE c.cell_key = '{cell}' AND s.idx = 0"
        ))
        .remove(0)
    };
    for task in ["sum_p0", "sum_gen"] {
        let (chat, plain) = (
            run(&format!("tiny-chat/lm-eval:{task}/chat/seed=0")),
            run(&format!("tiny-chat/lm-eval:{task}/plain/seed=0")),
        );
        assert_ne!(chat[1], plain[1], "different fingerprints");
        // The first document's requests are those `tasks requests` builds through the template.
        let want: Value = serde_json::from_str(&env.ok(&[
            "tasks",
            "requests",
            task,
            "--include-path",
            include.to_str().unwrap(),
            "--apply-chat-template",
            model.to_str().unwrap(),
            "--system-instruction",
            "Svar kort.",
            "--limit",
            "1",
            "--json",
        ]))
        .unwrap();
        let data: Value = serde_json::from_str(&chat[2]).unwrap();
        let stored = data["arguments"].as_array().unwrap();
        let want = want[task].as_array().unwrap();
        assert_eq!(stored.len(), want.len());
        let prompt = want[0]["arguments"][0].as_str().unwrap();
        assert!(
            prompt.starts_with("<|begin_of_text|><|start_header_id|>system<|end_header_id|>")
                && prompt.contains("Svar kort.<|eot_id|>"),
            "{prompt}"
        );
        for (k, (s, w)) in stored.iter().zip(want).enumerate() {
            // A context that is the sample's prompt is kept as null.
            let context = s[0].as_str().unwrap_or(prompt);
            assert_eq!(context, w["arguments"][0], "{task} request {k}");
            assert_eq!(s[1], w["arguments"][1], "{task} request {k}");
        }
        assert_eq!(chat[3], prompt);
        assert!(!plain[3].contains("<|start_header_id|>"), "{}", plain[3]);
    }
    let metrics = || {
        env.query("SELECT r.id, m.name, CAST(m.value AS TEXT), CAST(m.ci_low AS TEXT) FROM metrics m JOIN runs r ON r.id = m.run_id ORDER BY r.id, m.name")
    };
    let before = metrics();
    assert!(before.len() >= 4, "{before:?}");
    env.ok(&["rescore", "chat"]);
    assert_eq!(metrics(), before, "rescore computes the same metrics");

    // Exported, the chat run's samples import back with the same template and flags, to the
    // same metrics; without them, the first request is not the one nlebench builds.
    let out = env.dir.path().join("lm-eval-out");
    env.ok(&["export", "chat", "--to", "lm-eval", out.to_str().unwrap()]);
    let folder = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("__chat__seed0"))
        .unwrap();
    let file = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("samples_sum_p0_")
        })
        .unwrap();
    let import = |extra: &[&str]| {
        import_lm_eval(
            &env,
            "lm-eval:sum_p0",
            &include,
            "tiny-chat-again",
            &file,
            extra,
        )
    };
    let refused = import(&[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("--apply-chat-template"),
        "{err}"
    );
    let ok = import(&[
        "--apply-chat-template",
        model.to_str().unwrap(),
        "--system-instruction",
        "Svar kort.",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let values = |cell: &str| {
        env.query(&format!(
            "SELECT m.name, CAST(m.value AS TEXT), CAST(m.ci_low AS TEXT), CAST(m.ci_high AS TEXT) FROM metrics m JOIN sweep_cells c ON c.run_id = m.run_id WHERE c.cell_key LIKE '{cell}' ORDER BY m.name"
        ))
    };
    let original = values("tiny-chat/lm-eval:sum_p0/chat/seed=0");
    assert!(!original.is_empty());
    assert_eq!(values("tiny-chat-again/lm-eval:sum_p0/%"), original);
}
