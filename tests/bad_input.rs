//! Bad input gives one clear error (file, place, key, fix), a non-zero exit, and leaves
//! nothing half-written in the store.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use std::path::Path;

use common::{Env, mini_pairs, root, sweep_toml, text};

/// Run `submit`, expect failure, return stderr; the store holds no sweep and no run.
fn fails(env: &Env, sweep: &Path) -> String {
    let out = env.run(&["submit", sweep.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(
        !out.status.success(),
        "expected a failure:\n{stdout}\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.matches("error:").count(), 1, "one error:\n{stderr}");
    if env.database_url.starts_with("sqlite://") {
        let db = env.database_url.trim_start_matches("sqlite://");
        if Path::new(db).exists()
            && env.count("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sweeps'") > 0
        {
            assert_eq!(
                env.count("SELECT COUNT(*) FROM sweeps"),
                0,
                "half-written sweep"
            );
            assert_eq!(
                env.count("SELECT COUNT(*) FROM runs"),
                0,
                "half-written runs"
            );
        }
    }
    stderr
}

fn good() -> String {
    sweep_toml(
        "s",
        &[("m", "random:norgpt-tiny@1")],
        &[("ten", 10)],
        4,
        &mini_pairs(),
    )
}

#[test]
fn malformed_toml_names_the_line_and_column() {
    let env = Env::embedded();
    let p = env.write("s.toml", "name = \"broken\ntasks = [\"no-crows-pairs\"]\n");
    let e = fails(&env, &p);
    assert!(e.contains("s.toml:1:"), "{e}");
    assert!(e.contains("malformed TOML") && e.contains("fix:"), "{e}");
}

#[test]
fn unknown_key_is_rejected_with_its_place() {
    let env = Env::embedded();
    let text = good().replace("batch_size = 2", "batch_sise = 2");
    let p = env.write("s.toml", &text);
    let e = fails(&env, &p);
    let line = text
        .lines()
        .position(|l| l.starts_with("batch_sise"))
        .unwrap()
        + 1;
    assert!(e.contains(&format!("s.toml:{line}:1")), "{e}");
    assert!(e.contains("unknown field `batch_sise`"), "{e}");
    assert!(e.contains("key `settings[0].batch_sise`"), "{e}");
    assert!(e.contains("fix: remove this key"), "{e}");
}

#[test]
fn unknown_task_lists_the_known_ones() {
    let env = Env::embedded();
    let p = env.write(
        "s.toml",
        &good().replace("[\"no-crows-pairs\"]", "[\"no-crowz\"]"),
    );
    let e = fails(&env, &p);
    assert!(
        e.contains("s.toml:2:10: key `tasks[0]`: unknown task `no-crowz`"),
        "{e}"
    );
    assert!(e.contains("no-crows-pairs"), "{e}");
}

#[test]
fn missing_model_directory_points_at_the_source() {
    let env = Env::embedded();
    let p = env.write(
        "s.toml",
        &good().replace("random:norgpt-tiny@1", "path:/nonexistent/norgpt"),
    );
    let e = fails(&env, &p);
    assert!(e.contains("key `models[0].source`"), "{e}");
    assert!(
        e.contains("model directory /nonexistent/norgpt does not exist"),
        "{e}"
    );
    assert!(e.contains("fix:"), "{e}");
}

#[test]
fn a_data_directory_that_cannot_be_written_is_named_not_the_model_source() {
    let mut env = Env::embedded();
    let file = env.write("not-a-directory", "");
    env.extra.push((
        "NLEBENCH_DATA_DIR".into(),
        file.join("data").display().to_string(),
    ));
    let p = env.write("s.toml", &good());
    for command in ["submit", "run"] {
        let out = env.run(&[command, p.to_str().unwrap()]);
        let (_, stderr) = text(&out);
        assert!(!out.status.success());
        assert!(
            stderr.contains(&format!(
                "the data directory {} cannot be written",
                file.join("data").display()
            )) && stderr.contains("NLEBENCH_DATA_DIR / --data-dir"),
            "{command}: {stderr}"
        );
        assert!(!stderr.contains("models[0].source"), "{stderr}");
    }
}

fn fixture_copy(env: &Env) -> std::path::PathBuf {
    let src = root().join("tests/fixtures/tiny-gpt2");
    let dst = env.dir.path().join("model");
    std::fs::create_dir_all(&dst).unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dst.join(f.file_name().unwrap())).unwrap();
    }
    dst
}

#[test]
fn corrupt_safetensors_is_reported() {
    let env = Env::embedded();
    let dir = fixture_copy(&env);
    let w = dir.join("model.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    let p = env.write(
        "s.toml",
        &good().replace("random:norgpt-tiny@1", &format!("path:{}", dir.display())),
    );
    let e = fails(&env, &p);
    assert!(
        e.contains("model.safetensors: corrupt or truncated safetensors file"),
        "{e}"
    );
    assert!(e.contains("key `models[0].source`"), "{e}");
}

#[test]
fn tokenizer_larger_than_the_model_vocabulary_is_reported() {
    let env = Env::embedded();
    let dir = fixture_copy(&env);
    let cfg = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("\"vocab_size\": 1024", "\"vocab_size\": 100"),
    )
    .unwrap();
    let p = env.write(
        "s.toml",
        &good().replace("random:norgpt-tiny@1", &format!("path:{}", dir.display())),
    );
    let e = fails(&env, &p);
    assert!(
        e.contains("the tokenizer has 905 entries but the model's vocabulary has only 100"),
        "{e}"
    );
    assert!(
        e.contains("fix: use the tokenizer that belongs to the model"),
        "{e}"
    );
}

#[test]
fn a_redis_queue_with_the_sqlite_store_is_refused_and_writes_nothing() {
    let mut env = Env::embedded();
    env.queue_url = "redis://127.0.0.1:9".into();
    let p = env.write("s.toml", &good());
    let e = fails(&env, &p);
    assert!(
        e.contains("NLEBENCH_QUEUE_URL: a Redis queue with the embedded SQLite store"),
        "{e}"
    );
    assert!(
        e.contains("fix: set NLEBENCH_DATABASE_URL=postgres://"),
        "{e}"
    );
    let db = env.database_url.trim_start_matches("sqlite://");
    assert!(
        !Path::new(db).exists(),
        "nothing written before the refusal"
    );
}

#[test]
#[cfg_attr(
    not(nlebench_services),
    ignore = "needs PostgreSQL and Redis: set NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL (.ci/run does)"
)]
fn unreachable_redis_is_one_clear_error_and_writes_nothing() {
    let mut env = Env::team();
    env.ok(&["migrate"]);
    env.queue_url = "redis://127.0.0.1:9".into();
    let p = env.write("s.toml", &good());
    let e = fails(&env, &p);
    assert!(
        e.contains("cannot connect to the queue at redis://127.0.0.1:9"),
        "{e}"
    );
    assert!(e.contains("fix: start the queue server"), "{e}");
    assert_eq!(env.count("SELECT COUNT(*) FROM runs"), 0);
}

#[test]
fn unreachable_postgres_is_one_clear_error() {
    let mut env = Env::embedded();
    env.database_url = "postgres://nlebench:secret@127.0.0.1:9/nlebench".into();
    env.queue_url = "redis://127.0.0.1:9".into();
    let p = env.write("s.toml", &good());
    let e = fails(&env, &p);
    assert!(
        e.contains(
            "cannot connect to the database at postgres://nlebench:***@127.0.0.1:9/nlebench"
        ),
        "{e}"
    );
    assert!(!e.contains("secret"), "the password is not printed: {e}");
    assert!(e.contains("fix: start the database server"), "{e}");
}

#[test]
fn secrets_in_urls_are_never_printed() {
    // A password with `@` in it, one in the query string, and an unknown queue scheme.
    for (db, queue) in [
        (
            "postgres://nlebench:s3cr@t-pw@127.0.0.1:9/nlebench",
            "redis://127.0.0.1:9",
        ),
        (
            "postgres://127.0.0.1:9/nlebench?user=u&password=s3cr@t-pw",
            "redis://127.0.0.1:9",
        ),
        ("sqlite://db.sqlite", "amqp://guest:s3cr@t-pw@127.0.0.1:9"),
    ] {
        let mut env = Env::embedded();
        env.database_url = db.into();
        env.queue_url = queue.into();
        let p = env.write("s.toml", &good());
        let out = env.run(&["submit", p.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "{db} {queue}");
        assert!(
            !stdout.contains("s3cr") && !stderr.contains("s3cr") && !stderr.contains("t-pw"),
            "{db} {queue}: {stderr}"
        );
        assert!(
            stderr.contains("***"),
            "the URL is shown, redacted: {stderr}"
        );
    }
}

#[test]
fn unreachable_postgres_stops_a_worker_with_a_clear_error() {
    let mut env = Env::embedded();
    env.database_url = "postgres://u@127.0.0.1:9/x".into();
    env.queue_url = "redis://127.0.0.1:9".into();
    let out = env.run(&["worker"]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot connect to the database"),
        "{stderr}"
    );
}

#[test]
fn a_generation_task_without_a_template_cannot_be_run() {
    let mut env = Env::embedded();
    // A task that only scores imported outputs (no template).
    let tasks = env.dir.path().join("tasks");
    std::fs::create_dir_all(&tasks).unwrap();
    std::fs::write(
        tasks.join("scored-only.toml"),
        "name = \"scored-only\"\nversion = 1\nkind = \"generation\"\nprimary_metric = \"bleu\"\nmetrics = [\"bleu\"]\n[dataset]\nsource = \"path:x.csv\"\n[fields]\nreference = \"ref\"\n",
    )
    .unwrap();
    env.extra
        .push(("NLEBENCH_TASKS_DIR".into(), tasks.display().to_string()));
    let p = env.write(
        "s.toml",
        &good()
            .replace("[\"no-crows-pairs\"]", "[\"scored-only\"]")
            .replace("no-crows-pairs = ", "scored-only = "),
    );
    let e = fails(&env, &p);
    assert!(
        e.contains("task `scored-only` has no prompt template"),
        "{e}"
    );
    assert!(
        e.contains("fix: use `nlebench score` / `nlebench import`"),
        "{e}"
    );
}

#[test]
fn a_misspelt_variable_is_named_and_a_bad_boolean_refused() {
    let env = Env::embedded();
    let out = env
        .cmd(&["tasks", "list"])
        .env("NLEBENCH_HEARTBEAT_SEC", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = common::text(&out).1;
    assert!(
        err.contains(
            "warning: NLEBENCH_HEARTBEAT_SEC is not a setting of nlebench and is ignored; did you mean NLEBENCH_HEARTBEAT_SECS?"
        ),
        "{err}"
    );
    let out = env
        .cmd(&["serve", "--addr", "127.0.0.1:9"])
        .env("NLEBENCH_DASHBOARD_PUBLIC", "maybe")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = common::text(&out).1;
    assert!(
        err.contains("invalid value 'maybe'") && err.contains("--public"),
        "{err}"
    );
}
