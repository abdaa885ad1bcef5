//! The shipped `nlebench` carries none of the test suite's switches: the fault injection of
//! `tests/faults.rs` exists only in the tests' own binary (`tests/bin/nlebench_test.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use std::process::Command;

#[test]
fn the_shipped_worker_rejects_the_fault_injection_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_nlebench"))
        .args(["worker", "--fault-abort-model", "poison"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unexpected argument '--fault-abort-model'"),
        "{err}"
    );
}

#[test]
fn the_shipped_help_names_no_test_switch() {
    let out = Command::new(env!("CARGO_BIN_EXE_nlebench"))
        .args(["worker", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--exit-when-idle"), "{help}");
    assert!(
        !help.contains("--fault") && !help.contains("FAULT"),
        "{help}"
    );
}

#[test]
fn each_command_lists_the_options_it_uses() {
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_nlebench"))
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let perplexity = help(&["perplexity"]);
    for used in ["--device", "--memory-budget-mb", "--data-dir", "--model"] {
        assert!(perplexity.contains(used), "{used}: {perplexity}");
    }
    for unused in [
        "--heartbeat-secs",
        "--backoff-secs",
        "--database-url",
        "--perspective-key",
    ] {
        assert!(!perplexity.contains(unused), "{unused}: {perplexity}");
    }
    let worker = help(&["worker"]);
    for used in [
        "--backoff-secs",
        "--heartbeat-secs",
        "--database-url",
        "--device",
    ] {
        assert!(worker.contains(used), "{used}: {worker}");
    }
    let status = help(&["status"]);
    assert!(
        status.contains("--database-url") && !status.contains("--device"),
        "{status}"
    );
    let compare = help(&["compare"]);
    assert!(
        compare.contains("RUN_A") && compare.contains("run:ID"),
        "{compare}"
    );
}
