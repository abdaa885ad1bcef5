//! A full disk under the data directory (a small tmpfs): whether generating a model or writing
//! the store fills it, the command ends with one error that says the disk is full, names the
//! data directory and says to free space (not to start a server); the store stays intact; and
//! when space returns the same command finishes the work.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Env, mini_pairs, sweep_toml, text};

/// A tmpfs of `size` at `dir` (unmounted when dropped).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(
            ok,
            "mount -t tmpfs at {} (NLEBENCH_TEST_TMPFS says it may)",
            dir.display()
        );
        Tmpfs(dir.to_path_buf())
    }

    fn grow(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
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
    let out = env.run(&["run", sweep.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "one error:\n{stderr}"
    );
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
