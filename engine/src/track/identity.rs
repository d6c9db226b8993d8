//! A track's identity from its embeddings. Each embedding votes for its best gallery match when that
//! clears the match threshold. A person is settled when `confirm_embeddings` votes agree on them, or
//! at once when one vote reaches `instant_match_score`; a track whose first `confirm_embeddings`
//! embeddings all miss is settled as unknown. A settled person changes only on evidence: another
//! person gathering more votes than them (the tracker may have joined two people), which is reported
//! as a change so the appearance can be split.

use std::collections::HashMap;

use serde::Serialize;

use super::TrackConfig;

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Identity {
    /// Not enough evidence yet.
    Pending,
    /// Enough embeddings, none matching anyone.
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

#[derive(Clone, Copy, Debug, Default)]
struct Vote {
    count: u32,
    best: f32,
}

/// The votes of a track's embeddings.
#[derive(Clone, Debug, Default)]
pub struct Votes {
    by_person: HashMap<i64, Vote>,
    /// The best gallery score of any embedding, matching or not.
    best_score: f32,
}

impl Votes {
    pub fn add(&mut self, best: Option<(i64, f32)>, threshold: f32) {
        let Some((person, score)) = best else { return };
        self.best_score = self.best_score.max(score);
        if score >= threshold {
            let v = self.by_person.entry(person).or_default();
            v.count += 1;
            v.best = v.best.max(score);
        }
    }

    pub fn best_score(&self) -> f32 {
        self.best_score
    }

    /// What the votes say after `embeddings` embeddings, for a track now holding `current`.
    pub fn decide(&self, config: &TrackConfig, embeddings: u32, current: Identity) -> Identity {
        if let Identity::Person { person_id, .. } = current {
            let held = self.by_person.get(&person_id).copied().unwrap_or_default();
            let challenger = self
                .by_person
                .iter()
                .filter(|(p, _)| **p != person_id)
                .map(|(p, v)| (*p, *v))
                .max_by_key(|(_, v)| v.count);
            return match challenger {
                // Evidence: more agreeing embeddings for someone else than for the person held.
                Some((other, v)) if v.count > held.count && v.count >= config.confirm_embeddings.max(1) => {
                    Identity::Person { person_id: other, score: v.best }
                }
                _ => Identity::Person { person_id, score: held.best },
            };
        }
        let leader = self
            .by_person
            .iter()
            .max_by(|a, b| a.1.count.cmp(&b.1.count).then(a.1.best.total_cmp(&b.1.best)))
            .map(|(p, v)| (*p, *v));
        match leader {
            Some((person_id, v))
                if v.count >= config.confirm_embeddings.max(1) || v.best >= config.instant_match_score =>
            {
                Identity::Person { person_id, score: v.best }
            }
            Some(_) => Identity::Pending,
            None if embeddings >= config.confirm_embeddings.max(1) => Identity::Unknown,
            None => Identity::Pending,
        }
    }
}

/// The change from `current` to what the votes say now, if any. A settled person is only replaced by
/// another person with strictly more votes (`decide` guarantees it), and never goes back to pending
/// or unknown.
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
