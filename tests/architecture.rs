//! Dependencies point one way (ARCHITECTURE.md): the metrics know no ML framework and no
//! store, the engine knows no store, queue or web server, the shared vocabulary knows nothing.
//! Read from `cargo metadata`, following normal (non-dev) dependencies transitively.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

/// Package name → names of the packages it depends on (normal and build dependencies).
fn graph() -> (HashMap<String, Vec<String>>, HashMap<String, String>) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: HashMap<String, String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_string(),
                p["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut deps = HashMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let id = node["id"].as_str().unwrap().to_string();
        let normal: Vec<String> = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].as_str() != Some("dev"))
            })
            .map(|d| d["pkg"].as_str().unwrap().to_string())
            .collect();
        deps.insert(id, normal);
    }
    (deps, names)
}

/// Every package `package` depends on, directly or not.
fn closure(package: &str) -> BTreeSet<String> {
    let (deps, names) = graph();
    let root = names
        .iter()
        .find(|(_, n)| n.as_str() == package)
        .map(|(id, _)| id.clone())
        .unwrap_or_else(|| panic!("no package {package} in the workspace"));
    let mut seen = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(id) = todo.pop() {
        for d in deps.get(&id).into_iter().flatten() {
            if seen.insert(names[d].clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
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
