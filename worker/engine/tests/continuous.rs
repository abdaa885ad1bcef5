//! Continuous batching gives each prompt the generation it gets alone (`generate` with that
//! one prompt): same tokens, text and stop reason, on every architecture fixture, greedy and
//! seeded sampling, with processors, for rows that stop at EOS, at a stop string and at their
//! own token limit, while rows leave and others join the batch.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use engine::{
    Generation, GenerationConfig, LoadedModel, Request, StopReason, generate, generate_continuous,
};
use test_support::models::{ARCHS, load};

const TEXTS: [&str; 7] = [
    "Det regnet hele natten, og",
    "Hei",
    "Oslo er hovedstaden i Norge, og byen har mange museer og parker som",
    "Katten satt på",
    "I dag skal vi snakke om været i Bergen, som ofte er vått",
    "Hva er",
    "Fjorden lå stille under fjellene da båten kom inn",
];

/// Each prompt's own limit on new tokens: short and long rows in one run.
const LIMITS: [usize; 7] = [3, 12, 5, 16, 1, 8, 14];

fn requests(m: &LoadedModel) -> Vec<Request> {
    TEXTS
        .iter()
        .zip(LIMITS)
        .map(|(t, n)| Request {
            prompt: m.encode(t).unwrap(),
            max_new_tokens: Some(n),
        })
        .collect()
}

/// Each request generated alone.
fn alone(m: &LoadedModel, reqs: &[Request], cfg: &GenerationConfig) -> Vec<Generation> {
    reqs.iter()
        .map(|r| {
            let cfg = GenerationConfig {
                max_new_tokens: r.max_new_tokens,
                ..cfg.clone()
            };
            generate(m, std::slice::from_ref(&r.prompt), &cfg)
                .unwrap()
                .remove(0)
        })
        .collect()
}

/// Continuous batching with `slots` rows equals generating alone; returns the stop reasons.
fn check(m: &LoadedModel, cfg: &GenerationConfig, slots: usize, what: &str) -> Vec<StopReason> {
    let reqs = requests(m);
    let want = alone(m, &reqs, cfg);
    let mut order = Vec::new();
    let got = generate_continuous(m, &reqs, cfg, slots, |i, g| {
        assert_eq!(g, &want[i], "{what}: prompt {i} reported as it finished");
        order.push(i);
        Ok(())
    })
    .unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "{what}: prompt {i} with {slots} slots");
    }
    order.sort();
    assert_eq!(
        order,
        (0..reqs.len()).collect::<Vec<_>>(),
        "{what}: each once"
    );
    got.iter().map(|g| g.stop).collect()
}

#[test]
fn continuous_batching_equals_generating_each_prompt_alone() {
    let sampling = GenerationConfig {
        do_sample: true,
        temperature: 0.8,
        top_k: Some(50),
        top_p: Some(0.9),
        seed: 7,
        ..GenerationConfig::default()
    };
    let processors = GenerationConfig {
        repetition_penalty: 1.3,
        no_repeat_ngram_size: 2,
        min_new_tokens: 2,
        ..GenerationConfig::default()
    };
    for name in ARCHS {
        let m = load(name);
        for (cfg, what) in [
            (GenerationConfig::default(), "greedy"),
            (sampling.clone(), "sampling"),
            (processors.clone(), "processors"),
        ] {
            for slots in [1, 3, 16] {
                let stops = check(&m, &cfg, slots, &format!("{name} {what}"));
                assert!(stops.contains(&StopReason::MaxNewTokens), "{stops:?}");
            }
        }

        // EOS: the third token of a row that generates four or more alone ends it there (and
        // any other row that makes it).
        let reqs = requests(&m);
        let plain = alone(&m, &reqs, &GenerationConfig::default());
        let (row, long) = plain
            .iter()
            .enumerate()
            .find(|(_, g)| g.tokens.len() >= 4)
            .expect("a row generates four tokens or more");
        let eos = LoadedModel {
            eos_ids: vec![long.tokens[2]],
            ..m.clone()
        };
        for (cfg, what) in [
            (GenerationConfig::default(), "greedy to EOS"),
            (sampling.clone(), "sampling to EOS"),
        ] {
            let stops = check(&eos, &cfg, 3, &format!("{name} {what}"));
            if what.starts_with("greedy") {
                assert_eq!(stops[row], StopReason::Eos, "{name}: {stops:?}");
            }
        }

        // A stop string: the start of a row's own text ends it, in flight with the others.
        let (row, longest) = plain
            .iter()
            .enumerate()
            .max_by_key(|(_, g)| g.text.chars().count())
            .unwrap();
        let stop: String = longest.text.chars().skip(1).take(3).collect();
        let cfg = GenerationConfig {
            stop_strings: vec![stop],
            ..GenerationConfig::default()
        };
        let stops = check(&m, &cfg, 3, &format!("{name} stop string"));
        assert_eq!(stops[row], StopReason::StopString, "{name}: {stops:?}");
    }
}

#[test]
fn beam_search_is_left_to_static_batches() {
    let m = load("tiny-gpt2");
    let cfg = GenerationConfig {
        num_beams: 2,
        ..GenerationConfig::default()
    };
    let e = generate_continuous(&m, &requests(&m), &cfg, 4, |_, _| Ok(())).unwrap_err();
    assert!(e.to_string().contains("beam"), "{e}");
}
