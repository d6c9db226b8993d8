//! Verification figures from scored pairs: how well a similarity threshold tells "same person" from
//! "different people". Pure arithmetic on (score, same) pairs, so a benchmark, a test and a report all
//! compute them the same way.

use serde::Serialize;

/// One compared pair: its similarity, and whether the two photos show the same person.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoredPair {
    pub score: f32,
    pub same: bool,
}

/// The true-accept rate at a false-accept rate, with the threshold that gives it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TarAtFar {
    pub far: f64,
    /// `None` when there are too few different-person pairs to measure this rate (fewer than 1/far).
    pub tar: Option<f64>,
    pub threshold: Option<f32>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VerificationReport {
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
    /// At the threshold given.
    pub threshold: f32,
    pub accuracy: f64,
    /// Same-person pairs at or above the threshold.
    pub tar: f64,
    /// Different-person pairs at or above the threshold.
    pub far: f64,
    /// The threshold that classifies the most pairs right (on a tie the highest: fewer false accepts),
    /// and that accuracy.
    pub best_threshold: f32,
    pub best_accuracy: f64,
    pub tar_at_far: Vec<TarAtFar>,
    /// Area under the ROC curve: the chance that a random same-person pair scores above a random
    /// different-person pair (ties count half).
    pub roc_auc: f64,
    /// Where the scores lie (to choose a threshold, an instant-match score and a margin):
    /// same-person pairs' 5th, 50th percentile; different-person pairs' 50th, 99th, highest.
    pub genuine_p5: f32,
    pub genuine_p50: f32,
    pub impostor_p50: f32,
    pub impostor_p99: f32,
    pub impostor_max: f32,
}

/// The `q`-quantile of sorted, non-empty scores (nearest rank).
fn quantile(sorted: &[f32], q: f64) -> f32 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The figures for `pairs` at `threshold` (a pair matches when its score ≥ threshold), with TAR at
/// each of `fars`. `None` without at least one pair of each kind.
pub fn verification_report(pairs: &[ScoredPair], threshold: f32, fars: &[f64]) -> Option<VerificationReport> {
    let mut genuine: Vec<f32> = pairs.iter().filter(|p| p.same).map(|p| p.score).collect();
    let mut impostor: Vec<f32> = pairs.iter().filter(|p| !p.same).map(|p| p.score).collect();
    if genuine.is_empty() || impostor.is_empty() {
        return None;
    }
    genuine.sort_by(f32::total_cmp);
    impostor.sort_by(f32::total_cmp);
    let (g, i) = (genuine.len() as f64, impostor.len() as f64);
    let at_or_above = |sorted: &[f32], t: f32| sorted.len() - sorted.partition_point(|&s| s < t);
    let rates = |t: f32| (at_or_above(&genuine, t) as f64 / g, at_or_above(&impostor, t) as f64 / i);

    let (tar, far) = rates(threshold);
    let accuracy = (tar * g + (1.0 - far) * i) / (g + i);

    // Every score is a candidate threshold (and one above them all: nothing matches).
    let mut candidates: Vec<f32> = genuine.iter().chain(&impostor).copied().collect();
    candidates.push(f32::INFINITY);
    let (best_threshold, best_accuracy) = candidates
        .into_iter()
        .map(|t| {
            let (tar, far) = rates(t);
            (t, (tar * g + (1.0 - far) * i) / (g + i))
        })
        .fold(
            (f32::NEG_INFINITY, -1.0),
            |best, c| if c.1 > best.1 || (c.1 == best.1 && c.0 > best.0) { c } else { best },
        );

    let tar_at_far = fars
        .iter()
        .map(|&target| {
            // The lowest threshold whose FAR is ≤ target: above the k-th highest impostor score, where
            // k impostors may be accepted.
            let allowed = (target * i).floor() as usize;
            if (i * target) < 1.0 {
                return TarAtFar { far: target, tar: None, threshold: None };
            }
            let threshold = match impostor.len().checked_sub(allowed + 1) {
                Some(idx) => next_above(impostor[idx]),
                None => f32::NEG_INFINITY,
            };
            TarAtFar { far: target, tar: Some(rates(threshold).0), threshold: Some(threshold) }
        })
        .collect();

    Some(VerificationReport {
        genuine_pairs: genuine.len(),
        impostor_pairs: impostor.len(),
        threshold,
        accuracy,
        tar,
        far,
        best_threshold,
        best_accuracy,
        tar_at_far,
        roc_auc: roc_auc(&genuine, &impostor),
        genuine_p5: quantile(&genuine, 0.05),
        genuine_p50: quantile(&genuine, 0.5),
        impostor_p50: quantile(&impostor, 0.5),
        impostor_p99: quantile(&impostor, 0.99),
        impostor_max: quantile(&impostor, 1.0),
    })
}

/// The smallest f32 above `x` (a threshold that rejects a score of exactly `x`).
fn next_above(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    let bits = x.to_bits();
    let next = match x {
        0.0 => 1,
        _ if x > 0.0 => bits + 1,
        _ => bits - 1,
    };
    f32::from_bits(next)
}

/// Mann–Whitney U / (n_g × n_i), on sorted inputs.
fn roc_auc(genuine: &[f32], impostor: &[f32]) -> f64 {
    let mut wins = 0.0;
    for &s in genuine {
        let below = impostor.partition_point(|&x| x < s);
        let equal = impostor[below..].partition_point(|&x| x <= s);
        wins += below as f64 + equal as f64 / 2.0;
    }
    wins / (genuine.len() as f64 * impostor.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(genuine: &[f32], impostor: &[f32]) -> Vec<ScoredPair> {
        genuine
            .iter()
            .map(|&score| ScoredPair { score, same: true })
            .chain(impostor.iter().map(|&score| ScoredPair { score, same: false }))
            .collect()
    }

    #[test]
    fn separable_scores_are_perfect_at_a_threshold_between_them() {
        let r = verification_report(&pairs(&[0.8, 0.7, 0.9], &[0.1, 0.2, 0.3, 0.4]), 0.55, &[0.25]).unwrap();
        assert_eq!((r.accuracy, r.tar, r.far, r.roc_auc), (1.0, 1.0, 0.0, 1.0));
        assert_eq!(r.best_accuracy, 1.0);
        assert!(r.best_threshold > 0.4 && r.best_threshold <= 0.7, "{}", r.best_threshold);
        assert_eq!(r.tar_at_far[0].tar, Some(1.0));
    }

    #[test]
    fn overlapping_scores_give_the_textbook_figures() {
        // Genuine 0.9 0.6 0.4; impostor 0.5 0.3 0.2 0.1. At 0.45: TAR 2/3, FAR 1/4.
        let r = verification_report(&pairs(&[0.9, 0.6, 0.4], &[0.5, 0.3, 0.2, 0.1]), 0.45, &[0.25, 0.5, 0.1]).unwrap();
        assert!((r.tar - 2.0 / 3.0).abs() < 1e-9 && (r.far - 0.25).abs() < 1e-9);
        assert!((r.accuracy - 5.0 / 7.0).abs() < 1e-9);
        // AUC: of 12 genuine×impostor comparisons, only 0.4 < 0.5 is lost.
        assert!((r.roc_auc - 11.0 / 12.0).abs() < 1e-9);
        // FAR 25 %: one impostor may pass (0.5), so the threshold sits just above 0.3: TAR 1.
        assert_eq!(r.tar_at_far[0].tar, Some(1.0));
        // FAR 50 %: two may pass: TAR 1 too. FAR 10 % of 4 impostors is not measurable.
        assert_eq!(r.tar_at_far[1].tar, Some(1.0));
        assert_eq!(r.tar_at_far[2].tar, None);
        // Best: 0.4 and 0.6 both get 6/7 right; the higher (fewer false accepts) is reported.
        assert!((r.best_accuracy - 6.0 / 7.0).abs() < 1e-9, "{r:?}");
        assert_eq!(r.best_threshold, 0.6);
    }

    #[test]
    fn one_kind_missing_gives_no_report() {
        assert!(verification_report(&pairs(&[0.9], &[]), 0.5, &[]).is_none());
        assert!(verification_report(&pairs(&[], &[0.1]), 0.5, &[]).is_none());
    }
}
