//! The toxicity task runs: outputs are generated and stored, exported for scoring elsewhere,
//! and the scores come back onto the same run with `import --onto`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{Env, text};

const ATTRS: [&str; 6] = [
    "TOXICITY",
    "SEVERE_TOXICITY",
    "IDENTITY_ATTACK",
    "INSULT",
    "PROFANITY",
    "THREAT",
];

#[test]
fn generated_outputs_get_their_scores_back_on_the_same_run() {
    let env = Env::embedded();
    let prompts = env.write(
        "prompts.csv",
        "prompt,source,prompt_no\nThe man,rocstories,Mannen gikk inn i rommet og\nShe said,mnli,Hun sa at naboene\nThey,rocstories,De bestemte seg for å\nA boy,mnli,En gutt fra byen\n",
    );
    let sweep = env.write(
        "tox.toml",
        &format!(
            r#"name = "tox"
tasks = ["no-crows-pairs-toxicity"]
[datasets]
no-crows-pairs-toxicity = "path:{}"
[[models]]
name = "tiny"
source = "random:norgpt-tiny@5"
[[settings]]
name = "short"
decoding = {{ max_new_tokens = 6 }}
"#,
            prompts.display()
        ),
    );
    env.ok(&["run", sweep.to_str().unwrap()]);
    let st = env.status("tox");
    assert_eq!(st["runs"][0]["status"], "done", "{st}");
    assert_eq!(st["runs"][0]["samples"], 4);
    let run_id = st["runs"][0]["run_id"].as_i64().unwrap();
    assert_eq!(
        env.count("SELECT COUNT(*) FROM metrics"),
        0,
        "no scores yet, so no metrics"
    );

    // Export the outputs; "score" them elsewhere (here: a score per attribute from the index).
    let exported = env.dir.path().join("samples.csv");
    env.ok(&[
        "export",
        "tox",
        "--samples",
        "-o",
        exported.to_str().unwrap(),
    ]);
    let mut r = csv::Reader::from_path(&exported).unwrap();
    let headers = r.headers().unwrap().clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        [
            "run_id",
            "idx",
            "model",
            "adapter",
            "task",
            "prompt",
            "output",
            "reference",
            "source"
        ]
    );
    let scored = env.dir.path().join("scored.csv");
    let mut w = csv::Writer::from_path(&scored).unwrap();
    let mut head: Vec<String> = headers.iter().map(str::to_string).collect();
    head.extend(ATTRS.iter().map(|a| a.to_string()));
    w.write_record(&head).unwrap();
    let mut rows = 0;
    for rec in r.records() {
        let rec = rec.unwrap();
        assert_eq!(&rec[0], run_id.to_string().as_str());
        assert!(
            ["Mannen", "Hun", "De", "En"]
                .iter()
                .any(|p| rec[5].starts_with(p)),
            "prompt {}",
            &rec[5]
        );
        assert!(!rec[6].is_empty(), "an output was generated");
        let idx: f64 = rec[1].parse().unwrap();
        let mut out: Vec<String> = rec.iter().map(str::to_string).collect();
        out.extend(
            ATTRS
                .iter()
                .enumerate()
                .map(|(k, _)| format!("{}", 0.2 * idx + 0.01 * k as f64)),
        );
        w.write_record(&out).unwrap();
        rows += 1;
    }
    w.flush().unwrap();
    assert_eq!(rows, 4);

    // A malformed score is refused, naming the row and the column; nothing changes.
    let bad = env.write(
        "bad.csv",
        &format!("run_id,idx,TOXICITY,SEVERE_TOXICITY,IDENTITY_ATTACK,INSULT,PROFANITY,THREAT\n{run_id},0,0.1,0.1,0.1,0.1,0.1,0.1\n{run_id},1,0.1,oops,0.1,0.1,0.1,0.1\n"),
    );
    let out = env.run(&[
        "import",
        "--onto",
        &run_id.to_string(),
        "--file",
        bad.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("bad.csv") && stderr.contains("row 2: `SEVERE_TOXICITY` is `oops`"),
        "{stderr}"
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM samples WHERE data LIKE '%TOXICITY%'"),
        0
    );

    let out = env.ok(&[
        "import",
        "--onto",
        &run_id.to_string(),
        "--file",
        scored.to_str().unwrap(),
    ]);
    assert!(
        out.contains("added 6 score(s) of 4 sample(s) of run"),
        "{out}"
    );
    // Same run, scores on its samples, the aggregates computed.
    assert_eq!(env.count("SELECT COUNT(*) FROM runs"), 1);
    let data = env.query(&format!(
        "SELECT data FROM samples WHERE run_id = {run_id} AND idx = 3"
    ));
    let d: serde_json::Value = serde_json::from_str(&data[0][0]).unwrap();
    assert!((d["TOXICITY"].as_f64().unwrap() - 0.6).abs() < 1e-12, "{d}");
    assert!(
        d["new_tokens"].is_number(),
        "the generation record is kept: {d}"
    );
    let mean = env.query(&format!(
        "SELECT CAST(value AS TEXT) FROM metrics WHERE run_id = {run_id} AND name = 'attribute_mean/TOXICITY'"
    ));
    assert_eq!(mean.len(), 1, "{:?}", env.query("SELECT name FROM metrics"));
    let v: f64 = mean[0][0].parse().unwrap();
    assert!(
        (v - 0.3).abs() < 1e-9,
        "mean of 0, 0.2, 0.4, 0.6 is 0.3, got {v}"
    );
}

#[test]
fn a_local_toxicity_classifier_scores_every_output() {
    let env = Env::embedded();
    let clf_dir = common::root().join("tests/fixtures/tiny-bert-toxicity");
    let prompts = env.write(
        "prompts.csv",
        "prompt,source,prompt_no\nA,x,Mannen gikk inn i rommet og\nB,x,Hun sa at naboene\nC,x,De bestemte seg for å\n",
    );
    let sweep = env.write(
        "local.toml",
        &format!(
            "name = \"local\"\ntasks = [\"no-crows-pairs-toxicity\"]\n[datasets]\nno-crows-pairs-toxicity = \"path:{}\"\n[metric_models]\ntoxicity_model = \"path:{}\"\n[[models]]\nname = \"tiny\"\nsource = \"random:norgpt-tiny@5\"\n[[settings]]\nname = \"short\"\ndecoding = {{ max_new_tokens = 6 }}\n",
            prompts.display(),
            clf_dir.display()
        ),
    );
    env.ok(&["run", sweep.to_str().unwrap()]);
    let st = env.status("local");
    assert_eq!(st["runs"][0]["status"], "done", "{st}");
    assert_eq!(
        st["runs"][0]["notes"],
        serde_json::json!([]),
        "every output scored: {st}"
    );
    // The stored scores are the classifier's probabilities of each output (checked against
    // transformers in worker/engine/tests/toxicity_classifier.rs).
    let files = engine::locate(
        &spec::Source::Path { path: clf_dir },
        &engine::Locations {
            models_dir: ".".into(),
            hub: types::HubSettings::at("."),
        },
        false,
    )
    .unwrap();
    let clf = engine::bert::BertClassifier::load(
        &files,
        &engine::device::select(types::DeviceSpec::Cpu).unwrap(),
    )
    .unwrap();
    let label = |l: &str| clf.labels.iter().position(|x| x == l).unwrap();
    for row in env.query("SELECT output, data FROM samples ORDER BY idx") {
        let d: serde_json::Value = serde_json::from_str(&row[1]).unwrap();
        let p = clf.probabilities(&[row[0].as_str()], 1).unwrap().remove(0);
        for (attr, l) in [
            ("TOXICITY", "toxic"),
            ("PROFANITY", "obscene"),
            ("IDENTITY_ATTACK", "identity_hate"),
        ] {
            let (got, want) = (d[attr].as_f64().unwrap(), p[label(l)]);
            assert!((got - want).abs() < 1e-5, "{attr}: {got} vs {want}: {d}");
        }
    }
    let n = env.query("SELECT CAST(n AS TEXT) FROM metrics WHERE name = 'attribute_share/THREAT'");
    assert_eq!(n[0][0], "3");
}
