//! No panic from a model's files: mutations of a real config.json and of a safetensors
//! header (with the tensor data after it), and random bytes, give `Ok` or an error naming
//! the file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::LazyLock;

use engine::config::ModelConfig;
use engine::files::ModelFiles;
use engine::{random, weights};
use proptest::prelude::*;
use test_support::fuzz::{inputs, names_file};

/// A tiny random model's config.json, safetensors header (length prefix included) and data.
struct Base {
    _dir: tempfile::TempDir,
    config: Vec<u8>,
    header: Vec<u8>,
    data: Vec<u8>,
}

static BASE: LazyLock<Base> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let p = random::preset("norgpt-tiny").unwrap();
    random::write(&p, 1, &dir.path().join("m")).unwrap();
    let st = std::fs::read(dir.path().join("m/model.safetensors")).unwrap();
    let n = 8 + u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
    Base {
        config: std::fs::read(dir.path().join("m/config.json")).unwrap(),
        header: st[..n].to_vec(),
        data: st[n..].to_vec(),
        _dir: dir,
    }
});

proptest! {
    #![proptest_config(test_support::fuzz::config())]

    #[test]
    fn config_files_never_panic(bytes in inputs(BASE.config.clone())) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, &bytes).unwrap();
        names_file(ModelConfig::load(&path), &path)?;
    }

    #[test]
    fn safetensors_headers_never_panic(header in inputs(BASE.header.clone())) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        std::fs::write(&path, [header, BASE.data.clone()].concat()).unwrap();
        let files = ModelFiles {
            dir: dir.path().to_path_buf(),
            config: PathBuf::from("config.json"),
            tokenizer: PathBuf::from("tokenizer.json"),
            weights: vec![path.clone()],
            revision: None,
        };
        names_file(weights::check_weights(&files), &path)?;
    }
}
