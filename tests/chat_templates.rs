//! Chat templates end to end: `models render-chat` prints what transformers'
//! `apply_chat_template` gives, byte for byte, and refuses as the template does; a setting's
//! `chat_template = true` (eval's `--apply-chat-template`) prompts an instruction-tuned model
//! with the conversation its template renders, records the template in the run and its
//! fingerprint, and a model without a template is named at submission.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use std::path::{Path, PathBuf};

use common::{Env, root, text};

/// tests/fixtures/tiny-qwen2 with `template` of tests/fixtures/chat/templates as its
/// tokenizer_config.json's `chat_template`: an "instruction-tuned" tiny model.
pub(crate) fn chat_model(env: &Env, template: &str) -> PathBuf {
    let dir = env.dir.path().join(format!("chat-{template}"));
    copy_model("tiny-qwen2", &dir);
    let source = std::fs::read_to_string(
        root().join(format!("tests/fixtures/chat/templates/{template}.jinja")),
    )
    .unwrap();
    let config = serde_json::json!({
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",
        "pad_token": "<pad>",
        "chat_template": source,
    });
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).unwrap();
    dir
}

/// The config, tokenizer and weights of fixture model `name` (not its references) into `dir`.
fn copy_model(name: &str, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for f in std::fs::read_dir(root().join("tests/fixtures").join(name)).unwrap() {
        let f = f.unwrap().path();
        if f.extension()
            .is_some_and(|e| e == "json" || e == "safetensors")
        {
            std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
        }
    }
}

fn reference(key: &str) -> serde_json::Value {
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/chat/reference.json")).unwrap(),
    )
    .unwrap();
    r["renders"][key].clone()
}

/// A conversation of tests/fixtures/chat/conversations.json as a messages file.
fn messages(env: &Env, name: &str) -> PathBuf {
    let all: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/chat/conversations.json")).unwrap(),
    )
    .unwrap();
    env.write(&format!("{name}.json"), &all[name].to_string())
}

fn render(env: &Env, model: &Path, messages: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "models",
        "render-chat",
        "--model",
        model.to_str().unwrap(),
        "--messages",
        messages.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    env.run(&args)
}

#[test]
fn render_chat_prints_what_transformers_renders_and_fails_where_the_template_raises() {
    let env = Env::embedded();
    for template in ["llama3", "gemma", "qwen", "mistral"] {
        let model = chat_model(&env, template);
        for (conversation, generation) in [("system_user", true), ("multi_turn", false)] {
            let file = messages(&env, conversation);
            let flag: &[&str] = if generation {
                &["--add-generation-prompt"]
            } else {
                &[]
            };
            let want = reference(&format!(
                "{template}/{conversation}/{}",
                if generation { "gen" } else { "nogen" }
            ));
            let out = render(&env, &model, &file, flag);
            match want["text"].as_str() {
                Some(want) => {
                    assert!(out.status.success(), "{template}: {}", text(&out).1);
                    assert_eq!(String::from_utf8(out.stdout).unwrap(), want, "{template}");
                }
                None => {
                    assert!(!out.status.success(), "{template} {conversation}");
                    assert!(
                        text(&out).1.contains(want["error"].as_str().unwrap()),
                        "{}",
                        text(&out).1
                    );
                }
            }
        }
    }
    // --json wraps the same text.
    let model = chat_model(&env, "llama3");
    let out = render(&env, &model, &messages(&env, "user"), &["--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["text"], reference("llama3/user/nogen")["text"]);
    // A template that raises: non-zero exit and its message.
    let gemma = chat_model(&env, "gemma");
    let out = render(&env, &gemma, &messages(&env, "not_alternating"), &[]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("Conversation roles must alternate user/assistant/user/assistant/..."),
        "{stderr}"
    );
    // A model without a template, and a messages file that is not a list of turns.
    let plain = root().join("tests/fixtures/tiny-llama");
    let out = render(&env, &plain, &messages(&env, "user"), &[]);
    let (_, stderr) = text(&out);
    assert!(
        !out.status.success() && stderr.contains("has no chat template"),
        "{stderr}"
    );
    let bad = env.write("bad.json", "[{\"role\": \"user\"}]");
    let out = render(&env, &model, &bad, &[]);
    let (_, stderr) = text(&out);
    assert!(
        !out.status.success() && stderr.contains("bad.json:1:") && stderr.contains("content"),
        "{stderr}"
    );
}

#[test]
fn a_chat_setting_prompts_through_the_template_and_is_part_of_the_fingerprint() {
    let env = Env::embedded();
    let model = chat_model(&env, "qwen");
    let mini = root().join("experiments/data/no-boolq-mini.jsonl");
    let local = format!("no-boolq=path:{}", mini.display());
    let eval = |name: &str, extra: &[&str]| {
        let mut flags = vec![
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--tasks",
            "no-boolq",
            "--limit",
            "2",
            "--dataset",
            &local,
            "--fewshot-dataset",
            &local,
            "--num-fewshot",
            "2",
            "--name",
            name,
        ];
        flags.extend_from_slice(extra);
        let out = env.run(&flags);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        stdout
    };
    eval(
        "chat",
        &[
            "--apply-chat-template",
            "--system-prompt",
            "Svar ja eller nei.",
            "--fewshot-as-multiturn",
        ],
    );
    let prompts = env.query(
        "SELECT s.prompt FROM samples s JOIN runs r ON r.id = s.run_id \
         JOIN sweep_cells c ON c.run_id = r.id JOIN sweeps w ON w.id = c.sweep_id WHERE w.name = 'chat' ORDER BY s.idx",
    );
    assert_eq!(prompts.len(), 2);
    let first = &prompts[0][0];
    assert!(
        first.starts_with("<|im_start|>system\nSvar ja eller nei.<|im_end|>\n<|im_start|>user\n"),
        "{first}"
    );
    assert_eq!(first.matches("<|im_start|>user\n").count(), 3, "{first}");
    assert_eq!(
        first.matches("<|im_start|>assistant\n").count(),
        3,
        "{first}"
    );
    assert!(
        first.ends_with(
            "Spørsmål: er oslo hovedstaden i norge?\nSvar:<|im_end|>\n<|im_start|>assistant\n"
        ),
        "{first}"
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &env.query(
            "SELECT r.manifest FROM runs r JOIN sweep_cells c ON c.run_id = r.id JOIN sweeps w ON w.id = c.sweep_id WHERE w.name = 'chat'",
        )[0][0],
    )
    .unwrap();
    assert_eq!(manifest["setting"]["chat_template"], true);
    assert_eq!(manifest["setting"]["system_prompt"], "Svar ja eller nei.");
    assert_eq!(
        manifest["model"]["resolved"]["chat_template"]
            .as_str()
            .unwrap()
            .len(),
        64
    );

    // The same cells as plain text are other runs, with the plain prompt.
    eval("plain", &[]);
    assert_eq!(
        env.count("SELECT COUNT(DISTINCT fingerprint) FROM runs"),
        2,
        "the chat template is part of the fingerprint"
    );
    let plain = env.query(
        "SELECT s.prompt FROM samples s JOIN runs r ON r.id = s.run_id \
         JOIN sweep_cells c ON c.run_id = r.id JOIN sweeps w ON w.id = c.sweep_id WHERE w.name = 'plain' ORDER BY s.idx",
    );
    assert!(!plain[0][0].contains("<|im_start|>"), "{}", plain[0][0]);

    // A model without a template: named at submission, nothing run.
    let tiny = root().join("tests/fixtures/tiny-llama");
    let out = env.run(&[
        "eval",
        "--model",
        tiny.to_str().unwrap(),
        "--tasks",
        "no-boolq",
        "--dataset",
        &local,
        "--apply-chat-template",
        "--name",
        "no-template",
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("ships none") && stderr.contains("fix:"),
        "{stderr}"
    );
    // --system-prompt without the template is a flag error.
    let out = env.run(&[
        "eval",
        "--model",
        tiny.to_str().unwrap(),
        "--tasks",
        "no-boolq",
        "--system-prompt",
        "hei",
    ]);
    let (_, stderr) = text(&out);
    assert!(
        !out.status.success()
            && stderr.contains("--system-prompt")
            && stderr.contains("--apply-chat-template"),
        "{stderr}"
    );
}

/// A catalog model named by its catalog name runs from the Hugging Face cache offline: here
/// NB-Llama-3.1-8B-Instruct's id holds a tiny random Llama 3 (rope scaling `llama3`) with a
/// Llama-3-style chat template.
#[test]
fn a_catalog_instruct_model_runs_by_name_from_the_cache_through_its_template() {
    let env = Env::embedded();
    let repo = env
        .dir
        .path()
        .join("hf/hub/models--NbAiLab--nb-llama-3.1-8B-Instruct");
    let snap = repo.join("snapshots/feed01");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "feed01").unwrap();
    let model = chat_model(&env, "llama3");
    copy_model("tiny-llama3", &snap);
    std::fs::copy(
        model.join("tokenizer_config.json"),
        snap.join("tokenizer_config.json"),
    )
    .unwrap();
    let mini = root().join("experiments/data/no-boolq-mini.jsonl");
    let local = format!("no-boolq=path:{}", mini.display());
    let out = env.run(&[
        "eval",
        "--model",
        "NB-Llama-3.1-8B-Instruct",
        "--tasks",
        "no-boolq",
        "--dataset",
        &local,
        "--limit",
        "2",
        "--apply-chat-template",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("NB-Llama-3.1-8B-Instruct"), "{stdout}");
    let prompt = &env.query("SELECT prompt FROM samples ORDER BY idx")[0][0];
    assert!(
        prompt.starts_with("<|begin_of_text|><|start_header_id|>system<|end_header_id|>"),
        "{prompt}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&env.query("SELECT manifest FROM runs")[0][0]).unwrap();
    assert_eq!(manifest["model"]["resolved"]["revision"], "feed01");
    assert_eq!(manifest["model"]["resolved"]["arch"], "llama");
}

/// The issue's check: an NLEBench instruction task (NO-Alpaca culture) on a random chat-shaped
/// model, in one sweep with and without the template: different prompts, the setting in each
/// manifest, different fingerprints.
#[test]
fn an_instruction_task_runs_with_and_without_the_chat_template() {
    let env = Env::embedded();
    let model = chat_model(&env, "llama3");
    let sweep = env.write(
        "chat.toml",
        &format!(
            r#"name = "alpaca-chat"
tasks = ["no-alpaca-culture"]
[datasets]
no-alpaca-culture = "path:{}"
[[models]]
name = "tiny-chat"
source = "path:{}"
[[settings]]
name = "plain"
limit = 3
decoding = {{ max_new_tokens = 4 }}
[[settings]]
name = "chat"
limit = 3
decoding = {{ max_new_tokens = 4 }}
chat_template = true
system_prompt = "Svar kort."
"#,
            root()
                .join("experiments/data/no-alpaca-plus-mini.csv")
                .display(),
            model.display()
        ),
    );
    env.ok(&["run", sweep.to_str().unwrap()]);
    let rows = env.query(
        "SELECT c.cell_key, r.fingerprint, r.manifest, s.prompt FROM runs r \
         JOIN sweep_cells c ON c.run_id = r.id JOIN samples s ON s.run_id = r.id \
         WHERE s.idx = 0 ORDER BY c.cell_key",
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (chat, plain) = (&rows[0], &rows[1]);
    assert!(chat[0].contains("/chat/") && plain[0].contains("/plain/"));
    assert_ne!(chat[1], plain[1], "different fingerprints");
    assert_eq!(plain[3], "Forklar hva 17. mai er. :");
    assert_eq!(
        chat[3],
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: \
         December 2023\nToday Date: 26 Jul 2024\n\nSvar kort.<|eot_id|><|start_header_id|>user\
         <|end_header_id|>\n\nForklar hva 17. mai er. :<|eot_id|><|start_header_id|>assistant\
         <|end_header_id|>\n\n"
    );
    let manifest = |text: &str| -> serde_json::Value { serde_json::from_str(text).unwrap() };
    let (c, p) = (manifest(&chat[2]), manifest(&plain[2]));
    assert_eq!(c["setting"]["chat_template"], true);
    assert_eq!(c["setting"]["system_prompt"], "Svar kort.");
    assert!(
        p["setting"].get("chat_template").is_none(),
        "{}",
        p["setting"]
    );
}
