//! Reviews of appearances: an operator's confirmation or rejection, stored with what undoing it
//! needs, each in one transaction with its audit entry (see `crate::review`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use deadpool_postgres::GenericClient;

use super::{audit, StorageError, Store};
use crate::embed::ModelId;

/// The embedding of an appearance's best face (`appearance_faces`).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredFace {
    pub model: ModelId,
    pub vector: Vec<f32>,
}

/// The review standing on an appearance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReviewRecord {
    pub detection_id: i64,
    /// `confirm` or `reject`.
    pub action: String,
    /// Confirmed as, or rejected as not, this person.
    pub person_id: i64,
    /// Who the engine had said it was before the review (`None`: unknown).
    pub previous_person_id: Option<i64>,
    pub previous_decision: Option<String>,
    /// The face a confirmation enrolled (`None`: it was enrolled already).
    pub embedding_id: Option<i64>,
    /// The negative a rejection added.
    pub negative_id: Option<i64>,
    pub reviewed_by: String,
    pub reviewed_at: DateTime<Utc>,
}

fn q(context: &'static str) -> impl Fn(tokio_postgres::Error) -> StorageError {
    move |source| StorageError::Query { context, source }
}

fn target(detection_id: i64) -> String {
    format!("detection:{detection_id}")
}

const REVIEW_COLUMNS: &str = "detection_id, action, person_id, previous_person_id, previous_decision, embedding_id, \
     negative_id, reviewed_by, reviewed_at";

fn review_from_row(r: &tokio_postgres::Row) -> ReviewRecord {
    ReviewRecord {
        detection_id: r.get(0),
        action: r.get(1),
        person_id: r.get(2),
        previous_person_id: r.get(3),
        previous_decision: r.get(4),
        embedding_id: r.get(5),
        negative_id: r.get(6),
        reviewed_by: r.get(7),
        reviewed_at: r.get(8),
    }
}

impl Store {
    /// The stored embedding of appearance `detection_id`'s best face, if it is still kept.
    pub async fn appearance_face(&self, detection_id: i64) -> Result<Option<StoredFace>, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT model_name, model_version, vector FROM appearance_faces WHERE detection_id = $1",
                &[&detection_id],
            )
            .await
            .map_err(q("read an appearance's face"))?;
        Ok(row.map(|r| StoredFace { model: ModelId { name: r.get(0), version: r.get(1) }, vector: r.get(2) }))
    }

    /// The review standing on appearance `detection_id`, if any.
    pub async fn review_of(&self, detection_id: i64) -> Result<Option<ReviewRecord>, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!("SELECT {REVIEW_COLUMNS} FROM detection_reviews WHERE detection_id = $1"),
                &[&detection_id],
            )
            .await
            .map_err(q("read a review"))?;
        Ok(row.as_ref().map(review_from_row))
    }

    /// Records that appearance `detection_id` is `person_id` (its face enrolled as `embedding_id`).
    /// `false`: it was reviewed meanwhile, and nothing changed.
    pub async fn record_confirmation(
        &self,
        detection_id: i64,
        person_id: i64,
        embedding_id: Option<i64>,
        actor: &str,
    ) -> Result<bool, StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(q("begin a confirmation"))?;
        let claimed = tx
            .execute(
                "INSERT INTO detection_reviews (detection_id, action, person_id, previous_person_id, previous_decision,
                     embedding_id, reviewed_by)
                 SELECT id, 'confirm', $2, person_id, decision, $3, $4 FROM detections WHERE id = $1 AND review IS NULL
                 ON CONFLICT (detection_id) DO NOTHING",
                &[&detection_id, &person_id, &embedding_id, &actor],
            )
            .await
            .map_err(q("record a confirmation"))?;
        if claimed == 0 {
            return Ok(false);
        }
        tx.execute(
            "UPDATE detections SET person_id = $2, review = 'confirmed', decision = 'matched' WHERE id = $1",
            &[&detection_id, &person_id],
        )
        .await
        .map_err(q("mark an appearance confirmed"))?;
        let details = json!({ "person_id": person_id, "embedding_id": embedding_id });
        audit::record(&tx, actor, "confirm", &target(detection_id), details).await?;
        tx.commit().await.map_err(q("commit a confirmation"))?;
        Ok(true)
    }

    /// Records that appearance `detection_id` is not `person_id`: `face` becomes one of their
    /// negatives, and the appearance unknown. Answers the negative's id; `None`: it was reviewed
    /// meanwhile, and nothing changed.
    pub async fn record_rejection(
        &self,
        detection_id: i64,
        person_id: i64,
        face: &StoredFace,
        actor: &str,
    ) -> Result<Option<i64>, StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(q("begin a rejection"))?;
        let claimed = tx
            .execute(
                "INSERT INTO detection_reviews (detection_id, action, person_id, previous_person_id, previous_decision,
                     reviewed_by)
                 SELECT id, 'reject', $2, person_id, decision, $3 FROM detections
                 WHERE id = $1 AND review IS NULL AND person_id = $2
                 ON CONFLICT (detection_id) DO NOTHING",
                &[&detection_id, &person_id, &actor],
            )
            .await
            .map_err(q("record a rejection"))?;
        if claimed == 0 {
            return Ok(None);
        }
        let negative_id: i64 = tx
            .query_one(
                "INSERT INTO person_negatives (person_id, detection_id, model_name, model_version, vector)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (person_id, detection_id) DO UPDATE SET model_name = EXCLUDED.model_name,
                     model_version = EXCLUDED.model_version, vector = EXCLUDED.vector
                 RETURNING id",
                &[&person_id, &detection_id, &face.model.name, &face.model.version, &face.vector],
            )
            .await
            .map_err(q("store a negative"))?
            .get(0);
        tx.execute(
            "UPDATE detection_reviews SET negative_id = $2 WHERE detection_id = $1",
            &[&detection_id, &negative_id],
        )
        .await
        .map_err(q("record a rejection's negative"))?;
        tx.execute(
            "UPDATE detections SET person_id = NULL, review = 'rejected', decision = 'unknown' WHERE id = $1",
            &[&detection_id],
        )
        .await
        .map_err(q("mark an appearance rejected"))?;
        let details = json!({ "person_id": person_id, "negative_id": negative_id });
        audit::record(&tx, actor, "reject", &target(detection_id), details).await?;
        tx.commit().await.map_err(q("commit a rejection"))?;
        Ok(Some(negative_id))
    }

    /// Undoes the review standing on appearance `detection_id`: the face a confirmation enrolled, or
    /// the negative a rejection added, goes, and the appearance is again who the engine said.
    /// Answers the review undone and the embeddings removed; `None`: there was none.
    pub async fn undo_review(
        &self,
        detection_id: i64,
        actor: &str,
    ) -> Result<Option<(ReviewRecord, Vec<i64>)>, StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(q("begin undoing a review"))?;
        let Some(row) = tx
            .query_opt(
                &format!("DELETE FROM detection_reviews WHERE detection_id = $1 RETURNING {REVIEW_COLUMNS}"),
                &[&detection_id],
            )
            .await
            .map_err(q("undo a review"))?
        else {
            return Ok(None);
        };
        let review = review_from_row(&row);
        let removed = match review.embedding_id {
            Some(e) => remove_photo_of(&tx, e).await?,
            None => Vec::new(),
        };
        if let Some(n) = review.negative_id {
            tx.execute("DELETE FROM person_negatives WHERE id = $1", &[&n]).await.map_err(q("remove a negative"))?;
        }
        tx.execute(
            "UPDATE detections SET person_id = $2, decision = $3, review = NULL WHERE id = $1",
            &[&detection_id, &review.previous_person_id, &review.previous_decision],
        )
        .await
        .map_err(q("restore a reviewed appearance"))?;
        let action = format!("undo_{}", review.action);
        let details = json!({
            "person_id": review.person_id,
            "embedding_id": review.embedding_id,
            "negative_id": review.negative_id,
        });
        audit::record(&tx, actor, &action, &target(detection_id), details).await?;
        tx.commit().await.map_err(q("commit undoing a review"))?;
        Ok(Some((review, removed)))
    }

    /// Removes the photo a confirmation enrolled as `embedding_id` and its embeddings of every
    /// model (a confirmation that does not stand); answers the embeddings removed.
    pub async fn remove_enrolled_face(&self, embedding_id: i64) -> Result<Vec<i64>, StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(q("begin removing a face"))?;
        let removed = remove_photo_of(&tx, embedding_id).await?;
        tx.commit().await.map_err(q("commit removing a face"))?;
        Ok(removed)
    }
}

/// Deletes, in `tx`, the enrolled photo behind embedding `embedding_id` with its embeddings of every
/// model (a re-embedding may have added one); answers the embeddings deleted.
async fn remove_photo_of(tx: &impl GenericClient, embedding_id: i64) -> Result<Vec<i64>, StorageError> {
    let Some(source) = tx
        .query_opt("SELECT person_id, source_sha256 FROM face_embeddings WHERE id = $1", &[&embedding_id])
        .await
        .map_err(q("find an enrolled face"))?
    else {
        return Ok(Vec::new());
    };
    let (person, sha): (i64, String) = (source.get(0), source.get(1));
    tx.execute("DELETE FROM person_photos WHERE person_id = $1 AND source_sha256 = $2", &[&person, &sha])
        .await
        .map_err(q("remove an enrolled face's photo"))?;
    let removed = tx
        .query("DELETE FROM face_embeddings WHERE person_id = $1 AND source_sha256 = $2 RETURNING id", &[&person, &sha])
        .await
        .map_err(q("remove an enrolled face"))?;
    Ok(removed.iter().map(|r| r.get(0)).collect())
}
