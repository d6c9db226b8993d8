//! Detection events: one row per appearance of a face on a camera.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use tokio_postgres::types::ToSql;

use super::{StorageError, Store};
use crate::geometry::BBox;
use crate::track::TrackEmbedding;

/// A stored detection: one appearance of a face on a camera.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Detection {
    pub id: i64,
    /// `None` once the camera has been deleted (history is kept).
    pub camera_id: Option<i64>,
    /// When the face was first seen (the capture time of its first frame).
    pub detected_at: DateTime<Utc>,
    /// When it was last seen; `None` while the appearance goes on (or for rows of older versions).
    pub last_seen_at: Option<DateTime<Utc>>,
    pub person_id: Option<i64>,
    /// The match score the identity was settled with.
    pub score: f32,
    /// The best match score over the appearance.
    pub best_score: Option<f32>,
    pub det_score: Option<f32>,
    pub bbox: BBox,
    /// Analysed frames the face was found in.
    pub frames: i32,
    /// Snapshot stem (see `crate::snapshot`), when one was written: the appearance's best face.
    pub snapshot_path: Option<String>,
    /// Why it is who it is (empty for rows written before it was kept).
    pub evidence: AppearanceEvidence,
    /// `confirmed` or `rejected` while an operator's review stands on it (see `crate::review`).
    pub review: Option<String>,
    /// The unknown identity the appearance was grouped into (`crate::unknowns`).
    pub unknown_id: Option<i64>,
}

/// What an appearance's identity rests on: how many of the track's embeddings decided, the
/// decision, and the person that came closest after the one chosen.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AppearanceEvidence {
    /// `matched`, `unknown` (nobody close enough), or `ambiguous` (two people too close to tell apart).
    pub decision: Option<String>,
    pub embeddings: Option<i32>,
    pub runner_up_person_id: Option<i64>,
    pub runner_up_score: Option<f32>,
}

/// Which detections to list; every field narrows the result.
#[derive(Clone, Debug, Default)]
pub struct DetectionFilter {
    pub camera_id: Option<i64>,
    pub person_id: Option<i64>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// `true`: recognised appearances only; `false`: unknown ones only.
    pub recognized: Option<bool>,
    /// `true`: appearances an operator's review stands on; `false`: the others (the review queue).
    pub reviewed: Option<bool>,
    /// The appearances of one unknown identity.
    pub unknown_id: Option<i64>,
}

/// Keyset position: list detections older than this one (newest-first order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetectionCursor {
    pub detected_at: DateTime<Utc>,
    pub id: i64,
}

pub(super) const COLUMNS: &str = "id, camera_id, detected_at, person_id, score, det_score, box_x, box_y, box_w, box_h, \
     snapshot_path, last_seen_at, frames, best_score, decision, embeddings, runner_up_person_id, runner_up_score, review, unknown_id";

pub(super) fn from_row(r: &tokio_postgres::Row) -> Detection {
    Detection {
        id: r.get(0),
        camera_id: r.get(1),
        detected_at: r.get(2),
        person_id: r.get(3),
        score: r.get(4),
        det_score: r.get(5),
        bbox: BBox { x: r.get(6), y: r.get(7), width: r.get(8), height: r.get(9) },
        snapshot_path: r.get(10),
        last_seen_at: r.get(11),
        frames: r.get(12),
        best_score: r.get(13),
        evidence: AppearanceEvidence {
            decision: r.get(14),
            embeddings: r.get(15),
            runner_up_person_id: r.get(16),
            runner_up_score: r.get(17),
        },
        review: r.get(18),
        unknown_id: r.get(19),
    }
}

/// A row deleted by retention: what is needed to delete its pictures and to go on from it.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpiredDetection {
    pub id: i64,
    pub detected_at: DateTime<Utc>,
    pub snapshot_path: Option<String>,
}

/// Which expired rows one retention statement deletes: those of one camera (`None`: of deleted
/// cameras), detected before `before`, unknown faces only or all, after `after` in time order.
#[derive(Clone, Copy, Debug)]
pub struct ExpiredScope {
    pub camera_id: Option<i64>,
    pub unknown_only: bool,
    pub before: DateTime<Utc>,
    pub after: Option<DetectionCursor>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewDetection {
    /// Reserved from the table's sequence before the row is written, so that the live event can
    /// name the row; `None` takes the next value when written.
    pub id: Option<i64>,
    pub camera_id: i64,
    pub detected_at: DateTime<Utc>,
    /// Set when the appearance has ended (the row is written again then).
    pub last_seen_at: Option<DateTime<Utc>>,
    /// `None` for an unknown face.
    pub person_id: Option<i64>,
    pub score: f32,
    pub best_score: f32,
    pub det_score: f32,
    pub bbox: BBox,
    pub frames: i32,
    pub snapshot_path: Option<String>,
    pub evidence: AppearanceEvidence,
    /// The embedding of the appearance's best embedded face, kept in `appearance_faces`. Never in
    /// a dead letter: a refused row's face is not worth keeping.
    #[serde(skip)]
    pub face: Option<std::sync::Arc<TrackEmbedding>>,
}

impl NewDetection {
    /// A detection seen in one frame only (tests, and sources of single sightings).
    pub fn single(
        camera_id: i64,
        detected_at: DateTime<Utc>,
        person_id: Option<i64>,
        score: f32,
        det_score: f32,
        bbox: BBox,
    ) -> Self {
        NewDetection {
            id: None,
            camera_id,
            detected_at,
            last_seen_at: None,
            person_id,
            score,
            best_score: score,
            det_score,
            bbox,
            frames: 1,
            snapshot_path: None,
            evidence: AppearanceEvidence::default(),
            face: None,
        }
    }
}

// Rows are upserts by id: an appearance is written when its identity settles and again when it
// ends, and writing the same version twice (a retry after a lost acknowledgement) changes nothing.
// The camera is never rewritten (deleting it unlinks its rows), nor the person and decision of a row an
// operator reviewed (`crate::review`).
const UPSERT: &str =
    "INSERT INTO detections (id, camera_id, detected_at, person_id, score, det_score, box_x, box_y, box_w, box_h,
         snapshot_path, last_seen_at, frames, best_score, decision, embeddings, runner_up_person_id, runner_up_score)
     VALUES (coalesce($1, nextval('detections_id_seq')), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
         $15, $16, $17, $18)
     ON CONFLICT (id) DO UPDATE SET detected_at = EXCLUDED.detected_at,
         person_id = CASE WHEN detections.review IS NULL THEN EXCLUDED.person_id ELSE detections.person_id END,
         score = EXCLUDED.score, det_score = EXCLUDED.det_score, box_x = EXCLUDED.box_x, box_y = EXCLUDED.box_y,
         box_w = EXCLUDED.box_w, box_h = EXCLUDED.box_h, snapshot_path = EXCLUDED.snapshot_path,
         last_seen_at = EXCLUDED.last_seen_at, frames = EXCLUDED.frames, best_score = EXCLUDED.best_score,
         decision = CASE WHEN detections.review IS NULL THEN EXCLUDED.decision ELSE detections.decision END,
         embeddings = EXCLUDED.embeddings,
         runner_up_person_id = EXCLUDED.runner_up_person_id, runner_up_score = EXCLUDED.runner_up_score
     RETURNING id";

// The face is written with its row (the best one so far: a later version of the row may bring a
// better one).
const UPSERT_FACE: &str =
    "INSERT INTO appearance_faces (detection_id, detected_at, model_name, model_version, vector, quality)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (detection_id) DO UPDATE SET detected_at = EXCLUDED.detected_at, model_name = EXCLUDED.model_name,
         model_version = EXCLUDED.model_version, vector = EXCLUDED.vector, quality = EXCLUDED.quality,
         written_xid = pg_current_xact_id()";

/// Writes `d`'s row, then its face (if it has one), on `c` (a transaction or a connection).
async fn write_detection(c: &impl GenericClient, d: &NewDetection) -> Result<i64, StorageError> {
    let q = |context: &'static str| move |source| StorageError::Query { context, source };
    let stmt = c.prepare_cached(UPSERT).await.map_err(q("prepare detection write"))?;
    let id: i64 = c.query_one(&stmt, &upsert_params(d)).await.map_err(q("write detection"))?.get(0);
    if let Some(f) = &d.face {
        let stmt = c.prepare_cached(UPSERT_FACE).await.map_err(q("prepare appearance face write"))?;
        let vector: &[f32] = &f.vector;
        c.execute(&stmt, &[&id, &d.detected_at, &f.model.name, &f.model.version, &vector, &f.quality])
            .await
            .map_err(q("write appearance face"))?;
    }
    Ok(id)
}

fn upsert_params(d: &NewDetection) -> [&(dyn ToSql + Sync); 18] {
    let e = &d.evidence;
    [
        &d.id,
        &d.camera_id,
        &d.detected_at,
        &d.person_id,
        &d.score,
        &d.det_score,
        &d.bbox.x,
        &d.bbox.y,
        &d.bbox.width,
        &d.bbox.height,
        &d.snapshot_path,
        &d.last_seen_at,
        &d.frames,
        &d.best_score,
        &e.decision,
        &e.embeddings,
        &e.runner_up_person_id,
        &e.runner_up_score,
    ]
}

impl Store {
    /// Writes a batch in one transaction: all rows land or none do (the caller keeps them to retry).
    /// Answers each row's id (the reserved one, or the one the sequence gave).
    pub async fn insert_detections(&self, batch: &[NewDetection]) -> Result<Vec<i64>, StorageError> {
        let mut c = self.client().await?;
        let q = |context: &'static str| move |source| StorageError::Query { context, source };
        let tx = c.transaction().await.map_err(q("begin detections batch"))?;
        let mut ids = Vec::with_capacity(batch.len());
        for d in batch {
            ids.push(write_detection(&tx, d).await?);
        }
        tx.commit().await.map_err(q("commit detections batch"))?;
        Ok(ids)
    }

    /// `n` ids for detections not written yet, taken from the table's sequence.
    pub async fn reserve_detection_ids(&self, n: i64) -> Result<Vec<i64>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query("SELECT nextval('detections_id_seq') FROM generate_series(1, $1::bigint)", &[&n])
            .await
            .map_err(|source| StorageError::Query { context: "reserve detection ids", source })?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Writes one detection on its own (after a batch was refused, to find the row at fault).
    pub async fn insert_detection(&self, d: &NewDetection) -> Result<i64, StorageError> {
        let mut c = self.client().await?;
        let q = |context: &'static str| move |source| StorageError::Query { context, source };
        let tx = c.transaction().await.map_err(q("begin detection write"))?;
        let id = write_detection(&tx, d).await?;
        tx.commit().await.map_err(q("commit detection write"))?;
        Ok(id)
    }

    /// Deletes up to `limit` appearance faces seen before `before` (their rows stay); answers how many.
    pub async fn delete_expired_appearance_faces(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64, StorageError> {
        let c = self.client().await?;
        c.execute(
            "DELETE FROM appearance_faces WHERE detection_id IN
                 (SELECT detection_id FROM appearance_faces WHERE detected_at < $1 ORDER BY detected_at LIMIT $2)",
            &[&before, &limit],
        )
        .await
        .map_err(|source| StorageError::Query { context: "delete expired appearance faces", source })
    }

    /// Keeps a detection the database refused for good, with the reason, in `detections_dead_letter`.
    pub async fn dead_letter_detection(&self, d: &NewDetection, error: &str) -> Result<(), StorageError> {
        let c = self.client().await?;
        let row = serde_json::to_value(d).unwrap_or_default();
        c.execute("INSERT INTO detections_dead_letter (detection, error) VALUES ($1, $2)", &[&row, &error])
            .await
            .map_err(|source| StorageError::Query { context: "keep a refused detection", source })?;
        Ok(())
    }

    /// Detections kept in the dead-letter table: (the detection as JSON, the database's reason).
    pub async fn dead_letter_detections(&self) -> Result<Vec<(serde_json::Value, String)>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query("SELECT detection, error FROM detections_dead_letter ORDER BY id", &[])
            .await
            .map_err(|source| StorageError::Query { context: "read refused detections", source })?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Detections matching `filter`, newest first, after `cursor` when given (keyset pagination: the
    /// cost of a page does not grow with how deep it is).
    pub async fn list_detections(
        &self,
        filter: &DetectionFilter,
        cursor: Option<DetectionCursor>,
        limit: i64,
    ) -> Result<Vec<Detection>, StorageError> {
        // The statement names only the conditions in use, so each combination gets a plan that uses
        // its index (a generic `$1 IS NULL OR …` plan would not).
        let mut conditions: Vec<String> = Vec::new();
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        fn param(params: &mut Vec<Box<dyn ToSql + Sync + Send>>, value: impl ToSql + Sync + Send + 'static) -> String {
            params.push(Box::new(value));
            format!("${}", params.len())
        }
        if let Some(c) = filter.camera_id {
            conditions.push(format!("camera_id = {}", param(&mut params, c)));
        }
        if let Some(p) = filter.person_id {
            conditions.push(format!("person_id = {}", param(&mut params, p)));
        }
        if let Some(r) = filter.recognized {
            conditions.push(if r { "person_id IS NOT NULL" } else { "person_id IS NULL" }.into());
        }
        if let Some(r) = filter.reviewed {
            conditions.push(if r { "review IS NOT NULL" } else { "review IS NULL" }.into());
        }
        if let Some(u) = filter.unknown_id {
            conditions.push(format!("unknown_id = {}", param(&mut params, u)));
        }
        if let Some(t) = filter.since {
            conditions.push(format!("detected_at >= {}", param(&mut params, t)));
        }
        if let Some(t) = filter.until {
            conditions.push(format!("detected_at < {}", param(&mut params, t)));
        }
        if let Some(k) = cursor {
            let (t, id) = (param(&mut params, k.detected_at), param(&mut params, k.id));
            conditions.push(format!("(detected_at, id) < ({t}, {id})"));
        }
        let limit = param(&mut params, limit.clamp(1, 1000));
        let filter_sql =
            if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
        let sql =
            format!("SELECT {COLUMNS} FROM detections {filter_sql} ORDER BY detected_at DESC, id DESC LIMIT {limit}");
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&sql)
            .await
            .map_err(|source| StorageError::Query { context: "prepare detections query", source })?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        let rows =
            c.query(&stmt, &refs).await.map_err(|source| StorageError::Query { context: "list detections", source })?;
        Ok(rows.iter().map(from_row).collect())
    }

    pub async fn get_detection(&self, id: i64) -> Result<Option<Detection>, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_opt(&format!("SELECT {COLUMNS} FROM detections WHERE id = $1"), &[&id])
            .await
            .map_err(|source| StorageError::Query { context: "read detection", source })?;
        Ok(row.as_ref().map(from_row))
    }

    /// Deletes at most `limit` rows of `scope`, oldest first, in one short statement; answers them.
    /// Rows locked by a writer at that moment are skipped (the next sweep takes them). Each statement
    /// walks one index from where the previous one stopped (`scope.after`), so a long run of
    /// deletions never re-reads what it has deleted or kept.
    pub async fn delete_expired_detections(
        &self,
        scope: &ExpiredScope,
        limit: i64,
    ) -> Result<Vec<ExpiredDetection>, StorageError> {
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(scope.before), Box::new(limit)];
        let camera = match scope.camera_id {
            Some(id) => {
                params.push(Box::new(id));
                "camera_id = $3"
            }
            None => "camera_id IS NULL",
        };
        let unknown = if scope.unknown_only { "AND person_id IS NULL" } else { "" };
        let after = match scope.after {
            Some(k) => {
                params.push(Box::new(k.detected_at));
                params.push(Box::new(k.id));
                let (t, id) = (params.len() - 1, params.len());
                format!("AND detected_at >= ${t} AND (detected_at, id) > (${t}, ${id})")
            }
            None => String::new(),
        };
        // The ORDER BY runs along the (camera_id, detected_at, id) indexes (the partial one for
        // unknown faces), so the statement reads the rows it deletes and no others.
        let sql = format!(
            "WITH doomed AS (
                 SELECT id FROM detections
                 WHERE {camera} {unknown} AND detected_at < $1 {after}
                 ORDER BY detected_at, id LIMIT $2
                 FOR UPDATE SKIP LOCKED)
             DELETE FROM detections d USING doomed WHERE d.id = doomed.id
             RETURNING d.id, d.detected_at, d.snapshot_path"
        );
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&sql)
            .await
            .map_err(|source| StorageError::Query { context: "prepare the deletion of expired detections", source })?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        let rows = c
            .query(&stmt, &refs)
            .await
            .map_err(|source| StorageError::Query { context: "delete expired detections", source })?;
        Ok(rows
            .iter()
            .map(|r| ExpiredDetection { id: r.get(0), detected_at: r.get(1), snapshot_path: r.get(2) })
            .collect())
    }

    /// (person_id, score) of a camera's detections, newest first.
    pub async fn detections_for_camera(
        &self,
        camera_id: i64,
        limit: i64,
    ) -> Result<Vec<(Option<i64>, f32)>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT person_id, score FROM detections WHERE camera_id = $1 ORDER BY detected_at DESC, id DESC LIMIT $2",
                &[&camera_id, &limit],
            )
            .await
            .map_err(|source| StorageError::Query { context: "read detections", source })?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
