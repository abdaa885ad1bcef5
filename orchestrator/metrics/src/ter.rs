//! TER, the translation edit rate (Snover et al., 2006), as sacrebleu 2 computes it by default
//! (`TER()`: lowercased, whitespace-tokenized, Tercom's shift heuristics and beam-limited edit
//! distance), at corpus level: the edits summed over the segments over the summed reference
//! lengths, ×100.

/// Tercom's limits, as sacrebleu's `lib_ter` sets them.
const MAX_SHIFT_SIZE: usize = 10;
const MAX_SHIFT_DIST: usize = 50;
const BEAM_WIDTH: usize = 25;
const MAX_SHIFT_CANDIDATES: usize = 1000;
const INFINITY: u64 = 10_000_000_000_000_000;

/// An edit operation of the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// The words agree.
    Nop,
    Sub,
    Ins,
    Del,
    Undefined,
}

/// The edit distance from `hyp` to `reference` within Tercom's beam around the diagonal, and
/// the operations of one cheapest alignment (sacrebleu's `BeamEditDistance`).
fn edit_distance(hyp: &[&str], reference: &[&str]) -> (u64, Vec<Op>) {
    let (n_h, n_r) = (hyp.len(), reference.len());
    let mut dist = vec![vec![(INFINITY, Op::Undefined); n_r + 1]; n_h + 1];
    dist[0] = (0..=n_r).map(|j| (j as u64, Op::Ins)).collect();
    let ratio = if n_h == 0 {
        1.0
    } else {
        n_r as f64 / n_h as f64
    };
    let beam = if (BEAM_WIDTH as f64) < ratio / 2.0 {
        (ratio / 2.0 + BEAM_WIDTH as f64).ceil() as usize
    } else {
        BEAM_WIDTH
    };
    for i in 1..=n_h {
        let diag = (i as f64 * ratio).floor() as usize;
        let min_j = diag.saturating_sub(beam);
        let max_j = if i == n_h {
            n_r + 1
        } else {
            (n_r + 1).min(diag + beam)
        };
        for j in min_j..max_j {
            if j == 0 {
                dist[i][0] = (dist[i - 1][0].0 + 1, Op::Del);
                continue;
            }
            let (cost_sub, op_sub) = if hyp[i - 1] == reference[j - 1] {
                (0, Op::Nop)
            } else {
                (1, Op::Sub)
            };
            let ops = [
                (dist[i - 1][j - 1].0 + cost_sub, op_sub),
                (dist[i - 1][j].0 + 1, Op::Del),
                (dist[i][j - 1].0 + 1, Op::Ins),
            ];
            for (cost, op) in ops {
                if dist[i][j].0 > cost {
                    dist[i][j] = (cost, op);
                }
            }
        }
    }
    let mut trace = Vec::new();
    let (mut i, mut j) = (n_h, n_r);
    while i > 0 || j > 0 {
        let op = dist[i][j].1;
        trace.push(op);
        match op {
            Op::Sub | Op::Nop => {
                i -= 1;
                j -= 1;
            }
            Op::Ins => j -= 1,
            // An undefined cell is never on the path: its cost is infinite.
            Op::Del | Op::Undefined => i -= 1,
        }
    }
    trace.reverse();
    (dist[n_h][n_r].0, trace)
}

/// Where each reference word is aligned in the hypothesis, and which reference and hypothesis
/// words are errors, from a trace rewriting the reference into the hypothesis.
fn alignment(trace: &[Op]) -> (Vec<usize>, Vec<bool>, Vec<bool>) {
    let (mut pos_h, mut align) = (-1i64, Vec::new());
    let (mut ref_err, mut hyp_err) = (Vec::new(), Vec::new());
    for op in trace {
        match op {
            Op::Nop | Op::Sub => {
                pos_h += 1;
                align.push(pos_h);
                let err = *op == Op::Sub;
                hyp_err.push(err);
                ref_err.push(err);
            }
            Op::Ins => {
                pos_h += 1;
                hyp_err.push(true);
            }
            Op::Del | Op::Undefined => {
                align.push(pos_h);
                ref_err.push(true);
            }
        }
    }
    // `align[r] + 1`, the place after the hypothesis word reference word `r` is aligned to
    // (0 for none), is what the shifts use.
    let align = align.into_iter().map(|a| (a + 1) as usize).collect();
    (align, ref_err, hyp_err)
}

/// `words` with the `len` words at `start` moved to `target`.
fn perform_shift<'a>(words: &[&'a str], start: usize, len: usize, target: usize) -> Vec<&'a str> {
    let mut out = Vec::with_capacity(words.len());
    if target < start {
        out.extend_from_slice(&words[..target]);
        out.extend_from_slice(&words[start..start + len]);
        out.extend_from_slice(&words[target..start]);
        out.extend_from_slice(&words[start + len..]);
    } else if target > start + len {
        out.extend_from_slice(&words[..start]);
        out.extend_from_slice(&words[start + len..target]);
        out.extend_from_slice(&words[start..start + len]);
        out.extend_from_slice(&words[target..]);
    } else {
        out.extend_from_slice(&words[..start]);
        out.extend_from_slice(&words[start + len..len + target]);
        out.extend_from_slice(&words[start..start + len]);
        out.extend_from_slice(&words[len + target..]);
    }
    out
}

/// A shift candidate, ordered as Tercom picks: the most edits saved, then the longest, the
/// earliest in the hypothesis, the earliest target, then the words.
type Candidate<'a> = (i64, usize, i64, i64, Vec<&'a str>);

/// The shift of `hyp` that saves the most edits (sacrebleu's `_shift`): the edits saved, the
/// shifted words, and the candidates checked so far.
fn best_shift<'a>(
    hyp: &[&'a str],
    reference: &[&str],
    mut checked: usize,
) -> (i64, Vec<&'a str>, usize) {
    let (before, trace) = edit_distance(hyp, reference);
    // The trace rewriting the reference into the hypothesis.
    let flipped: Vec<Op> = trace
        .iter()
        .map(|op| match op {
            Op::Ins => Op::Del,
            Op::Del => Op::Ins,
            other => *other,
        })
        .collect();
    let (after_of, ref_err, hyp_err) = alignment(&flipped);
    let mut best: Option<Candidate<'a>> = None;
    'pairs: for start_h in 0..hyp.len() {
        for start_r in 0..reference.len() {
            if start_r.abs_diff(start_h) > MAX_SHIFT_DIST {
                continue;
            }
            let mut len = 0;
            while len < MAX_SHIFT_SIZE && hyp[start_h + len] == reference[start_r + len] {
                len += 1;
                let at_end = hyp.len() == start_h + len || reference.len() == start_r + len;
                if hyp_err[start_h..start_h + len].iter().any(|e| *e)
                    && ref_err[start_r..start_r + len].iter().any(|e| *e)
                {
                    let aligned = after_of[start_r] as i64 - 1;
                    if !(start_h as i64 <= aligned && aligned < (start_h + len) as i64) {
                        let mut prev = None;
                        for offset in -1..len as i64 {
                            let idx = if start_r as i64 + offset == -1 {
                                0
                            } else {
                                after_of[(start_r as i64 + offset) as usize]
                            };
                            if prev == Some(idx) {
                                continue;
                            }
                            prev = Some(idx);
                            let shifted = perform_shift(hyp, start_h, len, idx);
                            let saved = before as i64 - edit_distance(&shifted, reference).0 as i64;
                            let candidate = (saved, len, -(start_h as i64), -(idx as i64), shifted);
                            checked += 1;
                            if best.as_ref().is_none_or(|b| candidate > *b) {
                                best = Some(candidate);
                            }
                        }
                        // As sacrebleu: checked after each pair that was tried.
                        if checked >= MAX_SHIFT_CANDIDATES {
                            break 'pairs;
                        }
                    }
                }
                if at_end {
                    break;
                }
            }
        }
    }
    match best {
        Some((saved, _, _, _, words)) => (saved, words, checked),
        None => (0, hyp.to_vec(), checked),
    }
}

/// The edits that turn `hyp` into `reference` (shifts included), and the reference's length.
fn translation_edit_rate(hyp: &[&str], reference: &[&str]) -> (u64, usize) {
    if reference.is_empty() {
        return (hyp.len() as u64, 0);
    }
    let mut words = hyp.to_vec();
    let (mut shifts, mut checked) = (0, 0);
    loop {
        let (saved, shifted, now) = best_shift(&words, reference, checked);
        checked = now;
        if checked >= MAX_SHIFT_CANDIDATES || saved <= 0 {
            break;
        }
        shifts += 1;
        words = shifted;
    }
    (shifts + edit_distance(&words, reference).0, reference.len())
}

/// Corpus TER of (hypothesis, reference) pairs, as `sacrebleu.corpus_ter(hyps, [refs])`.
pub fn corpus_ter<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> f64 {
    let (mut edits, mut length) = (0u64, 0usize);
    for (h, r) in pairs {
        let (h, r) = (h.to_lowercase(), r.to_lowercase());
        let hyp: Vec<&str> = h.split_whitespace().collect();
        let reference: Vec<&str> = r.split_whitespace().collect();
        let (e, l) = translation_edit_rate(&hyp, &reference);
        edits += e;
        length += l;
    }
    let score = if length > 0 {
        edits as f64 / length as f64
    } else if edits > 0 {
        1.0
    } else {
        0.0
    };
    100.0 * score
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tools/reference/ter.py` prints these (sacrebleu 2.6's `corpus_ter`).
    #[test]
    fn equals_sacrebleu() {
        let cases: [(&[(&str, &str)], f64); 6] = [
            (
                &[
                    ("Jeg liker kaffe.", "Jeg liker kaffe."),
                    ("Hvor er stasjon?", "Hvor er stasjonen?"),
                    ("Det snør i dag", "Det regner i dag."),
                    ("", "Tom er trøtt."),
                    ("Vet ikke", "56"),
                ],
                TER_SHORT,
            ),
            (
                &[(
                    "i dag regner det kraftig over hele Vestlandet , sa meteorologen",
                    "Meteorologen sa at det regner kraftig over hele Vestlandet i dag .",
                )],
                TER_SHIFTS,
            ),
            (
                &[(
                    "Bergen er en by på Vestlandet og Oslo er hovedstaden i Norge",
                    "Oslo er hovedstaden i Norge og Bergen er en by på Vestlandet",
                )],
                TER_SWAP,
            ),
            (&[("Noe tekst", "")], 100.0),
            (&[(LONG_HYP, LONG_REF)], TER_LONG),
            (&[(CAP_HYP, CAP_REF)], TER_CAP),
        ];
        for (pairs, want) in cases {
            let got = corpus_ter(pairs.iter().copied());
            assert!((got - want).abs() < 1e-9, "{pairs:?}: {got} {want}");
        }
    }

    const LONG_REF: &str = "Det var en gang en liten gutt som bodde ved fjorden sammen med bestemoren sin . Hver morgen gikk han ned til brygga for å se på båtene som kom inn med fisk , og hver kveld fortalte bestemoren historier om troll , hekser og modige fiskere som seilte langt ut på havet .";
    const LONG_HYP: &str = "inn med fisk , og jente kveld fortalte bestemoren historier om troll , hekser og modige fiskere som seilte langt ut på havet . og Det var en gang en liten gutt som bodde ved fjorden sammen mange med bestemoren sin . Hver morgen gikk han ned til brygga for å se på båtene som kom";
    const CAP_REF: &str = "ja nei kanskje ja nei ja ja nei kanskje ja nei ja ja nei kanskje ja nei ja ja nei kanskje ja nei ja ja nei kanskje ja nei ja ja nei kanskje ja nei ja ja nei kanskje ja nei ja ja nei kanskje ja nei ja ja nei kanskje ja nei ja ja nei kanskje ja nei ja";
    const CAP_HYP: &str = "ja ja ja nei nei nei nei kanskje ja nei ja nei kanskje nei ja ja nei ja kanskje nei nei nei ja kanskje kanskje ja nei nei ja ja ja kanskje ja ja ja ja kanskje ja nei ja ja ja ja ja kanskje ja nei ja ja ja nei nei nei ja kanskje ja kanskje nei nei ja";
    const TER_SHORT: f64 = 57.14285714285714;
    const TER_SHIFTS: f64 = 58.333333333333336;
    const TER_SWAP: f64 = 16.666666666666664;
    const TER_LONG: f64 = 12.962962962962962;
    const TER_CAP: f64 = 35.0;
}
