//! The task files of `experiments/tasks/` render the authors' prompts string for string, and
//! the paper's sweep pairs every adapter only with the tasks it was trained for.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{Env, root};
use orchestrator::submit::GridCounts;
use serde_json::{Map, Value, json};
use spec::{Catalog, SweepSpec, TaskRegistry, TaskSpec};
use worker::data::Row;
use worker::tasks::prompt::{over_limit, prompt};

fn registry() -> TaskRegistry {
    TaskRegistry::load_dir(&root().join("experiments/tasks")).unwrap()
}

fn task(r: &TaskRegistry, name: &str) -> TaskSpec {
    r.get(name).unwrap().clone()
}

fn row(v: Value) -> Row {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[test]
fn prompts_are_the_authors_templates_string_for_string() {
    let r = registry();
    let story = row(
        json!({ "text": "Trondheim  kommune vil bygge\nen ny bru over Nidelva, og arbeidet starter allerede til våren." }),
    );
    assert_eq!(
        prompt(&task(&r, "no-story"), &story).unwrap(),
        "Trondheim kommune vil bygge en ny bru over Nidelva, og"
    );

    // Only the last `Human:` turn of the dialogue is kept.
    let dialogue = row(json!({
        "prompt": "Human: Hei! Hvordan går det? Robot: Bra, takk. Jeg liker å gå på ski. Human: Hvor går du på ski? Robot:",
        "answer": "I Bymarka, nesten hver helg."
    }));
    assert_eq!(
        prompt(&task(&r, "no-convai2"), &dialogue).unwrap(),
        "Human: Hvor går du på ski? Robot: |||\n"
    );

    let article = row(
        json!({ "article": "Regjeringen legger fram statsbudsjettet i dag.", "positive_sample": "Budsjettet kommer i dag." }),
    );
    assert_eq!(
        prompt(&task(&r, "no-cnn-dailymail"), &article).unwrap(),
        "Summarise the article:\nRegjeringen legger fram statsbudsjettet i dag. |||\n"
    );

    // The instruction form with input, and without it when the input is empty.
    for name in [
        "no-alpaca",
        "no-alpaca-culture",
        "no-alpaca-special-expressions",
    ] {
        let t = task(&r, name);
        let with = row(
            json!({ "instruction": "Oversett til bokmål.", "input": "Eg veit ikkje.", "output": "Jeg vet ikke." }),
        );
        assert_eq!(
            prompt(&t, &with).unwrap(),
            "Oversett til bokmål. Eg veit ikkje. :"
        );
        let without = row(
            json!({ "instruction": "Hva er en dugnad?", "input": "", "output": "Fellesarbeid." }),
        );
        assert_eq!(
            prompt(&t, &without).unwrap(),
            "Hva er en dugnad? :",
            "{name}"
        );
    }

    let toxic = row(
        json!({ "prompt": "The man", "prompt_no": "Mannen som kom inn", "source": "rocstories" }),
    );
    assert_eq!(
        prompt(&task(&r, "no-crows-pairs-toxicity"), &toxic).unwrap(),
        "Mannen som kom inn"
    );

    // NO-Multi-QA-Sum: `\n` after `|||` is a backslash and an `n`, as in the released prompts;
    // the question keeps its leading space (hence two spaces after `Human:`).
    let qa = row(
        json!({ "article": "Artikkelen.", "question": " Hvem vant?", "answer": " Rosenborg." }),
    );
    assert_eq!(
        prompt(&task(&r, "multi-qa-sum-qa"), &qa).unwrap(),
        "Artikkelen.\nHuman:  Hvem vant? Robot: |||\\n"
    );
    let sum = row(json!({ "article": "Artikkelen.", "summary": "Kort." }));
    assert_eq!(
        prompt(&task(&r, "multi-qa-sum-summary"), &sum).unwrap(),
        "Artikkelen.\nHuman: Please summarize the article. Robot: |||\\n"
    );
}

#[test]
fn an_article_over_1024_words_is_not_run() {
    let t = task(&registry(), "no-cnn-dailymail");
    let words = |n: usize| row(json!({ "article": vec!["ord"; n].join(" ") }));
    assert_eq!(over_limit(&t, &words(1024)), None);
    assert_eq!(over_limit(&t, &words(1025)), Some(1025));
    assert_eq!(
        over_limit(&task(&registry(), "no-convai2"), &words(5000)),
        None
    );
}

#[test]
fn zero_shot_nlu_prompts_and_label_words() {
    let r = registry();
    let t = task(&r, "no-boolq");
    assert_eq!(t.label_words, ["nei", "ja"]);
    let ex = row(
        json!({ "passage": "Oslo er hovedstaden.", "question": "er oslo hovedstaden", "label": true }),
    );
    let p = worker::tasks::prompt::fill(t.zero_shot_template.as_deref().unwrap(), &ex).unwrap();
    assert_eq!(
        p,
        "Oslo er hovedstaden.\nSpørsmål: er oslo hovedstaden?\nSvar:"
    );
}

#[test]
#[cfg_attr(
    not(nlebench_shared),
    ignore = "needs the authors' released outputs in ../shared/data/norglm-results (CI has them)"
)]
fn the_summary_prompt_is_the_one_in_the_authors_released_cot_files() {
    let dir = test_support::released("cot/scene1");
    let t = task(&registry(), "multi-qa-sum-summary");
    let ours = prompt(&t, &row(json!({ "article": "" }))).unwrap();
    let ours = ours.trim_start_matches('\n');
    let mut seen = 0;
    for file in [
        "CoT_23B_s1_contain.csv",
        "CoT_3B_s1_contain.csv",
        "CoT_6B_s1_contain.csv",
    ] {
        let table = worker::data::read(&dir.join(file), spec::DataFormat::Csv).unwrap();
        for r in &table.rows {
            let p = worker::data::text(r, "prompt");
            if p.contains("summarize") {
                assert_eq!(p, ours, "{file}");
                seen += 1;
            } else if p.ends_with("|||\\n") {
                // Question prompts: `Human: {question} Robot: |||\n` with a literal backslash-n.
                assert!(p.starts_with("Human: "), "{file}: {p}");
            }
        }
    }
    assert!(seen >= 71 * 3 - 20, "summary prompts seen: {seen}");
}

fn paper_sweep() -> SweepSpec {
    let catalog = Catalog::load(&root().join("experiments/models/catalog.toml")).unwrap();
    SweepSpec::load(
        &root().join("experiments/sweeps/nlebench-paper.toml"),
        &registry(),
        &catalog,
    )
    .unwrap()
}

#[test]
fn the_paper_grid_pairs_adapters_only_with_their_tasks() {
    let catalog = Catalog::load(&root().join("experiments/models/catalog.toml")).unwrap();
    let sweep = paper_sweep();
    let g = GridCounts::of(&sweep);
    for (model, adapter, task) in &g.cells {
        if adapter == "none" {
            continue;
        }
        let a = catalog
            .adapter(adapter, model)
            .unwrap_or_else(|| panic!("{model}+{adapter} is not in the catalog"));
        assert!(
            a.tasks.get_ref().contains(task),
            "{model}+{adapter} was planned on {task}, which it was not trained for"
        );
    }
    // 5 models × (10 base tasks + 8 adapter cells) + the RLHF summarizer on its one task.
    assert_eq!(g.total(), 91);
    assert_eq!(g.by_model["NorGPT-3B-rfhl-summarization"], 1);
    assert_eq!(g.by_adapter["Instruction"], 15);
    assert_eq!(g.by_adapter["NO-BoolQ"], 5);
    assert_eq!(g.by_task["no-boolq"], 10, "adapter and zero-shot cells");
    assert_eq!(g.by_task["no-convai2"], 5, "adapter cells only");
    assert_eq!(
        g.by_task["no-cnn-dailymail"], 6,
        "adapters and the RLHF model"
    );
    assert_eq!(sweep.tasks.len(), 15);
}

#[test]
fn the_paper_dry_run_lists_the_grid_offline_with_nothing_cached() {
    let env = Env::embedded();
    let out = env.ok(&[
        "submit",
        "--dry-run",
        root()
            .join("experiments/sweeps/nlebench-paper.toml")
            .to_str()
            .unwrap(),
    ]);
    assert!(
        out.contains("sweep nlebench-paper: grid of 91 cell(s)"),
        "{out}"
    );
    // The grid table's rows: per (model | task | adapter), name, cells; then the total.
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| {
            l.split(['│', '┆'])
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    let cells = |per: &str, name: &str| {
        rows.iter()
            .find(|r| r.len() == 3 && r[0] == per && r[1] == name)
            .unwrap_or_else(|| panic!("no row for {per} {name}:\n{out}"))[2]
    };
    assert!(rows.iter().any(|r| r.first() == Some(&"adapter")), "{out}");
    assert_eq!(cells("model", "NorGPT-369M"), "18");
    assert_eq!(cells("adapter", "conversation"), "5");
    assert_eq!(cells("task", "no-mrpc"), "10");
    assert!(rows.contains(&vec!["total", "91"]), "{out}");
    assert!(
        out.contains("unresolved: model NorGPT-369M (hf:NorGLM/NorGPT-369M)"),
        "{out}"
    );
    assert!(
        !env.dir.path().join("hf").exists(),
        "a dry run downloads nothing"
    );
}
