//! lm-evaluation-harness task files read natively (`nlebench tasks requests`, `tasks list
//! --include-path`), against lm-eval itself where `NLEBENCH_TEST_LMEVAL` names a Python with
//! `lm-eval` installed (`.ci/run` installs 0.4.13): `tools/lmeval/noreval_requests.py` builds
//! lm-eval's own requests for all of NorEval's tasks on small local datasets, and for the task
//! files of `tests/fixtures/lmeval-tasks` (one per output type, a group, a tag, few-shot
//! samplers, multiple inputs), and nlebench must build the same, byte for byte; and from a
//! made-up model's responses to those requests (`tasks score`), the same metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Env, root};
use serde_json::Value;

fn fixtures() -> PathBuf {
    root().join("tests/fixtures/lmeval-tasks")
}

/// A task file naming a Hub dataset (apart, since lm-eval cannot reach the Hub in the tests).
fn hub_fixture() -> PathBuf {
    root().join("tests/fixtures/lmeval-hub")
}

/// `noreval_requests.py ARGS` with the lm-eval Python in `cwd`, offline.
fn lm_eval_requests(args: &[&str], cwd: &Path, home: &Path) {
    let py = std::env::var("NLEBENCH_TEST_LMEVAL").expect("NLEBENCH_TEST_LMEVAL");
    let out = Command::new(py)
        .arg(root().join("tools/lmeval/noreval_requests.py"))
        .args(args)
        .current_dir(cwd)
        .env("HF_HOME", home.join("hf"))
        .env("HF_DATASETS_OFFLINE", "1")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "noreval_requests.py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `nlebench tasks requests NAMES --json` run in `cwd`.
fn nlebench_requests(
    env: &Env,
    include: &Path,
    names: &[&str],
    shots: Option<&str>,
    cwd: &Path,
) -> Value {
    let mut args = vec![
        "tasks",
        "requests",
        "--json",
        "--include-path",
        include.to_str().unwrap(),
    ];
    args.extend(names);
    if let Some(k) = shots {
        args.extend(["--num-fewshot", k]);
    }
    let out = env.cmd(&args).current_dir(cwd).output().unwrap();
    assert!(
        out.status.success(),
        "nlebench {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `nlebench tasks score TASK --responses FILE --json` in `cwd`: the metrics, or the error.
fn nlebench_score(
    env: &Env,
    include: &Path,
    task: &str,
    responses: &Path,
    shots: Option<&str>,
    cwd: &Path,
) -> Result<Value, String> {
    let mut args = vec![
        "tasks",
        "score",
        "--json",
        "--include-path",
        include.to_str().unwrap(),
        "--responses",
        responses.to_str().unwrap(),
        task,
    ];
    if let Some(k) = shots {
        args.extend(["--num-fewshot", k]);
    }
    let out = env.cmd(&args).current_dir(cwd).output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    Ok(v[task].clone())
}

/// Whether two metric sets hold the same keys with values equal to 1e-9 (relative).
fn same_metrics(want: &Value, got: &Value) -> bool {
    let (Some(w), Some(g)) = (want.as_object(), got.as_object()) else {
        return false;
    };
    w.len() == g.len()
        && w.iter().all(|(k, a)| {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                g.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN),
            );
            a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-3)
        })
}

/// The made-up responses of `scores` (lm-eval's `scores-K.json`) written as a responses file.
fn responses_file(scores: &Value, path: &Path) {
    let r: serde_json::Map<String, Value> = scores
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(t, v)| v.get("responses").map(|r| (t.clone(), r.clone())))
        .collect();
    std::fs::write(path, serde_json::to_string(&r).unwrap()).unwrap();
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The first request where `got` and `want` differ, for the failure message.
fn first_difference(want: &Value, got: &Value) -> String {
    match (want.as_array(), got.as_array()) {
        (Some(w), Some(g)) => {
            for (i, (a, b)) in w.iter().zip(g).enumerate() {
                if a != b {
                    return format!("request {i}:\n  lm-eval:  {a}\n  nlebench: {b}");
                }
            }
            format!(
                "{} requests from lm-eval, {} from nlebench",
                w.len(),
                g.len()
            )
        }
        _ => format!("lm-eval: {want}\nnlebench: {got}"),
    }
}

#[test]
#[cfg_attr(
    not(nlebench_lmeval),
    ignore = "needs lm-evaluation-harness: set NLEBENCH_TEST_LMEVAL to a Python with `lm-eval` installed (.ci/run does)"
)]
fn every_noreval_task_builds_lm_evals_requests() {
    let env = Env::embedded();
    let out = env.dir.path().join("noreval");
    let out_s = out.to_str().unwrap();
    lm_eval_requests(
        &["--out", out_s, "--num-fewshot", "2"],
        env.dir.path(),
        env.dir.path(),
    );
    lm_eval_requests(&["--out", out_s], env.dir.path(), env.dir.path());
    for shots in ["default", "2"] {
        let want = read_json(&out.join(format!("requests-{shots}.json")));
        let want = want.as_object().unwrap();
        let names: Vec<&str> = want.keys().map(String::as_str).collect();
        let got = nlebench_requests(
            &env,
            &out.join("tasks"),
            &names,
            (shots != "default").then_some(shots),
            env.dir.path(),
        );
        let mut differ = Vec::new();
        for (task, w) in want {
            assert!(
                w.get("error").is_none(),
                "lm-eval could not build {task}: {w}"
            );
            if got.get(task) != Some(w) {
                differ.push(format!("{task}: {}", first_difference(w, &got[task])));
            }
        }
        eprintln!(
            "NorEval, num_fewshot {shots}: nlebench's requests equal lm-eval's for {} of {} tasks",
            want.len() - differ.len(),
            want.len()
        );
        assert!(differ.is_empty(), "{}", differ.join("\n"));
        // lm-eval 0.4.13 ships 116 NorEval tasks; every one must have been compared.
        assert_eq!(want.len(), 116, "{names:?}");

        // The metrics of the same made-up responses, where lm-eval could compute them here.
        let scores = read_json(&out.join(format!("scores-{shots}.json")));
        let responses = out.join(format!("responses-{shots}.json"));
        responses_file(&scores, &responses);
        let (mut agree, mut unported, mut lm_eval_failed, mut differ) =
            (0, Vec::new(), Vec::new(), Vec::new());
        for (task, s) in scores.as_object().unwrap() {
            if s.get("error").is_some() {
                lm_eval_failed.push(task.clone());
                continue;
            }
            match nlebench_score(
                &env,
                &out.join("tasks"),
                task,
                &responses,
                (shots != "default").then_some(shots),
                env.dir.path(),
            ) {
                Ok(got) if same_metrics(&s["metrics"], &got) => agree += 1,
                Ok(got) => differ.push(format!("{task}: lm-eval {} nlebench {got}", s["metrics"])),
                Err(e) if e.contains("no port") => unported.push(task.clone()),
                Err(e) => differ.push(format!("{task}: {e}")),
            }
        }
        eprintln!(
            "NorEval metrics, num_fewshot {shots}: equal to lm-eval's for {agree} of the {} tasks lm-eval scored here; not ported: {unported:?}; lm-eval could not score: {lm_eval_failed:?}",
            scores.as_object().unwrap().len() - lm_eval_failed.len()
        );
        assert!(differ.is_empty(), "{}", differ.join("\n"));
        // Not ported yet: nortruthfulqa_gen's process_results (sacrebleu's intl BLEU and
        // rouge_score's ROUGE per reference). lm-eval itself cannot score norsumm (bert_score)
        // or norquad (transformers 5 dropped squad_metrics) in CI's environment.
        assert!(
            unported.iter().all(|t| t.starts_with("nortruthfulqa_gen_")),
            "{unported:?}"
        );
        assert!(agree >= 89, "{agree}");
    }
}

/// A model folder as models ship one, holding only what `--apply-chat-template` reads: the
/// template `tests/fixtures/chat/templates/TEMPLATE.jinja` and `special_tokens` in its
/// tokenizer config.
fn chat_model_dir(env: &Env, template: &str, special_tokens: &Value) -> PathBuf {
    let dir = env.dir.path().join(format!("chat-{template}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = special_tokens.clone();
    config["chat_template"] = Value::String(
        std::fs::read_to_string(
            root().join(format!("tests/fixtures/chat/templates/{template}.jinja")),
        )
        .unwrap(),
    );
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).unwrap();
    dir
}

/// Through a model's chat template (`tasks requests --apply-chat-template DIR`, with
/// `--system-instruction` and `--fewshot-as-multiturn`), every fixture task's requests equal
/// those lm-eval 0.4.13 built through transformers' `apply_chat_template` for four model-shaped
/// templates (recorded by tools/lmeval/chat_reference.py): the few-shot examples folded into
/// one user turn or as turns of their own, the generation prefix continued as the assistant's
/// turn, a template that refuses the system turn rendered again without it.
#[test]
fn requests_through_chat_templates_equal_lm_evals() {
    let reference = read_json(&root().join("tests/fixtures/lmeval_chat_reference.json"));
    let env = Env::embedded();
    let mut by_case: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for key in reference["requests"].as_object().unwrap().keys() {
        let mut parts = key.splitn(3, '/');
        let (template, case, task) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        by_case
            .entry((template.into(), case.into()))
            .or_default()
            .push(task.into());
    }
    let (shots, limit) = (
        reference["shots"].to_string(),
        reference["limit"].to_string(),
    );
    let system = reference["system_instruction"].as_str().unwrap();
    let mut compared = 0;
    for ((template, case), tasks) in &by_case {
        let dir = chat_model_dir(&env, template, &reference["special_tokens"]);
        let mut args = vec![
            "tasks",
            "requests",
            "--json",
            "--include-path",
            ".",
            "--num-fewshot",
            &shots,
            "--limit",
            &limit,
            "--apply-chat-template",
            dir.to_str().unwrap(),
        ];
        if case != "single" {
            args.extend(["--system-instruction", system]);
        }
        if case == "multiturn" {
            args.push("--fewshot-as-multiturn");
        }
        args.extend(tasks.iter().map(String::as_str));
        let out = env.cmd(&args).current_dir(fixtures()).output().unwrap();
        assert!(
            out.status.success(),
            "nlebench {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Value = serde_json::from_slice(&out.stdout).unwrap();
        for task in tasks {
            let want = &reference["requests"][format!("{template}/{case}/{task}")];
            assert!(
                want.is_array(),
                "lm-eval could not build {template}/{case}/{task}: {want}"
            );
            assert!(
                &got[task] == want,
                "{template}/{case}/{task}: {}",
                first_difference(want, &got[task])
            );
            compared += 1;
        }
    }
    // Four templates, three ways, nine tasks.
    assert_eq!(compared, 108);
}

/// All of NorEval's tasks through a chat template (Llama 3's shape, the system instruction,
/// one shot as turns of its own), on the datasets `noreval_requests.py` writes: the first
/// document's requests equal lm-eval 0.4.13's through transformers' `apply_chat_template`
/// (recorded by tools/lmeval/chat_reference.py), 116 of 116.
#[test]
#[cfg_attr(
    not(nlebench_lmeval),
    ignore = "needs lm-evaluation-harness: set NLEBENCH_TEST_LMEVAL to a Python with `lm-eval` installed (.ci/run does)"
)]
fn noreval_requests_through_a_chat_template_equal_lm_evals() {
    let reference = read_json(&root().join("tests/fixtures/lmeval_noreval_chat_reference.json"));
    let env = Env::embedded();
    let out = env.dir.path().join("noreval");
    lm_eval_requests(
        &["--out", out.to_str().unwrap(), "--tasks-only"],
        env.dir.path(),
        env.dir.path(),
    );
    let template = reference["template"].as_str().unwrap();
    let dir = chat_model_dir(&env, template, &reference["special_tokens"]);
    let want = reference["requests"].as_object().unwrap();
    let (shots, limit) = (
        reference["shots"].to_string(),
        reference["limit"].to_string(),
    );
    let include = out.join("tasks");
    let mut args: Vec<String> = [
        "tasks",
        "requests",
        "--json",
        "--include-path",
        include.to_str().unwrap(),
        "--num-fewshot",
        &shots,
        "--limit",
        &limit,
        "--apply-chat-template",
        dir.to_str().unwrap(),
        "--system-instruction",
        reference["system_instruction"].as_str().unwrap(),
        "--fewshot-as-multiturn",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    args.extend(want.keys().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = env.cmd(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let differ: Vec<String> = want
        .iter()
        .filter(|(task, w)| got.get(*task) != Some(*w))
        .map(|(task, w)| format!("{task}: {}", first_difference(w, &got[task])))
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert_eq!(want.len(), 116);
}

/// A sweep of a NorEval tag (`norcommonsenseqa_nob`: its five prompt variants, NorEval's own
/// task files on local datasets in their schema) on a random model: a run per variant, each
/// with lm-eval's metrics, and the variants' best and mean rows.
#[test]
#[cfg_attr(
    not(nlebench_lmeval),
    ignore = "needs lm-evaluation-harness: set NLEBENCH_TEST_LMEVAL to a Python with `lm-eval` installed (.ci/run does)"
)]
fn a_sweep_of_a_noreval_tag_runs_each_prompt_variant_with_the_best_and_mean() {
    let env = Env::embedded();
    let out = env.dir.path().join("noreval");
    let out_s = out.to_str().unwrap();
    lm_eval_requests(
        &["--out", out_s, "--tasks-only"],
        env.dir.path(),
        env.dir.path(),
    );
    let sweep = env.write(
        "noreval.toml",
        &format!(
            "name = \"noreval\"\ntasks = [\"lm-eval:norcommonsenseqa_nob\"]\nlm_eval_include = [\"{}\"]\n\n[[models]]\nname = \"tiny\"\nsource = \"random:norgpt-tiny@1\"\n\n[[settings]]\nname = \"one-shot\"\nnum_fewshot = 1\n",
            out.join("tasks").display()
        ),
    );
    env.ok(&["run", sweep.to_str().unwrap()]);
    let status = env.status("noreval");
    let mut tasks: Vec<String> = status["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["status"], "done", "{r}");
            assert!(r["metrics"]["acc"].is_number(), "{r}");
            r["cell"]
                .as_str()
                .unwrap()
                .split('/')
                .nth(1)
                .unwrap()
                .to_string()
        })
        .collect();
    tasks.sort();
    let want: Vec<String> = (0..5)
        .map(|k| format!("lm-eval:norcommonsenseqa_nob_p{k}"))
        .collect();
    assert_eq!(tasks, want, "{status}");
    let rows = status["variants"].as_array().unwrap();
    let metrics: Vec<&str> = rows.iter().map(|r| r["metric"].as_str().unwrap()).collect();
    assert_eq!(metrics, ["acc", "acc_norm"], "{status}");
    for row in rows {
        assert_eq!(
            row["cell"], "tiny/lm-eval:norcommonsenseqa_nob/one-shot/seed=0",
            "{row}"
        );
        assert_eq!(
            (row["variants"].as_u64(), row["of"].as_u64()),
            (Some(5), Some(5))
        );
        let values: Vec<f64> = status["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r["metrics"][row["metric"].as_str().unwrap()]
                    .as_f64()
                    .unwrap()
            })
            .collect();
        let best = values.iter().copied().fold(f64::MIN, f64::max);
        let mean = values.iter().sum::<f64>() / 5.0;
        assert!(
            (row["best"].as_f64().unwrap() - best).abs() < 1e-12,
            "{row} {values:?}"
        );
        assert!(
            (row["mean"].as_f64().unwrap() - mean).abs() < 1e-12,
            "{row} {values:?}"
        );
    }
}

#[test]
#[cfg_attr(
    not(nlebench_lmeval),
    ignore = "needs lm-evaluation-harness: set NLEBENCH_TEST_LMEVAL to a Python with `lm-eval` installed (.ci/run does)"
)]
fn task_files_of_every_output_type_build_lm_evals_requests() {
    let env = Env::embedded();
    let out = env.dir.path().join("fixtures");
    let out_s = out.to_str().unwrap();
    lm_eval_requests(
        &["--include-path", ".", "--out", out_s, "--num-fewshot", "2"],
        &fixtures(),
        env.dir.path(),
    );
    lm_eval_requests(
        &["--include-path", ".", "--out", out_s],
        &fixtures(),
        env.dir.path(),
    );
    let mut kinds = std::collections::BTreeSet::new();
    for shots in ["default", "2"] {
        let want = read_json(&out.join(format!("requests-{shots}.json")));
        for (name, w) in want.as_object().unwrap() {
            assert!(
                w.get("error").is_none(),
                "lm-eval could not build {name}: {w}"
            );
            let got = nlebench_requests(
                &env,
                Path::new("."),
                &[name],
                (shots != "default").then_some(shots),
                &fixtures(),
            );
            // A task's requests, or a group's {task: requests}.
            let got = if w.is_array() { got[name].clone() } else { got };
            assert_eq!(
                &got,
                w,
                "{name}, num_fewshot {shots}: {}",
                first_difference(w, &got)
            );
            for r in w.as_array().into_iter().flatten() {
                kinds.insert(r["request_type"].as_str().unwrap().to_string());
            }
        }
        // Every task's metrics from the same made-up responses equal lm-eval's.
        let scores = read_json(&out.join(format!("scores-{shots}.json")));
        let responses = out.join(format!("responses-{shots}.json"));
        responses_file(&scores, &responses);
        for (task, s) in scores.as_object().unwrap() {
            assert!(
                s.get("error").is_none(),
                "lm-eval could not score {task}: {s}"
            );
            let got = nlebench_score(
                &env,
                Path::new("."),
                task,
                &responses,
                (shots != "default").then_some(shots),
                &fixtures(),
            )
            .unwrap();
            assert!(
                same_metrics(&s["metrics"], &got),
                "{task}, num_fewshot {shots}: lm-eval {} nlebench {got}",
                s["metrics"]
            );
        }
        assert_eq!(scores.as_object().unwrap().len(), 9);
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["generate_until", "loglikelihood", "loglikelihood_rolling"]
    );
}

/// Runs without lm-eval: the context lm-eval 0.4.13 built for this file's first request
/// (first_n shots from the evaluated split, the document left out, a generation prefix, a
/// few-shot delimiter of its own, a filter in the prompt).
#[test]
fn a_multiple_choice_task_file_gives_lm_evals_prompt() {
    let env = Env::embedded();
    let got = nlebench_requests(
        &env,
        Path::new("."),
        &["nlebench_test_mc"],
        None,
        &fixtures(),
    );
    let reqs = got["nlebench_test_mc"].as_array().unwrap();
    assert_eq!(
        reqs[0],
        serde_json::json!({"doc_id": 0, "idx": 0, "request_type": "loglikelihood", "arguments": [
            "LITTERATUR: Hvem skrev «Sult»? Svar: Knut Hamsun\n---\nMATTE: Hva er 7 ganger 8? Svar: 56\n---\nGEOGRAFI: Hva heter hovedstaden i Norge? Svar:",
            " Oslo"
        ]})
    );
    // 4 documents × 3 choices, then acc_mutual_info's unconditional requests.
    assert_eq!(reqs.len(), 24);
    assert_eq!(
        reqs[23]["arguments"],
        serde_json::json!(["", " Norskehavet"])
    );
}

#[test]
#[cfg_attr(
    not(nlebench_lmeval),
    ignore = "needs lm-evaluation-harness: set NLEBENCH_TEST_LMEVAL to a Python with `lm-eval` installed (.ci/run does)"
)]
fn the_index_of_an_installed_lm_eval_names_what_lm_eval_indexes() {
    let env = Env::embedded();
    let file = env.dir.path().join("index.json");
    lm_eval_requests(
        &["--index", file.to_str().unwrap()],
        env.dir.path(),
        env.dir.path(),
    );
    let mut want: BTreeMap<String, String> = serde_json::from_value(read_json(&file)).unwrap();
    let dir = want.remove("_tasks_dir").unwrap();
    let got: Value =
        serde_json::from_str(&env.ok(&["tasks", "list", "--json", "--include-path", &dir]))
            .unwrap();
    let got: BTreeMap<String, String> = got["lm_eval"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let missing: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .take(10)
        .collect();
    let extra: Vec<_> = got
        .keys()
        .filter(|k| !want.contains_key(*k))
        .take(10)
        .collect();
    eprintln!(
        "lm-eval indexes {} names; nlebench {}",
        want.len(),
        got.len()
    );
    assert!(
        missing.is_empty() && extra.is_empty(),
        "lm-eval only (or another kind): {missing:?}\nnlebench only: {extra:?}"
    );
    assert!(want.len() > 10_000, "{}", want.len());
}

/// A task naming a Hub dataset reads the configuration's split from the Hugging Face cache,
/// and says what to do where the cache lacks it (downloads off).
#[test]
fn a_hub_dataset_is_read_from_the_hugging_face_cache() {
    let env = Env::embedded();
    let repo = env
        .dir
        .path()
        .join("hf/hub/datasets--nlebench-test--tiny-qa");
    let snap = repo.join("snapshots/0123abcd");
    std::fs::create_dir_all(snap.join("nb")).unwrap();
    std::fs::create_dir_all(snap.join("nn")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123abcd").unwrap();
    let row = |q: &str| {
        format!("{{\"question\": \"{q}\", \"options\": [\"Ja\", \"Nei\"], \"label\": 1}}\n")
    };
    std::fs::write(
        snap.join("nb/test-00000-of-00001.jsonl"),
        row("Er Oslo i Sverige?") + &row("Er havet søtt?"),
    )
    .unwrap();
    std::fs::write(
        snap.join("nn/test-00000-of-00001.jsonl"),
        row("Er Oslo i Sverige, då?"),
    )
    .unwrap();
    let got = nlebench_requests(
        &env,
        Path::new("."),
        &["nlebench_test_hub"],
        None,
        &hub_fixture(),
    );
    let reqs = got["nlebench_test_hub"].as_array().unwrap();
    assert_eq!(reqs.len(), 4, "{reqs:?}");
    assert_eq!(
        reqs[2]["arguments"],
        serde_json::json!(["Spørsmål: Er havet søtt?\nSvar:", " Ja"])
    );

    std::fs::remove_file(snap.join("nb/test-00000-of-00001.jsonl")).unwrap();
    let out = env
        .cmd(&[
            "tasks",
            "requests",
            "--include-path",
            ".",
            "nlebench_test_hub",
        ])
        .current_dir(hub_fixture())
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        e.contains("nlebench-test/tiny-qa")
            && e.contains("`test`")
            && e.contains("`nb`")
            && e.contains("downloads are off")
            && e.contains("huggingface-cli download"),
        "{e}"
    );
}

#[test]
fn task_list_shows_lm_eval_tasks_groups_and_tags_with_their_files() {
    let env = Env::embedded();
    let fx = fixtures();
    let text = env.ok(&["tasks", "list", "--include-path", fx.to_str().unwrap()]);
    for name in [
        "nlebench_test_mc",
        "nlebench_test_group",
        "nlebench_test_tasks",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    let v: Value = serde_json::from_str(&env.ok(&[
        "tasks",
        "list",
        "--json",
        "--include-path",
        fx.to_str().unwrap(),
    ]))
    .unwrap();
    let entry = |n: &str| {
        v["lm_eval"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(entry("nlebench_test_group")["kind"], "group");
    assert!(
        entry("nlebench_test_mc")["file"]
            .as_str()
            .unwrap()
            .ends_with("lmeval-tasks/mc.yaml")
    );
    assert_eq!(
        entry("nlebench_test_mc_tag")["tasks"],
        serde_json::json!(["nlebench_test_mc", "nlebench_test_mc_template"])
    );
    // The NLEBench task files are still listed first, under "tasks".
    assert!(
        v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "no-crows-pairs")
    );
}

#[test]
fn python_hooks_without_a_port_and_unknown_keys_are_refused_by_name() {
    let env = Env::embedded();
    let dir = env.dir.path().join("mine");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("utils.py"),
        "def mine(dataset):\n    return dataset\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("hooked.yaml"),
        "task: hooked\ndataset_path: json\ndataset_kwargs: {data_files: {test: x.jsonl}}\ntest_split: test\nprocess_docs: !function utils.mine\ndoc_to_text: q\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("typo.yaml"),
        "task: typo\ntest_split: test\ndoc_to_txt: q\n",
    )
    .unwrap();
    let run = |task: &str| {
        let out = env.run(&[
            "tasks",
            "requests",
            "--include-path",
            dir.to_str().unwrap(),
            task,
        ]);
        assert!(!out.status.success(), "{task} was accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run("hooked");
    assert!(
        e.contains("utils.mine")
            && e.contains("hooked.yaml")
            && e.contains("utils.py")
            && e.contains("no port"),
        "{e}"
    );
    let e = run("typo");
    assert!(
        e.contains("typo.yaml") && e.contains("`doc_to_txt`") && e.contains("not a key"),
        "{e}"
    );
    let e = run("nosuch");
    assert!(
        e.contains("no lm-eval task, group or tag is named `nosuch`"),
        "{e}"
    );
    // A metric function without a port could score nothing: a sweep naming its task is
    // refused at submission, before any run is computed.
    std::fs::write(dir.join("x.jsonl"), "{\"q\": \"Hva?\", \"a\": \"Ja\"}\n").unwrap();
    std::fs::write(
        dir.join("scored.yaml"),
        format!(
            "task: scored\ndataset_path: json\ndataset_kwargs: {{data_files: {{test: {}}}}}\ntest_split: test\noutput_type: generate_until\ndoc_to_text: q\ndoc_to_target: a\nprocess_results: !function utils.mine\nmetric_list:\n  - metric: em\n",
            dir.join("x.jsonl").display()
        ),
    )
    .unwrap();
    let sweep = env.write(
        "scored.toml",
        &format!(
            "name = \"scored\"\ntasks = [\"lm-eval:scored\"]\nlm_eval_include = [\"{}\"]\n\n[[models]]\nname = \"tiny\"\nsource = \"random:norgpt-tiny@1\"\n\n[[settings]]\nname = \"all\"\n",
            dir.display()
        ),
    );
    let out = env.run(&["submit", sweep.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && e.contains("utils.mine")
            && e.contains("no port")
            && e.contains("process_results")
            && e.contains("leave the task out"),
        "{e}"
    );
}
