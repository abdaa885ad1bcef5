//! Content identity of local files: SHA-256, remembered per (path, size, mtime) so that large
//! weight files are hashed once.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::{EngineError, Result};
use super::files::ModelFiles;

/// Remembers file hashes in a JSON file.
#[derive(Debug, Clone)]
pub struct HashCache {
    path: Option<PathBuf>,
}

impl HashCache {
    /// A cache kept in `path` (`None`: no memory between calls).
    pub fn new(path: Option<PathBuf>) -> HashCache {
        HashCache { path }
    }

    /// Hex SHA-256 of a file.
    pub fn sha256(&self, file: &Path) -> Result<String> {
        let io = |source| EngineError::Io {
            path: file.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(file).map_err(io)?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let abs = std::fs::canonicalize(file).map_err(io)?;
        let key = format!("{}|{}|{mtime}", abs.display(), meta.len());
        let mut map: BTreeMap<String, String> = self
            .path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        if let Some(h) = map.get(&key) {
            return Ok(h.clone());
        }
        let mut f = std::fs::File::open(file).map_err(io)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let h = hex::encode(hasher.finalize());
        if let Some(p) = &self.path {
            map.insert(key, h.clone());
            if let Some(dir) = p.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let tmp = p.with_extension(format!("tmp{}", std::process::id()));
            if let Ok(text) = serde_json::to_string_pretty(&map)
                && std::fs::write(&tmp, text).is_ok()
            {
                let _ = std::fs::rename(&tmp, p);
            }
        }
        Ok(h)
    }

    /// Hash of a model's config, tokenizer and weights.
    pub fn model_id(&self, files: &ModelFiles) -> Result<String> {
        let mut h = Sha256::new();
        for f in [&files.config, &files.tokenizer]
            .into_iter()
            .chain(&files.weights)
        {
            h.update(
                f.file_name()
                    .map(|n| n.as_encoded_bytes())
                    .unwrap_or_default(),
            );
            h.update(self.sha256(f)?.as_bytes());
        }
        Ok(hex::encode(h.finalize()))
    }
}
