//! `chain` tasks (the CoT scenes): both steps stored per sample with the prompts the task
//! file declares, read from a Hub dataset in the local Hugging Face cache; and a worker
//! killed between steps is replaced by one that computes no stored step again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{Env, root};

const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";

/// Put `csv` into the env's Hugging Face cache as NorGLM/NO-Multi-QA-Sum's `data_contain.csv`
/// at `main` = [`REVISION`], the layout `huggingface_hub` writes.
fn cache_multi_qa_sum(env: &Env, csv: &str) {
    let repo = env
        .dir
        .path()
        .join("hf/hub/datasets--NorGLM--NO-Multi-QA-Sum");
    let snap = repo.join("snapshots").join(REVISION);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), REVISION).unwrap();
    std::fs::write(snap.join("data_contain.csv"), csv).unwrap();
}

fn mini_data() -> String {
    std::fs::read_to_string(root().join("experiments/data/no-multi-qa-sum-mini.csv")).unwrap()
}

fn sweep(env: &Env, name: &str, model: &str, tasks: &str, batch: u32) -> std::path::PathBuf {
    env.write(
        &format!("{name}.toml"),
        &format!(
            r#"name = "{name}"
tasks = [{tasks}]
shard_size = 100

[[models]]
name = "tiny"
source = "{model}"

[[settings]]
name = "short"
batch_size = {batch}
decoding = {{ max_new_tokens = 6 }}
"#
        ),
    )
}

#[test]
fn both_cot_scenes_store_every_step_with_the_declared_prompts() {
    let env = Env::embedded();
    cache_multi_qa_sum(&env, &mini_data());
    let s = sweep(
        &env,
        "cot",
        "random:norgpt-tiny@1",
        r#""cot-scene-1", "cot-scene-2""#,
        2,
    );
    env.ok(&["run", s.to_str().unwrap()]);
    let st = env.status("cot");
    assert_eq!(st["counts"]["done"], 2, "{st}");

    let run_of = |task: &str| {
        env.query(&format!(
            "SELECT CAST(id AS TEXT), manifest FROM runs WHERE manifest LIKE '%\"name\":\"{task}\"%'"
        ))
        .remove(0)
    };
    let (s1, s2) = (run_of("cot-scene-1"), run_of("cot-scene-2"));
    // The dataset came from the cache; its commit is recorded.
    assert!(s1[1].contains(REVISION), "{}", s1[1]);
    for run in [&s1[0], &s2[0]] {
        // 3 articles with 2, 3 and 2 questions: 7 answers + 3 summaries.
        assert_eq!(
            env.count(&format!(
                "SELECT COUNT(*) FROM chain_steps WHERE run_id = {run}"
            )),
            10
        );
        assert_eq!(
            env.count(&format!(
                "SELECT COUNT(*) FROM samples WHERE run_id = {run}"
            )),
            3
        );
    }
    let steps = |run: &str, idx: i64| {
        env.query(&format!(
            "SELECT CAST(step AS TEXT), CAST(item AS TEXT), prompt, output FROM chain_steps WHERE run_id = {run} AND idx = {idx} ORDER BY step, item"
        ))
    };
    let article = "Rosenborg vant 2-1 over Molde søndag. Vinnermålet kom i det 89. minutt. Treneren roste laget for innsatsen i andre omgang.";

    // Scene 1: the questions, then the summary with the answers in context.
    let a = steps(&s1[0], 1);
    assert_eq!(a.len(), 4);
    assert_eq!(
        a[0][2],
        format!("{article}\nHuman:  Hvem vant kampen? Robot: |||\\n")
    );
    let answered: String = [
        (" Hvem vant kampen?", &a[0][3]),
        (" Når kom vinnermålet?", &a[1][3]),
        (" Hva roste treneren?", &a[2][3]),
    ]
    .iter()
    .map(|(q, out)| format!("Human: {q} Robot: {out}\n"))
    .collect();
    assert_eq!(
        a[3][2],
        format!("{article}\n{answered}Human: Please summarize the article. Robot: |||\\n")
    );
    // The sample keeps both steps; the summary is what is scored.
    let sample = env.query(&format!(
        "SELECT output, reference, data FROM samples WHERE run_id = {} AND idx = 1",
        s1[0]
    ));
    assert_eq!(sample[0][0], a[3][3]);
    assert_eq!(
        sample[0][1],
        " Rosenborg slo Molde 2-1 etter et sent vinnermål."
    );
    let data: serde_json::Value = serde_json::from_str(&sample[0][2]).unwrap();
    assert_eq!(data["steps"].as_array().unwrap().len(), 2);
    assert_eq!(data["steps"][0]["items"].as_array().unwrap().len(), 3);

    // Scene 2: the summary first, then each question with the summary in context; every
    // answer is scored against its reference.
    let b = steps(&s2[0], 1);
    assert_eq!(
        b[0][2],
        format!("{article}\nHuman: Please summarize the article. Robot: |||\\n")
    );
    assert_eq!(
        b[2][2],
        format!(
            "{article}\n{}\nHuman:  Når kom vinnermålet? Robot: |||\\n",
            b[0][3]
        )
    );
    let n = env.query(&format!(
        "SELECT CAST(n AS TEXT) FROM metrics WHERE run_id = {} AND name = 'rouge_1'",
        s2[0]
    ));
    assert_eq!(n[0][0], "7", "seven answers scored");
}

#[test]
#[cfg_attr(
    not(nlebench_services),
    ignore = "needs PostgreSQL and Redis: set NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL (.ci/run does)"
)]
fn a_worker_killed_between_steps_is_replaced_without_recomputing_a_stored_step() {
    let env = Env::team();
    env.ok(&["migrate"]);
    // 12 articles of 2 questions, one article per batch: 36 steps on a model slow enough
    // that the kill lands in the middle.
    let mut csv = String::from("article,question_answer,summary\n");
    for k in 0..12 {
        csv += &format!(
            "\"Artikkel nummer {k} handler om været i Trondheim.\",\"[(' Hva handler artikkel {k} om?', ' Været.'), (' Hvor?', ' I Trondheim.')]\",Været i Trondheim.\n"
        );
    }
    cache_multi_qa_sum(&env, &csv);
    let s = sweep(
        &env,
        "cotkill",
        "random:norgpt-small@3",
        r#""cot-scene-1""#,
        1,
    );
    env.ok(&["submit", s.to_str().unwrap()]);

    let mut a = env.worker("doomed");
    let start = Instant::now();
    while env.count("SELECT COUNT(*) FROM chain_steps") < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "worker A stored no step"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    a.kill(); // SIGKILL between or inside steps: nothing is cleaned up
    let before = env.query(
        "SELECT CAST(idx AS TEXT), CAST(step AS TEXT), CAST(item AS TEXT), output, CAST(created_at AS TEXT) FROM chain_steps ORDER BY idx, step, item",
    );
    assert!(before.len() < 36, "the run must be unfinished when A dies");

    let mut b = env.worker("rescuer");
    let status = env.wait_finished("cotkill", Duration::from_secs(300));
    b.terminate();
    assert_eq!(status["counts"]["done"], 1, "{status}");
    assert_eq!(env.count("SELECT COUNT(*) FROM chain_steps"), 36);
    assert_eq!(env.count("SELECT COUNT(*) FROM samples"), 12);
    // The steps stored before the kill are untouched …
    let after = env.query(
        "SELECT CAST(idx AS TEXT), CAST(step AS TEXT), CAST(item AS TEXT), output, CAST(created_at AS TEXT) FROM chain_steps ORDER BY idx, step, item",
    );
    for row in &before {
        assert!(after.contains(row), "step {row:?} changed or vanished");
    }
    // … and the rescuer computed exactly the missing ones.
    let log = std::fs::read_to_string(env.dir.path().join("rescuer.log")).unwrap();
    let computed: usize = log
        .lines()
        .filter(|l| l.contains("chain step"))
        .filter_map(|l| {
            l.split("computed=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum();
    assert_eq!(computed, 36 - before.len(), "rescuer log:\n{log}");
}
