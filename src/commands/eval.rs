//! `nlebench eval`: a one-line evaluation. The flags become a sweep file under the data
//! directory, named by a hash of its contents (the same flags reuse the same sweep and its
//! finished cells), which then runs as `nlebench run` would run it.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use crate::args::{EvalArgs, Global, RunArgs};
use crate::context;

pub async fn eval(g: &Global, a: EvalArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let cwd = std::env::current_dir().context("the current directory cannot be read")?;
    let (name, text) = sweep_file(&a, &cwd)?;
    let dir = s.data_dir.join("eval");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "sweep {name}: {} (`nlebench run` takes it as it is)",
        path.display()
    );
    let run = RunArgs {
        sweep: path,
        force: a.force,
        workers: a.workers,
        detail: a.detail,
        serve: None,
    };
    crate::commands::run::run(g, run).await
}

/// The sweep name and file text for `a`; relative `path:` sources are made absolute against
/// `cwd`, since the file lives elsewhere.
fn sweep_file(a: &EvalArgs, cwd: &Path) -> anyhow::Result<(String, String)> {
    let tasks: Vec<&str> = a
        .tasks
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect();
    if tasks.is_empty() {
        bail!(
            "--tasks names no task\n  fix: e.g. --tasks no-crows-pairs,no-boolq (see `nlebench tasks list`)"
        );
    }
    let mut body = String::new();
    let _ = writeln!(body, "tasks = {}", list(&tasks));
    let _ = writeln!(body, "seeds = [{}]", a.seed);
    if !a.datasets.is_empty() {
        body.push_str("\n[datasets]\n");
        for d in &a.datasets {
            let Some((task, source)) = d.split_once('=') else {
                bail!(
                    "--dataset `{d}`: expected TASK=SOURCE\n  fix: e.g. --dataset no-boolq=path:data/boolq.jsonl"
                );
            };
            let _ = writeln!(
                body,
                "{} = {}",
                quote(task.trim()),
                quote(&absolute(source.trim(), cwd))
            );
        }
    }
    body.push_str("\n[[models]]\n");
    if a.model.contains(':') {
        let _ = writeln!(body, "name = {}", quote(&short_name(&a.model)));
        let _ = writeln!(body, "source = {}", quote(&absolute(&a.model, cwd)));
    } else {
        let _ = writeln!(body, "name = {}", quote(&a.model));
    }
    if let Some(adapter) = &a.adapter {
        body.push_str("\n[[models.adapters]]\n");
        let _ = writeln!(body, "name = {}", quote(&short_name(adapter)));
        let _ = writeln!(body, "source = {}", quote(&absolute(adapter, cwd)));
    }
    body.push_str("\n[[settings]]\n");
    let mut setting = match a.limit {
        Some(n) => format!("first-{n}"),
        None => "all-examples".into(),
    };
    if a.num_fewshot > 0 {
        setting.push_str(&format!("-{}-shot", a.num_fewshot));
    }
    let _ = writeln!(body, "name = {}", quote(&setting));
    if let Some(n) = a.limit {
        let _ = writeln!(body, "limit = {n}");
    }
    if let Some(b) = a.batch_size {
        let _ = writeln!(body, "batch_size = {b}");
    }
    if a.num_fewshot > 0 {
        let _ = writeln!(body, "num_fewshot = {}", a.num_fewshot);
    }
    let name = format!(
        "eval-{}",
        &hex::encode(Sha256::digest(body.as_bytes()))[..10]
    );
    let text = format!(
        "# Written by `nlebench eval`; the same flags give the same sweep.\nname = {}\ndescription = {}\n{body}",
        quote(&name),
        quote(&format!(
            "nlebench eval of {} on {}",
            a.model,
            tasks.join(", ")
        )),
    );
    Ok((name, text))
}

/// A TOML basic string (JSON's escapes are TOML's).
fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|t| quote(t)).collect();
    format!("[{}]", quoted.join(", "))
}

/// `path:REL` against `cwd`; other sources as they are.
fn absolute(source: &str, cwd: &Path) -> String {
    match source.strip_prefix("path:") {
        Some(p) if Path::new(p).is_relative() => format!("path:{}", cwd.join(p).display()),
        _ => source.to_string(),
    }
}

/// A model or adapter name from its source: the last part of the path or repository, with
/// `@REV`/`@SEED` kept as `-REV` (`random:norgpt-tiny@1` → `norgpt-tiny-1`).
fn short_name(source: &str) -> String {
    let body = source.split_once(':').map_or(source, |(_, b)| b);
    let last = body
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(body);
    last.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(model: &str, tasks: &[&str]) -> EvalArgs {
        EvalArgs {
            model: model.into(),
            adapter: None,
            tasks: tasks.iter().map(|t| t.to_string()).collect(),
            limit: Some(8),
            batch_size: None,
            num_fewshot: 0,
            datasets: vec![],
            seed: 0,
            force: false,
            workers: 1,
            detail: false,
        }
    }

    #[test]
    fn the_same_flags_name_the_same_sweep_and_others_another() {
        let cwd = Path::new("/work");
        let a = args("random:norgpt-tiny@1", &["no-crows-pairs"]);
        let (name, text) = sweep_file(&a, cwd).unwrap();
        assert_eq!(sweep_file(&a, cwd).unwrap().0, name);
        assert!(name.starts_with("eval-") && name.len() == 15, "{name}");
        assert!(text.contains("name = \"norgpt-tiny-1\"\nsource = \"random:norgpt-tiny@1\""));
        assert!(text.contains("name = \"first-8\"\nlimit = 8"), "{text}");
        let mut b = args("random:norgpt-tiny@1", &["no-crows-pairs"]);
        b.limit = Some(9);
        assert_ne!(sweep_file(&b, cwd).unwrap().0, name);
    }

    #[test]
    fn relative_paths_are_made_absolute_and_names_quoted() {
        let mut a = args("path:models/my \"odd\" model", &["no-boolq"]);
        a.adapter = Some("hf:NorGLM/NorGPT-369M-lora@main".into());
        a.datasets = vec!["no-boolq=path:data/b.jsonl".into()];
        let (_, text) = sweep_file(&a, Path::new("/work")).unwrap();
        assert!(
            text.contains("\"no-boolq\" = \"path:/work/data/b.jsonl\""),
            "{text}"
        );
        assert!(
            text.contains("source = \"path:/work/models/my \\\"odd\\\" model\""),
            "{text}"
        );
        assert!(text.contains("name = \"NorGPT-369M-lora-main\""), "{text}");
        let parsed: toml::Table = text.parse().unwrap();
        assert_eq!(parsed["tasks"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_catalog_name_has_no_source_and_bad_datasets_are_refused() {
        let (_, text) = sweep_file(&args("norgpt-369m", &["no-boolq"]), Path::new("/")).unwrap();
        assert!(
            text.contains("[[models]]\nname = \"norgpt-369m\"\n\n"),
            "{text}"
        );
        let mut a = args("norgpt-369m", &["no-boolq"]);
        a.datasets = vec!["no-boolq".into()];
        let e = sweep_file(&a, Path::new("/")).unwrap_err().to_string();
        assert!(e.contains("expected TASK=SOURCE"), "{e}");
        let e = sweep_file(&args("x", &[" "]), Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--tasks names no task"), "{e}");
    }
}
