//! Classification metrics as scikit-learn computes them (the paper's NLU tasks: NO-BoolQ,
//! NO-QNLI, NO-MRPC): `accuracy_score`, `f1_score` binary (positive class 1) and macro,
//! `matthews_corrcoef`. Quirks kept: F1 is 0 where precision and recall are undefined
//! (`zero_division`), macro F1 averages only the classes that occur in the labels or the
//! predictions, and MCC is 0 when either side is constant.

/// Implementation version.
pub const VERSION: i32 = 1;

/// Confusion counts of class `c`: (true positives, false positives, false negatives).
fn counts(pred: &[usize], gold: &[usize], c: usize) -> (f64, f64, f64) {
    let mut t = (0.0, 0.0, 0.0);
    for (&p, &g) in pred.iter().zip(gold) {
        match (p == c, g == c) {
            (true, true) => t.0 += 1.0,
            (true, false) => t.1 += 1.0,
            (false, true) => t.2 += 1.0,
            _ => {}
        }
    }
    t
}

/// Per-example correctness (1 or 0): its mean is the accuracy.
pub fn correct(pred: &[usize], gold: &[usize]) -> Vec<f64> {
    pred.iter()
        .zip(gold)
        .map(|(p, g)| f64::from(p == g))
        .collect()
}

/// F1 of class `c` (0 when it is undefined).
pub fn f1_of(pred: &[usize], gold: &[usize], c: usize) -> f64 {
    let (tp, fp, fn_) = counts(pred, gold, c);
    let denom = 2.0 * tp + fp + fn_;
    if denom == 0.0 { 0.0 } else { 2.0 * tp / denom }
}

/// Binary F1 with class 1 as the positive class.
pub fn f1_binary(pred: &[usize], gold: &[usize]) -> f64 {
    f1_of(pred, gold, 1)
}

/// Macro F1 over the classes that occur in `gold` or `pred`.
pub fn f1_macro(pred: &[usize], gold: &[usize]) -> f64 {
    let mut classes: Vec<usize> = pred.iter().chain(gold).copied().collect();
    classes.sort_unstable();
    classes.dedup();
    if classes.is_empty() {
        return 0.0;
    }
    classes.iter().map(|&c| f1_of(pred, gold, c)).sum::<f64>() / classes.len() as f64
}

/// Matthews correlation coefficient (multiclass form; 0 when undefined).
pub fn mcc(pred: &[usize], gold: &[usize]) -> f64 {
    let k = pred.iter().chain(gold).max().map_or(0, |m| m + 1);
    let (mut t, mut p) = (vec![0.0f64; k], vec![0.0f64; k]);
    let mut c = 0.0;
    for (&a, &b) in pred.iter().zip(gold) {
        p[a] += 1.0;
        t[b] += 1.0;
        c += f64::from(a == b);
    }
    let s = pred.len() as f64;
    let tp: f64 = t.iter().zip(&p).map(|(x, y)| x * y).sum();
    let cov_ytyp = c * s - tp;
    let cov_ypyp = s * s - p.iter().map(|x| x * x).sum::<f64>();
    let cov_ytyt = s * s - t.iter().map(|x| x * x).sum::<f64>();
    if cov_ypyp * cov_ytyt == 0.0 {
        0.0
    } else {
        cov_ytyp / (cov_ytyt * cov_ypyp).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cases_by_hand() {
        let (p, g) = ([1, 0, 1, 1], [1, 0, 0, 1]);
        assert_eq!(correct(&p, &g).iter().sum::<f64>(), 3.0);
        assert!((f1_binary(&p, &g) - 0.8).abs() < 1e-12);
        assert_eq!(mcc(&[1, 1], &[0, 1]), 0.0);
        assert_eq!(f1_binary(&[0, 0], &[1, 0]), 0.0);
    }
}
