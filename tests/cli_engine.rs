//! `nlebench perplexity`, `generate` and `models pull` on the parity fixtures give
//! transformers' numbers and tokens, and fail with one clear line.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use common::{Env, root, text};

fn fixture(name: &str) -> String {
    root()
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn perplexity_json_equals_transformers() {
    let env = Env::embedded();
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/tiny-gpt2/reference_ppl.json"))
            .unwrap(),
    )
    .unwrap();
    let sentences = reference["sentences"].as_array().unwrap();
    let lines: Vec<&str> = sentences
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    let input = env.write("texts.txt", &(lines.join("\n") + "\n"));
    let out = env.ok(&[
        "perplexity",
        "--model",
        &format!("path:{}", fixture("tiny-gpt2")),
        "--input",
        input.to_str().unwrap(),
        "--batch-size",
        "5",
        "--json",
    ]);
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    let texts = got["texts"].as_array().unwrap();
    assert_eq!(texts.len(), sentences.len());
    for (g, w) in texts.iter().zip(sentences) {
        let (a, b) = (
            g["perplexity"].as_f64().unwrap(),
            w["perplexity"].as_f64().unwrap(),
        );
        assert!((a - b).abs() / b < 1e-4, "{}: {a} vs {b}", w["text"]);
        assert_eq!(g["n_tokens"], w["n_tokens"]);
        assert_eq!(g["truncated"], false);
    }
    assert_eq!(got["random_weights"], false);
}

#[test]
fn generate_json_equals_transformers_greedy_tokens() {
    let env = Env::embedded();
    for name in ["tiny-llama", "tiny-gptj"] {
        let r: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                root()
                    .join("tests/fixtures")
                    .join(name)
                    .join("reference.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let prompt = r["prompts"][0].as_str().unwrap();
        let out = env.ok(&[
            "generate",
            "--model",
            &fixture(name),
            "--prompt",
            prompt,
            "--max-new-tokens",
            "12",
            "--json",
        ]);
        let got: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            got["generations"][0]["tokens"], r["generate"]["greedy"]["new_tokens"][0],
            "{name}"
        );
        assert_eq!(got["generations"][0]["stop"], "max_new_tokens");
    }
}

#[test]
fn generate_with_an_adapter_and_beams() {
    let env = Env::embedded();
    let out = env.ok(&[
        "generate",
        "--model",
        &fixture("tiny-gpt2"),
        "--adapter",
        &fixture("lora-gpt2"),
        "--prompt",
        "Norge er",
        "--prompt",
        "Hei",
        "--num-beams",
        "3",
        "--max-new-tokens",
        "5",
        "--json",
    ]);
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    let gens = got["generations"].as_array().unwrap();
    assert_eq!(gens.len(), 2);
    assert!(
        gens.iter()
            .all(|g| g["tokens"].as_array().unwrap().len() == 5)
    );
}

#[test]
fn models_pull_without_network_fails_with_one_clear_line() {
    let mut env = Env::embedded();
    env.extra.push(("HF_HUB_OFFLINE".into(), "0".into()));
    env.extra
        .push(("HF_ENDPOINT".into(), "http://127.0.0.1:9".into()));
    let out = env.run(&["models", "pull", "hf:NorGLM/NorGPT-369M"]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    let first = stderr.lines().next().unwrap();
    assert!(
        first.starts_with("error: NorGLM/NorGPT-369M@main is not in the local Hugging Face cache")
            && first.contains("could not be downloaded: the Hub is unreachable"),
        "{stderr}"
    );
    assert!(
        stderr.contains("fix: run `nlebench models pull"),
        "{stderr}"
    );
}

#[test]
fn bad_model_sources_fail_clearly() {
    let env = Env::embedded();
    let out = env.run(&[
        "generate",
        "--model",
        "path:/nonexistent/model",
        "--prompt",
        "Hei",
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("model directory /nonexistent/model does not exist"),
        "{stderr}"
    );
    let out = env.run(&["generate", "--model", "NorGPT", "--prompt", "Hei"]);
    let (_, stderr) = text(&out);
    assert!(stderr.contains("has no source scheme"), "{stderr}");
}
