//! lm-eval's requests through the engine equal lm-eval 0.4.13's own results (`HFLM` in
//! float32, recorded by `tools/lmeval/hflm_reference.py`). `loglikelihood`: the same tokens
//! (trailing whitespace moved, the prefix token for an empty context, the context cut from the
//! left past the context limit), log-likelihoods within 1e-4, the same `is_greedy`, and each
//! request's numbers bitwise the same at any batch size and layout. `loglikelihood_rolling`:
//! the same sums over lm-eval's windows for a text several contexts long. `generate_until`: the same
//! greedy texts, cut before the stop strings, with the context cut to leave the token budget.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use engine::{BatchSize, ContinuationScore, Layout, Scoring};
use serde_json::Value;
use worker::tasks::lmeval::{encode_pair, generate_until, loglikelihoods, rolling_loglikelihoods};

fn reference() -> Value {
    test_support::read_json(&test_support::fixture("lmeval_hflm_reference.json"))
}

/// The `(context, continuation)` of each recorded `loglikelihood` request.
fn pairs(rows: &[Value]) -> Vec<(&str, &str)> {
    rows.iter()
        .map(|r| {
            (
                r["context"].as_str().unwrap(),
                r["continuation"].as_str().unwrap(),
            )
        })
        .collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn loglikelihoods_equal_lm_evals_own() {
    let reference = reference();
    for (name, model_ref) in reference["models"].as_object().unwrap() {
        let model = test_support::models::load(name);
        assert_eq!(
            u64::from(model.bos_id),
            model_ref["prefix_token_id"].as_u64().unwrap(),
            "{name}: the prefix token of an empty context"
        );
        assert_eq!(
            model.max_positions as u64,
            model_ref["max_length"].as_u64().unwrap()
        );
        let rows = model_ref["requests"].as_array().unwrap();
        let requests = pairs(rows);
        for (r, (context, continuation)) in rows.iter().zip(&requests) {
            let (c, k) = encode_pair(&model, context, continuation).unwrap();
            assert_eq!(c, ids(&r["context_enc"]), "{name}: {context:?}");
            assert_eq!(k, ids(&r["continuation_enc"]), "{name}: {continuation:?}");
        }
        let got = loglikelihoods(&model, &requests, &Scoring::default()).unwrap();
        let mut greedy = 0;
        for (r, g) in rows.iter().zip(&got) {
            let want = r["logprob"].as_f64().unwrap();
            assert!(
                (g.logprob - want).abs() <= 1e-4 * want.abs().max(1.0),
                "{name}: {:?} + {:?}: {} against lm-eval's {want}",
                r["context"],
                r["continuation"],
                g.logprob
            );
            assert_eq!(g.greedy, r["is_greedy"].as_bool().unwrap(), "{name}: {r}");
            greedy += usize::from(g.greedy);
        }
        assert!(greedy > 0, "the reference holds a greedy continuation");
        assert!(
            got.iter().any(|g| g.truncated > 0),
            "the long context was cut from the left"
        );
    }
}

#[test]
fn a_requests_numbers_do_not_depend_on_its_batch() {
    let reference = reference();
    let model = test_support::models::load("tiny-gpt2");
    let rows = reference["models"]["tiny-gpt2"]["requests"]
        .as_array()
        .unwrap();
    let requests = pairs(rows);
    let score = |batch: usize, layout: Layout| -> Vec<ContinuationScore> {
        let scoring = Scoring {
            batch: BatchSize::Fixed(batch),
            layout,
            ..Scoring::default()
        };
        loglikelihoods(&model, &requests, &scoring).unwrap()
    };
    let alone: Vec<ContinuationScore> = requests
        .iter()
        .map(|r| loglikelihoods(&model, std::slice::from_ref(r), &Scoring::default()).unwrap()[0])
        .collect();
    for layout in [Layout::Packed, Layout::RightPadded, Layout::LeftPadded] {
        for batch in [1, 3, requests.len()] {
            let got = score(batch, layout);
            for (i, (g, a)) in got.iter().zip(&alone).enumerate() {
                assert_eq!(
                    g.logprob.to_bits(),
                    a.logprob.to_bits(),
                    "request {i}, batch {batch}, {layout:?}"
                );
                assert_eq!(g.greedy, a.greedy);
            }
        }
    }
}

#[test]
fn generations_equal_lm_evals_own() {
    let reference = reference();
    for (name, model_ref) in reference["models"].as_object().unwrap() {
        let model = test_support::models::load(name);
        let rows = model_ref["generate_until"].as_array().unwrap();
        let requests: Vec<(&str, &Value)> = rows
            .iter()
            .map(|r| (r["context"].as_str().unwrap(), &r["arguments"]))
            .collect();
        let alone: Vec<String> = requests
            .iter()
            .map(|r| {
                generate_until(&model, std::slice::from_ref(r), 0)
                    .unwrap()
                    .remove(0)
            })
            .collect();
        for (r, got) in rows.iter().zip(&alone) {
            assert_eq!(got, r["text"].as_str().unwrap(), "{name}: {}", r["context"]);
        }
        assert_eq!(
            generate_until(&model, &requests, 0).unwrap(),
            alone,
            "{name}: the same texts generated together"
        );
    }
}

#[test]
fn rolling_loglikelihoods_equal_lm_evals_own_over_several_windows() {
    let reference = reference();
    for (name, model_ref) in reference["models"].as_object().unwrap() {
        let model = test_support::models::load(name);
        let rows = model_ref["loglikelihood_rolling"].as_array().unwrap();
        assert!(
            rows.iter()
                .any(|r| r["tokens"].as_u64().unwrap() > 3 * model.max_positions as u64),
            "a text of more than three windows"
        );
        let texts: Vec<&str> = rows.iter().map(|r| r["text"].as_str().unwrap()).collect();
        let got = rolling_loglikelihoods(&model, &texts, &Scoring::default()).unwrap();
        for (r, g) in rows.iter().zip(&got) {
            let want = r["logprob"].as_f64().unwrap();
            assert!(
                (g - want).abs() <= 1e-4 * want.abs().max(1.0),
                "{name}: {g} against lm-eval's {want}"
            );
        }
        let one = Scoring {
            batch: BatchSize::Fixed(1),
            ..Scoring::default()
        };
        let alone = rolling_loglikelihoods(&model, &texts, &one).unwrap();
        assert_eq!(
            got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            alone.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
}
