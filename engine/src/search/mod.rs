//! Search by face: the stored appearances, known and unknown, of every camera and time, ranked by how
//! like a face they are. Exact: the in-memory index (`index`) scores every stored face in int8 and
//! keeps those its error bound cannot rule out; their f32 vectors are read from PostgreSQL with the
//! appearance as stored now, scored exactly and filtered again. PostgreSQL stays the truth, so a face
//! deleted since the index last read it never answers, and every engine answers alike.
//!
//! Ranking: score, best first, then the newer appearance (higher id) first. A page's cursor is its
//! last answer's (score, id); the next page is what ranks after it.

pub mod index;
pub mod sync;

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::embed::{cosine, ModelId};
use crate::storage::appearance_faces::CandidateFace;
use crate::storage::{StorageError, Store};
pub use index::{AppearanceIndex, Candidate, Filter, IndexError};

/// How many times a search reads candidates again after some turned out gone or filtered out in the
/// database (each round excludes those).
const ROUNDS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("the search index holds faces of {index}, the query was embedded with {query}: they are never compared")]
    OtherModel { index: String, query: String },
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("invalid cursor {0:?}: pass the next_cursor of the previous page")]
    BadCursor(String),
    #[error("the search index is still being read from the database")]
    NotReady,
    #[error("searching failed")]
    Storage(#[source] StorageError),
    #[error("the search task failed: {0}")]
    Task(String),
}

/// Where the previous page ended: its last answer's score and appearance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cursor {
    pub score: f32,
    pub detection_id: i64,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The f32's bits, so the next page starts exactly where this one ended.
        write!(f, "{:08x}-{}", self.score.to_bits(), self.detection_id)
    }
}

impl FromStr for Cursor {
    type Err = SearchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || SearchError::BadCursor(s.chars().take(64).collect());
        let (bits, id) = s.split_once('-').ok_or_else(bad)?;
        let score = f32::from_bits(u32::from_str_radix(bits, 16).map_err(|_| bad())?);
        let detection_id = id.parse().map_err(|_| bad())?;
        if !score.is_finite() || bits.len() != 8 {
            return Err(bad());
        }
        Ok(Cursor { score, detection_id })
    }
}

/// One search: a face embedded with `model`, what to consider, and how many answers.
#[derive(Clone, Debug)]
pub struct SearchRequest {
    pub model: ModelId,
    pub query: Vec<f32>,
    pub cameras: Vec<i64>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub min_score: f32,
    pub after: Option<Cursor>,
    pub limit: usize,
}

/// One appearance found, as stored now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hit {
    pub detection_id: i64,
    pub score: f32,
    pub camera_id: Option<i64>,
    pub detected_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// `None`: unknown.
    pub person_id: Option<i64>,
    pub decision: Option<String>,
    pub has_snapshot: bool,
    /// The unknown identity it was grouped into (`crate::unknowns`).
    pub unknown_id: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Page {
    pub hits: Vec<Hit>,
    /// Where the next page starts (`None`: this page is the last).
    pub next_cursor: Option<String>,
    /// Faces the index held when it was asked.
    pub searched: usize,
    /// Faces read back from the database and scored exactly.
    pub rescored: usize,
}

/// Ranks `a` before `b`.
fn ranks_before(a: (f32, i64), b: (f32, i64)) -> bool {
    a.0 > b.0 || (a.0 == b.0 && a.1 > b.1)
}

/// Whether a stored appearance is in the request's cameras and time range (the index only knows
/// where it was when it read it).
fn in_scope(req: &SearchRequest, c: &CandidateFace) -> bool {
    (req.cameras.is_empty() || c.camera_id.is_some_and(|id| req.cameras.contains(&id)))
        && req.from.is_none_or(|t| c.detected_at >= t)
        && req.until.is_none_or(|t| c.detected_at <= t)
}

/// One page of the exact answer to `req` from the faces `index` holds and `store` still keeps.
pub async fn search(
    store: &Store,
    index: &Arc<RwLock<AppearanceIndex>>,
    req: &SearchRequest,
) -> Result<Page, SearchError> {
    let limit = req.limit.max(1);
    let mut excluded: Vec<i64> = Vec::new();
    let mut rescored = 0;
    for round in 0..ROUNDS {
        let filter = Filter {
            cameras: req.cameras.clone(),
            from: req.from,
            until: req.until,
            min_score: req.min_score,
            after: req.after.map(|c| (c.score, c.detection_id)),
            excluded: excluded.clone(),
        };
        let (candidates, floor, held) = {
            let (index, query) = (index.clone(), req.query.clone());
            let model = req.model.clone();
            // A million faces are tens of milliseconds of CPU: off the async threads.
            tokio::task::spawn_blocking(move || {
                let index = index.read().unwrap_or_else(|p| p.into_inner());
                if !index.read_whole() {
                    return Err(SearchError::NotReady);
                }
                if index.model() != &model {
                    return Err(SearchError::OtherModel { index: index.model().to_string(), query: model.to_string() });
                }
                let (candidates, floor) = index.candidates(&query, limit, &filter)?;
                Ok((candidates, floor, index.len()))
            })
            .await
            .map_err(|e| SearchError::Task(e.to_string()))??
        };
        let ids: Vec<i64> = candidates.iter().map(|c| c.detection_id).collect();
        let stored = store.candidate_faces(&req.model, &ids).await.map_err(SearchError::Storage)?;
        rescored += stored.len();

        let found: HashSet<i64> = stored.iter().map(|c| c.detection_id).collect();
        // Faces the index was told of but the database no longer keeps, or keeps at another camera or
        // time than the index thought: they may have counted among the faces the index was certain of.
        let mut refused: Vec<i64> = ids.iter().copied().filter(|id| !found.contains(id)).collect();
        {
            let mut index = index.write().unwrap_or_else(|p| p.into_inner());
            for id in &refused {
                index.remove(*id);
            }
            for c in &stored {
                // The index may know the appearance from before its camera was deleted.
                index.restate(c.detection_id, c.detected_at, c.camera_id);
            }
        }
        let after = req.after.map(|a| (a.score, a.detection_id));
        let mut hits = Vec::new();
        for c in stored {
            // f32 rounding can pass 1 for a face and itself.
            let score = cosine(&req.query, &c.vector).clamp(-1.0, 1.0);
            if !in_scope(req, &c) {
                refused.push(c.detection_id);
            } else if score >= req.min_score && after.is_none_or(|a| ranks_before(a, (score, c.detection_id))) {
                hits.push(Hit {
                    detection_id: c.detection_id,
                    score,
                    camera_id: c.camera_id,
                    detected_at: c.detected_at,
                    last_seen_at: c.last_seen_at,
                    person_id: c.person_id,
                    decision: c.decision,
                    has_snapshot: c.snapshot_path.is_some(),
                    unknown_id: c.unknown_id,
                });
            }
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.detection_id.cmp(&a.detection_id)));
        hits.truncate(limit);
        // The index ruled out the faces that cannot reach `floor`, the k-th best score of the faces
        // it was certain of. If one of those did not answer after all, the page is still exact when
        // its last answer reaches the floor; otherwise ask again without the refused faces.
        // (A face below the minimum or before the cursor was never one the index was certain of, and
        // with no floor nothing was ruled out by it.)
        let exact =
            refused.is_empty() || floor == f32::NEG_INFINITY || (hits.len() == limit && hits[limit - 1].score >= floor);
        if exact || round + 1 == ROUNDS {
            if !exact {
                tracing::warn!(
                    rounds = ROUNDS,
                    "search: faces kept changing in the database; the page may be incomplete"
                );
            }
            let next_cursor = (hits.len() == limit)
                .then(|| hits.last().map(|h| Cursor { score: h.score, detection_id: h.detection_id }.to_string()))
                .flatten();
            return Ok(Page { hits, next_cursor, searched: held, rescored });
        }
        excluded.extend(refused);
    }
    Err(SearchError::Task("no answer after every round".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_exactly_and_refuse_garbage() {
        let c = Cursor { score: 0.734_567_9, detection_id: 42 };
        assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
        for bad in ["", "abc", "3f000000", "3f000000-x", "zzzzzzzz-1", "7fc00000-1", "3f00-1"] {
            assert!(matches!(bad.parse::<Cursor>(), Err(SearchError::BadCursor(_))), "{bad}");
        }
    }
}
