//! The run page's samples, laid out for the task's kind: pairs with both sentences and
//! perplexities and the one the model preferred; generations with their reference and
//! per-sample BLEU and ROUGE-L; classifications with the label, the prediction and whether it
//! is right; chains with every step. Each row keeps its raw JSON behind a toggle.

use serde_json::Value;
use spec::{TaskKind, TaskSpec};
use store::NewStep;
use store::entities::sample;

use crate::format::num;

/// A pair of sentences scored by perplexity.
pub struct PairRow {
    pub idx: i64,
    pub group: String,
    pub more: String,
    pub less: String,
    pub perp_more: String,
    pub perp_less: String,
    /// `more` or `less`: the sentence with the lower perplexity.
    pub prefers: &'static str,
    pub data: String,
}

/// A classified text.
pub struct ClassRow {
    pub idx: i64,
    pub text: String,
    pub label: String,
    pub prediction: String,
    pub correct: bool,
    pub data: String,
}

/// A generated text against its reference.
pub struct TextRow {
    pub idx: i64,
    pub prompt: String,
    pub output: String,
    pub reference: String,
    pub bleu: String,
    pub rouge_l: String,
    pub data: String,
}

/// An example of a chain with its steps (name, prompt, output).
pub struct ChainRow {
    pub idx: i64,
    pub output: String,
    pub reference: String,
    pub steps: Vec<(String, String, String)>,
    pub data: String,
}

/// One page of samples in the layout of the task's kind (one list is filled).
#[derive(Default)]
pub struct SampleView {
    pub pairs: Vec<PairRow>,
    pub classes: Vec<ClassRow>,
    pub texts: Vec<TextRow>,
    pub chains: Vec<ChainRow>,
}

impl SampleView {
    /// Whether the page has no samples.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
            && self.classes.is_empty()
            && self.texts.is_empty()
            && self.chains.is_empty()
    }

    /// The samples of a run of `task` (`None`: its manifest is unreadable; shown as texts),
    /// with the chain steps of those samples.
    pub fn new(
        task: Option<&TaskSpec>,
        samples: Vec<sample::Model>,
        steps: &[NewStep],
    ) -> SampleView {
        let mut view = SampleView::default();
        let kind = task.map(|t| t.kind);
        for s in samples {
            let data: Value = serde_json::from_str(&s.data).unwrap_or(Value::Null);
            let field = |k: &str| data[k].as_f64();
            let output = s.output.clone().unwrap_or_default();
            let reference = s.reference.clone().unwrap_or_default();
            match (kind, task) {
                (Some(TaskKind::LoglikPair), _) => {
                    let (more, less) = (field("perp_more"), field("perp_less"));
                    view.pairs.push(PairRow {
                        idx: s.idx,
                        group: data["group"].as_str().unwrap_or_default().to_string(),
                        more: s.prompt,
                        less: reference,
                        perp_more: more.map(num).unwrap_or_default(),
                        perp_less: less.map(num).unwrap_or_default(),
                        prefers: match (more, less) {
                            (Some(m), Some(l)) if m < l => "more",
                            (Some(_), Some(_)) => "less",
                            _ => "",
                        },
                        data: s.data,
                    });
                }
                (Some(TaskKind::Classification), Some(t)) => {
                    let name = |i: &str| {
                        i.parse::<usize>()
                            .ok()
                            .and_then(|i| t.labels.get(i))
                            .cloned()
                            .unwrap_or_else(|| i.to_string())
                    };
                    view.classes.push(ClassRow {
                        idx: s.idx,
                        text: s.prompt,
                        label: name(&reference),
                        prediction: name(&output),
                        correct: !output.is_empty() && output == reference,
                        data: s.data,
                    });
                }
                (Some(TaskKind::Chain), Some(t)) => {
                    let steps = steps
                        .iter()
                        .filter(|st| st.idx == s.idx)
                        .map(|st| {
                            let name = t
                                .steps
                                .get(st.step as usize)
                                .map_or_else(|| format!("step {}", st.step), |x| x.name.clone());
                            let label = if t
                                .steps
                                .get(st.step as usize)
                                .is_some_and(|x| x.each.is_some())
                            {
                                format!("{name} #{}", st.item + 1)
                            } else {
                                name
                            };
                            (label, st.prompt.clone(), st.output.clone())
                        })
                        .collect();
                    view.chains.push(ChainRow {
                        idx: s.idx,
                        output,
                        reference,
                        steps,
                        data: s.data,
                    });
                }
                _ => {
                    let scored = !reference.is_empty() && !output.trim().is_empty();
                    view.texts.push(TextRow {
                        idx: s.idx,
                        bleu: if scored {
                            metrics::format_value(
                                "bleu",
                                metrics::bleu::sentence_bleu(&output, &reference),
                            )
                        } else {
                            String::new()
                        },
                        rouge_l: metrics::rouge::rouge(&output, &reference)
                            .map(|r| metrics::format_value("rouge_l", r.rouge_l.f))
                            .unwrap_or_default(),
                        prompt: s.prompt,
                        output,
                        reference,
                        data: s.data,
                    });
                }
            }
        }
        view
    }
}
