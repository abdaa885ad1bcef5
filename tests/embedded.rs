//! The embedded default (SQLite store and queue, in-process workers): the quickstart sweep,
//! resubmission, dry runs, status and export.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use common::{Env, mini_pairs, root, sweep_toml, text};

#[test]
fn quickstart_runs_offline_and_prints_per_type_bias_shares() {
    let env = Env::embedded();
    let sweep = root().join("experiments/sweeps/quickstart.toml");
    let out = env.run(&["run", sweep.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("4 new"), "{stdout}");
    assert!(stdout.contains("RANDOM WEIGHTS"), "{stdout}");
    // A model × task summary of the primary metrics.
    let summary = &stdout[stdout.find("results of sweep").unwrap()..];
    for word in [
        "no-crows-pairs",
        "bias_paper",
        "no-boolq",
        "accuracy",
        "no-alpaca-culture",
        "cot-scene-1",
        "rouge_l",
        "norgpt-tiny-random",
    ] {
        assert!(
            summary.contains(word),
            "no {word} in the summary:\n{summary}"
        );
    }
    assert!(
        stdout.trim_end().ends_with(
            "`nlebench serve` shows them in the browser, `nlebench report quickstart` sets them beside the paper's baselines"
        ) && stdout.contains("stored in sqlite://"),
        "the run ends saying where its results are: {stdout}"
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM workers"),
        0,
        "the in-process workers leave no stopped rows behind"
    );
    // `status` writes a value as the results table does.
    let accuracy = summary
        .split('┆')
        .map(str::trim)
        .find(|c| c.starts_with("0.") && c.contains(" ["))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let listed = env.ok(&["status", "quickstart"]);
    assert!(
        listed.contains(&format!("accuracy = {accuracy}")),
        "{accuracy}: {listed}"
    );
    // One task of each kind ran to the end: 32 pairs, 8 BoolQ questions (zero-shot),
    // 6 instructions, 3 articles through both CoT steps; the generated model is on disk.
    let st = env.status("quickstart");
    let runs = st["runs"].as_array().unwrap();
    let samples = |task: &str| {
        let r = runs
            .iter()
            .find(|r| r["cell"].as_str().unwrap().contains(&format!("/{task}/")))
            .unwrap_or_else(|| panic!("no run of {task}: {st}"));
        assert_eq!(r["status"], "done", "{r}");
        r["samples"].as_i64().unwrap()
    };
    assert_eq!(samples("no-crows-pairs"), 32);
    assert_eq!(samples("no-boolq"), 8);
    assert_eq!(samples("no-alpaca-culture"), 6);
    assert_eq!(samples("cot-scene-1"), 3);
    assert_eq!(env.count("SELECT COUNT(*) FROM chain_steps"), 7 + 3);
    assert!(
        env.dir
            .path()
            .join("data/models/random-norgpt-tiny-seed1234/model.safetensors")
            .is_file()
    );

    // Running again evaluates nothing and prints the same table.
    let again = env.ok(&["run", sweep.to_str().unwrap()]);
    assert!(again.contains("4 already done"), "{again}");
    let table = |s: &str| s[s.find("results of sweep").unwrap()..].to_string();
    assert_eq!(table(&stdout), table(&again));

    // --detail: every run's table, the bias shares per bias type.
    let detail = env.ok(&["run", sweep.to_str().unwrap(), "--detail"]);
    for group in [
        "overall",
        "gender",
        "socioeconomic",
        "race-color",
        "age",
        "religion",
    ] {
        assert!(detail.contains(group), "no row {group}:\n{detail}");
    }
    assert!(detail.contains("bias_paper %") && detail.contains("bias_standard %"));
    assert!(
        detail.contains("f1_macro") && detail.contains("rouge_2"),
        "{detail}"
    );
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let env = Env::embedded();
    let sweep = env.write(
        "s.toml",
        &sweep_toml(
            "plan",
            &[("a", "random:norgpt-tiny@1"), ("b", "random:norgpt-tiny@2")],
            &[("ten", 10)],
            4,
            &mini_pairs(),
        ),
    );
    let out = env.ok(&["submit", "--dry-run", sweep.to_str().unwrap()]);
    assert!(out.contains("dry run, nothing written"), "{out}");
    assert!(out.contains("2 cell(s): 2 new"), "{out}");
    assert!(
        !env.dir.path().join("data/nlebench.sqlite").exists(),
        "a dry run must not create the store"
    );

    // After a run, the dry run reports the cells as done; with --force as forced.
    env.ok(&["run", sweep.to_str().unwrap()]);
    let out = env.ok(&["submit", "--dry-run", sweep.to_str().unwrap()]);
    assert!(out.contains("2 already done"), "{out}");
    let out = env.ok(&["submit", "--dry-run", "--force", sweep.to_str().unwrap()]);
    assert!(out.contains("2 forced"), "{out}");
    assert_eq!(env.count("SELECT COUNT(*) FROM runs"), 2);
}

#[test]
fn a_cancelled_run_is_resumed_by_retry_and_exported() {
    let env = Env::embedded();
    let sweep = env.write(
        "s.toml",
        &sweep_toml(
            "resume",
            &[("a", "random:norgpt-tiny@5")],
            &[("all", 32)],
            8,
            &mini_pairs(),
        ),
    );
    // Submit without workers, cancel, then retry: the run completes once workers run.
    env.ok(&["submit", sweep.to_str().unwrap()]);
    let out = env.ok(&["cancel", "resume"]);
    assert!(out.contains("cancelled 1 run"), "{out}");
    assert_eq!(env.status("resume")["counts"]["cancelled"], 1);
    // Resubmitting a cancelled cell resumes it (failed/cancelled → retried).
    let out = env.ok(&["submit", "--dry-run", sweep.to_str().unwrap()]);
    assert!(out.contains("cancelled → retried"), "{out}");
    let out = env.ok(&["retry", "resume"]);
    assert!(out.contains("queued 4 job(s)"), "{out}");
    let out = env.ok(&["run", sweep.to_str().unwrap()]);
    assert!(out.contains("in progress"), "{out}");
    let st = env.status("resume");
    assert_eq!(st["counts"]["done"], 1, "{st}");
    assert_eq!(st["runs"][0]["samples"], 32);

    let csv = env.ok(&["export", "resume", "--format", "csv"]);
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("sweep,run_id,fingerprint,model")
    );
    assert!(csv.contains(",bias_paper,") && csv.contains(",bias_standard/gender,"));
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["export", "resume", "--format", "json"])).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), csv.lines().count() - 1);
    assert!(
        rows.iter()
            .all(|r| r["random_weights"] == true && r["status"] == "done")
    );
}

#[test]
fn tasks_list_names_the_bias_task() {
    let env = Env::embedded();
    let out = env.ok(&["tasks", "list"]);
    assert!(
        out.contains("no-crows-pairs") && out.contains("loglik-pair"),
        "{out}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["tasks", "list", "--json"])).unwrap();
    let bias = json
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "no-crows-pairs")
        .unwrap();
    assert_eq!(bias["metrics"][0], "bias_paper");
    assert!(
        json.as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "multi-qa-sum-summary" && t["kind"] == "generation")
    );
}

#[test]
fn hub_models_come_from_the_local_cache_and_failing_jobs_retry_up_to_the_maximum() {
    let mut env = Env::embedded();
    env.extra.push(("NLEBENCH_MAX_ATTEMPTS".into(), "3".into()));
    let snap = common::hub_fixture(&env);
    let sweep = env.write(
        "s.toml",
        &sweep_toml(
            "hub",
            &[("tiny", "hf:test/tiny-gpt2")],
            &[("all", 32)],
            32,
            &mini_pairs(),
        ),
    );
    env.ok(&["submit", sweep.to_str().unwrap()]);
    let st = env.status("hub");
    assert_eq!(st["runs"][0]["random_weights"], false);
    assert_eq!(
        env.query("SELECT model_revision FROM runs"),
        vec![vec!["c0ffee".to_string()]],
        "the cached commit is recorded"
    );

    // The model disappears from the cache after submission, and the hub is offline: every
    // attempt fails, is retried with backoff, and the run fails after the third attempt.
    let hidden = snap.with_file_name("hidden");
    std::fs::rename(&snap, &hidden).unwrap();
    // Idle long enough to outwait the second delay (2 s doubled, plus up to as much jitter).
    env.ok(&["worker", "--exit-when-idle", "10"]);
    assert_eq!(
        env.query("SELECT CAST(attempts AS TEXT), status FROM jobs"),
        vec![vec!["3".to_string(), "failed".to_string()]]
    );
    let st = env.status("hub");
    assert_eq!(st["counts"]["failed"], 1, "{st}");
    let error = st["runs"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("is not in the local Hugging Face cache"),
        "{error}"
    );
    // The run keeps its job's log tail: the retries before it gave up.
    assert!(
        error.contains("log tail (worker")
            && error.contains("job failed, retrying")
            && error.contains("job failed for good"),
        "{error}"
    );
    assert_eq!(st["runs"][0]["samples"], 0);

    // Back in the cache: `retry` requeues the failed run and it completes.
    std::fs::rename(&hidden, &snap).unwrap();
    assert!(env.ok(&["retry", "hub"]).contains("queued 1 job(s)"));
    let out = env.ok(&["run", sweep.to_str().unwrap()]);
    assert!(out.contains("in progress"), "{out}");
    let st = env.status("hub");
    assert_eq!(st["counts"]["done"], 1, "{st}");
    assert_eq!(st["runs"][0]["samples"], 32);
    assert!(!out.contains("RANDOM WEIGHTS"), "{out}");
}

#[test]
fn cells_removed_from_the_sweep_file_leave_the_sweep_but_not_the_history() {
    let env = Env::embedded();
    let two = sweep_toml(
        "shrink",
        &[("a", "random:norgpt-tiny@1"), ("b", "random:norgpt-tiny@2")],
        &[("five", 5)],
        5,
        &mini_pairs(),
    );
    let p = env.write("s.toml", &two);
    env.ok(&["run", p.to_str().unwrap()]);
    let one = sweep_toml(
        "shrink",
        &[("a", "random:norgpt-tiny@1")],
        &[("five", 5)],
        5,
        &mini_pairs(),
    );
    env.write("s.toml", &one);
    let out = env.ok(&["run", p.to_str().unwrap()]);
    assert!(out.contains("1 cell(s): 1 already done"), "{out}");
    assert_eq!(env.status("shrink")["runs"].as_array().unwrap().len(), 1);
    assert_eq!(env.count("SELECT COUNT(*) FROM runs"), 2);
}

#[test]
fn a_sweep_with_a_lora_adapter_evaluates_the_base_and_the_merged_model() {
    let env = Env::embedded();
    let fixtures = root().join("tests/fixtures");
    let text = format!(
        "name = \"lora\"\ntasks = [\"no-crows-pairs\"]\n[datasets]\nno-crows-pairs = \"path:{}\"\n\
         [[models]]\nname = \"tiny\"\nsource = \"path:{}\"\n\
         [[models.adapters]]\nname = \"lora\"\nsource = \"path:{}\"\n\
         [[settings]]\nname = \"ten\"\nlimit = 10\n",
        mini_pairs().display(),
        fixtures.join("tiny-gpt2").display(),
        fixtures.join("lora-gpt2").display()
    );
    let p = env.write("s.toml", &text);
    let out = env.ok(&["run", p.to_str().unwrap()]);
    assert!(out.contains("2 cell(s): 2 new"), "{out}");
    assert!(out.contains("tiny + lora"), "{out}");
    let perplexities = env.query("SELECT r.adapter_name, s.data FROM samples s JOIN runs r ON r.id = s.run_id WHERE s.idx = 0 ORDER BY r.id");
    assert_eq!(perplexities.len(), 2);
    assert_eq!(perplexities[0][0], "");
    assert_eq!(perplexities[1][0], "lora");
    assert_ne!(
        perplexities[0][1], perplexities[1][1],
        "the adapter changes the scores"
    );
}

#[test]
fn empty_hypotheses_are_skipped_and_counted_and_non_utf8_files_rejected() {
    let env = Env::embedded();
    let csv = env.write(
        "out.csv",
        "hyp,ref\nNorge er et land.,Norge er et land i Europa.\n,Tom hypotese.\nHei.,Hei på deg.\n",
    );
    let out = env.ok(&[
        "score",
        "--task",
        "multi-qa-sum-summary",
        "--input",
        csv.to_str().unwrap(),
        "--map",
        "hyp=hyp,ref=ref",
        "--json",
    ]);
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        got["rows_skipped"], 1,
        "the empty hypothesis is skipped and counted"
    );
    assert_eq!(got["n"]["bleu"], 2);
    let bad = env.dir.path().join("latin1.csv");
    std::fs::write(&bad, b"hyp,ref\nbl\xe5b\xe6r,ost\n").unwrap();
    let out = env.run(&[
        "score",
        "--task",
        "multi-qa-sum-summary",
        "--input",
        bad.to_str().unwrap(),
        "--map",
        "hyp=hyp,ref=ref",
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("latin1.csv:2: not valid UTF-8") && stderr.contains("iconv"),
        "{stderr}"
    );
}

#[test]
fn a_generation_task_with_a_template_runs_end_to_end() {
    let mut env = Env::embedded();
    env.add_continue_task(&["bleu", "rouge_1", "rouge_l"]);
    let text = format!(
        "name = \"gen\"\ntasks = [\"continue\"]\n[datasets]\ncontinue = \"path:{}\"\n\
         [[models]]\nname = \"tiny\"\nsource = \"path:{}\"\n\
         [[settings]]\nname = \"greedy\"\nlimit = 4\n[settings.decoding]\nmax_new_tokens = 6\n",
        mini_pairs().display(),
        root().join("tests/fixtures/tiny-llama").display()
    );
    let p = env.write("s.toml", &text);
    let out = env.ok(&["run", p.to_str().unwrap()]);
    assert!(out.contains("rouge_l"), "{out}");
    let rows = env.query("SELECT prompt, output, reference, data FROM samples ORDER BY idx");
    assert_eq!(rows.len(), 4);
    assert!(
        rows[0][0].starts_with("Fortsett: Kvinner er dårlige"),
        "{:?}",
        rows[0]
    );
    assert!(!rows[0][1].is_empty());
    assert!(rows[0][3].contains("\"new_tokens\":6"), "{:?}", rows[0]);
    // Greedy decoding is deterministic: a forced rerun stores the same outputs.
    env.ok(&["run", "--force", p.to_str().unwrap()]);
    let again = env.query("SELECT output FROM samples WHERE run_id = 2 ORDER BY idx");
    assert_eq!(
        again.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
        rows.iter().map(|r| r[1].clone()).collect::<Vec<_>>()
    );
}

#[test]
fn sampled_outputs_do_not_depend_on_the_batch_size() {
    let mut env = Env::embedded();
    env.add_continue_task(&["rouge_l"]);
    // Two settings that differ only in the batch size; rows of a batch stop at different
    // points (their own prompt lengths, a stop string).
    let setting = |name: &str, batch: u32| {
        format!(
            "[[settings]]\nname = \"{name}\"\nlimit = 6\nbatch_size = {batch}\n\
             [settings.decoding]\ndo_sample = true\ntemperature = 1.5\ntop_k = 50\nmax_new_tokens = 9\n"
        )
    };
    let text = format!(
        "name = \"sampled\"\ntasks = [\"continue\"]\nseeds = [7]\n[datasets]\ncontinue = \"path:{}\"\n\
         [[models]]\nname = \"tiny\"\nsource = \"path:{}\"\n{}{}",
        mini_pairs().display(),
        root().join("tests/fixtures/tiny-llama").display(),
        setting("alone", 1),
        setting("batched", 6),
    );
    let p = env.write("s.toml", &text);
    env.ok(&["run", p.to_str().unwrap()]);
    let outputs = |setting: &str| -> Vec<String> {
        env.query(&format!(
            "SELECT s.output FROM samples s JOIN runs r ON r.id = s.run_id \
             WHERE r.manifest LIKE '%\"name\":\"{setting}\"%' ORDER BY s.idx"
        ))
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
    };
    let (alone, batched) = (outputs("alone"), outputs("batched"));
    assert_eq!(alone.len(), 6);
    assert!(alone.iter().any(|o| !o.is_empty()), "{alone:?}");
    assert_eq!(alone, batched, "one at a time vs six in a batch");
}

#[test]
fn rescoring_reproduces_the_metrics_and_clears_exactly_the_stale_runs() {
    let env = Env::embedded();
    let sweep = env.write(
        "s.toml",
        &sweep_toml(
            "rescore",
            &[("a", "random:norgpt-tiny@1"), ("b", "random:norgpt-tiny@2")],
            &[("all", 32)],
            32,
            &mini_pairs(),
        ),
    );
    env.ok(&["run", sweep.to_str().unwrap()]);
    let metrics = |env: &Env| {
        env.query("SELECT CAST(run_id AS TEXT), name, CAST(value AS TEXT), CAST(n AS TEXT) FROM metrics ORDER BY run_id, name")
    };
    let before = metrics(&env);
    assert!(before.len() > 10);
    let st = env.status("rescore");
    assert!(
        st["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["stale"] == false)
    );

    // Run 1's metrics come from an older implementation of bias_paper.
    env.execute("UPDATE metrics SET version = 0 WHERE run_id = 1 AND name LIKE 'bias_paper%'");
    let st = env.status("rescore");
    let stale: Vec<bool> = st["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["stale"].as_bool().unwrap())
        .collect();
    assert_eq!(
        stale,
        vec![true, false],
        "exactly the affected run is stale"
    );
    assert!(
        env.ok(&["status", "rescore"])
            .contains("1 stale (run `nlebench rescore rescore`)")
    );

    let out = env.ok(&["rescore", "rescore"]);
    assert!(out.contains("rescored 2 run(s)"), "{out}");
    assert_eq!(
        metrics(&env),
        before,
        "rescoring gives the numbers scored at the end of inference"
    );
    let st = env.status("rescore");
    assert!(
        st["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["stale"] == false)
    );
    assert!(env.ok(&["rescore", "run:2"]).contains("rescored 1 run(s)"));
    let e = env.run(&["rescore", "run:99"]);
    assert!(text(&e).1.contains("no run 99 in the store"));
}

#[test]
fn a_classification_task_runs_with_a_seq_cls_adapter() {
    let env = Env::embedded();
    let fixtures = root().join("tests/fixtures");
    // The adapter fixture's texts, split back into the task's fields; labels as JSON booleans.
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("seq-cls-gpt2/reference.json")).unwrap(),
    )
    .unwrap();
    let texts: Vec<&str> = reference["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let gold = [true, false, true];
    let lines: Vec<String> = texts
        .iter()
        .zip(gold)
        .map(|(t, g)| {
            let (passage, question) = t.split_once(" [SEP] ").unwrap();
            serde_json::json!({"passage": passage, "question": question, "label": g}).to_string()
        })
        .collect();
    let data = env.write("boolq.jsonl", &(lines.join("\n") + "\n"));
    let sweep = format!(
        "name = \"nlu\"\ntasks = [\"no-boolq\"]\n[datasets]\nno-boolq = \"path:{}\"\n\
         [[models]]\nname = \"tiny\"\nsource = \"path:{}\"\n\
         [[models.adapters]]\nname = \"boolq\"\nsource = \"path:{}\"\n\
         [[exclude]]\nadapter = \"none\"\n",
        data.display(),
        fixtures.join("tiny-gpt2").display(),
        fixtures.join("seq-cls-gpt2").display()
    );
    let p = env.write("s.toml", &sweep);
    let out = env.ok(&["run", p.to_str().unwrap()]);
    assert!(out.contains("accuracy"), "{out}");
    // Predictions are the argmax of the engine's classification logits for the same texts.
    let model = engine::ModelCache::default()
        .get(
            &spec::Source::Path {
                path: fixtures.join("tiny-gpt2"),
            },
            spec::Dtype::F32,
            Some(&spec::Source::Path {
                path: fixtures.join("seq-cls-gpt2"),
            }),
            &engine::Locations {
                models_dir: env.dir.path().join("models"),
                hub: types::HubSettings::at(env.dir.path().join("hf")),
            },
            &engine::device::select(types::DeviceSpec::Auto).unwrap(),
        )
        .unwrap();
    let logits = engine::classify(&model, &texts, 4).unwrap();
    let pred: Vec<String> = logits
        .iter()
        .map(|l| {
            let m = l.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            l.iter().position(|&v| v == m).unwrap().to_string()
        })
        .collect();
    let rows = env.query("SELECT output, reference FROM samples ORDER BY idx");
    assert_eq!(rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>(), pred);
    assert_eq!(
        rows.iter().map(|r| r[1].clone()).collect::<Vec<_>>(),
        ["1", "0", "1"]
    );
    let correct = pred
        .iter()
        .zip(["1", "0", "1"])
        .filter(|(p, g)| p.as_str() == *g)
        .count();
    let acc = env.query("SELECT CAST(value AS TEXT) FROM metrics WHERE name = 'accuracy'");
    let stored: f64 = acc[0][0].parse().unwrap_or_else(|_| panic!("{acc:?}"));
    assert!((stored - correct as f64 / 3.0).abs() < 1e-12, "{stored}");
}

#[test]
fn a_seeded_sample_runs_the_drawn_examples() {
    let env = Env::embedded();
    let sweep = env.write(
        "s.toml",
        &(sweep_toml(
            "sampled",
            &[("a", "random:norgpt-tiny@1")],
            &[],
            100,
            &mini_pairs(),
        ) + "\n[[settings]]\nname = \"five\"\nsample = 5\nsample_seed = 3\n"),
    );
    env.ok(&["run", sweep.to_str().unwrap()]);
    let table = worker::data::read(&mini_pairs(), spec::DataFormat::Csv).unwrap();
    let drawn = worker::data::examples::sample(&table, 5, 3);
    let expected: Vec<String> = drawn
        .rows
        .iter()
        .map(|r| worker::data::text(r, "sent_more_no"))
        .collect();
    let stored = env.query("SELECT prompt FROM samples ORDER BY idx");
    assert_eq!(stored.len(), 5);
    for (row, more) in stored.iter().zip(&expected) {
        assert!(
            row[0].contains(more.as_str()),
            "{} does not hold {more}",
            row[0]
        );
    }
}

#[test]
fn a_closed_pipe_ends_export_quietly() {
    let env = Env::embedded();
    let sweep = env.write(
        "s.toml",
        &sweep_toml(
            "pipe",
            &[("a", "random:norgpt-tiny@1")],
            &[("all", 32)],
            100,
            &mini_pairs(),
        ),
    );
    env.ok(&["run", sweep.to_str().unwrap()]);
    for args in [
        &["export", "pipe", "--samples"][..],
        &["export", "pipe", "--format", "json"][..],
    ] {
        // The reader closes before anything is written, as `| head -0` would.
        let mut child = env
            .cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("Broken pipe") && !stderr.contains("error"),
            "{stderr}"
        );
    }
}

#[test]
fn tasks_list_fits_the_width() {
    let env = Env::embedded();
    for width in ["80", "120"] {
        let out = env
            .cmd(&["tasks", "list"])
            .env("COLUMNS", width)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let widest = text.lines().map(|l| l.chars().count()).max().unwrap();
        assert!(
            widest <= width.parse().unwrap(),
            "{widest} > {width}:\n{text}"
        );
        assert!(text.contains("cot-scene-1") && text.contains("no-crows-pairs-toxicity"));
    }
}

#[test]
fn eval_runs_a_model_on_tasks_from_flags_and_reuses_its_sweep() {
    let env = Env::embedded();
    let pairs = env.dir.path().join("pairs.csv");
    std::fs::copy(mini_pairs(), &pairs).unwrap();
    // A relative dataset path, resolved against the working directory (the env's dir).
    let flags = [
        "eval",
        "--model",
        "random:norgpt-tiny@1",
        "--tasks",
        "no-crows-pairs",
        "--limit",
        "8",
        "--dataset",
        "no-crows-pairs=path:pairs.csv",
    ];
    let out = env.run(&flags);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let name = stderr
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    assert!(name.starts_with("eval-"), "{stderr}");
    assert!(stdout.contains("1 new"), "{stdout}");
    assert!(
        stdout.contains("norgpt-tiny-1/no-crows-pairs/first-8"),
        "{stdout}"
    );
    assert!(stdout.contains("bias_paper"), "{stdout}");
    let st = env.status(&name);
    assert_eq!(st["runs"][0]["status"], "done", "{st}");
    assert_eq!(st["runs"][0]["samples"], 8, "{st}");

    // The same flags: the same sweep, nothing evaluated again; the file runs as a sweep.
    let again = env.ok(&flags);
    assert!(!again.contains("1 new"), "{again}");
    let file = env.dir.path().join(format!("data/eval/{name}.toml"));
    let rerun = env.ok(&["run", file.to_str().unwrap()]);
    assert!(
        rerun.contains(&format!("results of sweep {name}")),
        "{rerun}"
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM runs"), 1);

    // A limit of 0 is refused in words.
    let out = env.run(&[
        "eval",
        "--model",
        "random:norgpt-tiny@1",
        "--tasks",
        "no-crows-pairs",
        "--limit",
        "0",
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("`0` is not a whole number ≥ 1"), "{stderr}");
}

#[test]
fn eval_takes_a_name_and_offline_fewshot_pools_and_leaves_no_file_when_its_flags_fail() {
    let env = Env::embedded();
    let mini = root().join("experiments/data/no-boolq-mini.jsonl");
    let local = format!("no-boolq=path:{}", mini.display());
    let eval = |extra: &[&str]| {
        let mut flags = vec![
            "eval",
            "--model",
            "random:norgpt-tiny@3",
            "--tasks",
            "no-boolq",
            "--num-fewshot",
            "2",
            "--dataset",
            &local,
        ];
        flags.extend_from_slice(extra);
        env.run(&flags)
    };
    let files = || {
        let mut names: Vec<String> = std::fs::read_dir(env.dir.path().join("data/eval"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };

    // The shipped task's few-shot pool is on the Hub, unreachable here: the error says how
    // to point at a local copy.
    let out = eval(&["--name", "boolq-2-shot"]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("[fewshot]") && stderr.contains("--fewshot-dataset TASK=path:FILE"),
        "{stderr}"
    );
    // With a local pool it runs offline, under the name given.
    let out = eval(&["--name", "boolq-2-shot", "--fewshot-dataset", &local]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("all-examples-2-shot"), "{stdout}");
    assert_eq!(env.status("boolq-2-shot")["runs"][0]["samples"], 8);
    let sweep =
        std::fs::read_to_string(env.dir.path().join("data/eval/boolq-2-shot.toml")).unwrap();
    assert!(sweep.contains("[fewshot_datasets]"), "{sweep}");
    assert_eq!(files(), ["boolq-2-shot.toml"]);

    // Flags that fail to validate: an error naming the flag, and no sweep file left behind.
    for (flags, named) in [
        (vec!["--tasks", "no-such-task", "--name", "x"], "--tasks"),
        (
            vec!["--fewshot-dataset", "no-such=path:pool.csv", "--name", "y"],
            "--fewshot-dataset",
        ),
        (vec!["--name", "no/slash"], "--name"),
    ] {
        let mut all = vec!["eval", "--model", "random:norgpt-tiny@3"];
        if !flags.contains(&"--tasks") {
            all.extend(["--tasks", "no-boolq"]);
        }
        all.extend(flags.iter().copied());
        let out = env.run(&all);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{all:?}");
        assert!(
            stderr.starts_with(&format!("error: {named}")),
            "{all:?}: {stderr}"
        );
        assert_eq!(files(), ["boolq-2-shot.toml"], "{all:?}");
    }
}

/// A task dir with a generation and a classification task whose few-shot pools are marked
/// files (`TRAIN-i` questions answered `ANSWER-i`; BoolQ rows of the shipped mini file).
fn fewshot_tasks(env: &Env) -> std::path::PathBuf {
    let tasks = env.dir.path().join("tasks");
    std::fs::create_dir_all(&tasks).unwrap();
    let mut train = String::from("instruction,output\n");
    for i in 0..20 {
        train += &format!("TRAIN-{i} hva er svaret,ANSWER-{i}\n");
    }
    std::fs::write(tasks.join("train.csv"), train).unwrap();
    std::fs::write(
        tasks.join("eval.csv"),
        "instruction,output\nHva heter hovedstaden i Norge,Oslo\nHvor mange fylker,Femten\nHva er 2 pluss 2,Fire\n",
    )
    .unwrap();
    std::fs::write(
        tasks.join("qa.toml"),
        "name = \"qa\"\nversion = 1\nkind = \"generation\"\nprimary_metric = \"bleu\"\nmetrics = [\"bleu\"]\ntemplate = \"Spørsmål: {instruction}\\nSvar:\"\n[decoding]\nmax_new_tokens = 3\n[dataset]\nsource = \"path:eval.csv\"\n[fewshot]\nsource = \"path:train.csv\"\n[fields]\nreference = \"output\"\n",
    )
    .unwrap();
    let shipped = std::fs::read_to_string(root().join("experiments/tasks/no-boolq.toml")).unwrap();
    let (head, rest) = shipped.split_once("[dataset]").unwrap();
    let fields = &rest[rest.find("[fields]").unwrap()..];
    let boolq = format!(
        "{head}[dataset]\nsource = \"path:{0}\"\n[fewshot]\nsource = \"path:{0}\"\n{fields}",
        root()
            .join("experiments/data/no-boolq-mini.jsonl")
            .display()
    );
    assert!(boolq.contains("[fewshot]"), "{boolq}");
    std::fs::write(tasks.join("no-boolq.toml"), boolq).unwrap();
    std::fs::copy(
        root().join("experiments/tasks/no-crows-pairs.toml"),
        tasks.join("no-crows-pairs.toml"),
    )
    .unwrap();
    tasks
}

#[test]
fn few_shot_prompts_hold_k_seeded_pool_examples_whatever_the_batch() {
    let mut env = Env::embedded();
    let tasks = fewshot_tasks(&env);
    env.extra
        .push(("NLEBENCH_TASKS_DIR".into(), tasks.display().to_string()));
    let sweep = |name: &str, seed: u64, batch: u32| {
        env.write(
            &format!("{name}.toml"),
            &format!(
                "name = \"{name}\"\ntasks = [\"qa\", \"no-boolq\"]\nseeds = [{seed}]\n[[models]]\nname = \"tiny\"\nsource = \"random:norgpt-tiny@3\"\n[[settings]]\nname = \"two-shot\"\nnum_fewshot = 2\nbatch_size = {batch}\n"
            ),
        )
    };
    let prompts = |name: &str| -> Vec<(String, String, serde_json::Value)> {
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(&env.ok(&["export", name, "--samples", "--format", "json"]))
                .unwrap();
        rows.iter()
            .map(|r| {
                (
                    r["task"].as_str().unwrap().to_string(),
                    r["prompt"].as_str().unwrap().to_string(),
                    r["idx"].clone(),
                )
            })
            .collect()
    };
    for (name, seed, batch) in [("a", 0, 8), ("b", 0, 1), ("c", 1, 8)] {
        let s = sweep(name, seed, batch);
        env.ok(&["run", s.to_str().unwrap()]);
    }
    let (a, b, c) = (prompts("a"), prompts("b"), prompts("c"));
    assert_eq!(a.iter().filter(|p| p.0 == "qa").count(), 3);
    assert_eq!(a.iter().filter(|p| p.0 == "no-boolq").count(), 8);
    for (task, prompt, idx) in &a {
        if task == "qa" {
            // Two distinct pool examples, each with its answer after a space, a blank line
            // between them and before the question.
            let shots: Vec<&str> = prompt.split("\n\n").collect();
            assert_eq!(shots.len(), 3, "{prompt:?}");
            let mut seen = Vec::new();
            for shot in &shots[..2] {
                let i: usize = shot
                    .strip_prefix("Spørsmål: TRAIN-")
                    .and_then(|r| r.split(' ').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{prompt:?}"));
                assert!(shot.ends_with(&format!("Svar: ANSWER-{i}")), "{prompt:?}");
                seen.push(i);
            }
            assert_ne!(seen[0], seen[1], "{prompt:?}");
            assert!(!shots[2].contains("TRAIN-"), "{prompt:?}");
            assert!(shots[2].starts_with("Spørsmål: "), "{prompt:?}");
        } else {
            // BoolQ shots end with their label word; the question is last.
            let shots: Vec<&str> = prompt.split("\n\n").collect();
            assert_eq!(shots.len(), 3, "{idx} {prompt:?}");
            assert!(
                shots[..2]
                    .iter()
                    .all(|s| s.ends_with("Svar: ja") || s.ends_with("Svar: nei")),
                "{prompt:?}"
            );
            assert!(shots[2].ends_with("Svar:"), "{prompt:?}");
        }
    }
    // The same seed draws the same shots at batch size 1; another seed draws others.
    assert_eq!(a, b);
    assert_ne!(a, c);

    // `eval --num-fewshot` asks for the same; a task without a pool is refused in words.
    let out = env.ok(&[
        "eval",
        "--model",
        "random:norgpt-tiny@3",
        "--tasks",
        "qa",
        "--num-fewshot",
        "2",
    ]);
    assert!(out.contains("tiny-3/qa/all-examples-2-shot"), "{out}");
    let pairs = mini_pairs();
    let out = env.run(&[
        "eval",
        "--model",
        "random:norgpt-tiny@3",
        "--tasks",
        "no-crows-pairs",
        "--num-fewshot",
        "2",
        "--dataset",
        &format!("no-crows-pairs=path:{}", pairs.display()),
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "asks for num_fewshot = 2, but task `no-crows-pairs` has no few-shot examples"
        ),
        "{stderr}"
    );
}

#[test]
fn an_archived_sweep_leaves_the_list_keeps_its_runs_and_comes_back() {
    let env = Env::embedded();
    let sweep = env.write(
        "a.toml",
        &sweep_toml(
            "kept",
            &[("tiny", "random:norgpt-tiny@1")],
            &[("four", 4)],
            4,
            &mini_pairs(),
        ),
    );
    env.ok(&["run", sweep.to_str().unwrap()]);
    let said = env.ok(&["sweeps", "archive", "kept"]);
    assert!(said.contains("sweep kept: archived"), "{said}");
    assert!(
        env.ok(&["sweeps", "archive", "kept"])
            .contains("already archived")
    );
    let list = env.ok(&["status"]);
    assert!(list.contains("no sweeps in"), "{list}");
    assert!(env.ok(&["status", "--archived"]).contains("kept"));
    // Everything is kept: the sweep's own status, its runs and samples.
    assert_eq!(env.status("kept")["runs"][0]["samples"], 4);
    env.ok(&["sweeps", "restore", "kept"]);
    assert!(env.ok(&["status"]).contains("kept"));
    assert!(
        env.ok(&["status", "--archived"])
            .contains("no archived sweeps")
    );
    let out = env.run(&["sweeps", "archive", "nope"]);
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("no sweep named `nope`"),
        "{}",
        text(&out).1
    );
}

#[test]
fn tags_and_notes_on_sweeps_and_runs_are_shown_and_exported() {
    let env = Env::embedded();
    let sweep = env.write(
        "t.toml",
        &sweep_toml(
            "tagged",
            &[("tiny", "random:norgpt-tiny@1")],
            &[("four", 4)],
            4,
            &mini_pairs(),
        ),
    );
    env.ok(&["run", sweep.to_str().unwrap()]);
    let out = env.ok(&["tag", "tagged", "paper-v2", "baseline", "baseline"]);
    assert!(
        out.contains("2 tag(s) added") && out.contains("tags: baseline paper-v2"),
        "{out}"
    );
    env.ok(&["tag", "run:1", "best"]);
    let out = env.ok(&["untag", "tagged", "baseline"]);
    assert!(
        out.contains("1 tag(s) removed") && out.contains("tags: paper-v2"),
        "{out}"
    );
    env.ok(&["note", "tagged", "rerun after the tokenizer fix"]);
    let st = env.status("tagged");
    assert_eq!(st["tags"], serde_json::json!(["paper-v2"]), "{st}");
    assert_eq!(st["notes"][0]["text"], "rerun after the tokenizer fix");
    assert_eq!(st["runs"][0]["tags"], serde_json::json!(["best"]));
    let text_status = env.ok(&["status", "tagged"]);
    assert!(text_status.contains("tags: paper-v2"), "{text_status}");
    assert!(
        text_status.contains("rerun after the tokenizer fix"),
        "{text_status}"
    );
    // Exports carry the run's tags and its sweep's.
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&env.ok(&["export", "tagged", "--format", "json"])).unwrap();
    assert!(
        rows.iter().all(|r| r["tags"] == "best paper-v2"),
        "{rows:?}"
    );
    // Bad input: a tag with a space, a run that does not exist.
    let out = env.run(&["tag", "tagged", "two words"]);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("is not a tag"), "{}", text(&out).1);
    let out = env.run(&["note", "run:99", "x"]);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("no run 99"), "{}", text(&out).1);
}

/// Two `nlebench run` of one sweep at once on one fresh embedded data directory: both finish
/// with the results, the store is migrated once (no "already exists"), and every job is
/// computed once.
#[test]
fn two_runs_at_once_on_one_data_dir_both_finish_and_compute_nothing_twice() {
    let env = Env::embedded();
    let sweep = env.write(
        "two.toml",
        &sweep_toml(
            "two",
            &[("a", "random:norgpt-tiny@1"), ("b", "random:norgpt-tiny@2")],
            &[("all", 32)],
            16,
            &mini_pairs(),
        ),
    );
    let spawn = || {
        env.cmd(&["run", sweep.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(
            stdout.contains("bias_paper") && stdout.contains("stored in sqlite://"),
            "{stdout}"
        );
        assert!(!stderr.contains("locked"), "{stderr}");
    }
    assert_eq!(
        env.count("SELECT COUNT(*) FROM runs WHERE status = 'done'"),
        2
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM samples"), 64);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM jobs WHERE attempts <> 1 OR status <> 'done'"),
        0,
        "every job computed once: {:?}",
        env.query("SELECT id, status, attempts, worker FROM jobs")
    );
}
