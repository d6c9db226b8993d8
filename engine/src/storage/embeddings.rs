//! Stored face embeddings: written at enrollment, read back to build the gallery index.

use super::{StorageError, Store};
use crate::embed::ModelId;
use crate::gallery::GallerySignature;
use crate::geometry::BBox;

pub struct NewEmbedding<'a> {
    pub person_id: i64,
    pub model: &'a ModelId,
    pub vector: &'a [f32],
    pub source_sha256: &'a str,
    pub face_box: BBox,
    pub det_score: f32,
}

pub struct EmbeddingRow {
    pub id: i64,
    pub person_id: i64,
    pub vector: Vec<f32>,
}

impl Store {
    /// Stores an embedding; `None` when this person already has one from the same photo and model.
    pub async fn add_embedding(&self, e: &NewEmbedding<'_>) -> Result<Option<i64>, StorageError> {
        let c = self.client().await?;
        let b = [e.face_box.x, e.face_box.y, e.face_box.width, e.face_box.height];
        let row = c
            .query_opt(
                "INSERT INTO face_embeddings (person_id, model_name, model_version, vector, source_sha256, face_box, det_score)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (person_id, model_name, model_version, source_sha256) DO NOTHING
                 RETURNING id",
                &[&e.person_id, &e.model.name, &e.model.version, &e.vector, &e.source_sha256, &&b[..], &e.det_score],
            )
            .await
            .map_err(|source| StorageError::Query { context: "store embedding", source })?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Every embedding of one model, for the gallery index.
    pub async fn embeddings_for_model(&self, model: &ModelId) -> Result<Vec<EmbeddingRow>, StorageError> {
        self.rows_of_model("face_embeddings", model, "load embeddings").await
    }

    /// One person's embeddings of one model (1:1 verification against an enrolled person).
    pub async fn embeddings_of_person(&self, person_id: i64, model: &ModelId) -> Result<Vec<Vec<f32>>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT vector FROM face_embeddings WHERE person_id = $1 AND model_name = $2 AND model_version = $3 ORDER BY id",
                &[&person_id, &model.name, &model.version],
            )
            .await
            .map_err(|source| StorageError::Query { context: "load a person's embeddings", source })?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Every negative of one model (faces rejected as not their person), for the gallery index.
    pub async fn negatives_for_model(&self, model: &ModelId) -> Result<Vec<EmbeddingRow>, StorageError> {
        self.rows_of_model("person_negatives", model, "load negatives").await
    }

    /// (id, person, vector) of one model's rows of `table`, in id order.
    async fn rows_of_model(
        &self,
        table: &'static str,
        model: &ModelId,
        context: &'static str,
    ) -> Result<Vec<EmbeddingRow>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT id, person_id, vector FROM {table} WHERE model_name = $1 AND model_version = $2 ORDER BY id"
                ),
                &[&model.name, &model.version],
            )
            .await
            .map_err(|source| StorageError::Query { context, source })?;
        Ok(rows.iter().map(|r| EmbeddingRow { id: r.get(0), person_id: r.get(1), vector: r.get(2) }).collect())
    }

    /// The signature of the stored embeddings and negatives of one model, to compare with the
    /// in-memory index's.
    pub async fn embedding_signature(&self, model: &ModelId) -> Result<GallerySignature, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "SELECT count(*), coalesce(max(id), 0), coalesce(sum(id), 0)::bigint FROM
                   (SELECT id FROM face_embeddings WHERE model_name = $1 AND model_version = $2
                    UNION ALL
                    SELECT id FROM person_negatives WHERE model_name = $1 AND model_version = $2) AS gallery",
                &[&model.name, &model.version],
            )
            .await
            .map_err(|source| StorageError::Query { context: "read the embeddings' signature", source })?;
        Ok(GallerySignature { count: row.get(0), max_id: row.get(1), id_sum: row.get(2) })
    }
}
