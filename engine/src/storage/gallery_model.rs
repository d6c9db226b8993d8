//! Which embedding model the gallery serves with, and the switch to another: the `gallery_model` row
//! (active and target model), the kept photos still to be embedded with the target, and those it
//! could not embed.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{StorageError, Store};
use crate::embed::ModelId;

/// The database's gallery model: every engine compares faces with `active`'s vectors; `target` is
/// the model the kept photos are being re-embedded with (equal to `active` when no switch is under
/// way).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GalleryModelState {
    pub active: ModelId,
    pub target: ModelId,
    pub changed_at: DateTime<Utc>,
    /// The node (or `cli`) that made the last change.
    pub changed_by: String,
}

impl GalleryModelState {
    pub fn switching(&self) -> bool {
        self.active != self.target
    }
}

/// A kept enrollment photo that has no embedding of some model yet.
#[derive(Clone, Debug)]
pub struct PhotoToEmbed {
    pub photo_id: i64,
    pub person_id: i64,
    pub person_name: String,
    /// The photo's identity for the embedding row (the original upload's sha256).
    pub source_sha256: String,
    pub jpeg: Vec<u8>,
}

/// A kept photo a model could not embed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReembedFailure {
    pub photo_id: i64,
    pub person_id: i64,
    pub person: String,
    pub reason: String,
}

/// How far the kept photos are embedded with one model.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EmbeddingCoverage {
    /// Kept enrollment photos.
    pub photos: i64,
    /// Of those, embedded with the model.
    pub embedded: i64,
    /// Of those, the model could not embed (see `failures`).
    pub failed: i64,
    pub failures: Vec<ReembedFailure>,
    /// Persons with stored embeddings of other models but none of this one and no kept photo to
    /// make one from (enrolled before photos were kept): they must be enrolled again.
    pub without_photos: Vec<String>,
}

impl EmbeddingCoverage {
    pub fn pending(&self) -> i64 {
        (self.photos - self.embedded - self.failed).max(0)
    }
}

/// The photo's identity: the upload's sha256, or for a copy kept before it was recorded, its own.
const PHOTO_SOURCE: &str = "coalesce(pp.source_sha256, 'kept:' || encode(sha256(pp.jpeg), 'hex'))";

fn model_of(name: String, version: String) -> ModelId {
    ModelId { name, version }
}

impl Store {
    /// The gallery model row, `None` on a database no engine has started on since version 8.
    pub async fn gallery_model(&self) -> Result<Option<GalleryModelState>, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT active_name, active_version, target_name, target_version, changed_at, changed_by
                 FROM gallery_model",
                &[],
            )
            .await
            .map_err(|source| StorageError::Query { context: "read the gallery model", source })?;
        Ok(row.map(|r| GalleryModelState {
            active: model_of(r.get(0), r.get(1)),
            target: model_of(r.get(2), r.get(3)),
            changed_at: r.get(4),
            changed_by: r.get(5),
        }))
    }

    /// Makes `model` the target (what this engine is configured with). On a database without the row,
    /// the active model is the one most stored embeddings come from (what served until now), or
    /// `model` when there are none. Returns the state after.
    pub async fn aim_gallery_model(&self, model: &ModelId, by: &str) -> Result<GalleryModelState, StorageError> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO gallery_model (active_name, active_version, target_name, target_version, changed_by)
             SELECT coalesce(m.model_name, $1), coalesce(m.model_version, $2), $1, $2, $3
             FROM (SELECT 1) one LEFT JOIN LATERAL (
                 SELECT model_name, model_version FROM face_embeddings
                 GROUP BY 1, 2 ORDER BY count(*) DESC, max(id) DESC LIMIT 1) m ON true
             ON CONFLICT (singleton) DO UPDATE
                 SET target_name = EXCLUDED.target_name, target_version = EXCLUDED.target_version,
                     changed_at = now(), changed_by = EXCLUDED.changed_by
                 WHERE (gallery_model.target_name, gallery_model.target_version)
                       IS DISTINCT FROM (EXCLUDED.target_name, EXCLUDED.target_version)",
            &[&model.name, &model.version, &by],
        )
        .await
        .map_err(|source| StorageError::Query { context: "set the gallery's target model", source })?;
        drop(c);
        self.gallery_model().await?.ok_or_else(|| StorageError::Unavailable("the gallery model row vanished".into()))
    }

    /// Serves `target` from now on, if it is still the target and not already active. Returns whether
    /// this call made the switch.
    pub async fn activate_target(&self, target: &ModelId, by: &str) -> Result<bool, StorageError> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE gallery_model SET active_name = target_name, active_version = target_version,
                     changed_at = now(), changed_by = $3
                 WHERE target_name = $1 AND target_version = $2
                   AND (active_name, active_version) IS DISTINCT FROM (target_name, target_version)",
                &[&target.name, &target.version, &by],
            )
            .await
            .map_err(|source| StorageError::Query { context: "activate the target model", source })?;
        Ok(n == 1)
    }

    /// Up to `limit` kept photos with neither an embedding of `model` nor a recorded failure of it.
    pub async fn photos_to_embed(&self, model: &ModelId, limit: i64) -> Result<Vec<PhotoToEmbed>, StorageError> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT pp.id, pp.person_id, p.name, {PHOTO_SOURCE}, pp.jpeg
             FROM person_photos pp JOIN persons p ON p.id = pp.person_id
             WHERE NOT EXISTS (SELECT 1 FROM face_embeddings e WHERE e.person_id = pp.person_id
                                 AND e.model_name = $1 AND e.model_version = $2 AND e.source_sha256 = {PHOTO_SOURCE})
               AND NOT EXISTS (SELECT 1 FROM reembed_failures f WHERE f.photo_id = pp.id
                                 AND f.model_name = $1 AND f.model_version = $2)
             ORDER BY pp.id LIMIT $3"
        );
        let rows = c
            .query(&sql, &[&model.name, &model.version, &limit])
            .await
            .map_err(|source| StorageError::Query { context: "read photos to embed", source })?;
        Ok(rows
            .iter()
            .map(|r| PhotoToEmbed {
                photo_id: r.get(0),
                person_id: r.get(1),
                person_name: r.get(2),
                source_sha256: r.get(3),
                jpeg: r.get(4),
            })
            .collect())
    }

    /// Records that `model` could not embed a kept photo, so it is reported rather than retried.
    pub async fn record_reembed_failure(
        &self,
        photo_id: i64,
        model: &ModelId,
        reason: &str,
    ) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO reembed_failures (photo_id, model_name, model_version, reason) VALUES ($1, $2, $3, $4)
             ON CONFLICT (photo_id, model_name, model_version) DO UPDATE SET reason = EXCLUDED.reason, failed_at = now()",
            &[&photo_id, &model.name, &model.version, &reason],
        )
        .await
        .map_err(|source| StorageError::Query { context: "record a re-embedding failure", source })?;
        Ok(())
    }

    /// How far the kept photos are embedded with `model`, with every failure and every person left
    /// without a way to get an embedding of it.
    pub async fn embedding_coverage(&self, model: &ModelId) -> Result<EmbeddingCoverage, StorageError> {
        let c = self.client().await?;
        let q = |context| move |source| StorageError::Query { context, source };
        let counts = format!(
            "SELECT count(*),
                    count(*) FILTER (WHERE EXISTS (SELECT 1 FROM face_embeddings e WHERE e.person_id = pp.person_id
                        AND e.model_name = $1 AND e.model_version = $2 AND e.source_sha256 = {PHOTO_SOURCE})),
                    count(*) FILTER (WHERE EXISTS (SELECT 1 FROM reembed_failures f WHERE f.photo_id = pp.id
                        AND f.model_name = $1 AND f.model_version = $2))
             FROM person_photos pp"
        );
        let row = c.query_one(&counts, &[&model.name, &model.version]).await.map_err(q("count embedded photos"))?;
        let failures = c
            .query(
                "SELECT f.photo_id, pp.person_id, p.name, f.reason FROM reembed_failures f
                 JOIN person_photos pp ON pp.id = f.photo_id JOIN persons p ON p.id = pp.person_id
                 WHERE f.model_name = $1 AND f.model_version = $2 ORDER BY p.name, f.photo_id",
                &[&model.name, &model.version],
            )
            .await
            .map_err(q("read re-embedding failures"))?
            .iter()
            .map(|r| ReembedFailure { photo_id: r.get(0), person_id: r.get(1), person: r.get(2), reason: r.get(3) })
            .collect();
        let without_photos = c
            .query(
                "SELECT p.name FROM persons p
                 WHERE EXISTS (SELECT 1 FROM face_embeddings e WHERE e.person_id = p.id)
                   AND NOT EXISTS (SELECT 1 FROM face_embeddings e WHERE e.person_id = p.id
                                     AND e.model_name = $1 AND e.model_version = $2)
                   AND NOT EXISTS (SELECT 1 FROM person_photos pp WHERE pp.person_id = p.id)
                 ORDER BY p.name",
                &[&model.name, &model.version],
            )
            .await
            .map_err(q("read persons without kept photos"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok(EmbeddingCoverage { photos: row.get(0), embedded: row.get(1), failed: row.get(2), failures, without_photos })
    }

    /// Stored embeddings per model, most first.
    pub async fn embeddings_per_model(&self) -> Result<Vec<(ModelId, i64)>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT model_name, model_version, count(*) FROM face_embeddings GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2",
                &[],
            )
            .await
            .map_err(|source| StorageError::Query { context: "count embeddings per model", source })?;
        Ok(rows.iter().map(|r| (model_of(r.get(0), r.get(1)), r.get(2))).collect())
    }
}

/// Held by the one engine re-embedding photos at a time: a PostgreSQL advisory lock on a connection
/// of its own, taken out of the pool, so that the lock goes with the connection when this is dropped
/// or the process dies.
pub struct ReembedLock {
    _client: deadpool_postgres::ClientWrapper,
}

/// Arbitrary constant key for the re-embedding lock ("REEMBED").
const REEMBED_LOCK_KEY: i64 = 0x0052_4545_4d42_4544;

impl Store {
    /// The re-embedding lock, or `None` when another engine holds it.
    pub async fn try_reembed_lock(&self) -> Result<Option<ReembedLock>, StorageError> {
        let c = self.client().await?;
        let got: bool = c
            .query_one("SELECT pg_try_advisory_lock($1)", &[&REEMBED_LOCK_KEY])
            .await
            .map_err(|source| StorageError::Query { context: "take the re-embedding lock", source })?
            .get(0);
        // Taken out of the pool either way: a connection that holds a session lock must never be
        // lent to anyone else.
        let client = deadpool_postgres::Object::take(c);
        Ok(got.then_some(ReembedLock { _client: client }))
    }
}
