//! `nlebench export SWEEP --to mlflow URL` against a real MLflow tracking server (started here
//! from `NLEBENCH_TEST_MLFLOW`, the `mlflow` program, with a SQLite backend and proxied
//! artifacts on loopback), read back through MLflow's REST API; exporting again changes
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, free_port, root, text};
use serde_json::{Value, json};

/// `mlflow server` in a process group of its own (it starts worker processes), killed on drop
/// (it does not stop on SIGTERM while its job runners live).
struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let mlflow = std::env::var("NLEBENCH_TEST_MLFLOW").expect("NLEBENCH_TEST_MLFLOW");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new(mlflow)
            .args([
                "server",
                "--backend-store-uri",
                &format!("sqlite:///{}", dir.path().join("mlflow.db").display()),
                "--artifacts-destination",
                dir.path().join("artifacts").to_str().unwrap(),
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--workers",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
            .process_group(0)
            .spawn()
            .unwrap();
        let server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let start = Instant::now();
        while ureq::get(format!("{}/health", server.url)).call().is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(180),
                "mlflow server did not answer within 180 s"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        server
    }

    fn post(&self, endpoint: &str, body: Value) -> Value {
        ureq::post(format!("{}/api/2.0/mlflow/{endpoint}", self.url))
            .send_json(body)
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap()
    }

    fn get(&self, path: &str) -> String {
        ureq::get(format!("{}{path}", self.url))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // `pkill -g`: a process group named unambiguously (`kill -KILL -PGID` is not, to
        // every kill program).
        let _ = Command::new("pkill")
            .args(["-KILL", "-g", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn pairs(list: &Value) -> BTreeMap<String, Value> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|p| (p["key"].as_str().unwrap().to_string(), p["value"].clone()))
        .collect()
}

#[test]
#[cfg_attr(
    not(nlebench_mlflow),
    ignore = "needs an MLflow installation: set NLEBENCH_TEST_MLFLOW to its `mlflow` program (.ci/run does)"
)]
fn a_sweep_exported_to_mlflow_reads_back_and_exports_again_unchanged() {
    let server = Server::start();
    let env = Env::embedded();
    let sweep = root().join("experiments/sweeps/quickstart.toml");
    env.ok(&["run", sweep.to_str().unwrap()]);
    let export = [
        "export",
        "quickstart",
        "--to",
        "mlflow",
        &server.url,
        "--experiment",
        "team history",
    ];
    let first = env.ok(&export);
    assert!(
        first.contains("4 run(s) created, 0 updated, 0 unchanged"),
        "{first}"
    );

    // The runs, as MLflow's API gives them back.
    let exp = server.get("/api/2.0/mlflow/experiments/get-by-name?experiment_name=team%20history");
    let exp: Value = serde_json::from_str(&exp).unwrap();
    let exp_id = exp["experiment"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let runs = server.post("runs/search", json!({ "experiment_ids": [exp_id] }))["runs"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(runs.len(), 4);
    let stored: Vec<Value> =
        serde_json::from_str(&env.ok(&["export", "quickstart", "--format", "json"])).unwrap();
    for run in &runs {
        let (params, metrics, tags) = (
            pairs(&run["data"]["params"]),
            pairs(&run["data"]["metrics"]),
            pairs(&run["data"]["tags"]),
        );
        assert_eq!(run["info"]["status"], "FINISHED", "{run}");
        assert_eq!(tags["nlebench.sweep"], "quickstart");
        assert_eq!(tags["nlebench.status"], "done");
        assert_eq!(params["model.name"], "norgpt-tiny-random");
        assert_eq!(params["seed"], "0");
        let task = params["task.name"].as_str().unwrap();
        assert_eq!(
            run["info"]["run_name"],
            format!("norgpt-tiny-random/{task}/all-examples/seed=0")
        );
        // Every stored metric value with its interval.
        for row in stored.iter().filter(|r| r["task"] == task) {
            let name = row["metric"].as_str().unwrap();
            assert_eq!(
                metrics[name].as_f64(),
                row["value"].as_f64(),
                "{task} {name}"
            );
            assert_eq!(metrics[&format!("{name}.n")].as_f64(), row["n"].as_f64());
            if row["ci_low"].is_number() {
                assert_eq!(
                    metrics[&format!("{name}.ci_low")].as_f64(),
                    row["ci_low"].as_f64()
                );
            }
        }
        // The samples as an artifact.
        let path = run["info"]["artifact_uri"]
            .as_str()
            .unwrap()
            .strip_prefix("mlflow-artifacts:")
            .unwrap()
            .to_string();
        let samples = server.get(&format!(
            "/api/2.0/mlflow-artifacts/artifacts{path}/samples.jsonl"
        ));
        let expected = match task {
            "no-crows-pairs" => 32,
            "no-boolq" => 8,
            "no-alpaca-culture" => 6,
            _ => 3,
        };
        assert_eq!(samples.lines().count(), expected, "{task}");
        let first: Value = serde_json::from_str(samples.lines().next().unwrap()).unwrap();
        assert!(first["prompt"].is_string(), "{first}");
    }

    // Again: the same four runs, nothing logged twice.
    let again = env.ok(&export);
    assert!(
        again.contains("0 run(s) created, 0 updated, 4 unchanged"),
        "{again}"
    );
    let after = server.post("runs/search", json!({ "experiment_ids": [exp_id] }));
    assert_eq!(after["runs"].as_array().unwrap().len(), 4);
    let crows = runs
        .iter()
        .find(|r| pairs(&r["data"]["params"])["task.name"] == "no-crows-pairs")
        .unwrap();
    let history = server.get(&format!(
        "/api/2.0/mlflow/metrics/get-history?run_id={}&metric_key=bias_paper",
        crows["info"]["run_id"].as_str().unwrap()
    ));
    let history: Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history["metrics"].as_array().unwrap().len(), 1, "{history}");

    // A value that changed in the store (as a rescore with a newer metric version does) is
    // logged to the same run as the metric's next point.
    env.execute("UPDATE metrics SET value = 40.0 WHERE name = 'bias_paper'");
    let changed = env.ok(&export);
    assert!(
        changed.contains("0 run(s) created, 1 updated, 3 unchanged"),
        "{changed}"
    );
    let history = server.get(&format!(
        "/api/2.0/mlflow/metrics/get-history?run_id={}&metric_key=bias_paper",
        crows["info"]["run_id"].as_str().unwrap()
    ));
    let history: Value = serde_json::from_str(&history).unwrap();
    let points: Vec<f64> = history["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_f64().unwrap())
        .collect();
    assert_eq!(points.len(), 2, "{history}");
    assert!(points.contains(&40.0), "{history}");

    // A server that is not there: one clear error.
    let out = env.run(&[
        "export",
        "quickstart",
        "--to",
        "mlflow",
        &format!("http://127.0.0.1:{}", free_port()),
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot reach the MLflow tracking server"),
        "{stderr}"
    );
}
