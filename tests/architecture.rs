//! The rules ARCHITECTURE.md states, checked: which crates each crate must not use (directly or
//! through another, normal and build dependencies), the folder direction, nothing of the test
//! suite in the shipped binary, `unsafe` only in the kernel crates, and no environment reads in
//! library code. The crates and their folders are read from `cargo metadata`, what each uses
//! from `cargo tree` (its own features, this platform), the rest from the sources.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The workspace's members and their folders.
struct Graph {
    /// Member name → manifest path.
    members: BTreeMap<String, PathBuf>,
    root: PathBuf,
}

/// `cargo SUBCOMMAND ARGS` on this workspace, offline.
fn cargo(args: &[&str]) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.args(args);
    c.args([
        "--offline",
        "--manifest-path",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"),
    ]);
    c
}

fn stdout(mut c: Command) -> String {
    let out = c.output().expect("cargo runs");
    assert!(
        out.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

impl Graph {
    fn load() -> Graph {
        let c = cargo(&["metadata", "--no-deps", "--format-version", "1"]);
        let meta: Value = serde_json::from_str(&stdout(c)).unwrap();
        let members = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    PathBuf::from(p["manifest_path"].as_str().unwrap()),
                )
            })
            .collect();
        Graph {
            members,
            root: PathBuf::from(meta["workspace_root"].as_str().unwrap()),
        }
    }

    /// The names of every package `name` uses, directly or not (dev-dependencies left out).
    fn closure(&self, name: &str) -> BTreeSet<String> {
        assert!(
            self.members.contains_key(name),
            "no workspace member {name}"
        );
        let c = cargo(&["tree", "-e", "normal,build", "--prefix", "none", "-p", name]);
        let mut all: BTreeSet<String> = stdout(c)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect();
        all.remove(name);
        all
    }

    /// The folder of member `name`, relative to the workspace root.
    fn folder(&self, name: &str) -> PathBuf {
        self.members[name]
            .parent()
            .unwrap()
            .strip_prefix(&self.root)
            .unwrap()
            .to_path_buf()
    }

    fn member_names(&self) -> Vec<String> {
        self.members.keys().cloned().collect()
    }
}

/// What ARCHITECTURE.md's crate table says each crate must not use.
const MUST_NOT: &[(&str, &[&str])] = &[
    (
        "nlebench",
        &[
            "nlebench-test-support",
            "nlebench-tests",
            "nlebench-devtools",
            "proptest",
        ],
    ),
    (
        "nlebench-web",
        &[
            "candle-core",
            "tokenizers",
            "nlebench-engine",
            "nlebench-worker",
        ],
    ),
    ("nlebench-worker", &["axum", "nlebench-web"]),
    (
        "nlebench-trackers",
        &[
            "candle-core",
            "tokenizers",
            "axum",
            "nlebench-engine",
            "nlebench-worker",
            "nlebench-web",
        ],
    ),
    (
        "nlebench-orchestrator",
        &[
            "candle-core",
            "tokenizers",
            "axum",
            "nlebench-engine",
            "nlebench-worker",
            "nlebench-web",
        ],
    ),
    (
        "nlebench-analysis",
        &[
            "candle-core",
            "tokenizers",
            "axum",
            "apalis",
            "nlebench-engine",
            "nlebench-orchestrator",
            "nlebench-worker",
            "nlebench-web",
        ],
    ),
    (
        "nlebench-store",
        &[
            "candle-core",
            "tokenizers",
            "axum",
            "apalis",
            "nlebench-metrics",
            "nlebench-engine",
            "nlebench-analysis",
            "nlebench-orchestrator",
            "nlebench-worker",
            "nlebench-web",
        ],
    ),
    (
        "nlebench-spec",
        &[
            "candle-core",
            "tokenizers",
            "sea-orm",
            "sqlx",
            "apalis",
            "axum",
            "tokio",
            "nlebench-metrics",
            "nlebench-engine",
            "nlebench-store",
            "nlebench-orchestrator",
            "nlebench-worker",
            "nlebench-web",
        ],
    ),
    (
        "nlebench-metrics",
        &[
            "candle-core",
            "tokenizers",
            "sea-orm",
            "sqlx",
            "apalis",
            "axum",
            "tokio",
            "nlebench-engine",
            "nlebench-spec",
            "nlebench-store",
            "nlebench-orchestrator",
            "nlebench-worker",
        ],
    ),
    (
        "nlebench-engine",
        &[
            "sea-orm",
            "sqlx",
            "apalis",
            "axum",
            "tokio",
            "nlebench-spec",
            "nlebench-store",
            "nlebench-orchestrator",
            "nlebench-worker",
            "nlebench-web",
        ],
    ),
    (
        "nlebench-chat",
        &[
            "candle-core",
            "tokenizers",
            "sea-orm",
            "sqlx",
            "apalis",
            "axum",
            "tokio",
            "nlebench-engine",
            "nlebench-metrics",
            "nlebench-spec",
            "nlebench-store",
            "nlebench-orchestrator",
            "nlebench-worker",
            "nlebench-web",
        ],
    ),
    (
        "nlebench-harness",
        &[
            "candle-core",
            "tokenizers",
            "sea-orm",
            "sqlx",
            "apalis",
            "axum",
            "tokio",
            "nlebench-chat",
            "nlebench-engine",
            "nlebench-spec",
            "nlebench-store",
            "nlebench-orchestrator",
            "nlebench-worker",
            "nlebench-web",
        ],
    ),
];

/// Whether `deps` holds `forbidden` or a crate of its family (`candle-core` → `candle-nn`).
fn holds<'a>(deps: &'a BTreeSet<String>, forbidden: &str) -> Option<&'a String> {
    deps.iter()
        .find(|d| *d == forbidden || d.starts_with(&format!("{forbidden}-")))
}

#[test]
fn each_crate_uses_none_of_what_the_crate_table_forbids() {
    let g = Graph::load();
    let mut broken = Vec::new();
    for (package, forbidden) in MUST_NOT {
        let deps = g.closure(package);
        for f in *forbidden {
            if let Some(found) = holds(&deps, f) {
                broken.push(format!("{package} uses {found}"));
            }
        }
    }
    assert!(broken.is_empty(), "see ARCHITECTURE.md: {broken:#?}");
}

#[test]
fn the_leaf_crates_use_only_what_their_rule_allows() {
    let g = Graph::load();
    let allowed = |package: &str, ok: &dyn Fn(&str) -> bool| {
        let bad: Vec<String> = g.closure(package).into_iter().filter(|d| !ok(d)).collect();
        assert!(bad.is_empty(), "{package} must not use {bad:?}");
    };
    for kernels in ["nlebench-linear", "nlebench-attention"] {
        allowed(kernels, &|d| {
            d.starts_with("rayon") || d.starts_with("crossbeam") || d == "either"
        });
    }
    allowed("nlebench-types", &|d| {
        d.starts_with("serde")
            || d == "backon"
            || d == "fastrand"
            || ["proc-macro2", "quote", "syn", "unicode-ident"].contains(&d)
    });
    allowed("nlebench-migrations", &|d| !d.starts_with("nlebench"));
}

/// The folders, lowest first: a crate uses crates of its own folder or of lower ones.
const FOLDERS: &[&str] = &["migrations", "orchestrator", "worker", "web", ""];

fn rank(folder: &Path) -> usize {
    let top = folder.components().next().map_or(String::new(), |c| {
        c.as_os_str().to_string_lossy().into_owned()
    });
    match top.as_str() {
        "tests" | "tools" => usize::MAX,
        t => FOLDERS
            .iter()
            .position(|f| *f == t)
            .unwrap_or_else(|| panic!("a crate in an unknown folder: {}", folder.display())),
    }
}

#[test]
fn dependencies_point_down_the_folders() {
    let g = Graph::load();
    let mut upward = Vec::new();
    for name in g.member_names() {
        let from = rank(&g.folder(&name));
        for dep in g.closure(&name) {
            if !dep.starts_with("nlebench") || !g.member_names().contains(&dep) {
                continue;
            }
            let to = rank(&g.folder(&dep));
            if to > from {
                upward.push(format!(
                    "{name} ({}) uses {dep} ({})",
                    g.folder(&name).display(),
                    g.folder(&dep).display()
                ));
            }
        }
    }
    assert!(upward.is_empty(), "{upward:#?}");
}

#[test]
fn unsafe_code_is_forbidden_outside_the_kernel_crates() {
    let g = Graph::load();
    for name in g.member_names() {
        let manifest = g.root.join(g.folder(&name)).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let lints: toml::Table = text.parse().unwrap();
        let inherits = lints
            .get("lints")
            .and_then(|l| l.get("workspace"))
            .and_then(toml::Value::as_bool)
            == Some(true);
        let kernels = ["nlebench-linear", "nlebench-attention"].contains(&name.as_str());
        assert!(
            inherits || kernels,
            "{name} must take the workspace's lints (unsafe_code = forbid)"
        );
    }
}

/// One integration-test binary per package (each links every crate it uses: tens of MB in a
/// debug build), and none of the files beside its `main.rs` left out of it: with
/// `autotests = false` a file that no `mod` names would never be compiled, so never run.
#[test]
fn each_package_links_one_test_binary_holding_every_test_file() {
    let meta: Value = serde_json::from_str(&stdout(cargo(&[
        "metadata",
        "--no-deps",
        "--format-version",
        "1",
    ])))
    .unwrap();
    let targets: Vec<&Value> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .collect();
    let roots: BTreeSet<PathBuf> = targets
        .iter()
        .map(|t| PathBuf::from(t["src_path"].as_str().unwrap()))
        .collect();
    for package in meta["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        let tests: Vec<&Value> = package["targets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "test"))
            .collect();
        assert!(
            tests.len() <= 1,
            "{name} has {} test binaries; make each file a module of one `main.rs`",
            tests.len()
        );
        let Some(test) = tests.first() else { continue };
        let main = PathBuf::from(test["src_path"].as_str().unwrap());
        if main.file_name().unwrap() != "main.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&main).unwrap();
        let declared: BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("mod ")?.strip_suffix(';'))
            .collect();
        for entry in std::fs::read_dir(main.parent().unwrap()).unwrap() {
            let file = entry.unwrap().path();
            let stem = file.file_stem().unwrap().to_str().unwrap().to_string();
            let is_rs = file.extension().is_some_and(|e| e == "rs");
            if is_rs && !roots.contains(&file) && !declared.contains(stem.as_str()) {
                panic!(
                    "{} is in no test binary: add `mod {stem};` to {}",
                    file.display(),
                    main.display()
                );
            }
        }
    }
}

/// The `.rs` files under `dir`, recursively.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `text` without its `#[cfg(test)]` items: from the attribute to the end of the braced item
/// that follows it.
fn without_tests(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let Some(open) = item.find('{') else {
            return out;
        };
        let mut depth = 0;
        let mut end = item.len();
        for (i, c) in item[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn library_code_reads_no_environment() {
    let g = Graph::load();
    let reads = ["env::var(", "env::var_os(", "env::vars(", "env::vars_os("];
    let mut found = Vec::new();
    for name in g.member_names() {
        let folder = g.folder(&name);
        // The binary reads it in one module; tests and development tools may.
        if [
            "nlebench-tests",
            "nlebench-test-support",
            "nlebench-devtools",
        ]
        .contains(&name.as_str())
        {
            continue;
        }
        let mut files = Vec::new();
        sources(&g.root.join(&folder).join("src"), &mut files);
        for f in files {
            if f.ends_with("src/environment.rs") && name == "nlebench" {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            for r in reads {
                if without_tests(&text).contains(r) {
                    found.push(format!(
                        "{}: {r}",
                        f.strip_prefix(&g.root).unwrap().display()
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "only src/environment.rs reads the environment: {found:#?}"
    );
}
