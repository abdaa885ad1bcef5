//! Random-weight models are deterministic and marked; the model cache keeps the last model.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use candle_core::Device;
use engine::files::in_dir;
use engine::{LoadedModel, ModelCache, Scoring, perplexities, random};
use types::{Dtype, Source};

#[test]
fn random_models_are_byte_identical_for_a_seed_and_marked_random() {
    let d = tempfile::tempdir().unwrap();
    let p = random::preset("norgpt-tiny").unwrap();
    random::write(&p, 7, &d.path().join("a")).unwrap();
    random::write(&p, 7, &d.path().join("b")).unwrap();
    random::write(&p, 8, &d.path().join("c")).unwrap();
    let read = |x: &str| std::fs::read(d.path().join(x).join("model.safetensors")).unwrap();
    assert_eq!(read("a"), read("b"));
    assert_ne!(read("a"), read("c"));
    let m = LoadedModel::load(
        &in_dir(&d.path().join("a"), None).unwrap(),
        Dtype::F32,
        &Device::Cpu,
    )
    .unwrap();
    assert!(m.random_weights);
    assert_eq!(m.arch, "gpt2");
    let readme = std::fs::read_to_string(d.path().join("a/README.md")).unwrap();
    assert!(readme.starts_with("# RANDOM WEIGHTS"));
    let s = perplexities(
        &m,
        &["Hei på deg", "Norge er et land."],
        &Scoring::default(),
    )
    .unwrap();
    assert!(
        s.iter()
            .all(|x| x.perplexity.is_finite() && x.perplexity > 1.0)
    );
}

#[test]
fn unknown_presets_list_the_known_ones() {
    let e = random::preset("gpt-5").unwrap_err();
    assert!(
        e.to_string()
            .contains("norgpt-tiny, norgpt-small, norgpt-369m"),
        "{e}"
    );
}

#[test]
fn the_cache_reloads_only_when_the_model_changes() {
    let d = tempfile::tempdir().unwrap();
    let at = engine::Locations {
        models_dir: d.path().to_path_buf(),
        hub: types::HubSettings::at(d.path().join("hub")),
    };
    let cache = ModelCache::default();
    let src = |seed| Source::Random {
        preset: "norgpt-tiny".into(),
        seed,
    };
    let a1 = cache
        .get(&src(1), Dtype::F32, None, &at, &Device::Cpu)
        .unwrap();
    let a2 = cache
        .get(&src(1), Dtype::F32, None, &at, &Device::Cpu)
        .unwrap();
    assert!(std::sync::Arc::ptr_eq(&a1, &a2));
    assert_eq!(cache.loads(), 1);
    cache
        .get(&src(2), Dtype::F32, None, &at, &Device::Cpu)
        .unwrap();
    cache
        .get(&src(2), Dtype::F32, None, &at, &Device::Cpu)
        .unwrap();
    assert_eq!(cache.loads(), 2);
    cache
        .get(&src(1), Dtype::F32, None, &at, &Device::Cpu)
        .unwrap();
    assert_eq!(
        cache.loads(),
        3,
        "a one-entry cache: switching back reloads"
    );
}

/// Submissions and workers that need the same random model at once (the orchestrator of
/// two `submit`s, several embedded workers) each find it whole: nobody sees a half-written
/// or replaced directory.
#[test]
fn concurrent_ensures_of_one_random_model_all_find_it_whole() {
    let d = tempfile::tempdir().unwrap();
    let readers: Vec<_> = (0..6)
        .map(|_| {
            let models = d.path().to_path_buf();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                for _ in 0..5 {
                    let dir = random::ensure("norgpt-tiny", 3, &models).unwrap();
                    seen.push(std::fs::read(dir.join("tokenizer.json")).unwrap().len());
                    seen.push(std::fs::read(dir.join("model.safetensors")).unwrap().len());
                }
                seen
            })
        })
        .collect();
    for r in readers {
        assert!(r.join().unwrap().iter().all(|n| *n > 0));
    }
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        left,
        ["random-norgpt-tiny-seed3"],
        "no temp dirs left behind"
    );
}

#[test]
fn unknown_model_types_are_rejected() {
    let d = tempfile::tempdir().unwrap();
    let p = random::preset("norgpt-tiny").unwrap();
    random::write(&p, 1, d.path()).unwrap();
    let cfg = d.path().join("config.json");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("\"model_type\": \"gpt2\"", "\"model_type\": \"mamba\""),
    )
    .unwrap();
    let e =
        LoadedModel::load(&in_dir(d.path(), None).unwrap(), Dtype::F32, &Device::Cpu).unwrap_err();
    assert!(
        e.to_string().contains(
            "model_type `mamba` is not supported; supported: gpt2, gptj, llama, mistral, mixtral"
        ),
        "{e}"
    );
}
