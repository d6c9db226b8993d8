//! Reading the stored appearance faces for the search index (`crate::search`): the rows written
//! since an index last read, the ids still stored, and the exact vectors of the candidates a search
//! rescores together with their appearance's current camera, time and person.

use chrono::{DateTime, Utc};

use super::{StorageError, Store};
use crate::embed::ModelId;

fn q(context: &'static str) -> impl Fn(tokio_postgres::Error) -> StorageError {
    move |source| StorageError::Query { context, source }
}

/// One stored appearance face, as the search index holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexedFace {
    pub detection_id: i64,
    pub detected_at: DateTime<Utc>,
    /// `None`: its camera was deleted (the row stays, unlinked).
    pub camera_id: Option<i64>,
    pub vector: Vec<f32>,
}

/// What one read of the table found: the rows written by transactions the last read could not see,
/// and where the next read starts.
#[derive(Debug)]
pub struct WrittenSince {
    pub rows: Vec<IndexedFace>,
    /// Every transaction before this one had finished when the rows were read: the next read asks
    /// for rows written by this transaction or later ones.
    pub next_from: i64,
}

/// A candidate of a search with its exact stored vector and its appearance as stored now.
#[derive(Clone, Debug, PartialEq)]
pub struct CandidateFace {
    pub detection_id: i64,
    pub camera_id: Option<i64>,
    pub detected_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub person_id: Option<i64>,
    pub decision: Option<String>,
    pub snapshot_path: Option<String>,
    pub unknown_id: Option<i64>,
    pub vector: Vec<f32>,
}

impl Store {
    /// Up to `limit` faces of `model` written by transaction `from` or later ones (`from` = 0:
    /// every face), of appearances after `after_id` in id order, read in one statement with the
    /// point where the next read starts.
    pub async fn appearance_faces_written_since(
        &self,
        model: &ModelId,
        from: i64,
        after_id: i64,
        limit: i64,
    ) -> Result<WrittenSince, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "WITH s AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin)
                 SELECT s.xmin, f.detection_id, f.detected_at, f.camera_id, f.vector
                 FROM s LEFT JOIN LATERAL (
                     SELECT f.detection_id, f.detected_at, d.camera_id, f.vector
                     FROM appearance_faces f JOIN detections d ON d.id = f.detection_id
                     WHERE f.written_xid >= $1::bigint::text::xid8 AND f.model_name = $2 AND f.model_version = $3
                         AND f.detection_id > $4
                     ORDER BY f.detection_id LIMIT $5) f ON true",
                &[&from, &model.name, &model.version, &after_id, &limit],
            )
            .await
            .map_err(q("read appearance faces written since the last read"))?;
        let mut next_from = 0;
        let mut faces = Vec::with_capacity(rows.len());
        for r in rows {
            next_from = r.get(0);
            let Some(detection_id) = r.get::<_, Option<i64>>(1) else { continue };
            faces.push(IndexedFace { detection_id, detected_at: r.get(2), camera_id: r.get(3), vector: r.get(4) });
        }
        Ok(WrittenSince { rows: faces, next_from })
    }

    /// How many faces of `model` are stored.
    pub async fn appearance_face_count(&self, model: &ModelId) -> Result<i64, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "SELECT count(*) FROM appearance_faces WHERE model_name = $1 AND model_version = $2",
                &[&model.name, &model.version],
            )
            .await
            .map_err(q("count appearance faces"))?;
        Ok(row.get(0))
    }

    /// The appearance ids of every stored face of `model`, in one statement.
    pub async fn appearance_face_ids(&self, model: &ModelId) -> Result<Vec<i64>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT detection_id FROM appearance_faces WHERE model_name = $1 AND model_version = $2",
                &[&model.name, &model.version],
            )
            .await
            .map_err(q("list appearance faces"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// The stored faces of `model` among `ids` with their appearances as they are now; ids whose
    /// face is gone (or is of another model now) are absent.
    pub async fn candidate_faces(&self, model: &ModelId, ids: &[i64]) -> Result<Vec<CandidateFace>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT f.detection_id, d.camera_id, d.detected_at, d.last_seen_at, d.person_id, d.decision, d.snapshot_path,
                     d.unknown_id, f.vector
                 FROM appearance_faces f JOIN detections d ON d.id = f.detection_id
                 WHERE f.detection_id = ANY($1) AND f.model_name = $2 AND f.model_version = $3",
                &[&ids, &model.name, &model.version],
            )
            .await
            .map_err(q("read search candidates"))?;
        Ok(rows
            .iter()
            .map(|r| CandidateFace {
                detection_id: r.get(0),
                camera_id: r.get(1),
                detected_at: r.get(2),
                last_seen_at: r.get(3),
                person_id: r.get(4),
                decision: r.get(5),
                snapshot_path: r.get(6),
                unknown_id: r.get(7),
                vector: r.get(8),
            })
            .collect())
    }
}
