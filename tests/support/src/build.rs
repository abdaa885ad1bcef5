//! For build scripts of crates whose tests need PostgreSQL and Redis or the authors' released
//! outputs: cfgs that let such tests be marked `ignore` (with the reason) where they cannot run,
//! so the test runner's summary counts them as ignored, never as passed.

use std::path::Path;

/// Emit `cfg(nlebench_shared)` when `../shared/data/norglm-results` exists next to the
/// repository (`repo`: the calling crate's path to the repository root) and, with `services`,
/// `cfg(nlebench_services)` when `NLEBENCH_TEST_DATABASE_URL` and `NLEBENCH_TEST_REDIS_URL` are
/// set. The build script reruns when those variables change; a `../shared` that appears later
/// is noticed after `cargo clean -p nlebench-tests`.
pub fn emit_test_cfgs(repo: &Path, services: bool) {
    println!("cargo::rustc-check-cfg=cfg(nlebench_services)");
    println!("cargo::rustc-check-cfg=cfg(nlebench_shared)");
    println!("cargo::rustc-check-cfg=cfg(nlebench_containers)");
    println!("cargo::rustc-check-cfg=cfg(nlebench_mlflow)");
    println!("cargo::rustc-check-cfg=cfg(nlebench_lmeval)");
    println!("cargo::rustc-check-cfg=cfg(nlebench_tmpfs)");
    println!("cargo::rerun-if-changed=build.rs");
    if services {
        println!("cargo::rerun-if-env-changed=NLEBENCH_TEST_DATABASE_URL");
        println!("cargo::rerun-if-env-changed=NLEBENCH_TEST_REDIS_URL");
        let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
        if set("NLEBENCH_TEST_DATABASE_URL") && set("NLEBENCH_TEST_REDIS_URL") {
            println!("cargo::rustc-cfg=nlebench_services");
        }
        // The compose test builds images and starts containers: only where asked for.
        println!("cargo::rerun-if-env-changed=NLEBENCH_TEST_CONTAINERS");
        if set("NLEBENCH_TEST_CONTAINERS") {
            println!("cargo::rustc-cfg=nlebench_containers");
        }
        // The MLflow round trip starts `mlflow server` from this path.
        println!("cargo::rerun-if-env-changed=NLEBENCH_TEST_MLFLOW");
        if set("NLEBENCH_TEST_MLFLOW") {
            println!("cargo::rustc-cfg=nlebench_mlflow");
        }
        // The lm-evaluation-harness interchange runs lm-eval with this Python.
        println!("cargo::rerun-if-env-changed=NLEBENCH_TEST_LMEVAL");
        if set("NLEBENCH_TEST_LMEVAL") {
            println!("cargo::rustc-cfg=nlebench_lmeval");
        }
        // The full-disk test mounts a small tmpfs: only where this user may (root in CI).
        println!("cargo::rerun-if-env-changed=NLEBENCH_TEST_TMPFS");
        if set("NLEBENCH_TEST_TMPFS") {
            println!("cargo::rustc-cfg=nlebench_tmpfs");
        }
    }
    if repo.join("../shared/data/norglm-results").is_dir() {
        println!("cargo::rustc-cfg=nlebench_shared");
    }
}

/// Emit `cfg(nlebench_punkt)` when NLTK's Punkt English model is installed where
/// `nltk.data` looks (`NLTK_DATA`, `~/nltk_data`, the system directories);
/// `python3 tools/reference/fetch_punkt.py` installs it.
pub fn emit_punkt_cfg() {
    println!("cargo::rustc-check-cfg=cfg(nlebench_punkt)");
    println!("cargo::rustc-check-cfg=cfg(nlebench_system_punkt)");
    println!("cargo::rerun-if-env-changed=NLTK_DATA");
    let mut dirs: Vec<std::path::PathBuf> = std::env::var_os("NLTK_DATA")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join("nltk_data"));
    }
    let system = [
        "/usr/share/nltk_data",
        "/usr/local/share/nltk_data",
        "/usr/lib/nltk_data",
        "/usr/local/lib/nltk_data",
    ]
    .map(std::path::PathBuf::from);
    let has_punkt = |d: &std::path::PathBuf| d.join("tokenizers/punkt_tab/english").is_dir();
    if system.iter().any(has_punkt) {
        println!("cargo::rustc-cfg=nlebench_system_punkt");
    }
    dirs.extend(system);
    if dirs.iter().any(has_punkt) {
        println!("cargo::rustc-cfg=nlebench_punkt");
    }
}
