//! A text's score does not depend on how it was batched: per-text NLL sums (and so
//! perplexities) are bitwise equal at batch sizes 1, 3, 8 and 16 and with a memory budget, in
//! right-padded, left-padded and packed rows, and whatever the other texts in the batch, in
//! f32, bf16 and f16 on every architecture and every linear kernel the CPU has; and greedy
//! generation gives each prompt the tokens it gets alone whatever the batch. A continuation's
//! log-likelihood after its context (lm-eval's `loglikelihood`) is batch-invariant likewise.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use engine::{
    BatchSize, GenerationConfig, Layout, LoadedModel, Scoring, TextScore, generate, perplexities,
};
use test_support::models::{ARCHS, load, load_dir};
use types::Dtype;

/// The dtypes a model is scored in on the CPU.
const DTYPES: [Dtype; 3] = [Dtype::F32, Dtype::Bf16, Dtype::F16];

/// Norwegian texts from one word to a paragraph, so that batches mix short and long rows, with
/// texts that begin alike (pairs as in NO-CrowS-Pairs, a text that begins another, a text
/// twice), whose beginnings packed rows hold once.
const TEXTS: [&str; 23] = [
    "Hei",
    "Det regnet hele natten.",
    "Oslo er hovedstaden i Norge, og byen har mange museer og parker.",
    "Katten satt på trappen og så på fuglene i hagen.",
    "Ja",
    "I dag skal vi snakke om været i Bergen, som ofte er vått og vindfullt om høsten.",
    "Hva er klokka?",
    "Fjorden lå stille under fjellene da båten kom inn til kaien tidlig om morgenen, \
     og fiskerne begynte å losse fangsten mens måkene skrek over dem.",
    "Han er lege.",
    "Hun er lege.",
    "Barna lekte i snøen til det ble mørkt, og da gikk de inn og drakk varm kakao.",
    "Stortinget vedtok loven etter en lang debatt.",
    "Norge",
    "Toget til Trondheim var forsinket på grunn av snøfall over Dovrefjell.",
    "Mange nordmenn går på ski i påsken, og hyttene på fjellet er fulle.",
    "Det er kaldt.",
    "Bestemor bakte brød hver lørdag, og hele huset luktet godt.",
    "Vi møtes klokka åtte utenfor biblioteket.",
    "Eksamen var vanskelig, men de fleste studentene besto.",
    "Katten satt på trappen og så på barna i hagen.",
    "Det er kaldt i dag.",
    "Det regnet hele natten.",
    "Stortinget vedtok loven etter en kort debatt.",
];

fn scoring(batch: BatchSize, layout: Layout) -> Scoring {
    Scoring {
        batch,
        max_tokens: None,
        layout,
    }
}

fn scores(m: &LoadedModel, texts: &[&str], batch: BatchSize, layout: Layout) -> Vec<TextScore> {
    perplexities(m, texts, &scoring(batch, layout)).unwrap()
}

/// Every layout and batch size gives each text the bits it gets scored alone.
#[test]
fn perplexities_are_bitwise_equal_at_any_batch_size_padding_and_packing() {
    let batches = [
        BatchSize::Fixed(1),
        BatchSize::Fixed(3),
        BatchSize::Fixed(8),
        BatchSize::Fixed(16),
        BatchSize::default(),
    ];
    let layouts = [Layout::RightPadded, Layout::LeftPadded, Layout::Packed];
    let reversed: Vec<&str> = TEXTS.iter().rev().copied().collect();
    for (arch, dtype) in ARCHS.iter().flat_map(|a| DTYPES.map(|d| (*a, d))) {
        let m = load_dir(&test_support::fixture(arch), dtype);
        let alone: Vec<TextScore> = TEXTS
            .iter()
            .map(|t| scores(&m, &[t], BatchSize::Fixed(1), Layout::RightPadded).remove(0))
            .collect();
        assert!(alone.iter().any(|s| s.n_tokens > 20), "{arch}: a long text");
        assert!(
            alone.iter().all(|s| s.nll_sum.is_finite()),
            "{arch}, {dtype:?}: {alone:?}"
        );
        for layout in layouts {
            for batch in batches {
                for (texts, what) in [(&TEXTS[..], "in order"), (&reversed[..], "reversed")] {
                    let got = scores(&m, texts, batch, layout);
                    assert_eq!(
                        got.len(),
                        TEXTS.len(),
                        "{arch}, {dtype:?}: a score per text"
                    );
                    for (i, g) in got.iter().enumerate() {
                        let j = if what == "reversed" {
                            TEXTS.len() - 1 - i
                        } else {
                            i
                        };
                        let want = &alone[j];
                        assert_eq!(
                            (g.n_tokens, g.nll_sum.to_bits(), g.perplexity.to_bits()),
                            (
                                want.n_tokens,
                                want.nll_sum.to_bits(),
                                want.perplexity.to_bits()
                            ),
                            "{arch}, {dtype:?}, {layout:?}, {batch:?}, {what}: text {j} ({} vs {} alone)",
                            g.nll_sum,
                            want.nll_sum
                        );
                    }
                }
            }
        }
    }
}

/// A packed pass of more positions than one row holds spreads its texts over rows of equal
/// width (`scoring::MAX_SHARED_ROW` at most), and each text keeps the bits it gets alone.
#[test]
fn texts_over_several_packed_rows_keep_their_bits() {
    let many: Vec<String> = (0..48)
        .map(|i| {
            format!(
                "{} {}",
                TEXTS[i % TEXTS.len()],
                TEXTS[(i * 7 + 3) % TEXTS.len()]
            )
        })
        .collect();
    let texts: Vec<&str> = many.iter().map(String::as_str).collect();
    for arch in ARCHS {
        let m = load(arch);
        let positions: usize = texts.iter().map(|t| m.encode(t).unwrap().len()).sum();
        assert!(
            positions > 2 * engine::scoring::MAX_SHARED_ROW,
            "{arch}: {positions}"
        );
        for batch in [BatchSize::Fixed(48), BatchSize::default()] {
            let got = scores(&m, &texts, batch, Layout::Packed);
            assert_eq!(got.len(), texts.len(), "{arch}: a score per text");
            for (i, g) in got.iter().enumerate() {
                let want =
                    scores(&m, &[texts[i]], BatchSize::Fixed(1), Layout::RightPadded).remove(0);
                assert_eq!(
                    (g.n_tokens, g.nll_sum.to_bits()),
                    (want.n_tokens, want.nll_sum.to_bits()),
                    "{arch}, {batch:?}: text {i}"
                );
            }
        }
    }
}

/// Greedy generation in one static batch (left-padded prompts of different lengths, in two
/// orders) gives each prompt the tokens it gets alone.
#[test]
fn greedy_tokens_do_not_depend_on_the_batch() {
    let cfg = GenerationConfig {
        max_new_tokens: Some(12),
        ..GenerationConfig::default()
    };
    let prompts = &TEXTS[..8];
    for (arch, dtype) in ARCHS.iter().flat_map(|a| DTYPES.map(|d| (*a, d))) {
        let m = load_dir(&test_support::fixture(arch), dtype);
        let ids: Vec<Vec<u32>> = prompts.iter().map(|t| m.encode(t).unwrap()).collect();
        let alone: Vec<Vec<u32>> = ids
            .iter()
            .map(|p| {
                generate(&m, std::slice::from_ref(p), &cfg)
                    .unwrap()
                    .remove(0)
                    .tokens
            })
            .collect();
        let together = generate(&m, &ids, &cfg).unwrap();
        let rev: Vec<Vec<u32>> = ids.iter().rev().cloned().collect();
        let reversed = generate(&m, &rev, &cfg).unwrap();
        for (i, want) in alone.iter().enumerate() {
            assert_eq!(
                &together[i].tokens, want,
                "{arch}, {dtype:?}: prompt {i} in a batch"
            );
            assert_eq!(
                &reversed[prompts.len() - 1 - i].tokens,
                want,
                "{arch}, {dtype:?}: prompt {i} in the reversed batch"
            );
        }
    }
}

/// Texts longer than [`engine::scoring::MAX_SHARED_ROW`] positions keep their numbers too, in
/// batches with other long and short texts, on a random GPT-2 with a 1024-token context.
#[test]
fn long_texts_keep_their_bits_in_any_batch() {
    let dir = tempfile::tempdir().unwrap();
    let preset = engine::random::Preset {
        name: "norgpt-long",
        n_positions: 1024,
        about: "a 1024-token context",
        ..engine::random::preset("norgpt-tiny").unwrap()
    };
    engine::random::write(&preset, 3, dir.path()).unwrap();
    let m = test_support::models::load_dir(dir.path(), types::Dtype::F32);
    let ids = |n: usize, salt: u32| -> Vec<u32> {
        (0..n as u32).map(|i| (i * 7 + salt) % 1000 + 3).collect()
    };
    let texts = vec![
        ids(900, 1),
        ids(700, 2),
        ids(600, 3),
        ids(300, 4),
        ids(40, 5),
        ids(5, 6),
    ];
    let score = |texts: Vec<Vec<u32>>, batch: BatchSize, layout: Layout| {
        engine::perplexities_of_ids(&m, texts, &scoring(batch, layout)).unwrap()
    };
    let alone: Vec<TextScore> = texts
        .iter()
        .map(|t| score(vec![t.clone()], BatchSize::Fixed(1), Layout::RightPadded).remove(0))
        .collect();
    for layout in [Layout::RightPadded, Layout::LeftPadded, Layout::Packed] {
        for batch in [
            BatchSize::Fixed(2),
            BatchSize::Fixed(6),
            BatchSize::default(),
        ] {
            let got = score(texts.clone(), batch, layout);
            assert_eq!(got.len(), alone.len(), "a score per text");
            for (i, (g, w)) in got.iter().zip(&alone).enumerate() {
                assert_eq!(
                    g.nll_sum.to_bits(),
                    w.nll_sum.to_bits(),
                    "{layout:?}, {batch:?}: text {i} of {} tokens ({} vs {} alone)",
                    w.n_tokens,
                    g.nll_sum,
                    w.nll_sum
                );
            }
        }
    }
}

/// A continuation's log-likelihood after its context is bitwise the same alone and batched,
/// in every layout, and the whole text after the start token scores as its perplexity's
/// negated NLL sum: on every architecture in f32, bf16 and f16. Contexts are shared as in a
/// multiple-choice question (packed rows hold them once).
#[test]
fn continuation_logprobs_are_bitwise_equal_at_any_batch_and_match_perplexities() {
    let layouts = [Layout::RightPadded, Layout::LeftPadded, Layout::Packed];
    for (arch, dtype) in ARCHS.iter().flat_map(|a| DTYPES.map(|d| (*a, d))) {
        let m = load_dir(&test_support::fixture(arch), dtype);
        let enc = |t: &str| m.encode(t).unwrap();
        let mut pairs: Vec<(Vec<u32>, Vec<u32>)> = Vec::new();
        for (context, choices) in [
            (
                "Spørsmål: Hvor bor katten?\nSvar:",
                [" på taket", " i hagen", " i Bergen"],
            ),
            (
                "Han er",
                [" lege.", " lærer.", " student ved universitetet."],
            ),
        ] {
            for c in choices {
                pairs.push((enc(context), enc(c)));
            }
        }
        let whole = enc(TEXTS[2]);
        pairs.push((vec![m.bos_id], whole.clone()));
        let alone: Vec<engine::ContinuationScore> = pairs
            .iter()
            .map(|p| {
                engine::continuation_logprobs(&m, std::slice::from_ref(p), &Scoring::default())
                    .unwrap()[0]
            })
            .collect();
        for layout in layouts {
            for batch in [
                BatchSize::Fixed(1),
                BatchSize::Fixed(4),
                BatchSize::default(),
            ] {
                let got =
                    engine::continuation_logprobs(&m, &pairs, &scoring(batch, layout)).unwrap();
                for (i, (g, a)) in got.iter().zip(&alone).enumerate() {
                    assert_eq!(
                        (g.logprob.to_bits(), g.greedy),
                        (a.logprob.to_bits(), a.greedy),
                        "{arch}, {dtype:?}, {layout:?}, {batch:?}: pair {i}"
                    );
                }
            }
        }
        let ppl = engine::perplexities_of_ids(&m, vec![whole], &Scoring::default()).unwrap();
        assert_eq!(
            (-alone.last().unwrap().logprob).to_bits(),
            ppl[0].nll_sum.to_bits(),
            "{arch}, {dtype:?}: the text after the start token scores as its perplexity's sum"
        );
    }
}
