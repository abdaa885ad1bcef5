//! A task's metrics from a model's responses, as lm-eval's evaluator computes them: the
//! responses of each document filtered (`filter_list`, else `take_first` under the name
//! `none`), `process_results` per document (lm-eval's own for each output type, or a ported
//! NorEval function), and each metric's items aggregated (`mean`, `perplexity`,
//! `weighted_perplexity`, `bits_per_byte`, `f1`, `matthews_corrcoef`, `bleu`, `chrf`, …).
//! The result is keyed `METRIC,FILTER` as in lm-eval's results file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::config::{OutputType, TaskConfig};
use crate::hooks::{ResultsHook, py_space};
use crate::task::{Request, Task};
use crate::yaml::FunctionRef;
use crate::{Error, python};

/// A model's answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Response {
    /// `loglikelihood`: the continuation's log-likelihood and whether it is the greedy one.
    Loglikelihood(f64, bool),
    /// `loglikelihood_rolling`: the text's log-likelihood.
    Rolling(f64),
    /// `generate_until`: the generated text.
    Text(String),
}

/// One document's contribution to a metric.
#[derive(Debug, Clone)]
enum Item {
    Num(f64),
    GoldPred(i64, i64),
    Weighted(f64, f64),
    RefPred(String, String),
}

/// How a metric's items become its value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Aggregation {
    Mean,
    Median,
    Perplexity,
    WeightedPerplexity,
    BitsPerByte,
    F1,
    MacroF1,
    Mcc,
    Bleu,
    Chrf,
    Ter,
}

impl Aggregation {
    fn by_name(name: &str) -> Option<Aggregation> {
        Some(match name {
            "mean" => Aggregation::Mean,
            "median" => Aggregation::Median,
            "perplexity" => Aggregation::Perplexity,
            "weighted_perplexity" => Aggregation::WeightedPerplexity,
            "bits_per_byte" => Aggregation::BitsPerByte,
            "f1" => Aggregation::F1,
            "matthews_corrcoef" => Aggregation::Mcc,
            "bleu" => Aggregation::Bleu,
            "chrf" => Aggregation::Chrf,
            "ter" => Aggregation::Ter,
            _ => return None,
        })
    }

    /// lm-eval's registered aggregation of a metric.
    fn default_for(metric: &str) -> Option<Aggregation> {
        Some(match metric {
            "acc" | "acc_norm" | "acc_bytes" | "acc_mutual_info" | "exact_match" => {
                Aggregation::Mean
            }
            "perplexity" => Aggregation::Perplexity,
            "word_perplexity" | "byte_perplexity" => Aggregation::WeightedPerplexity,
            "bits_per_byte" => Aggregation::BitsPerByte,
            "f1" => Aggregation::F1,
            "mcc" => Aggregation::Mcc,
            "bleu" => Aggregation::Bleu,
            "chrf" => Aggregation::Chrf,
            "ter" => Aggregation::Ter,
            _ => return None,
        })
    }

    /// A ported aggregation function (`aggregation: !function utils.multi_f1`).
    fn ported(f: &FunctionRef) -> Option<Aggregation> {
        let file = f.module_file()?;
        let path = file.to_string_lossy().replace('\\', "/");
        (path.ends_with("/noreval/norec/utils.py") && f.name() == "multi_f1")
            .then_some(Aggregation::MacroF1)
    }

    fn apply(self, items: &[Item]) -> Result<f64, String> {
        let nums = || -> Result<Vec<f64>, String> {
            items
                .iter()
                .map(|i| match i {
                    Item::Num(x) => Ok(*x),
                    other => Err(format!("{other:?} is not a number")),
                })
                .collect()
        };
        let weighted = || -> Result<f64, String> {
            let (mut a, mut b) = (0.0, 0.0);
            for i in items {
                let Item::Weighted(x, n) = i else {
                    return Err(format!("{i:?} is not a weighted item"));
                };
                a += x;
                b += n;
            }
            Ok(a / b)
        };
        let pairs = || -> Result<Vec<(i64, i64)>, String> {
            items
                .iter()
                .map(|i| match i {
                    Item::GoldPred(g, p) => Ok((*g, *p)),
                    other => Err(format!("{other:?} is not a (gold, prediction) pair")),
                })
                .collect()
        };
        let texts = || -> Result<Vec<(String, String)>, String> {
            items
                .iter()
                .map(|i| match i {
                    Item::RefPred(r, p) => Ok((p.clone(), r.clone())),
                    other => Err(format!("{other:?} is not a (reference, prediction) pair")),
                })
                .collect()
        };
        if items.is_empty() {
            return Err("no items to aggregate".into());
        }
        Ok(match self {
            Aggregation::Mean => {
                let v = nums()?;
                v.iter().fold(0.0, |s, x| s + x) / v.len() as f64
            }
            Aggregation::Median => {
                let mut v = nums()?;
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            }
            Aggregation::Perplexity => {
                let v = nums()?;
                (-(v.iter().fold(0.0, |s, x| s + x) / v.len() as f64)).exp()
            }
            Aggregation::WeightedPerplexity => (-weighted()?).exp(),
            Aggregation::BitsPerByte => -weighted()? / std::f64::consts::LN_2,
            Aggregation::F1 => binary_f1(&pairs()?)?,
            Aggregation::MacroF1 => macro_f1(&pairs()?),
            Aggregation::Mcc => mcc(&pairs()?),
            Aggregation::Bleu => {
                let t = texts()?;
                metrics::bleu::corpus_bleu(t.iter().map(|(h, r)| (h.as_str(), r.as_str())))
            }
            Aggregation::Chrf => {
                let t = texts()?;
                metrics::chrf::corpus_chrf(t.iter().map(|(h, r)| (h.as_str(), r.as_str())))
            }
            Aggregation::Ter => {
                let t = texts()?;
                metrics::ter::corpus_ter(t.iter().map(|(h, r)| (h.as_str(), r.as_str())))
            }
        })
    }
}

/// sklearn's `f1_score(golds, preds)` (binary, positive label 1; 0 where undefined).
fn binary_f1(pairs: &[(i64, i64)]) -> Result<f64, String> {
    if let Some((g, p)) = pairs
        .iter()
        .find(|(g, p)| !(0..=1).contains(g) || !(0..=1).contains(p))
    {
        return Err(format!(
            "f1 needs binary labels (sklearn's average='binary'), found gold {g}, prediction {p}"
        ));
    }
    Ok(class_f1(pairs, 1))
}

fn class_f1(pairs: &[(i64, i64)], label: i64) -> f64 {
    let tp = pairs
        .iter()
        .filter(|(g, p)| *g == label && *p == label)
        .count() as f64;
    let fp = pairs
        .iter()
        .filter(|(g, p)| *g != label && *p == label)
        .count() as f64;
    let fn_ = pairs
        .iter()
        .filter(|(g, p)| *g == label && *p != label)
        .count() as f64;
    let denom = 2.0 * tp + fp + fn_;
    if denom == 0.0 { 0.0 } else { 2.0 * tp / denom }
}

/// sklearn's `f1_score(..., average="macro")` over the labels either side holds.
fn macro_f1(pairs: &[(i64, i64)]) -> f64 {
    let mut labels: Vec<i64> = pairs.iter().flat_map(|(g, p)| [*g, *p]).collect();
    labels.sort_unstable();
    labels.dedup();
    labels.iter().map(|l| class_f1(pairs, *l)).sum::<f64>() / labels.len() as f64
}

/// sklearn's `matthews_corrcoef(golds, preds)` (multiclass form).
fn mcc(pairs: &[(i64, i64)]) -> f64 {
    let mut labels: Vec<i64> = pairs.iter().flat_map(|(g, p)| [*g, *p]).collect();
    labels.sort_unstable();
    labels.dedup();
    let at = |l: i64| labels.binary_search(&l).unwrap_or(0);
    let k = labels.len();
    let mut c = vec![vec![0f64; k]; k];
    for (g, p) in pairs {
        c[at(*g)][at(*p)] += 1.0;
    }
    let t: Vec<f64> = (0..k).map(|i| c[i].iter().sum()).collect();
    let p: Vec<f64> = (0..k).map(|j| (0..k).map(|i| c[i][j]).sum()).collect();
    let correct: f64 = (0..k).map(|i| c[i][i]).sum();
    let n: f64 = p.iter().sum();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let cov_ytyp = correct * n - dot(&t, &p);
    let cov_ypyp = n * n - dot(&p, &p);
    let cov_ytyt = n * n - dot(&t, &t);
    if cov_ypyp * cov_ytyt == 0.0 {
        0.0
    } else {
        cov_ytyp / (cov_ytyt * cov_ypyp).sqrt()
    }
}

/// A metric of the task and how its items aggregate.
struct Metric {
    name: String,
    aggregation: Aggregation,
    kwargs: serde_json::Map<String, Json>,
}

/// A filter step of `filter_list`.
#[derive(Debug, Clone)]
enum Step {
    TakeFirst,
    Regex {
        re: fancy_regex::Regex,
        group: i64,
        fallback: String,
    },
    Lowercase,
    Uppercase,
    Strip,
}

/// Version of the metrics [`score`] computes: stored with each value, raised when one changes.
pub const VERSION: i32 = 1;

/// The keys (`METRIC,FILTER`) [`score`] gives for a task of `cfg`, in the order of its
/// `filter_list` and `metric_list`; an error where [`score`] could not score the task.
pub fn metric_keys(cfg: &TaskConfig) -> Result<Vec<String>, Error> {
    // A `process_results` without a port could score nothing: refused here, before any run.
    if let Some(f) = &cfg.process_results {
        ResultsHook::resolve(f)?;
    }
    let key_err = |key: &str, message: String| Error::Key {
        file: cfg.file.clone(),
        key: key.into(),
        message,
    };
    let metrics = metrics_of(cfg).map_err(|m| key_err("metric_list", m))?;
    let filters = filters_of(cfg).map_err(|m| key_err("filter_list", m))?;
    Ok(filters
        .iter()
        .flat_map(|(f, _)| metrics.iter().map(move |m| format!("{},{f}", m.name)))
        .collect())
}

/// A task's metrics from a model's responses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scores {
    /// Each metric's value, keyed `METRIC,FILTER` as in lm-eval's results.
    pub values: BTreeMap<String, f64>,
    /// For the metrics that are means over documents: each document's value (`doc_id`,
    /// value) in request order, whose mean is the metric's value.
    pub per_doc: BTreeMap<String, Vec<(usize, f64)>>,
    /// Each filter's responses (`filter_list`, else `none`), one per request.
    pub filtered: Vec<(String, Vec<Response>)>,
}

/// The metrics of `task` from `responses`, one per request of `requests` (as built by
/// [`Task::requests`]).
pub fn score(task: &Task, requests: &[Request], responses: &[Response]) -> Result<Scores, Error> {
    let cfg = &task.config;
    let err = |message: String| Error::Key {
        file: cfg.file.clone(),
        key: "metric_list".into(),
        message,
    };
    if requests.len() != responses.len() {
        return Err(Error::Doc {
            task: cfg.task.clone(),
            doc_id: 0,
            message: format!(
                "{} responses for {} requests",
                responses.len(),
                requests.len()
            ),
        });
    }
    let metrics = metrics_of(cfg).map_err(err)?;
    let hook = match &cfg.process_results {
        Some(f) => Some(ResultsHook::resolve(f).map_err(|e| err(e.to_string()))?),
        None => None,
    };
    let filters = filters_of(cfg).map_err(|m| Error::Key {
        file: cfg.file.clone(),
        key: "filter_list".into(),
        message: m,
    })?;
    let mut items: BTreeMap<(String, String), Vec<(usize, Item)>> = BTreeMap::new();
    let mut order: Vec<(String, String)> = Vec::new();
    let mut out = Scores::default();
    for (filter, steps) in &filters {
        let mut filtered = Vec::with_capacity(responses.len());
        let mut start = 0;
        while start < requests.len() {
            let doc_id = requests[start].doc_id;
            let end = start
                + requests[start..]
                    .iter()
                    .take_while(|r| r.doc_id == doc_id)
                    .count();
            let doc = &task.docs[doc_id];
            let resps: Vec<Response> = responses[start..end]
                .iter()
                .map(|r| apply_filter(steps, r))
                .collect::<Result<_, _>>()
                .map_err(|m| Error::Doc {
                    task: cfg.task.clone(),
                    doc_id,
                    message: m,
                })?;
            let per_doc = process(task, hook, doc, &resps, &metrics);
            filtered.extend(resps);
            let per_doc = per_doc.map_err(|m| Error::Doc {
                task: cfg.task.clone(),
                doc_id,
                message: m,
            })?;
            for (metric, item) in per_doc {
                let key = (metric, filter.clone());
                if !items.contains_key(&key) {
                    order.push(key.clone());
                }
                items.entry(key).or_default().push((doc_id, item));
            }
            start = end;
        }
        out.filtered.push((filter.clone(), filtered));
    }
    for key in order {
        let agg = metrics
            .iter()
            .find(|m| m.name == key.0)
            .map(|m| m.aggregation)
            .or_else(|| Aggregation::default_for(&key.0))
            // lm-eval's evaluator: "No aggregation function defined … Using mean."
            .unwrap_or(Aggregation::Mean);
        let docs = &items[&key];
        let plain: Vec<Item> = docs.iter().map(|(_, i)| i.clone()).collect();
        let v = agg
            .apply(&plain)
            .map_err(|m| err(format!("{}: {m}", key.0)))?;
        let name = format!("{},{}", key.0, key.1);
        if agg == Aggregation::Mean {
            let each = docs.iter().map(|(d, i)| match i {
                Item::Num(x) => Some((*d, *x)),
                _ => None,
            });
            out.per_doc.insert(
                name.clone(),
                each.collect::<Option<_>>().unwrap_or_default(),
            );
        }
        out.values.insert(name, v);
    }
    Ok(out)
}

fn metrics_of(cfg: &TaskConfig) -> Result<Vec<Metric>, String> {
    let listed: Vec<Json> = match &cfg.metric_list {
        Some(Json::Array(l)) => l.clone(),
        Some(other) => return Err(format!("expected a list, found {other}")),
        None => {
            let defaults: &[&str] = match cfg.output_type {
                OutputType::Loglikelihood => &["perplexity", "acc"],
                OutputType::LoglikelihoodRolling => {
                    &["word_perplexity", "byte_perplexity", "bits_per_byte"]
                }
                OutputType::MultipleChoice => &["acc", "acc_norm"],
                OutputType::GenerateUntil => &["exact_match"],
            };
            defaults
                .iter()
                .map(|m| serde_json::json!({ "metric": m }))
                .collect()
        }
    };
    let mut out = Vec::new();
    for m in listed {
        let name = m
            .get("metric")
            .and_then(Json::as_str)
            .ok_or("an entry has no `metric`")?
            .to_string();
        let aggregation = match m.get("aggregation") {
            None => Aggregation::default_for(&name),
            Some(Json::String(s)) if s.starts_with("!function ") => {
                let f = cfg
                    .aggregation_functions
                    .get(&name)
                    .ok_or_else(|| format!("`{s}` was not read as a function"))?;
                Some(Aggregation::ported(f).ok_or_else(|| format!("aggregation `{s}` of `{name}`: nlebench runs no Python and has no port of it"))?)
            }
            Some(Json::String(s)) => Some(
                Aggregation::by_name(s)
                    .ok_or_else(|| format!("aggregation `{s}` of `{name}` is not supported"))?,
            ),
            Some(other) => return Err(format!("aggregation {other} of `{name}` is not a name")),
        };
        let supported = cfg.process_results.is_some()
            || matches!(
                (cfg.output_type, name.as_str()),
                (OutputType::Loglikelihood, "perplexity" | "acc")
                    | (
                        OutputType::LoglikelihoodRolling,
                        "word_perplexity" | "byte_perplexity" | "bits_per_byte"
                    )
                    | (
                        OutputType::MultipleChoice,
                        "acc"
                            | "acc_norm"
                            | "acc_bytes"
                            | "acc_mutual_info"
                            | "exact_match"
                            | "f1"
                            | "mcc"
                    )
                    | (
                        OutputType::GenerateUntil,
                        "exact_match" | "bleu" | "chrf" | "ter"
                    )
            );
        if !supported {
            return Err(format!(
                "metric `{name}` is not supported for {} tasks (supported: acc, acc_norm, acc_bytes, acc_mutual_info, exact_match, f1, mcc, perplexity, word_perplexity, byte_perplexity, bits_per_byte, bleu, chrf, ter)",
                cfg.output_type.as_str()
            ));
        }
        let aggregation = aggregation.unwrap_or(Aggregation::Mean);
        let kwargs = m
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "metric" | "aggregation" | "higher_is_better" | "hf_evaluate"
                        )
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        out.push(Metric {
            name,
            aggregation,
            kwargs,
        });
    }
    Ok(out)
}

fn filters_of(cfg: &TaskConfig) -> Result<Vec<(String, Vec<Step>)>, String> {
    let Some(list) = &cfg.filter_list else {
        return Ok(vec![("none".into(), vec![Step::TakeFirst])]);
    };
    let list = list.as_array().ok_or("expected a list of filters")?;
    let mut out = Vec::new();
    for f in list {
        let name = f
            .get("name")
            .and_then(Json::as_str)
            .ok_or("a filter has no `name`")?
            .to_string();
        let mut steps = Vec::new();
        for s in f
            .get("filter")
            .and_then(Json::as_array)
            .ok_or_else(|| format!("filter `{name}` has no `filter` list"))?
        {
            let function = s
                .get("function")
                .and_then(Json::as_str)
                .ok_or_else(|| format!("a step of filter `{name}` has no `function`"))?;
            steps.push(match function {
                "take_first" => Step::TakeFirst,
                "lowercase" => Step::Lowercase,
                "uppercase" => Step::Uppercase,
                "remove_whitespace" => Step::Strip,
                "regex" => {
                    let pattern = s.get("regex_pattern").and_then(Json::as_str).unwrap_or(r"#### (\-?[0-9\.\,]+)");
                    Step::Regex {
                        re: fancy_regex::Regex::new(pattern).map_err(|e| format!("filter `{name}`: regex_pattern: {e}"))?,
                        group: s.get("group_select").and_then(Json::as_i64).unwrap_or(0),
                        fallback: s.get("fallback").and_then(Json::as_str).unwrap_or("[invalid]").to_string(),
                    }
                }
                other => return Err(format!("filter function `{other}` of `{name}` is not supported (supported: take_first, regex, lowercase, uppercase, remove_whitespace)")),
            });
        }
        out.push((name, steps));
    }
    Ok(out)
}

/// One response through a filter pipeline (one response per request: `take_first` keeps it).
fn apply_filter(steps: &[Step], r: &Response) -> Result<Response, String> {
    let Response::Text(text) = r else {
        return Ok(r.clone());
    };
    let mut t = text.clone();
    for s in steps {
        t = match s {
            Step::TakeFirst => t,
            Step::Lowercase => t.to_lowercase(),
            Step::Uppercase => t.to_uppercase(),
            Step::Strip => crate::hooks::py_strip(&t).to_string(),
            Step::Regex {
                re,
                group,
                fallback,
            } => regex_filter(re, *group, fallback, &t)?,
        };
    }
    Ok(Response::Text(t))
}

/// lm-eval's `RegexFilter`: `re.findall`, the `group_select`-th match (a tuple's first
/// non-empty group), stripped; else the fallback.
fn regex_filter(
    re: &fancy_regex::Regex,
    group: i64,
    fallback: &str,
    text: &str,
) -> Result<String, String> {
    let mut found: Vec<String> = Vec::new();
    for caps in re.captures_iter(text) {
        let caps = caps.map_err(|e| e.to_string())?;
        let groups: Vec<String> = (1..caps.len())
            .map(|i| {
                caps.get(i)
                    .map_or(String::new(), |m| m.as_str().to_string())
            })
            .collect();
        found.push(match groups.len() {
            0 => caps
                .get(0)
                .map_or(String::new(), |m| m.as_str().to_string()),
            1 => groups[0].clone(),
            _ => groups
                .into_iter()
                .find(|g| !g.is_empty())
                .unwrap_or_else(|| fallback.to_string()),
        });
    }
    if found.is_empty() {
        return Ok(fallback.to_string());
    }
    let at = if group < 0 {
        found.len() as i64 + group
    } else {
        group
    };
    let m = usize::try_from(at)
        .ok()
        .and_then(|i| found.get(i))
        .ok_or_else(|| format!("group_select {group} is out of range"))?;
    Ok(crate::hooks::py_strip(m).to_string())
}

/// `process_results` of one document.
fn process(
    task: &Task,
    hook: Option<ResultsHook>,
    doc: &Json,
    resps: &[Response],
    metrics: &[Metric],
) -> Result<Vec<(String, Item)>, String> {
    let cfg = &task.config;
    let wants = |m: &str| metrics.iter().any(|x| x.name == m);
    if let Some(hook) = hook {
        let Some(Response::Text(t)) = resps.first() else {
            return Err("process_results needs a generation".into());
        };
        return Ok(hook
            .apply(doc, t)?
            .into_iter()
            .map(|(k, v)| (k, Item::Num(v)))
            .collect());
    }
    let mut out = Vec::new();
    match cfg.output_type {
        OutputType::Loglikelihood => {
            let Some(Response::Loglikelihood(ll, greedy)) = resps.first() else {
                return Err("a loglikelihood task needs [ll, is_greedy] responses".into());
            };
            if wants("perplexity") {
                out.push(("perplexity".into(), Item::Num(*ll)));
            }
            if wants("acc") {
                out.push(("acc".into(), Item::Num(f64::from(u8::from(*greedy)))));
            }
        }
        OutputType::LoglikelihoodRolling => {
            let ll = match resps.first() {
                Some(Response::Rolling(ll)) => *ll,
                _ => {
                    return Err(
                        "a loglikelihood_rolling task needs one log-likelihood per document".into(),
                    );
                }
            };
            let target = task.doc_to_target(doc, None)?;
            let text = target.as_str().ok_or("the target is not text")?;
            let words = count_words(text) as f64;
            let bytes = text.len() as f64;
            for (m, n) in [
                ("word_perplexity", words),
                ("byte_perplexity", bytes),
                ("bits_per_byte", bytes),
            ] {
                if wants(m) {
                    out.push((m.into(), Item::Weighted(ll, n)));
                }
            }
        }
        OutputType::MultipleChoice => out = multiple_choice(task, doc, resps, &wants)?,
        OutputType::GenerateUntil => {
            let Some(Response::Text(result)) = resps.first() else {
                return Err("a generate_until task needs text responses".into());
            };
            let mut gold = task.doc_to_target(doc, None)?;
            if cfg.doc_to_choice.is_some() {
                let choices = task.doc_to_choice(doc, None)?;
                let i = gold
                    .as_i64()
                    .ok_or("with doc_to_choice, doc_to_target must give an index")?;
                gold = choices
                    .get(usize::try_from(i).map_err(|_| "negative index")?)
                    .cloned()
                    .ok_or("target index out of range")?;
            }
            let golds: Vec<String> = match &gold {
                Json::Array(l) if task.multiple_target => {
                    l.iter().map(python::str_of_json).collect()
                }
                g => vec![python::str_of_json(g)],
            };
            for m in metrics {
                let item = match m.name.as_str() {
                    "exact_match" => {
                        let hits = golds
                            .iter()
                            .filter(|g| exact_match(g, result, &m.kwargs))
                            .count();
                        if task.multiple_target {
                            Item::Num(if hits > 0 { 1.0 } else { 0.0 })
                        } else {
                            Item::Num(hits as f64)
                        }
                    }
                    "bleu" | "chrf" | "ter" if task.multiple_target => {
                        return Err(format!(
                            "lm-eval cannot aggregate {} over documents with several targets",
                            m.name
                        ));
                    }
                    "bleu" | "chrf" | "ter" => Item::RefPred(golds[0].clone(), result.clone()),
                    other => {
                        return Err(format!(
                            "metric `{other}` is not supported for generate_until"
                        ));
                    }
                };
                out.push((m.name.clone(), item));
            }
        }
    }
    Ok(out)
}

fn multiple_choice(
    task: &Task,
    doc: &Json,
    resps: &[Response],
    wants: &dyn Fn(&str) -> bool,
) -> Result<Vec<(String, Item)>, String> {
    let mut lls = Vec::new();
    let mut greedy = Vec::new();
    for r in resps {
        let Response::Loglikelihood(ll, g) = r else {
            return Err("a multiple_choice task needs [ll, is_greedy] responses".into());
        };
        lls.push(*ll);
        greedy.push(*g);
    }
    let choices: Vec<String> = task
        .doc_to_choice(doc, None)?
        .iter()
        .map(python::str_of_json)
        .collect();
    let mut unconditional = Vec::new();
    if 2 * choices.len() == lls.len() && wants("acc_mutual_info") {
        unconditional = lls.split_off(choices.len());
    }
    let argmax = |v: &[f64]| -> i64 {
        let mut best = 0;
        for (i, x) in v.iter().enumerate() {
            if *x > v[best] || (v[best].is_nan() && !x.is_nan()) {
                best = i;
            }
        }
        best as i64
    };
    let by = |f: &dyn Fn(&str) -> f64| -> Vec<f64> {
        lls.iter().zip(&choices).map(|(ll, c)| ll / f(c)).collect()
    };
    let pred = argmax(&lls);
    let pred_norm = argmax(&by(&|c| c.chars().count() as f64));
    let pred_byte = argmax(&by(&|c| c.len() as f64));
    let gold_raw = if task.multiple_input {
        task.doc_to_text(doc, None)?
    } else {
        task.doc_to_target(doc, None)?
    };
    let index_of = |g: &Json| -> i64 {
        match g {
            Json::Number(n) => n
                .as_i64()
                .filter(|i| *i < choices.len() as i64)
                .unwrap_or(-100),
            Json::Bool(b) => i64::from(*b),
            Json::String(s) => choices
                .iter()
                .position(|c| c == s)
                .map_or(-100, |i| i as i64),
            _ => -100,
        }
    };
    let golds: Vec<i64> = match &gold_raw {
        Json::Array(l) => l.iter().map(index_of).collect(),
        g => vec![index_of(g)],
    };
    let hit = |p: i64| -> f64 { if golds.contains(&p) { 1.0 } else { 0.0 } };
    let gold = golds[0];
    let mut out = Vec::new();
    if wants("acc") {
        out.push(("acc".into(), Item::Num(hit(pred))));
    }
    if wants("f1") {
        out.push(("f1".into(), Item::GoldPred(gold, pred)));
    }
    if wants("mcc") {
        out.push(("mcc".into(), Item::GoldPred(gold, pred)));
    }
    if wants("acc_norm") {
        out.push(("acc_norm".into(), Item::Num(hit(pred_norm))));
    }
    if wants("acc_bytes") {
        out.push(("acc_bytes".into(), Item::Num(hit(pred_byte))));
    }
    if wants("exact_match") {
        let g = |i: i64| {
            usize::try_from(i)
                .ok()
                .and_then(|i| greedy.get(i))
                .copied()
                .unwrap_or(false)
        };
        let em = if task.multiple_target {
            golds.iter().any(|i| g(*i))
        } else {
            g(gold)
        };
        out.push(("exact_match".into(), Item::Num(f64::from(u8::from(em)))));
    }
    if wants("acc_mutual_info") {
        let mi: Vec<f64> = lls.iter().zip(&unconditional).map(|(c, u)| c - u).collect();
        out.push((
            "acc_mutual_info".into(),
            Item::Num(if argmax(&mi) == gold { 1.0 } else { 0.0 }),
        ));
    }
    Ok(out)
}

/// lm-eval's `exact_match` with `regexes_to_ignore`, `ignore_case`, `ignore_punctuation` and
/// `ignore_numbers`.
fn exact_match(reference: &str, prediction: &str, kwargs: &serde_json::Map<String, Json>) -> bool {
    let flag = |k: &str| kwargs.get(k).and_then(Json::as_bool).unwrap_or(false);
    let mut r = reference.to_string();
    let mut p = prediction.to_string();
    if let Some(Json::Array(res)) = kwargs.get("regexes_to_ignore") {
        for re in res.iter().filter_map(Json::as_str) {
            if let Ok(re) = fancy_regex::Regex::new(re) {
                r = re.replace_all(&r, "").into_owned();
                p = re.replace_all(&p, "").into_owned();
            }
        }
    }
    if flag("ignore_case") {
        r = r.to_lowercase();
        p = p.to_lowercase();
    }
    if flag("ignore_punctuation") {
        r.retain(|c| !c.is_ascii_punctuation());
        p.retain(|c| !c.is_ascii_punctuation());
    }
    if flag("ignore_numbers") {
        r.retain(|c| !c.is_ascii_digit());
        p.retain(|c| !c.is_ascii_digit());
    }
    r == p
}

/// lm-eval's `count_words`: `len(re.split(r"\s+", text))`.
fn count_words(text: &str) -> usize {
    let mut runs = 0;
    let mut in_space = false;
    for c in text.chars() {
        let s = py_space(c);
        if s && !in_space {
            runs += 1;
        }
        in_space = s;
    }
    runs + 1
}
