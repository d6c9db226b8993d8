//! Unknown identities: ended unknown appearances grouped online, by their best face, into persistent
//! identities, so that the same stranger seen on another camera or another day is one identity.
//!
//! Grouping is conservative: a split (one stranger as two identities) costs an operator a merge, a
//! false join mixes two people's faces. An appearance joins an identity only when
//! - one of the identity's appearances scores at least the model's `instant_match_score` with it (a
//!   score that settles a track at once for an enrolled person: 0.55 for SFace),
//! - that identity leads every other identity by the model's `margin`,
//! - and the identity was not seen on the same camera during the appearance: two faces of one
//!   camera at the same time are two people (two faces in one frame are never one identity).
//!
//! Otherwise it starts a new identity.
//!
//! The candidates come from search by face (`crate::search`, exact), so grouping sees every stored
//! face of the serving model, on every camera and day. One engine groups at a time (an advisory
//! lock): decisions are made in appearance order, each seeing the ones before it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::embed::{Judgement, ModelId};
use crate::search::{self, AppearanceIndex, SearchError, SearchRequest};
use crate::storage::unknowns::UngroupedFace;
use crate::storage::{StorageError, Store};

/// Appearances looked at per pass.
const BATCH: i64 = 200;
/// Nearest stored faces looked at per appearance.
const NEIGHBOURS: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum GroupingError {
    #[error("grouping unknown appearances failed")]
    Storage(#[from] StorageError),
    #[error("grouping could not search the stored faces")]
    Search(#[from] SearchError),
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupingPass {
    /// Appearances that joined an existing identity.
    pub joined: usize,
    /// Appearances that started a new identity.
    pub created: usize,
    /// Another engine held the grouping lock: nothing was done.
    pub skipped: bool,
    /// (appearance, identity) for each appearance grouped, in order (alert rules on identities).
    pub grouped: Vec<(i64, i64)>,
}

/// Where an appearance goes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    Join(i64),
    New,
}

/// The identity an appearance joins, from its neighbours' (identity, score) — the best score per
/// identity — and whether that identity was seen on the same camera meanwhile.
pub fn decide(
    best_per_identity: &[(i64, f32)],
    judgement: &Judgement,
    seen_meanwhile: impl Fn(i64) -> bool,
) -> Decision {
    let mut ranked: Vec<(i64, f32)> = best_per_identity.to_vec();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let Some(&(best, score)) = ranked.first() else { return Decision::New };
    if score < judgement.instant_match_score {
        return Decision::New;
    }
    if ranked.get(1).is_some_and(|&(_, second)| score - second < judgement.margin) {
        return Decision::New;
    }
    if seen_meanwhile(best) {
        return Decision::New;
    }
    Decision::Join(best)
}

/// Groups the ended unknown appearances waiting, oldest first, if no other engine is grouping.
/// Stops at the first whose face the search index has not read yet (the next pass goes on): a later
/// appearance must be able to find every earlier one.
pub async fn group_pending(
    store: &Store,
    index: &Arc<RwLock<AppearanceIndex>>,
    model: &ModelId,
    judgement: &Judgement,
) -> Result<GroupingPass, GroupingError> {
    let pass = store.with_grouping_lock(group_batch(store, index, model, judgement)).await?;
    match pass {
        Some(result) => result,
        None => Ok(GroupingPass { skipped: true, ..GroupingPass::default() }),
    }
}

async fn group_batch(
    store: &Store,
    index: &Arc<RwLock<AppearanceIndex>>,
    model: &ModelId,
    judgement: &Judgement,
) -> Result<GroupingPass, GroupingError> {
    let mut pass = GroupingPass::default();
    let ready = {
        let i = index.read().unwrap_or_else(|p| p.into_inner());
        i.read_whole() && i.model() == model
    };
    if !ready {
        return Ok(pass);
    }
    for face in store.ungrouped_faces(model, BATCH).await? {
        if !index.read().unwrap_or_else(|p| p.into_inner()).contains(face.detection_id) {
            break;
        }
        let decision = decide_for(store, index, model, judgement, &face).await?;
        let target = match decision {
            Decision::Join(id) => Some(id),
            Decision::New => None,
        };
        if let Some(id) = store.group_appearance(face.detection_id, target, model).await? {
            match decision {
                Decision::Join(_) => pass.joined += 1,
                Decision::New => pass.created += 1,
            }
            pass.grouped.push((face.detection_id, id));
            tracing::debug!(detection_id = face.detection_id, unknown_id = id, ?decision, "unknown appearance grouped");
        }
    }
    Ok(pass)
}

async fn decide_for(
    store: &Store,
    index: &Arc<RwLock<AppearanceIndex>>,
    model: &ModelId,
    judgement: &Judgement,
    face: &UngroupedFace,
) -> Result<Decision, GroupingError> {
    let request = SearchRequest {
        model: model.clone(),
        query: face.vector.clone(),
        cameras: Vec::new(),
        from: None,
        until: None,
        min_score: judgement.instant_match_score - judgement.margin,
        after: None,
        limit: NEIGHBOURS,
    };
    let page = search::search(store, index, &request).await?;
    let mut best: HashMap<i64, f32> = HashMap::new();
    for hit in page.hits.iter().filter(|h| h.detection_id != face.detection_id && h.person_id.is_none()) {
        if let Some(u) = hit.unknown_id {
            let s = best.entry(u).or_insert(f32::NEG_INFINITY);
            *s = s.max(hit.score);
        }
    }
    let ranked: Vec<(i64, f32)> = best.into_iter().collect();
    // The one check that needs the database, made for the chosen identity only.
    let top = decide(&ranked, judgement, |_| false);
    let Decision::Join(id) = top else { return Ok(Decision::New) };
    let conflict = match face.camera_id {
        Some(camera) => store.unknown_seen_meanwhile(id, camera, face.detected_at, face.last_seen_at).await?,
        None => false,
    };
    Ok(decide(&ranked, judgement, |_| conflict))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sface() -> Judgement {
        Judgement { match_threshold: 0.42, instant_match_score: 0.55, margin: 0.08 }
    }

    #[test]
    fn joins_only_a_clear_close_identity_not_seen_meanwhile() {
        let j = sface();
        assert_eq!(decide(&[], &j, |_| false), Decision::New);
        assert_eq!(decide(&[(7, 0.80)], &j, |_| false), Decision::Join(7));
        // Not close enough.
        assert_eq!(decide(&[(7, 0.50)], &j, |_| false), Decision::New);
        // Two identities too close to tell apart: neither.
        assert_eq!(decide(&[(7, 0.80), (9, 0.75)], &j, |_| false), Decision::New);
        assert_eq!(decide(&[(9, 0.60), (7, 0.80)], &j, |_| false), Decision::Join(7));
        // Seen on the same camera during the appearance (two faces of one frame): a new identity.
        assert_eq!(decide(&[(7, 0.95)], &j, |id| id == 7), Decision::New);
    }
}
