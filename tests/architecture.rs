//! Dependencies point one way (ARCHITECTURE.md): the metrics know no ML framework and no
//! store, the engine knows no store, queue or web server, the shared vocabulary knows nothing,
//! the crate with unsafe kernels knows nothing but rayon.
//! Read from `cargo tree` (normal and build dependencies, transitively, for this platform).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use std::collections::BTreeSet;
use std::process::Command;

/// Every package `package` depends on, directly or not (dev-dependencies left out).
fn closure(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .args([
            "--manifest-path",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    let mut all: BTreeSet<String> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    all.remove(package);
    assert!(!all.is_empty() || package == "nlebench-types", "{tree}");
    all
}

fn assert_free_of(package: &str, forbidden: &[&str]) {
    let all = closure(package);
    let found: Vec<&&str> = forbidden
        .iter()
        .filter(|f| {
            all.iter()
                .any(|d| d == **f || d.starts_with(&format!("{f}-")))
        })
        .collect();
    assert!(
        found.is_empty(),
        "{package} must not depend on {found:?} (directly or through another crate); see ARCHITECTURE.md"
    );
}

#[test]
fn metrics_depend_on_no_ml_framework_and_no_store() {
    assert_free_of(
        "nlebench-metrics",
        &[
            "candle-core",
            "candle-nn",
            "tokenizers",
            "sea-orm",
            "sqlx",
            "apalis",
            "axum",
            "tokio",
            "nlebench-engine",
            "nlebench-orchestrator",
            "nlebench-worker",
        ],
    );
}

#[test]
fn the_engine_knows_no_store_queue_or_web_server() {
    assert_free_of(
        "nlebench-engine",
        &[
            "sea-orm",
            "sqlx",
            "apalis",
            "axum",
            "tokio",
            "nlebench-orchestrator",
            "nlebench-worker",
            "nlebench-web",
        ],
    );
}

#[test]
fn the_orchestrator_and_the_dashboard_know_no_ml_framework() {
    for package in ["nlebench-orchestrator", "nlebench-web"] {
        assert_free_of(
            package,
            &[
                "candle-core",
                "candle-nn",
                "tokenizers",
                "nlebench-engine",
                "nlebench-worker",
            ],
        );
    }
}

#[test]
fn the_tracker_exports_know_no_ml_framework_and_no_web_server() {
    assert_free_of(
        "nlebench-trackers",
        &[
            "candle-core",
            "candle-nn",
            "tokenizers",
            "axum",
            "nlebench-engine",
            "nlebench-worker",
            "nlebench-web",
        ],
    );
}

#[test]
fn the_shared_vocabulary_depends_on_serde_alone() {
    let all = closure("nlebench-types");
    assert!(
        all.iter().all(|d| d.starts_with("serde")
            || d.starts_with("proc-macro2")
            || d == "quote"
            || d == "syn"
            || d == "unicode-ident"),
        "nlebench-types depends on {all:?}"
    );
}

#[test]
fn the_unsafe_kernels_depend_on_rayon_alone() {
    for kernels in ["nlebench-linear", "nlebench-attention"] {
        let all = closure(kernels);
        assert!(
            all.iter()
                .all(|d| d.starts_with("rayon") || d.starts_with("crossbeam") || d == "either"),
            "{kernels} depends on {all:?}"
        );
    }
}
