//! Unknown identities (`crate::unknowns`): the grouping's queue and writes, the list an operator
//! reads, and the record of an identity named.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::detections::{from_row, COLUMNS};
use super::{audit, Detection, StorageError, Store};
use crate::embed::ModelId;

fn q(context: &'static str) -> impl Fn(tokio_postgres::Error) -> StorageError {
    move |source| StorageError::Query { context, source }
}

/// Held by the engine that groups: one at a time across every engine on the database.
const GROUPING_LOCK: i64 = 0x7061_6e6f_0001;

/// An ended unknown appearance waiting for an identity, with its best face.
#[derive(Clone, Debug, PartialEq)]
pub struct UngroupedFace {
    pub detection_id: i64,
    pub camera_id: Option<i64>,
    pub detected_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub vector: Vec<f32>,
}

/// An unknown identity as an operator sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnknownIdentity {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    /// Appearances grouped into it.
    pub appearances: i64,
    pub first_seen_at: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// The cameras it was seen on (deleted cameras left out).
    pub cameras: Vec<i64>,
    /// The appearance with its best face (the highest quality).
    pub best_detection_id: Option<i64>,
    /// Set once an operator named it.
    pub named_person_id: Option<i64>,
    pub named_at: Option<DateTime<Utc>>,
}

/// What a merge of two unknown identities did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeOutcome {
    Merged {
        appearances: u64,
    },
    NotFound(i64),
    /// This identity has been named already: it is a person's now.
    Named(i64),
    /// The two were grouped under different embedders.
    OtherModel,
}

const IDENTITY_SELECT: &str = "SELECT u.id, u.created_at, count(d.id), min(d.detected_at),
         max(coalesce(d.last_seen_at, d.detected_at)),
         coalesce(array_agg(DISTINCT d.camera_id) FILTER (WHERE d.camera_id IS NOT NULL), '{}'),
         (SELECT f.detection_id FROM appearance_faces f JOIN detections b ON b.id = f.detection_id
          WHERE b.unknown_id = u.id ORDER BY f.quality DESC, f.detection_id DESC LIMIT 1),
         u.named_person_id, u.named_at
     FROM unknown_identities u LEFT JOIN detections d ON d.unknown_id = u.id";

fn identity_from_row(r: &tokio_postgres::Row) -> UnknownIdentity {
    UnknownIdentity {
        id: r.get(0),
        created_at: r.get(1),
        appearances: r.get(2),
        first_seen_at: r.get(3),
        last_seen_at: r.get(4),
        cameras: r.get(5),
        best_detection_id: r.get(6),
        named_person_id: r.get(7),
        named_at: r.get(8),
    }
}

impl Store {
    /// Runs `pass` while holding the grouping lock on one connection, if no other engine holds it;
    /// answers `None` when another does.
    pub async fn with_grouping_lock<T, F>(&self, pass: F) -> Result<Option<T>, StorageError>
    where
        F: std::future::Future<Output = T>,
    {
        let c = self.client().await?;
        let held: bool = c
            .query_one("SELECT pg_try_advisory_lock($1)", &[&GROUPING_LOCK])
            .await
            .map_err(q("take the grouping lock"))?
            .get(0);
        if !held {
            return Ok(None);
        }
        let out = pass.await;
        // A connection that fails here has lost its session, and the lock with it.
        c.execute("SELECT pg_advisory_unlock($1)", &[&GROUPING_LOCK]).await.map_err(q("release the grouping lock"))?;
        Ok(Some(out))
    }

    /// Up to `limit` ended unknown appearances with a face of `model` and no identity yet, oldest
    /// first.
    pub async fn ungrouped_faces(&self, model: &ModelId, limit: i64) -> Result<Vec<UngroupedFace>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT d.id, d.camera_id, d.detected_at, d.last_seen_at, f.vector
                 FROM detections d JOIN appearance_faces f ON f.detection_id = d.id
                 WHERE d.person_id IS NULL AND d.unknown_id IS NULL AND d.last_seen_at IS NOT NULL
                     AND f.model_name = $1 AND f.model_version = $2
                 ORDER BY d.id LIMIT $3",
                &[&model.name, &model.version, &limit],
            )
            .await
            .map_err(q("read ungrouped unknown appearances"))?;
        Ok(rows
            .iter()
            .map(|r| UngroupedFace {
                detection_id: r.get(0),
                camera_id: r.get(1),
                detected_at: r.get(2),
                last_seen_at: r.get(3),
                vector: r.get(4),
            })
            .collect())
    }

    /// Whether identity `unknown_id` was seen on `camera_id` at some time in `from..=until`: the
    /// same person cannot be two faces of one camera at once.
    pub async fn unknown_seen_meanwhile(
        &self,
        unknown_id: i64,
        camera_id: i64,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM detections WHERE unknown_id = $1 AND camera_id = $2
                     AND detected_at <= $4 AND coalesce(last_seen_at, detected_at) >= $3)",
                &[&unknown_id, &camera_id, &from, &until],
            )
            .await
            .map_err(q("check an unknown identity's other appearances"))?;
        Ok(row.get(0))
    }

    /// Gives appearance `detection_id` identity `unknown_id` (`None`: a new identity of `model`), if
    /// it is still unknown and ungrouped; answers the identity, or `None` when it no longer waits.
    pub async fn group_appearance(
        &self,
        detection_id: i64,
        unknown_id: Option<i64>,
        model: &ModelId,
    ) -> Result<Option<i64>, StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(q("begin grouping"))?;
        let waiting = tx
            .query_opt(
                "SELECT 1 FROM detections WHERE id = $1 AND person_id IS NULL AND unknown_id IS NULL FOR UPDATE",
                &[&detection_id],
            )
            .await
            .map_err(q("lock an ungrouped appearance"))?
            .is_some();
        if !waiting {
            return Ok(None);
        }
        let id: i64 = match unknown_id {
            Some(id) => id,
            None => tx
                .query_one(
                    "INSERT INTO unknown_identities (model_name, model_version) VALUES ($1, $2) RETURNING id",
                    &[&model.name, &model.version],
                )
                .await
                .map_err(q("create an unknown identity"))?
                .get(0),
        };
        tx.execute("UPDATE detections SET unknown_id = $2 WHERE id = $1", &[&detection_id, &id])
            .await
            .map_err(q("group an appearance"))?;
        tx.commit().await.map_err(q("commit grouping"))?;
        Ok(Some(id))
    }

    /// Unknown identities, the newest first, older than `before` when given; named ones only when
    /// `named`.
    pub async fn list_unknowns(
        &self,
        before: Option<i64>,
        limit: i64,
        named: bool,
    ) -> Result<Vec<UnknownIdentity>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "{IDENTITY_SELECT} WHERE ($1::bigint IS NULL OR u.id < $1) AND (u.named_person_id IS NOT NULL) = $3
                     GROUP BY u.id ORDER BY u.id DESC LIMIT $2"
                ),
                &[&before, &limit, &named],
            )
            .await
            .map_err(q("list unknown identities"))?;
        Ok(rows.iter().map(identity_from_row).collect())
    }

    pub async fn unknown(&self, id: i64) -> Result<Option<UnknownIdentity>, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_opt(&format!("{IDENTITY_SELECT} WHERE u.id = $1 GROUP BY u.id"), &[&id])
            .await
            .map_err(q("read an unknown identity"))?;
        Ok(row.as_ref().map(identity_from_row))
    }

    /// The appearances of identity `id` still unknown (not yet confirmed as someone), best face
    /// first.
    pub async fn unknown_members(&self, id: i64) -> Result<Vec<Detection>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM detections WHERE unknown_id = $1 AND person_id IS NULL
                     ORDER BY (SELECT f.quality FROM appearance_faces f WHERE f.detection_id = detections.id)
                         DESC NULLS LAST, id DESC"
                ),
                &[&id],
            )
            .await
            .map_err(q("list an unknown identity's appearances"))?;
        Ok(rows.iter().map(from_row).collect())
    }

    /// Records that identity `id` was named as `person_id` by `actor` (answers false if it was named
    /// meanwhile), with its audit entry.
    pub async fn mark_unknown_named(
        &self,
        id: i64,
        person_id: i64,
        actor: &str,
        details: serde_json::Value,
    ) -> Result<bool, StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(q("begin naming"))?;
        let n = tx
            .execute(
                "UPDATE unknown_identities SET named_person_id = $2, named_by = $3, named_at = now()
                 WHERE id = $1 AND named_person_id IS NULL",
                &[&id, &person_id, &actor],
            )
            .await
            .map_err(q("name an unknown identity"))?;
        if n == 0 {
            return Ok(false);
        }
        audit::record(&tx, actor, "name_unknown", &format!("unknown:{id}"), details).await?;
        tx.commit().await.map_err(q("commit naming"))?;
        Ok(true)
    }

    /// When identity `id`'s appearances began (alert rules count the days it was seen on).
    pub async fn unknown_sightings(&self, id: i64) -> Result<Vec<DateTime<Utc>>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query("SELECT detected_at FROM detections WHERE unknown_id = $1", &[&id])
            .await
            .map_err(q("read when an unknown identity was seen"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Merges identity `from` into `into` (an operator's judgement that they are one stranger): its
    /// appearances move, it is deleted, and the audit trail says who did it.
    pub async fn merge_unknowns(&self, from: i64, into: i64, actor: &str) -> Result<MergeOutcome, StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(q("begin merging"))?;
        let rows = tx
            .query(
                "SELECT id, model_name, model_version, named_person_id FROM unknown_identities
                 WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                &[&vec![from, into]],
            )
            .await
            .map_err(q("lock unknown identities to merge"))?;
        let find = |id: i64| rows.iter().find(|r| r.get::<_, i64>(0) == id);
        let (Some(a), Some(b)) = (find(from), find(into)) else {
            let missing = if find(from).is_none() { from } else { into };
            return Ok(MergeOutcome::NotFound(missing));
        };
        for r in [a, b] {
            if r.get::<_, Option<i64>>(3).is_some() {
                return Ok(MergeOutcome::Named(r.get(0)));
            }
        }
        if (a.get::<_, String>(1), a.get::<_, String>(2)) != (b.get::<_, String>(1), b.get::<_, String>(2)) {
            return Ok(MergeOutcome::OtherModel);
        }
        let moved = tx
            .execute("UPDATE detections SET unknown_id = $2 WHERE unknown_id = $1", &[&from, &into])
            .await
            .map_err(q("move an unknown identity's appearances"))?;
        tx.execute("DELETE FROM unknown_identities WHERE id = $1", &[&from])
            .await
            .map_err(q("delete a merged unknown identity"))?;
        let details = serde_json::json!({ "into": into, "appearances": moved });
        audit::record(&tx, actor, "merge_unknown", &format!("unknown:{from}"), details).await?;
        tx.commit().await.map_err(q("commit merging"))?;
        Ok(MergeOutcome::Merged { appearances: moved })
    }

    /// Deletes identities none of whose appearances is left (retention took them); answers how many.
    pub async fn delete_empty_unknowns(&self) -> Result<u64, StorageError> {
        let c = self.client().await?;
        c.execute(
            "DELETE FROM unknown_identities u WHERE NOT EXISTS (SELECT 1 FROM detections d WHERE d.unknown_id = u.id)
                 AND u.created_at < now() - interval '1 hour'",
            &[],
        )
        .await
        .map_err(q("delete empty unknown identities"))
    }
}
