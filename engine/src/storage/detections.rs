//! Detection events: one row per appearance of a face on a camera.

use chrono::{DateTime, Utc};

use super::{StorageError, Store};
use crate::geometry::BBox;

#[derive(Clone, Debug, PartialEq)]
pub struct NewDetection {
    pub camera_id: i64,
    pub detected_at: DateTime<Utc>,
    /// `None` for an unknown face.
    pub person_id: Option<i64>,
    pub score: f32,
    pub det_score: f32,
    pub bbox: BBox,
    pub snapshot_path: Option<String>,
}

impl Store {
    /// Writes a batch in one transaction: all rows land or none do (the caller keeps them to retry).
    pub async fn insert_detections(&self, batch: &[NewDetection]) -> Result<(), StorageError> {
        let mut c = self.client().await?;
        let q = |context: &'static str| move |source| StorageError::Query { context, source };
        let tx = c.transaction().await.map_err(q("begin detections batch"))?;
        let stmt = tx
            .prepare(
                "INSERT INTO detections (camera_id, detected_at, person_id, score, det_score, box_x, box_y, box_w, box_h, snapshot_path)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .await
            .map_err(q("prepare detection insert"))?;
        for d in batch {
            tx.execute(
                &stmt,
                &[
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
                ],
            )
            .await
            .map_err(q("insert detection"))?;
        }
        tx.commit().await.map_err(q("commit detections batch"))
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
