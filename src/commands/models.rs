//! `nlebench models random|pull|list|render-chat`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chat::{ChatTemplate, Message};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use engine::{files, random};
use spec::Source;

use crate::args::{Global, PullArgs, RandomArgs, RenderChatArgs};
use crate::context;

pub fn random(g: &Global, a: RandomArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let preset = random::preset(&a.preset)?;
    let out = a
        .out
        .unwrap_or_else(|| random::dir_for(&a.preset, a.seed, &s.models_dir()));
    random::write(&preset, a.seed, &out)?;
    outln!(
        "wrote a RANDOM-WEIGHT model ({}, seed {}) to {}\nuse it as source `path:{}` or `random:{}@{}`",
        preset.name,
        a.seed,
        out.display(),
        out.display(),
        preset.name,
        a.seed
    );
    Ok(ExitCode::SUCCESS)
}

pub fn pull(a: PullArgs) -> anyhow::Result<ExitCode> {
    let source = Source::parse(&a.source, std::path::Path::new("."))
        .map_err(|e| anyhow::anyhow!("{}\n  fix: {}", e.problem, e.fix))?;
    let Source::Hf { repo, revision } = source else {
        bail!("`models pull` takes a Hub source `hf:ORG/NAME[@REVISION]`");
    };
    let rev = revision.unwrap_or_else(|| "main".into());
    let f = files::pull(&crate::environment::hub(), &repo, &rev, true)?;
    outln!(
        "hf:{repo}@{rev} is in the local cache at {} (commit {})",
        f.dir.display(),
        f.revision.unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn list(g: &Global) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["random preset", "layers", "hidden", "heads", "vocab", "for"]);
    for p in random::PRESETS {
        t.add_row([
            p.name.to_string(),
            p.n_layer.to_string(),
            p.n_embd.to_string(),
            p.n_head.to_string(),
            p.vocab_size.to_string(),
            p.about.to_string(),
        ]);
    }
    outln!("{t}");
    let catalog = context::catalog(&s, None)?;
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["catalog model", "source", "arch", "params"]);
    for m in &catalog.models {
        t.add_row([
            m.name.get_ref().clone(),
            m.source
                .as_ref()
                .map(|s| s.get_ref().clone())
                .unwrap_or_default(),
            m.arch.clone().unwrap_or_default(),
            m.params.clone().unwrap_or_default(),
        ]);
    }
    outln!("{t}");
    Ok(ExitCode::SUCCESS)
}

/// The conversation of `a.messages` as the model's chat template renders it, byte for byte.
pub fn render_chat(g: &Global, a: RenderChatArgs) -> anyhow::Result<ExitCode> {
    let path = &a.messages;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the messages file {}", path.display()))?;
    let messages: Vec<Message> = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}:{}:{}: {e}\n  fix: write a JSON list of {{\"role\": ..., \"content\": ...}} objects",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    let s = context::settings(g)?;
    let files = files::locate(&context::source(&a.model)?, &context::locations(&s), true)?;
    let Some(template) = ChatTemplate::from_dir(&files.dir)? else {
        bail!(
            "{} has no chat template (no chat_template.jinja, no `chat_template` in tokenizer_config.json)\n  fix: use an instruction-tuned model that ships one, or evaluate without --apply-chat-template",
            files.dir.display()
        );
    };
    let rendered = template.render(&messages, a.add_generation_prompt)?;
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::json!({ "text": rendered }))?;
    } else {
        out.write_all(rendered.as_bytes())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
