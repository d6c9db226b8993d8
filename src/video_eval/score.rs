//! Scoring stored appearances against a clip's truth. Each appearance goes to the truth window it
//! overlaps most in time (among windows of the person it was matched to first, when one overlaps: two
//! people in view at once); a window is found when an appearance went to it, correct when one matched
//! its person.

use std::collections::BTreeMap;

use serde::Serialize;

use super::truth::TruthWindow;

/// Seconds an appearance may stick out of a window and still count as overlapping it: the tracker
/// holds a lost face a moment, and the clip's clock is read from the engine's capture times.
pub const SLACK_S: f64 = 0.5;

/// One stored appearance, in seconds from the clip's start.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeenAppearance {
    pub start_s: f64,
    pub end_s: f64,
    /// The person it was matched to (`None`: unknown or ambiguous).
    pub person: Option<String>,
    /// `matched`, `unknown` or `ambiguous`.
    pub decision: String,
    pub score: f32,
    pub runner_up: Option<String>,
    pub runner_up_score: Option<f32>,
    pub frames: i32,
    pub embeddings: Option<i32>,
    /// The truth window it went to: its index in the clip's truth.
    pub window: Option<usize>,
    /// What it was judged: `correct`, `wrong_person`, `stranger_matched`, `unknown`, `ambiguous`.
    pub verdict: String,
}

/// Figures for one person (or `stranger`) over one clip or the whole set.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PersonFigures {
    /// Truth windows of this person.
    pub expected: u32,
    /// Windows with at least one appearance.
    pub found: u32,
    /// Windows with an appearance matched to this person.
    pub correct: u32,
    /// Windows without one (for strangers: not counted; nobody should be matched).
    pub missed: u32,
    /// Appearances in this person's windows matched to someone else.
    pub wrong_person: u32,
    /// Appearances matched to an enrolled person in a stranger's window or in no window.
    pub strangers_matched: u32,
    pub unknown: u32,
    pub ambiguous: u32,
    pub appearances: u32,
}

impl PersonFigures {
    pub fn add(&mut self, o: &PersonFigures) {
        self.expected += o.expected;
        self.found += o.found;
        self.correct += o.correct;
        self.missed += o.missed;
        self.wrong_person += o.wrong_person;
        self.strangers_matched += o.strangers_matched;
        self.unknown += o.unknown;
        self.ambiguous += o.ambiguous;
        self.appearances += o.appearances;
    }
}

fn overlap(a: (f64, f64), w: &TruthWindow) -> f64 {
    (a.1.min(w.end_s + SLACK_S) - a.0.max(w.start_s - SLACK_S)).max(0.0)
}

/// Assigns each appearance to a window and judges it; answers the figures per name (`stranger`
/// included; matched appearances in no window are counted under `stranger`).
pub fn score(truth: &[TruthWindow], seen: &mut [SeenAppearance]) -> BTreeMap<String, PersonFigures> {
    let mut figures: BTreeMap<String, PersonFigures> = BTreeMap::new();
    for w in truth {
        figures.entry(w.name.clone()).or_default().expected += 1;
    }
    let mut found = vec![false; truth.len()];
    let mut correct = vec![false; truth.len()];
    for a in seen.iter_mut() {
        // A zero-length appearance (one frame) still overlaps the window around it.
        let span = (a.start_s, a.end_s.max(a.start_s + 0.05));
        let best = |same_person: bool| {
            truth
                .iter()
                .enumerate()
                .filter(|(_, w)| !same_person || a.person.as_deref() == Some(w.name.as_str()))
                .map(|(i, w)| (i, overlap(span, w)))
                .filter(|(_, o)| *o > 0.0)
                .max_by(|x, y| x.1.total_cmp(&y.1))
                .map(|(i, _)| i)
        };
        a.window = best(true).or_else(|| best(false));
        let window = a.window.map(|i| &truth[i]);
        let name = window.map_or(super::truth::STRANGER, |w| w.name.as_str());
        let f = figures.entry(name.to_string()).or_default();
        f.appearances += 1;
        if let Some(i) = a.window {
            found[i] = true;
        }
        a.verdict = match (a.decision.as_str(), &a.person, window) {
            ("matched", Some(p), Some(w)) if *p == w.name => {
                correct[a.window.unwrap_or_default()] = true;
                "correct"
            }
            ("matched", Some(_), Some(w)) if !w.is_stranger() => {
                f.wrong_person += 1;
                "wrong_person"
            }
            ("matched", Some(_), _) => {
                f.strangers_matched += 1;
                "stranger_matched"
            }
            ("ambiguous", _, _) => {
                f.ambiguous += 1;
                "ambiguous"
            }
            _ => {
                f.unknown += 1;
                "unknown"
            }
        }
        .to_string();
    }
    for (i, w) in truth.iter().enumerate() {
        let f = figures.entry(w.name.clone()).or_default();
        f.found += u32::from(found[i]);
        if !w.is_stranger() {
            f.correct += u32::from(correct[i]);
            f.missed += u32::from(!correct[i]);
        }
    }
    figures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(name: &str, start_s: f64, end_s: f64) -> TruthWindow {
        TruthWindow { name: name.into(), start_s, end_s }
    }

    fn a(start_s: f64, end_s: f64, person: Option<&str>, decision: &str) -> SeenAppearance {
        SeenAppearance {
            start_s,
            end_s,
            person: person.map(String::from),
            decision: decision.into(),
            score: 0.5,
            runner_up: None,
            runner_up_score: None,
            frames: 10,
            embeddings: Some(3),
            window: None,
            verdict: String::new(),
        }
    }

    #[test]
    fn two_people_at_once_each_appearance_goes_to_its_own_person() {
        let truth = [w("obama", 1.0, 10.0), w("biden", 1.5, 10.5), w("stranger", 12.0, 14.0)];
        let mut seen = [
            a(1.2, 9.0, Some("biden"), "matched"),
            a(1.1, 9.8, Some("obama"), "matched"),
            a(12.5, 13.0, Some("obama"), "matched"),
            a(20.0, 21.0, None, "unknown"),
        ];
        let f = score(&truth, &mut seen);
        assert_eq!(seen[0].window, Some(1));
        assert_eq!(seen[1].window, Some(0));
        assert_eq!(seen[2].verdict, "stranger_matched");
        assert_eq!(seen[3].window, None);
        assert_eq!((f["obama"].correct, f["obama"].missed, f["biden"].correct), (1, 0, 1));
        assert_eq!((f["stranger"].strangers_matched, f["stranger"].unknown, f["stranger"].found), (1, 1, 1));
    }

    #[test]
    fn a_wrong_match_and_a_window_without_appearances_are_counted() {
        let truth = [w("obama", 0.0, 5.0), w("biden", 6.0, 12.0)];
        let mut seen = [a(0.5, 4.0, Some("biden"), "matched"), a(1.0, 2.0, None, "ambiguous")];
        let f = score(&truth, &mut seen);
        assert_eq!(seen[0].verdict, "wrong_person");
        assert_eq!(
            f["obama"],
            PersonFigures {
                expected: 1,
                found: 1,
                correct: 0,
                missed: 1,
                wrong_person: 1,
                ambiguous: 1,
                appearances: 2,
                ..Default::default()
            }
        );
        assert_eq!((f["biden"].found, f["biden"].missed), (0, 1));
    }
}
