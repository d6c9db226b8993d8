//! A track's identity from the whole track, with an honest "don't know".
//!
//! Each embedding of the track is compared with the gallery: its best persons and their scores
//! ([`Comparison`]). A person's score for the track is a robust, quality-weighted mean over the
//! track's embeddings: the worst quarter of them (at least one of three or more) is dropped — a turned
//! or blurred face scores low against its own person and must not decide — and the rest are
//! weighted by the faces' quality (size × sharpness × frontalness). The track is a person when that
//! score clears the model's match threshold **and** leads the runner-up person by the model's margin,
//! with `confirm_embeddings` embeddings behind it — or at once when one embedding is that close
//! (`instant_match_score`) with the margin. Two people too close to tell apart make the answer
//! *ambiguous*: unknown, not a guess. A settled person changes only when another person leads them
//! by the margin (the tracker may have joined two people), which is reported as a change so the
//! appearance can be split.

use serde::Serialize;

use super::TrackConfig;
use crate::embed::Judgement;

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Identity {
    /// Not enough evidence yet.
    Pending,
    /// Enough embeddings, and no person both close enough and clearly ahead of the others.
    Unknown,
    Person {
        person_id: i64,
        score: f32,
    },
}

impl Identity {
    pub fn person(&self) -> Option<i64> {
        match self {
            Identity::Person { person_id, .. } => Some(*person_id),
            _ => None,
        }
    }
}

/// An identity settled or changed by the latest embedding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum IdentityChange {
    Settled(Identity),
    Changed { from: Identity, to: Identity },
}

impl IdentityChange {
    pub fn to(&self) -> Identity {
        match self {
            IdentityChange::Settled(i) | IdentityChange::Changed { to: i, .. } => *i,
        }
    }
}

/// One embedding compared with the gallery: its best persons, best first, and the score every
/// person not listed is below (`None`: the list holds every person of the gallery).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    pub candidates: Vec<(i64, f32)>,
    pub floor: Option<f32>,
}

impl Comparison {
    /// A gallery search's answer for the `asked` best persons: when it filled them all, every person
    /// not listed scores at most the last one listed.
    pub fn from_search(found: &[crate::gallery::Match], asked: usize) -> Comparison {
        let floor = (asked > 0 && found.len() >= asked).then(|| found[found.len() - 1].score);
        Comparison { candidates: found.iter().map(|m| (m.person_id, m.score)).collect(), floor }
    }

    /// `person`'s score: listed, or at most the floor (used as is: an upper bound, which can only
    /// make a rival look closer and the answer more careful).
    fn score_of(&self, person: i64) -> Option<f32> {
        self.candidates.iter().find(|(p, _)| *p == person).map(|(_, s)| *s).or(self.floor)
    }

    /// The best person and how far it leads this embedding's next one.
    fn lead(&self) -> Option<(i64, f32, f32)> {
        let &(person, score) = self.candidates.first()?;
        let next = self.candidates.get(1).map(|(_, s)| *s).or(self.floor).unwrap_or(-1.0);
        Some((person, score, score - next))
    }
}

/// What an appearance's identity rests on: kept with its row and returned by the API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Evidence {
    /// The best person and their robust score over the track.
    pub best: Option<(i64, f32)>,
    /// The runner-up person and their robust score.
    pub runner_up: Option<(i64, f32)>,
    /// Embeddings compared.
    pub embeddings: u32,
    /// The best single embedding's score against anyone.
    pub best_single: f32,
    /// A person was close enough but another too close behind: the answer is "don't know".
    pub ambiguous: bool,
}

impl Evidence {
    pub fn decision(&self, identity: Identity) -> &'static str {
        match identity {
            Identity::Person { .. } => "matched",
            _ if self.ambiguous => "ambiguous",
            _ => "unknown",
        }
    }
}

/// Who leads a track's evidence.
struct Leader {
    best: (i64, f32),
    runner_up: Option<(i64, f32)>,
    /// The runner-up's score, or what an unlisted person could score, whichever is higher.
    next: f32,
}

/// Every comparison of a track's embeddings.
#[derive(Clone, Debug, Default)]
pub struct TrackEvidence {
    /// (comparison, weight)
    comparisons: Vec<(Comparison, f32)>,
    best_single: f32,
    ambiguous: bool,
}

/// Quality weights below this count as this: a poor face still counts a little.
const MIN_WEIGHT: f32 = 0.05;

impl TrackEvidence {
    pub fn add(&mut self, comparison: Comparison, quality: f32) {
        if let Some(&(_, s)) = comparison.candidates.first() {
            self.best_single = if self.comparisons.is_empty() { s } else { self.best_single.max(s) };
        }
        self.comparisons.push((comparison, quality.max(MIN_WEIGHT)));
    }

    pub fn len(&self) -> usize {
        self.comparisons.len()
    }

    pub fn is_empty(&self) -> bool {
        self.comparisons.is_empty()
    }

    /// The best single embedding's score against anyone.
    pub fn best_single(&self) -> f32 {
        self.best_single
    }

    /// `person`'s robust score over the track: the worst quarter of the embeddings dropped (one of
    /// three or more at least), the rest weighted by quality. `None` when no embedding bounds it.
    pub fn score(&self, person: i64) -> Option<f32> {
        let mut v: Vec<(f32, f32)> =
            self.comparisons.iter().filter_map(|(c, w)| c.score_of(person).map(|s| (s, *w))).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        let drop = if v.len() >= 3 { (v.len() / 4).max(1) } else { 0 };
        let kept = &v[drop..];
        let weight: f32 = kept.iter().map(|(_, w)| w).sum();
        Some(kept.iter().map(|(s, w)| s * w).sum::<f32>() / weight)
    }

    /// Every person any embedding listed, with their robust score, best first.
    fn ranking(&self) -> Vec<(i64, f32)> {
        let mut persons: Vec<i64> =
            self.comparisons.iter().flat_map(|(c, _)| c.candidates.iter().map(|(p, _)| *p)).collect();
        persons.sort_unstable();
        persons.dedup();
        let mut ranked: Vec<(i64, f32)> = persons.into_iter().filter_map(|p| self.score(p).map(|s| (p, s))).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked
    }

    /// The best person, the runner-up, and the score of whoever comes next (a listed person, or the
    /// highest score an unlisted one could have).
    fn leader(&self) -> Option<Leader> {
        let ranked = self.ranking();
        let best = *ranked.first()?;
        let runner_up = ranked.get(1).copied();
        let floors: Vec<f32> = self.comparisons.iter().filter_map(|(c, _)| c.floor).collect();
        let unlisted = if floors.is_empty() { -1.0 } else { floors.iter().sum::<f32>() / floors.len() as f32 };
        let next = runner_up.map_or(unlisted, |(_, s)| s.max(unlisted));
        Some(Leader { best, runner_up, next })
    }

    /// What the evidence says now, for a track holding `current`.
    pub fn decide(&mut self, config: &TrackConfig, judgement: &Judgement, current: Identity) -> Identity {
        let n = self.comparisons.len() as u32;
        let confirm = config.confirm_embeddings.max(1);
        let Some(Leader { best: (person, score), next, .. }) = self.leader() else {
            return if n >= confirm { Identity::Unknown } else { Identity::Pending };
        };
        let close = score >= judgement.match_threshold;
        let clear = score - next >= judgement.margin;
        if let Identity::Person { person_id: held, .. } = current {
            let held_score = self.score(held).unwrap_or(-1.0);
            // Evidence for someone else: they lead the person held by the margin.
            if person != held && close && n >= confirm && score - held_score >= judgement.margin {
                return Identity::Person { person_id: person, score };
            }
            return Identity::Person { person_id: held, score: held_score };
        }
        // One embedding this close and this clear settles at once (a fast alert).
        let instant = self
            .comparisons
            .last()
            .and_then(|(c, _)| c.lead())
            .filter(|&(p, s, lead)| p == person && s >= judgement.instant_match_score && lead >= judgement.margin);
        if close && clear && (n >= confirm || instant.is_some()) {
            self.ambiguous = false;
            return Identity::Person { person_id: person, score };
        }
        if n < confirm {
            return Identity::Pending;
        }
        self.ambiguous = close && !clear;
        Identity::Unknown
    }

    /// The evidence in brief, for the appearance.
    pub fn summary(&self) -> Evidence {
        let leader = self.leader();
        Evidence {
            best: leader.as_ref().map(|l| l.best),
            runner_up: leader.and_then(|l| l.runner_up),
            embeddings: self.comparisons.len() as u32,
            best_single: self.best_single,
            ambiguous: self.ambiguous,
        }
    }
}

/// The change from `current` to what the evidence says now, if any. A settled person is only
/// replaced by another person (`decide` guarantees it), and never goes back to pending or unknown.
pub fn change(current: Identity, now: Identity) -> Option<IdentityChange> {
    match (current, now) {
        (Identity::Pending, Identity::Pending) => None,
        (Identity::Pending, to) => Some(IdentityChange::Settled(to)),
        (Identity::Unknown, to @ Identity::Person { .. }) => Some(IdentityChange::Changed { from: current, to }),
        (Identity::Person { person_id: a, .. }, to @ Identity::Person { person_id: b, .. }) if a != b => {
            Some(IdentityChange::Changed { from: current, to })
        }
        _ => None,
    }
}
