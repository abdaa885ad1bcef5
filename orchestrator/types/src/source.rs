//! Where models, adapters and datasets come from: `hf:ORG/NAME[@REV]`, `path:DIR` or
//! `random:PRESET[@SEED]` (a deterministic random-weight model made by the engine).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A parsed source string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Source {
    /// A Hugging Face Hub repository, optionally at a revision (branch, tag or commit).
    Hf {
        /// `ORG/NAME`.
        repo: String,
        /// Branch, tag or commit; `None` means `main`.
        revision: Option<String>,
    },
    /// A local directory (models, adapters) or file (datasets).
    Path {
        /// The path as given, made absolute against the directory it is relative to.
        path: PathBuf,
    },
    /// A random-weight model the engine generates deterministically from a preset and seed.
    Random {
        /// Preset name, e.g. `norgpt-tiny`.
        preset: String,
        /// Seed of the weights.
        seed: u64,
    },
}

/// Why a source string could not be parsed, with a fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl Source {
    /// Parse `hf:ORG/NAME[@REV]`, `path:DIR` (relative to `base`) or `random:PRESET[@SEED]`.
    pub fn parse(s: &str, base: &Path) -> Result<Source, SourceError> {
        let err = |problem: String| SourceError {
            problem,
            fix: "write `hf:ORG/NAME[@REVISION]`, `path:DIRECTORY` or `random:PRESET[@SEED]`"
                .into(),
        };
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| err(format!("`{s}` has no source scheme")))?;
        match scheme {
            "hf" => {
                let (repo, revision) = match rest.split_once('@') {
                    Some((r, rev)) => (r, Some(rev)),
                    None => (rest, None),
                };
                let parts: Vec<&str> = repo.split('/').collect();
                let valid_part = |p: &str| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                };
                if parts.len() != 2 || !parts.iter().all(|p| valid_part(p)) {
                    return Err(err(format!(
                        "`{repo}` is not a Hugging Face repository id of the form ORG/NAME"
                    )));
                }
                if revision.is_some_and(str::is_empty) {
                    return Err(err(format!("`{s}` has an empty revision after `@`")));
                }
                Ok(Source::Hf {
                    repo: repo.to_string(),
                    revision: revision.map(str::to_string),
                })
            }
            "path" => {
                if rest.is_empty() {
                    return Err(err("`path:` needs a path after the colon".into()));
                }
                let p = Path::new(rest);
                let path = if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    base.join(p)
                };
                Ok(Source::Path {
                    path: normalize(&path),
                })
            }
            "random" => {
                let (preset, seed) = match rest.split_once('@') {
                    Some((p, seed)) => (
                        p,
                        seed.parse::<u64>().map_err(|_| {
                            err(format!("the seed `{seed}` in `{s}` is not a whole number"))
                        })?,
                    ),
                    None => (rest, 0),
                };
                if preset.is_empty() {
                    return Err(err("`random:` needs a preset name".into()));
                }
                Ok(Source::Random {
                    preset: preset.to_string(),
                    seed,
                })
            }
            other => Err(err(format!("unknown source scheme `{other}:`"))),
        }
    }

    /// The revision to record: the Hub revision (default `main`), or the seed of a random model.
    pub fn revision(&self) -> Option<String> {
        match self {
            Source::Hf { revision, .. } => Some(revision.clone().unwrap_or_else(|| "main".into())),
            Source::Path { .. } => None,
            Source::Random { seed, .. } => Some(seed.to_string()),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Hf { repo, revision } => match revision {
                Some(r) => write!(f, "hf:{repo}@{r}"),
                None => write!(f, "hf:{repo}"),
            },
            Source::Path { path } => write!(f, "path:{}", path.display()),
            Source::Random { preset, seed } => write!(f, "random:{preset}@{seed}"),
        }
    }
}

/// Remove `.` and resolvable `..` components without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hub_ids_with_and_without_revision() {
        let base = Path::new("/w");
        assert_eq!(
            Source::parse("hf:NorGLM/NorGPT-369M", base).unwrap(),
            Source::Hf {
                repo: "NorGLM/NorGPT-369M".into(),
                revision: None
            }
        );
        let s = Source::parse("hf:NorGLM/NorGPT-369M@ce2a4927", base).unwrap();
        assert_eq!(s.revision().as_deref(), Some("ce2a4927"));
        assert_eq!(s.to_string(), "hf:NorGLM/NorGPT-369M@ce2a4927");
    }

    #[test]
    fn relative_paths_are_made_absolute_against_the_base() {
        let s = Source::parse("path:../models/./x", Path::new("/w/exp/sweeps")).unwrap();
        assert_eq!(
            s,
            Source::Path {
                path: PathBuf::from("/w/exp/models/x")
            }
        );
    }

    #[test]
    fn random_sources_carry_their_seed() {
        let s = Source::parse("random:norgpt-tiny@7", Path::new("/")).unwrap();
        assert_eq!(s.revision().as_deref(), Some("7"));
        assert_eq!(s.to_string(), "random:norgpt-tiny@7");
    }

    #[test]
    fn bad_sources_are_rejected_with_a_fix() {
        for bad in [
            "NorGLM/NorGPT-369M",
            "hf:NorGPT",
            "hf:a/b/c",
            "hf:a/b@",
            "s3:x",
            "random:x@y",
        ] {
            let e = Source::parse(bad, Path::new("/")).unwrap_err();
            assert!(e.fix.contains("hf:ORG/NAME"), "{bad}: {e:?}");
        }
    }
}
