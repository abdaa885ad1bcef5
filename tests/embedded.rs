//! The embedded default (SQLite store and queue, in-process workers): the quickstart sweep,
//! resubmission, dry runs, status and export.

mod common;

use common::{Env, mini_pairs, root, sweep_toml, text};

#[test]
fn quickstart_runs_offline_and_prints_per_type_bias_shares() {
    let env = Env::embedded();
    let sweep = root().join("experiments/sweeps/quickstart.toml");
    let out = env.run(&["run", sweep.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 new"), "{stdout}");
    assert!(stdout.contains("RANDOM WEIGHTS"), "{stdout}");
    for group in [
        "overall",
        "gender",
        "socioeconomic",
        "race-color",
        "age",
        "religion",
    ] {
        assert!(stdout.contains(group), "no row {group}:\n{stdout}");
    }
    assert!(stdout.contains("bias_paper %") && stdout.contains("bias_standard %"));
    // 32 pairs were scored and stored, and the generated model is on disk.
    let st = env.status("quickstart");
    assert_eq!(st["runs"][0]["samples"], 32);
    assert_eq!(st["runs"][0]["status"], "done");
    assert!(
        env.dir
            .path()
            .join("data/models/random-norgpt-tiny-seed1234/model.safetensors")
            .is_file()
    );

    // Running again evaluates nothing and prints the same table.
    let again = env.ok(&["run", sweep.to_str().unwrap()]);
    assert!(again.contains("1 already done"), "{again}");
    let table = |s: &str| s[s.find("results of sweep").unwrap()..].to_string();
    assert_eq!(table(&stdout), table(&again));
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
    assert_eq!(json[0]["name"], "no-crows-pairs");
    assert_eq!(json[0]["metrics"][0], "bias_paper");
}
