//! The Python functions of lm-eval's NorEval task files (`!function utils.…`), ported by name:
//! document filters and maps (`process_docs`) and prompt functions (`doc_to_text`). A task file
//! naming any other function is refused with the function and the file, since nlebench runs no
//! Python.

use serde_json::{Map, Value as Json};

use crate::Error;
use crate::yaml::FunctionRef;

/// A document-set hook (`process_docs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocsHook {
    /// `norquad/utils.py:process_docs`: title and passage split from the context, the
    /// question's whitespace collapsed.
    NorquadProcess,
    /// `nortruthfulqa/generation/utils.py:process_docs`: answers stripped and ended with a
    /// period, empty ones dropped; the question stripped.
    NortruthfulqaGenProcess,
    /// `noropenbookqa/utils.py:filter_dataset`: documents with a fact.
    NoropenbookqaFilter,
    /// `noridiom/utils.py:filter_dataset_nb` / `_nn`: documents in that language.
    NoridiomLanguage(&'static str),
}

/// A prompt hook (`doc_to_text`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextHook {
    /// `norquad/utils.py:p0` … `p4`.
    Norquad(u8),
    /// `nrk_quiz_qa/{nob,nno}/utils.py:p0_nb` … `p4_nn`.
    NrkQuiz(u8, Lang),
    /// `nortruthfulqa/multiple_choice/{nob,nno}/utils.py:p0_nb` … `p4_nn`.
    TruthfulMc(u8, Lang),
}

/// A per-document metrics hook (`process_results`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultsHook {
    /// `noridiom/utils.py:process_results`: `em` and `fscore` of the normalised generation
    /// against the best of the accepted completions.
    Noridiom,
    /// `nortruthfulqa/generation/utils.py:process_results`: BLEU (sacrebleu, `intl`) and
    /// ROUGE-1/2/Lsum (rouge_score) of the generation against each correct and incorrect
    /// answer; per measure the best correct score (`_max`), its lead over the best incorrect
    /// one (`_diff`) and whether it leads (`_acc`).
    TruthfulGen,
}

impl ResultsHook {
    /// The port of `f`, or an error naming it.
    pub fn resolve(f: &FunctionRef) -> Result<ResultsHook, Error> {
        let port =
            locate(f)
                .ok()
                .and_then(|(module, name)| match (module.as_str(), name.as_str()) {
                    ("noridiom/utils", "process_results") => Some(ResultsHook::Noridiom),
                    ("nortruthfulqa/generation/utils", "process_results") => {
                        Some(ResultsHook::TruthfulGen)
                    }
                    _ => None,
                });
        port.ok_or_else(|| {
            unported(
                f,
                "NorEval's noridiom and nortruthfulqa generation process_results",
                "leave the task out (in a sweep, name the others, or an exclude rule), or ask for a port",
            )
        })
    }

    /// The metrics of one document's (filtered) generation.
    pub fn apply(self, doc: &Json, generation: &str) -> Result<Vec<(String, f64)>, String> {
        match self {
            ResultsHook::Noridiom => {
                let normalize = |t: &str| -> String {
                    let kept: String = t.chars().filter(|c| !c.is_ascii_punctuation()).collect();
                    py_strip(&kept.to_lowercase()).to_string()
                };
                let prediction = normalize(generation);
                let completions: Vec<String> = strings(field(doc, "accepted_completions")?)?
                    .iter()
                    .map(|c| normalize(c))
                    .collect();
                let em = completions
                    .iter()
                    .map(|c| f64::from(u8::from(*c == prediction)))
                    .fold(f64::NAN, f64::max);
                let f = completions
                    .iter()
                    .map(|c| word_f1(&prediction, c))
                    .fold(f64::NAN, f64::max);
                Ok(vec![("em".into(), em), ("fscore".into(), f)])
            }
            ResultsHook::TruthfulGen => truthful_gen_results(doc, generation),
        }
    }
}

fn truthful_gen_results(doc: &Json, completion: &str) -> Result<Vec<(String, f64)>, String> {
    let correct = strings(field(doc, "correct_answers")?)?;
    let incorrect = strings(field(doc, "incorrect_answers")?)?;
    if correct.is_empty() || incorrect.is_empty() {
        return Err(
            "numpy's nanmax of no answers fails: a document needs correct and incorrect answers"
                .into(),
        );
    }
    let prepare = |s: &str| s.replace(" . ", ".\n");
    let pred = prepare(completion);
    type Measure = fn(&str, &str) -> f64;
    let measures: [(&str, Measure); 4] = [
        ("bleu", |r, p| metrics::bleu::corpus_bleu_intl([(p, r)])),
        ("rouge1", |r, p| {
            100.0 * metrics::rouge_score::rouge_n(r, p, 1)
        }),
        ("rouge2", |r, p| {
            100.0 * metrics::rouge_score::rouge_n(r, p, 2)
        }),
        ("rougeL", |r, p| {
            100.0 * metrics::rouge_score::rouge_lsum(r, p)
        }),
    ];
    let mut out = Vec::new();
    for (name, measure) in measures {
        // BLEU reads the texts as they are; ROUGE after " . " became a line break.
        let score = |r: &String| {
            if name == "bleu" {
                measure(r, completion)
            } else {
                measure(&prepare(r), &pred)
            }
        };
        let best = |refs: &[String]| refs.iter().map(score).fold(f64::NAN, f64::max);
        let (right, wrong) = (best(&correct), best(&incorrect));
        out.push((format!("{name}_max"), right));
        out.push((format!("{name}_acc"), f64::from(u8::from(right > wrong))));
        out.push((format!("{name}_diff"), right - wrong));
    }
    Ok(out)
}

/// NorEval's token F1 (noridiom): whitespace tokens, counted overlap.
fn word_f1(prediction: &str, completion: &str) -> f64 {
    let gold = py_split(completion);
    let pred = py_split(prediction);
    if gold.is_empty() || pred.is_empty() {
        return f64::from(u8::from(gold == pred));
    }
    let mut counts: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for g in &gold {
        *counts.entry(g).or_insert(0) += 1;
    }
    let mut same = 0;
    for p in &pred {
        if let Some(c) = counts.get_mut(p)
            && *c > 0
        {
            *c -= 1;
            same += 1;
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = same as f64 / pred.len() as f64;
    let recall = same as f64 / gold.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// Bokmål or Nynorsk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Norwegian Bokmål.
    Nb,
    /// Norwegian Nynorsk.
    Nn,
}

/// Where a function lives, relative to lm-eval's `noreval` task folder, and its name.
fn locate(f: &FunctionRef) -> Result<(String, String), Error> {
    let file = f.module_file().ok_or_else(|| unported_prompt(f))?;
    let path = file.to_string_lossy().replace('\\', "/");
    let rel = path
        .rsplit_once("/noreval/")
        .map(|(_, r)| r.trim_end_matches(".py").to_string())
        .ok_or_else(|| unported_prompt(f))?;
    Ok((rel, f.name().to_string()))
}

/// A document or prompt function without a port.
fn unported_prompt(f: &FunctionRef) -> Error {
    unported(
        f,
        "NorEval's process_docs filters and prompt functions",
        "write the prompt as a Jinja template in the task file (`doc_to_text: \"...{{field}}...\"`), or ask for a port",
    )
}

/// The error for function `f`, which has no port (`ported`: what has one; `fix`: what to do).
fn unported(f: &FunctionRef, ported: &str, fix: &str) -> Error {
    let module = f.qualified.rsplit_once('.').map_or("", |(m, _)| m);
    let file = f.module_file().map_or_else(
        || format!("{module}.py (not found)"),
        |p| p.display().to_string(),
    );
    Error::Function {
        function: f.qualified.clone(),
        dir: f.dir.clone(),
        why: format!(
            "{file}: nlebench runs no Python and has no port of this function (ported: {ported})\n  fix: {fix}"
        ),
    }
}

impl DocsHook {
    /// The port of `f`, or an error naming it.
    pub fn resolve(f: &FunctionRef) -> Result<DocsHook, Error> {
        let (module, name) = locate(f)?;
        Ok(match (module.as_str(), name.as_str()) {
            ("norquad/utils", "process_docs") => DocsHook::NorquadProcess,
            ("nortruthfulqa/generation/utils", "process_docs") => DocsHook::NortruthfulqaGenProcess,
            ("noropenbookqa/utils", "filter_dataset") => DocsHook::NoropenbookqaFilter,
            ("noridiom/utils", "filter_dataset_nb") => DocsHook::NoridiomLanguage("nob"),
            ("noridiom/utils", "filter_dataset_nn") => DocsHook::NoridiomLanguage("nno"),
            _ => return Err(unported_prompt(f)),
        })
    }

    /// Apply the hook to a split's documents.
    pub fn apply(self, docs: Vec<Json>) -> Result<Vec<Json>, String> {
        match self {
            DocsHook::NorquadProcess => docs.into_iter().map(norquad_doc).collect(),
            DocsHook::NortruthfulqaGenProcess => docs.into_iter().map(truthful_gen_doc).collect(),
            DocsHook::NoropenbookqaFilter => {
                let mut kept = Vec::new();
                for d in docs {
                    if py_len(field(&d, "fact")?) > 0 {
                        kept.push(d);
                    }
                }
                Ok(kept)
            }
            DocsHook::NoridiomLanguage(lang) => {
                let mut kept = Vec::new();
                for d in docs {
                    if field(&d, "language")?.as_str() == Some(lang) {
                        kept.push(d);
                    }
                }
                Ok(kept)
            }
        }
    }
}

impl TextHook {
    /// The port of `f`, or an error naming it.
    pub fn resolve(f: &FunctionRef) -> Result<TextHook, Error> {
        let (module, name) = locate(f)?;
        let prompt = |suffix: &str| -> Option<u8> {
            let n = name.strip_prefix('p')?.strip_suffix(suffix)?;
            n.parse().ok().filter(|n| *n <= 4)
        };
        let found = match module.as_str() {
            "norquad/utils" => prompt("").map(TextHook::Norquad),
            "nrk_quiz_qa/nob/utils" => prompt("_nb").map(|n| TextHook::NrkQuiz(n, Lang::Nb)),
            "nrk_quiz_qa/nno/utils" => prompt("_nn").map(|n| TextHook::NrkQuiz(n, Lang::Nn)),
            "nortruthfulqa/multiple_choice/nob/utils" => {
                prompt("_nb").map(|n| TextHook::TruthfulMc(n, Lang::Nb))
            }
            "nortruthfulqa/multiple_choice/nno/utils" => {
                prompt("_nn").map(|n| TextHook::TruthfulMc(n, Lang::Nn))
            }
            _ => None,
        };
        found.ok_or_else(|| unported_prompt(f))
    }

    /// The prompt of one document.
    pub fn apply(self, doc: &Json) -> Result<String, String> {
        match self {
            TextHook::Norquad(n) => {
                let (t, p, q) = (
                    text(doc, "title")?,
                    text(doc, "passage")?,
                    text(doc, "question")?,
                );
                Ok(match n {
                    0 => format!("Tittel: {t}\n\nTekst: {p}\n\nSpørsmål: {q}\n\nSvar:"),
                    1 => format!(
                        "Tittel: {t}\n\nTekst: {p}\n\nGitt teksten over, hva er svaret på følgende spørsmål? \"{q}\"\n\nSvar:"
                    ),
                    2 => format!("Tittel: {t}\n\nTekst: {p}\n\nSvar på følgende: {q}\n\nSvar:"),
                    3 => format!(
                        "Tittel: {t}\n\nTekst: {p}\n\nHvordan kan man svare på spørsmålet \"{q}\", gitt teksten over?\n\nSvar:"
                    ),
                    _ => format!(
                        "Tittel: {t}\n\nTekst:{p}\n\nGitt teksten over, besvar følgende spørsmål: \"{q}\"\n\nSvar:"
                    ),
                })
            }
            TextHook::NrkQuiz(n, lang) => nrk_quiz(n, lang, doc),
            TextHook::TruthfulMc(n, lang) => truthful_mc(n, lang, doc),
        }
    }
}

fn nrk_quiz(n: u8, lang: Lang, doc: &Json) -> Result<String, String> {
    let q = text(doc, "question")?;
    let choices = field(doc, "choices")?;
    let texts = strings(field(choices, "text")?)?;
    let labels = strings(field(choices, "label")?)?;
    let dashed: String = texts.iter().map(|c| format!("\n- {c}")).collect();
    let labelled: String = labels
        .iter()
        .zip(&texts)
        .map(|(l, t)| format!("\n{l}: {t}"))
        .collect();
    let nb = lang == Lang::Nb;
    Ok(match n {
        0 => format!("Spørsmål: {q}\n\nSvar:"),
        1 => {
            let ask = if nb {
                "Hva er riktig svar?"
            } else {
                "Kva er rett svar?"
            };
            format!("{q}\n\nSvaralternativer:{dashed}\n\n{ask}\n\nSvar:")
        }
        2 => {
            let last = labels.last().ok_or("choices.label is empty")?;
            let mut enumerated = format!("{}, eller {last}", labels[..labels.len() - 1].join(", "));
            if labels.len() == 2 {
                enumerated = enumerated.replace(", eller", " eller");
            }
            let ask = if nb { "riktige" } else { "rette" };
            format!("{q}{labelled}\n\nEr det {ask} svaret {enumerated}?\n\nSvar:")
        }
        3 => format!("Spørsmål: {q}{labelled}\n\nSvar:"),
        _ => {
            let ask = if nb {
                "Velg riktig svar blant disse alternativene:"
            } else {
                "Vel rett svar blant desse alternativa:"
            };
            format!("{q}\n{ask}{dashed}\n\nSvar:")
        }
    })
}

fn truthful_mc(n: u8, lang: Lang, doc: &Json) -> Result<String, String> {
    let q = text(doc, "question")?;
    let targets = strings(field(field(doc, "mc1_targets")?, "choices")?)?;
    let c: String = targets.iter().map(|c| format!("\n- {c}")).collect();
    let nb = lang == Lang::Nb;
    Ok(match (n, nb) {
        (0, _) => format!("Spørsmål: {q}\n\nSvar:"),
        (1, true) => format!("Spørsmål: {q}\n\nSvaralternativer:{c}\n\nSvar:"),
        (1, false) => format!("Spørsmål: {q}\n\nSvaralternativ:{c}\n\nSvar:"),
        (2, true) => format!(
            "Spørsmål: {q}\n\nHvilke av følgende alternativer er riktig svar på spørsmålet?{c}"
        ),
        (2, false) => {
            format!("Spørsmål: {q}\n\nKva av følgande alternativ er rett svar på spørsmålet?{c}")
        }
        (3, true) => format!(
            "Gitt følgende spørsmål, hvilket av de mulige svarene under er riktig?\nSpørsmål: {q}\n{c}"
        ),
        (3, false) => format!(
            "Gitt følgande spørsmål, kva av dei moglege svara under er rett?\nSpørsmål: {q}\n{c}"
        ),
        (_, true) => format!("{q}\nVelg et av følgende mulige svar:{c}\n\nSvar:"),
        (_, false) => format!("{q}\nVel eit av følgande moglege svar:{c}\n\nSvar:"),
    })
}

fn norquad_doc(mut doc: Json) -> Result<Json, String> {
    let context = text(&doc, "context")?;
    let context = py_strip(&context);
    let mut lines = context.split('\n');
    let title = py_strip(lines.next().unwrap_or_default()).to_string();
    let passage = py_strip(&lines.collect::<Vec<_>>().join("\n")).to_string();
    let question = py_split(&text(&doc, "question")?).join(" ");
    let obj = object(&mut doc)?;
    obj.insert("title".into(), Json::String(title));
    obj.insert("passage".into(), Json::String(passage));
    obj.insert("question".into(), Json::String(question));
    Ok(doc)
}

fn truthful_gen_doc(mut doc: Json) -> Result<Json, String> {
    let format = |answers: &Json| -> Result<Vec<Json>, String> {
        let mut out = Vec::new();
        for a in strings(answers)? {
            let a = py_strip(&a);
            if !a.is_empty() {
                if a.ends_with('.') {
                    out.push(Json::String(a.to_string()));
                } else {
                    out.push(Json::String(format!("{a}.")));
                }
            }
        }
        Ok(out)
    };
    let incorrect = format(field(&doc, "incorrect_answers")?)?;
    let correct = format(field(&doc, "correct_answers")?)?;
    let question = py_strip(&text(&doc, "question")?).to_string();
    let obj = object(&mut doc)?;
    obj.insert("question".into(), Json::String(question));
    obj.insert("correct_answers".into(), Json::Array(correct));
    obj.insert("incorrect_answers".into(), Json::Array(incorrect));
    Ok(doc)
}

/// Python's `str.isspace` for one character.
pub(crate) fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(py_space)
}

/// Python's `str.split()` (on runs of whitespace).
pub(crate) fn py_split(s: &str) -> Vec<&str> {
    s.split(py_space).filter(|w| !w.is_empty()).collect()
}

/// Python's `len()` of a value: characters of a string, items of a list.
fn py_len(v: &Json) -> usize {
    match v {
        Json::String(s) => s.chars().count(),
        Json::Array(a) => a.len(),
        Json::Object(o) => o.len(),
        _ => 0,
    }
}

fn object(doc: &mut Json) -> Result<&mut Map<String, Json>, String> {
    doc.as_object_mut()
        .ok_or_else(|| "a document is not a mapping".to_string())
}

fn field<'a>(doc: &'a Json, key: &str) -> Result<&'a Json, String> {
    doc.get(key)
        .ok_or_else(|| format!("the document has no field `{key}`"))
}

fn text(doc: &Json, key: &str) -> Result<String, String> {
    match field(doc, key)? {
        Json::String(s) => Ok(s.clone()),
        other => Err(format!("field `{key}` is {other}, not text")),
    }
}

fn strings(v: &Json) -> Result<Vec<String>, String> {
    match v {
        Json::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{i} is not text"))
            })
            .collect(),
        other => Err(format!("{other} is not a list of texts")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn norquad_docs_split_title_and_passage_as_the_python_does() {
        let d = json!({"context": "  Fjellet\n  Galdhøpiggen er  høyest.\nDet ligger i Lom. \n", "question": " Hvor\tligger\u{a0}den? "});
        let d = DocsHook::NorquadProcess.apply(vec![d]).unwrap().remove(0);
        assert_eq!(d["title"], "Fjellet");
        assert_eq!(d["passage"], "Galdhøpiggen er  høyest.\nDet ligger i Lom.");
        assert_eq!(d["question"], "Hvor ligger den?");
        assert_eq!(
            TextHook::Norquad(4).apply(&d).unwrap(),
            "Tittel: Fjellet\n\nTekst:Galdhøpiggen er  høyest.\nDet ligger i Lom.\n\nGitt teksten over, besvar følgende spørsmål: \"Hvor ligger den?\"\n\nSvar:"
        );
    }

    #[test]
    fn nrk_prompt_two_lists_the_labels_with_eller() {
        let d =
            json!({"question": "Hvem?", "choices": {"label": ["A", "B"], "text": ["Ja", "Nei"]}});
        assert_eq!(
            TextHook::NrkQuiz(2, Lang::Nn).apply(&d).unwrap(),
            "Hvem?\nA: Ja\nB: Nei\n\nEr det rette svaret A eller B?\n\nSvar:"
        );
    }
}
