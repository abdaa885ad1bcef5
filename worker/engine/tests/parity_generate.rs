//! Generation equals transformers' `generate` token for token on every architecture's tiny
//! fixture (f32): greedy, greedy with repetition penalty + n-gram ban + min_new_tokens,
//! `max_length`, and beam search, all on a left-padded batch of three prompts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use candle_core::Device;
use engine::files::in_dir;
use engine::{GenerationConfig, LoadedModel, StopReason, generate};
use test_support::fixture;
use test_support::models::ARCHS;
use types::Dtype;

fn config(params: &serde_json::Value) -> GenerationConfig {
    let get = |k: &str| params.get(k).and_then(|v| v.as_u64()).map(|v| v as usize);
    GenerationConfig {
        max_new_tokens: get("max_new_tokens"),
        max_length: get("max_length"),
        min_new_tokens: get("min_new_tokens").unwrap_or(0),
        num_beams: get("num_beams").unwrap_or(1),
        no_repeat_ngram_size: get("no_repeat_ngram_size").unwrap_or(0),
        repetition_penalty: params
            .get("repetition_penalty")
            .and_then(|v| v.as_f64())
            .unwrap_or(1.0),
        ..GenerationConfig::default()
    }
}

#[test]
fn generations_equal_transformers_token_for_token() {
    for name in ARCHS {
        let m = LoadedModel::load(
            &in_dir(&fixture(name), None).unwrap(),
            Dtype::F32,
            &Device::Cpu,
        )
        .unwrap();
        let r: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(name).join("reference.json")).unwrap(),
        )
        .unwrap();
        let prompts: Vec<Vec<u32>> = serde_json::from_value(r["prompt_ids"].clone()).unwrap();
        for (mode, g) in r["generate"].as_object().unwrap() {
            let want: Vec<Vec<u32>> = serde_json::from_value(g["new_tokens"].clone()).unwrap();
            let got = generate(&m, &prompts, &config(&g["params"])).unwrap();
            for (i, (w, o)) in want.iter().zip(&got).enumerate() {
                // transformers pads finished rows with the pad (= EOS) token.
                let mut padded = o.tokens.clone();
                padded.resize(w.len(), 0);
                assert_eq!(&padded, w, "{name} {mode} prompt {i}: {:?}", o.stop);
            }
        }
    }
}

#[test]
fn sampling_is_reproducible_by_seed_and_stop_strings_cut_the_text() {
    let m = LoadedModel::load(
        &in_dir(&fixture("tiny-llama"), None).unwrap(),
        Dtype::F32,
        &Device::Cpu,
    )
    .unwrap();
    let prompt = vec![m.encode("Det regnet hele natten, og").unwrap()];
    let cfg = GenerationConfig {
        max_new_tokens: Some(12),
        do_sample: true,
        temperature: 0.8,
        top_k: Some(50),
        top_p: Some(0.9),
        seed: 42,
        ..GenerationConfig::default()
    };
    let a = generate(&m, &prompt, &cfg).unwrap();
    let b = generate(&m, &prompt, &cfg).unwrap();
    assert_eq!(a, b);
    let c = generate(
        &m,
        &prompt,
        &GenerationConfig {
            seed: 43,
            ..cfg.clone()
        },
    )
    .unwrap();
    assert_ne!(a[0].tokens, c[0].tokens, "another seed, another sample");
    assert_eq!(a[0].tokens.len(), 12);
    assert_eq!(a[0].stop, StopReason::MaxNewTokens);

    // A stop string made of the first generated text's end stops generation there.
    let greedy = GenerationConfig {
        max_new_tokens: Some(12),
        ..GenerationConfig::default()
    };
    let full = generate(&m, &prompt, &greedy).unwrap().remove(0);
    let stop: String = full.text.chars().take(6).collect();
    let cut = generate(
        &m,
        &prompt,
        &GenerationConfig {
            stop_strings: vec![stop.clone()],
            ..greedy
        },
    )
    .unwrap()
    .remove(0);
    assert_eq!(cut.stop, StopReason::StopString);
    assert!(cut.text.ends_with(&stop), "{:?} {:?}", cut.text, stop);
    assert!(cut.tokens.len() < full.tokens.len());
}

#[test]
fn long_prompts_keep_their_end_and_report_what_was_dropped() {
    let m = LoadedModel::load(
        &in_dir(&fixture("tiny-gpt2"), None).unwrap(),
        Dtype::F32,
        &Device::Cpu,
    )
    .unwrap();
    let long = m
        .encode(&"Norge er et land i Nord-Europa. ".repeat(30))
        .unwrap();
    assert!(long.len() > 128);
    let g = generate(
        &m,
        std::slice::from_ref(&long),
        &GenerationConfig {
            max_new_tokens: Some(8),
            ..Default::default()
        },
    )
    .unwrap()
    .remove(0);
    assert_eq!(g.prompt_tokens, 120);
    assert_eq!(g.prompt_dropped, long.len() - 120);
    assert_eq!(g.tokens.len(), 8);
    let e = generate(
        &m,
        &[long],
        &GenerationConfig {
            max_new_tokens: Some(500),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("leaves no room for a prompt"), "{e}");
}
