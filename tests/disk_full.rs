//! A full disk under the data directory (a small tmpfs): whether generating a model or writing
//! the store fills it, the command ends with one error that says the disk is full, names the
//! data directory and says to free space (not to start a server); the store stays intact; and
//! when space returns the same command finishes the work. A model cache left half written is
//! named the same way, and the work resumes once the file is deleted.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{Env, Tmpfs, mini_pairs, root, sweep_toml, text};

/// `nlebench run SWEEP`, which must fail with exactly one error; returns its stderr.
fn run_fails_once(env: &Env, sweep: &Path) -> String {
    let out = env.run(&["run", sweep.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "one error:\n{stderr}"
    );
    stderr
}

/// Run the sweep with the data directory on a tmpfs of `size`: a disk-full error, then with
/// room, the whole sweep.
fn full_then_resumed(env: &mut Env, models: &[(&str, &str)], size: &str) {
    let mnt = env.dir.path().join(format!("small-{size}"));
    let disk = Tmpfs::mount(&mnt, size);
    let data = mnt.join("data");
    env.database_url = format!("sqlite://{}", data.join("nlebench.sqlite").display());
    env.queue_url = format!("sqlite://{}", data.join("queue.sqlite").display());
    env.extra = vec![("NLEBENCH_DATA_DIR".into(), data.display().to_string())];
    let sweep = env.write(
        "full.toml",
        &sweep_toml("full", models, &[("all", 32)], 8, &mini_pairs()),
    );
    let stderr = run_fails_once(env, &sweep);
    assert!(
        stderr.contains(&format!(
            "the disk is full (the disk that holds {})",
            data.display()
        )) && stderr.contains("fix: free space on the disk")
            && !stderr.contains("start the")
            && !stderr.contains("see the message"),
        "{stderr}"
    );
    if data.join("nlebench.sqlite").exists() {
        assert_eq!(
            env.query("PRAGMA integrity_check"),
            vec![vec!["ok".to_string()]]
        );
    }
    // Space returns: the same command finishes the sweep.
    disk.grow("64m");
    env.ok(&["run", sweep.to_str().unwrap()]);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM runs WHERE status = 'done'"),
        2
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM samples"), 64);
}

#[test]
#[cfg_attr(
    not(nlebench_tmpfs),
    ignore = "mounts a small tmpfs: set NLEBENCH_TEST_TMPFS=1 where this user may mount (.ci/run does)"
)]
fn a_full_disk_is_named_as_such_and_the_work_resumes_when_space_returns() {
    // Generating the random models fills it.
    let mut env = Env::embedded();
    full_then_resumed(
        &mut env,
        &[("a", "random:norgpt-tiny@1"), ("b", "random:norgpt-tiny@2")],
        "300k",
    );
    // The store fills it (the models live elsewhere).
    let mut env = Env::embedded();
    let mut models = vec![];
    for seed in ["1", "2"] {
        let dir = env.dir.path().join(format!("model-{seed}"));
        env.ok(&[
            "models",
            "random",
            "--seed",
            seed,
            "--out",
            dir.to_str().unwrap(),
        ]);
        models.push(format!("path:{}", dir.display()));
    }
    full_then_resumed(
        &mut env,
        &[("a", models[0].as_str()), ("b", models[1].as_str())],
        "96k",
    );
}

/// `nlebench run SWEEP` fails with one error naming `file` as truncated and saying to delete it;
/// the store keeps the `kept` samples it had and passes SQLite's integrity check.
fn fails_on_truncated(env: &Env, sweep: &Path, file: &Path, kept: i64) {
    let stderr = run_fails_once(env, sweep);
    assert!(
        stderr.contains(&format!("{}: corrupt or truncated", file.display()))
            && stderr.contains("fix: delete the file"),
        "{stderr}"
    );
    assert_eq!(
        env.query("PRAGMA integrity_check"),
        vec![vec!["ok".to_string()]]
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM samples"), kept);
}

/// Cut `file` to half its length, as an interrupted copy or download leaves it.
fn cut_short(file: &Path) {
    let len = std::fs::metadata(file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
}

/// A model cache left half written: weights cut short (a copy or download interrupted) in the
/// random models' directory and in the Hugging Face cache, and the staging directory of a
/// writer killed mid-write. Each run ends with one error naming the file as truncated and
/// saying to delete it; the store keeps what it had; after the fix the same command finishes,
/// and the dead writer's remnant is gone.
#[test]
fn a_half_written_model_cache_is_named_and_the_run_resumes_after_the_fix() {
    let env = Env::embedded();
    let sweep = |name: &str, source: &str| {
        env.write(
            &format!("{name}.toml"),
            &sweep_toml(name, &[(name, source)], &[("all", 32)], 8, &mini_pairs()),
        )
    };
    let first = sweep("first", "random:norgpt-tiny@1");
    env.ok(&["run", first.to_str().unwrap()]);

    // A random model cut short, beside a killed writer's two-hour-old staging directory.
    env.ok(&["models", "random", "--seed", "2"]);
    let models = env.dir.path().join("data/models");
    let weights = models.join("random-norgpt-tiny-seed2/model.safetensors");
    cut_short(&weights);
    let remnant = models.join(".random-norgpt-tiny-seed2.tmp-4242-0");
    std::fs::create_dir_all(&remnant).unwrap();
    std::fs::write(remnant.join("model.safetensors"), vec![0u8; 4096]).unwrap();
    assert!(
        Command::new("touch")
            .args(["-d", "2 hours ago"])
            .arg(&remnant)
            .status()
            .unwrap()
            .success()
    );
    let second = sweep("second", "random:norgpt-tiny@2");
    fails_on_truncated(&env, &second, &weights, 32);
    // The fix: delete the file; the random model is written again and the run finishes.
    std::fs::remove_file(&weights).unwrap();
    env.ok(&["run", second.to_str().unwrap()]);
    assert_eq!(env.count("SELECT COUNT(*) FROM samples"), 64);
    assert!(
        !remnant.exists(),
        "a dead writer's staging directory is removed"
    );

    // A Hub model's weights cut short in the cache; downloaded again (here: copied back).
    let snap = common::hub_fixture(&env);
    let weights = snap.join("model.safetensors");
    cut_short(&weights);
    let third = sweep("third", "hf:test/tiny-gpt2");
    fails_on_truncated(&env, &third, &weights, 64);
    std::fs::copy(
        root().join("tests/fixtures/tiny-gpt2/model.safetensors"),
        &weights,
    )
    .unwrap();
    env.ok(&["run", third.to_str().unwrap()]);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM runs WHERE status = 'done'"),
        3
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM samples"), 96);
}
