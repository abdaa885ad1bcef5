//! Sentence BLEU and ROUGE-1/2/L on the NorGLM authors' released Norwegian outputs equal
//! sacrebleu and the `rouge` package within 1e-9 (values recorded by
//! tools/reference/text_metrics.py). Reads ../shared; ignored where it is absent (CI has it).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use metrics::{bleu, rouge};
use spec::DataFormat;
use worker::data::{read, text};

#[test]
#[cfg_attr(
    not(nlebench_shared),
    ignore = "needs the authors' released outputs in ../shared/data/norglm-results (CI has them)"
)]
fn per_pair_bleu_and_rouge_equal_the_python_packages() {
    let data = test_support::released("");
    let reference = test_support::read_json(&test_support::fixture("text_metrics_reference.json"));
    let (mut pairs, mut errors, mut worst) = (0, 0, 0f64);
    for (key, rows) in reference["files"].as_object().unwrap() {
        let mut parts = key.split(':');
        let (file, hyp, refc) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let table = read(&data.join(file), DataFormat::Csv).unwrap();
        let rows = rows.as_array().unwrap();
        assert_eq!(table.rows.len(), rows.len(), "{key}");
        for (i, (row, want)) in table.rows.iter().zip(rows).enumerate() {
            let (h, r) = (text(row, hyp), text(row, refc));
            pairs += 1;
            match rouge::rouge(&h, &r) {
                Err(e) => {
                    errors += 1;
                    let w = want["error"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{key} row {i}: we raise {e}, rouge does not"));
                    assert!(w.ends_with(&e.to_string()), "{key} row {i}: {w} vs {e}");
                }
                Ok(s) => {
                    assert!(
                        want.get("error").is_none(),
                        "{key} row {i}: rouge raises {}",
                        want["error"]
                    );
                    for (name, ours) in [
                        ("bleu", bleu::sentence_bleu(&h, &r)),
                        ("rouge_1", s.rouge_1.f),
                        ("rouge_2", s.rouge_2.f),
                        ("rouge_l", s.rouge_l.f),
                    ] {
                        let theirs = want[name].as_f64().unwrap();
                        let d = (ours - theirs).abs();
                        worst = worst.max(d);
                        assert!(
                            d < 1e-9,
                            "{key} row {i} {name}: ours {ours} vs Python {theirs}\nhyp: {h:?}\nref: {r:?}"
                        );
                    }
                }
            }
        }
    }
    eprintln!("{pairs} pairs ({errors} skipped as rouge raises), largest difference {worst:e}");
    assert!(pairs > 11_000);
}

#[test]
#[cfg_attr(
    not(all(nlebench_shared, nlebench_punkt)),
    ignore = "needs the authors' released outputs in ../shared/data/norglm-results and NLTK's Punkt model (python3 tools/reference/fetch_punkt.py); CI has both"
)]
fn word_tokenize_and_the_diversity_metrics_equal_nltk_and_the_authors_functions() {
    let data = test_support::released("");
    // As the binary does: NLTK_DATA and ~/nltk_data before the system directories.
    let mut dirs: Vec<std::path::PathBuf> = std::env::var_os("NLTK_DATA")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    dirs.extend(std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join("nltk_data")));
    metrics::nltk::search_first(dirs);
    if let Err(e) = metrics::nltk::word_tokenize("Hei.") {
        panic!("this test needs NLTK's Punkt model: {e}");
    }
    use metrics::{diversity, nltk};
    use sha2::{Digest, Sha256};
    let reference = test_support::read_json(&test_support::fixture("text_metrics_reference.json"));
    let mut texts_checked = 0;
    for (key, per_text) in reference["tokens"].as_object().unwrap() {
        let (file, column) = key.split_once(':').unwrap();
        let table = read(&data.join(file), DataFormat::Csv).unwrap();
        let mut rows: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
        let mut texts = Vec::new();
        for (i, (row, want)) in table
            .rows
            .iter()
            .zip(per_text.as_array().unwrap())
            .enumerate()
        {
            let t = text(row, column);
            let toks = nltk::word_tokenize(&t).unwrap();
            let hash = hex::encode(Sha256::digest(toks.join("\u{1f}").as_bytes()));
            assert_eq!(
                (toks.len() as u64, &hash[..16]),
                (want[0].as_u64().unwrap(), want[1].as_str().unwrap()),
                "{key} row {i}: {t:?} → {toks:?}"
            );
            texts_checked += 1;
            texts.push(t);
            if toks.is_empty() {
                continue;
            }
            for n in 1..=4 {
                rows.entry(format!("distinct_{n}"))
                    .or_default()
                    .push(diversity::distinct_as_implemented(&toks, n).unwrap());
                rows.entry(format!("distinct_std_{n}"))
                    .or_default()
                    .push(diversity::distinct_standard(&toks, n));
            }
            rows.entry("entr".into())
                .or_default()
                .push(diversity::entr_as_implemented(&toks));
        }
        let want = &reference["diversity"][key.as_str()];
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        for (name, values) in &rows {
            let ours = mean(values);
            match want[name.as_str()].as_f64() {
                Some(w) => assert!((ours - w).abs() < 1e-9, "{key} {name}: {ours} vs {w}"),
                None => assert!(
                    ours.is_nan(),
                    "{key} {name}: {ours} but Python's mean is NaN"
                ),
            }
        }
        let valid: Vec<f64> = rows["entr"]
            .iter()
            .copied()
            .filter(|x| !x.is_nan())
            .collect();
        assert!(
            (mean(&valid) - want["entr_valid"].as_f64().unwrap()).abs() < 1e-9,
            "{key} entr_valid"
        );
        let u = diversity::usr(texts.iter().map(String::as_str));
        assert!(
            (u - want["usr"].as_f64().unwrap()).abs() < 1e-12,
            "{key} usr"
        );
    }
    eprintln!("{texts_checked} texts tokenized exactly as nltk.word_tokenize");
}
