//! deploy/ for real: the images built with podman from a Debian mirror
//! (`deploy/podman/build-images.sh`, with this build's binary), the compose stack started
//! (`deploy/podman/compose.sh`: PostgreSQL, Redis, migrate, the dashboard, two workers), the
//! quickstart sweep submitted through the stack's `submit` service, and its results read back
//! from the dashboard: the same values as the embedded default gives on this machine.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Env, free_port, get, root};
use serde_json::Value;

/// A compose project of its own; its containers and volumes go when it drops.
struct Stack {
    project: String,
    ports: [(&'static str, u16); 3],
}

impl Stack {
    fn new() -> Stack {
        Stack {
            project: format!("nlebench-test-{}", std::process::id()),
            ports: [
                ("NLEBENCH_PG_PORT", free_port()),
                ("NLEBENCH_REDIS_PORT", free_port()),
                ("NLEBENCH_WEB_PORT", free_port()),
            ],
        }
    }

    fn web_port(&self) -> u16 {
        self.ports[2].1
    }

    /// `deploy/podman/compose.sh -p PROJECT ARGS`; fails the test when it fails.
    fn compose(&self, args: &[&str]) -> String {
        let mut c = Command::new(root().join("deploy/podman/compose.sh"));
        c.current_dir(root()).args(["-p", &self.project]).args(args);
        for (var, port) in self.ports {
            c.env(var, port.to_string());
        }
        let out = c.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "compose.sh {args:?} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// The logs of every container of the project (for a failure's message).
    fn logs(&self) -> String {
        let names = podman(&[
            "ps",
            "-a",
            "--format",
            "{{.Names}}",
            "--filter",
            &self.label(),
        ]);
        let mut all = String::new();
        for name in names.lines() {
            let out = Command::new("podman")
                .args(["logs", "--tail", "30", name])
                .output()
                .unwrap();
            all += &format!(
                "--- {name}\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        all
    }

    fn label(&self) -> String {
        format!("label=io.podman.compose.project={}", self.project)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // `down -v` keeps the containers' anonymous volumes: remove the containers with them.
        let ids = podman(&["ps", "-aq", "--filter", &self.label()]);
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let _ = Command::new("podman")
                .args(["rm", "-f", "-v"])
                .args(&ids)
                .output();
        }
        let _ = Command::new(root().join("deploy/podman/compose.sh"))
            .current_dir(root())
            .args(["-p", &self.project, "down", "-v"])
            .output();
    }
}

fn podman(args: &[&str]) -> String {
    let out = Command::new("podman").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// (task, metric) → (value, interval low, interval high) of an export's rows.
fn values(rows: &[Value]) -> BTreeMap<(String, String), (f64, Value, Value)> {
    rows.iter()
        .map(|r| {
            (
                (
                    r["task"].as_str().unwrap().into(),
                    r["metric"].as_str().unwrap().into(),
                ),
                (
                    r["value"].as_f64().unwrap(),
                    r["ci_low"].clone(),
                    r["ci_high"].clone(),
                ),
            )
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(nlebench_containers),
    ignore = "builds images and starts containers: needs root, podman, runc, debootstrap, podman-compose and a Debian mirror; set NLEBENCH_TEST_CONTAINERS=1 (.ci/run does)"
)]
fn the_compose_stack_from_local_images_runs_the_quickstart() {
    common::images();

    let stack = Stack::new();
    // In steps: podman 4.3 cannot start a container that `--requires` one that has exited
    // (migrate), so the dependencies are started first and the rest with --no-deps.
    stack.compose(&["up", "-d", "postgres", "redis"]);
    let migrated = stack.compose(&["run", "--rm", "--no-deps", "migrate"]);
    assert!(migrated.contains("the schema is up to date"), "{migrated}");
    stack.compose(&["up", "-d", "--no-deps", "web", "worker"]);
    let submitted = stack.compose(&[
        "--profile",
        "tools",
        "run",
        "--rm",
        "--no-deps",
        "submit",
        "experiments/sweeps/quickstart.toml",
    ]);
    assert!(submitted.contains("4 new"), "{submitted}");

    // The results, as the dashboard serves them.
    let port = stack.web_port();
    let start = Instant::now();
    let rows: Vec<Value> = loop {
        let (status, _, body) = get(port, "/sweeps/quickstart/export.json");
        if status == 200 {
            let rows: Vec<Value> = serde_json::from_str(&body).unwrap();
            let runs: BTreeMap<&str, &str> = rows
                .iter()
                .map(|r| (r["task"].as_str().unwrap(), r["status"].as_str().unwrap()))
                .collect();
            assert!(
                !runs.values().any(|s| *s == "failed"),
                "a run failed: {runs:?}\n{}",
                stack.logs()
            );
            if runs.len() == 4 && runs.values().all(|s| *s == "done") {
                break rows;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the quickstart did not finish within 300 s (last answer {status}):\n{}",
            stack.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let (status, _, workers) = get(port, "/workers");
    assert_eq!(status, 200);
    assert!(workers.contains("2 in all"), "two workers: {workers}");

    // The same numbers as the embedded default. The images carry no NLTK Punkt model, so
    // Distinct-n and ENTR may exist on this side only.
    let env = Env::embedded();
    let sweep = root().join("experiments/sweeps/quickstart.toml");
    env.ok(&["run", sweep.to_str().unwrap()]);
    let local: Vec<Value> =
        serde_json::from_str(&env.ok(&["export", "quickstart", "--format", "json"])).unwrap();
    let (stacked, local) = (values(&rows), values(&local));
    assert!(stacked.len() >= 30, "{stacked:?}");
    for (key, got) in &stacked {
        assert_eq!(Some(got), local.get(key), "{key:?}");
    }
}
