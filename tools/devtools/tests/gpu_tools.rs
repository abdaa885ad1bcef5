//! The GPU check's tools work where CI can run them, on the CPU: `nlebench-dev parity` checks
//! every fixture architecture in f32, f16 and bf16 and writes its JSON, and `bench device`
//! writes a random model and reports every figure tools/gpu/report.py reads.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use std::process::Command;

fn dev() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nlebench-dev"));
    c.current_dir(test_support::repo());
    c
}

#[test]
fn parity_on_the_cpu_checks_every_architecture_and_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("parity.json");
    let out = dev()
        .args(["parity", "--device", "cpu", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every fixture architecture in f32, f16 and bf16.
    let n = 3 * test_support::models::ARCHS.len();
    assert!(
        stdout.contains(&format!("{n} checks, 0 failed")),
        "{stdout}"
    );
    let report = test_support::read_json(&json);
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), n);
    for c in checks.iter().filter(|c| c["dtype"] == "f32") {
        // The engine's CPU f32 logits are transformers' (parity_arch.rs): so are these.
        assert!(c["max_abs_transformers"].as_f64().unwrap() < 1e-4, "{c}");
        assert_eq!(c["greedy_equal"], c["greedy_total"], "{c}");
    }
    for c in checks.iter().filter(|c| c["dtype"] != "f32") {
        // Reduced precision differs from f32, measurably: the check compares something.
        assert!(c["max_rel"].as_f64().unwrap() > 1e-5, "{c}");
    }
}

#[test]
fn bench_device_reports_scoring_generation_and_bandwidth_share() {
    let dir = tempfile::tempdir().unwrap();
    let out = dev()
        .args([
            "bench",
            "device",
            "--model",
            "random:norgpt-tiny@2",
            "--device",
            "cpu",
            "--sentences",
            "8",
            "--batch-sizes",
            "1,3",
            "--new-tokens",
            "5",
            "--repeats",
            "1",
            "--bandwidth-gbs",
            "10",
            "--json",
            "--models-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["device"], "cpu");
    assert!(r["scoring"]["sentences_per_s"].as_f64().unwrap() > 0.0);
    let generation = r["generation"].as_array().unwrap();
    assert_eq!(
        generation
            .iter()
            .map(|g| g["batch"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 3]
    );
    // norgpt-tiny: 182,666 f32 parameters; the share is weight bytes × steps/s ÷ bandwidth.
    assert_eq!(r["parameters"], 182_666);
    let g = &generation[0];
    let share = g["bandwidth_share"].as_f64().unwrap();
    let want = 182_666.0 * 4.0 * g["steps_per_s"].as_f64().unwrap() / 10e9;
    assert!(
        (share - want).abs() <= 1e-12 * want.max(1.0),
        "{share} vs {want}"
    );
    assert!(
        dir.path()
            .join("random-norgpt-tiny-seed2/model.safetensors")
            .is_file()
    );
}
