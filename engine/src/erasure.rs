//! Erasure of a person, and its record. By default their biometric data goes: embeddings, enrolment
//! photos, and the face pictures and face embeddings of their appearances (the appearances stay, as unknown faces, with
//! their context frames: they are what the site saw, and expire as unknown faces do). `All` also
//! deletes the appearances themselves, their context frames, and refused rows that named them.
//!
//! Pictures are deleted while the rows are still locked in the same transaction, and the transaction
//! is committed only once they are gone, so a failure leaves the person in place to erase again,
//! never rows erased with pictures left behind. The record (`erasures`) keeps no name, photo or
//! vector: the person's number, what was removed, who asked and when. An appearance still open at
//! the erasure is refused by the database when it ends (its person is gone); [`remove_leftovers`]
//! deletes such rows and their pictures at the next retention sweep.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::snapshot::{SnapshotError, SnapshotKind, SnapshotStore};
use crate::storage::{StorageError, Store};

/// What to erase of a person.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErasureScope {
    /// Embeddings, enrolment photos and the face pictures of their appearances.
    #[default]
    Biometrics,
    /// Also their appearances (rows and context frames) and refused rows naming them.
    All,
}

impl ErasureScope {
    pub fn as_str(self) -> &'static str {
        match self {
            ErasureScope::Biometrics => "biometrics",
            ErasureScope::All => "all",
        }
    }
}

/// Counts of what an erasure removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Removed {
    pub embeddings: u64,
    pub photos: u64,
    /// Embeddings of their appearances' best faces.
    #[serde(default)]
    pub appearance_faces: u64,
    /// Faces rejected as not them (their negatives).
    #[serde(default)]
    pub negatives: u64,
    /// Reviews that named them (confirmed as, or rejected as not, them): the appearances stand as
    /// the engine judged them again, open to review.
    #[serde(default)]
    pub reviews: u64,
    /// Face pictures of their appearances.
    pub face_snapshots: u64,
    /// Context frames of their appearances (`All` only).
    pub frame_snapshots: u64,
    /// Appearance rows (`All` only).
    pub detections: u64,
    /// Rows the database had refused that named them (`All` only).
    pub dead_letters: u64,
}

/// The answer to an erasure, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Erasure {
    /// The record's id in `erasures`.
    pub id: i64,
    pub person_id: i64,
    pub scope: ErasureScope,
    pub removed: Removed,
    /// Appearances kept as unknown faces (`Biometrics`: no longer linked to anyone).
    pub detections_unlinked: u64,
    /// Snapshots their rows named whose face picture was not on this node's disk (expired, or under
    /// another `snapshots.dir`: then it is still there).
    pub snapshots_not_found: u64,
    pub requested_by: String,
    pub erased_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("deleting the person's snapshots")]
    Snapshots(#[source] SnapshotError),
    #[error("the person has {0} snapshot(s) but no snapshot store is reachable from here")]
    NoSnapshotStore(usize),
    #[error("deleting the person's snapshots stopped: {0}")]
    Interrupted(String),
}

impl ErasureError {
    /// The database was unreachable or busy: trying again later may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ErasureError::Storage(e) if !e.is_permanent())
    }
}

/// Erases person `person_id` (see the module's text); `None` when there is no such person. The caller
/// removes the person from any in-memory gallery before (so no new appearance names them meanwhile).
pub async fn erase_person(
    store: &Store,
    snapshots: Option<&Arc<SnapshotStore>>,
    person_id: i64,
    scope: ErasureScope,
    requested_by: &str,
) -> Result<Option<Erasure>, ErasureError> {
    let q = |context: &'static str| move |source| StorageError::Query { context, source };
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(q("begin erasure"))?;
    if tx
        .query_opt("SELECT 1 FROM persons WHERE id = $1 FOR UPDATE", &[&person_id])
        .await
        .map_err(q("lock person"))?
        .is_none()
    {
        return Ok(None);
    }
    // Refused rows keep the detection as JSON; theirs carry the person's id as a number.
    let as_text = person_id.to_string();
    let stems: Vec<String> = tx
        .query(
            "SELECT snapshot_path FROM detections WHERE person_id = $1 AND snapshot_path IS NOT NULL
             UNION
             SELECT detection->>'snapshot_path' FROM detections_dead_letter
             WHERE detection->>'person_id' = $2 AND detection->>'snapshot_path' IS NOT NULL",
            &[&person_id, &as_text],
        )
        .await
        .map_err(q("find the person's snapshots"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut removed = Removed {
        photos: tx
            .execute("DELETE FROM person_photos WHERE person_id = $1", &[&person_id])
            .await
            .map_err(q("erase photos"))?,
        embeddings: tx
            .execute("DELETE FROM face_embeddings WHERE person_id = $1", &[&person_id])
            .await
            .map_err(q("erase embeddings"))?,
        appearance_faces: tx
            .execute(
                "DELETE FROM appearance_faces f USING detections d WHERE d.id = f.detection_id AND d.person_id = $1",
                &[&person_id],
            )
            .await
            .map_err(q("erase appearance faces"))?,
        ..Removed::default()
    };
    let mut detections_unlinked = 0;
    let mut snapshots_not_found = 0;
    match scope {
        ErasureScope::All => {
            removed.detections = tx
                .execute("DELETE FROM detections WHERE person_id = $1", &[&person_id])
                .await
                .map_err(q("erase appearances"))?;
            removed.dead_letters = tx
                .execute("DELETE FROM detections_dead_letter WHERE detection->>'person_id' = $1", &[&as_text])
                .await
                .map_err(q("erase refused appearances"))?;
        }
        ErasureScope::Biometrics => {
            // Unlinked by the foreign key (ON DELETE SET NULL) when the person goes.
            let row = tx
                .query_one("SELECT count(*) FROM detections WHERE person_id = $1", &[&person_id])
                .await
                .map_err(q("count appearances"))?;
            detections_unlinked = row.get::<_, i64>(0) as u64;
            tx.execute(
                "UPDATE detections_dead_letter SET detection = jsonb_set(detection, '{person_id}', 'null')
                 WHERE detection->>'person_id' = $1",
                &[&as_text],
            )
            .await
            .map_err(q("unlink refused appearances"))?;
        }
    }
    removed.negatives = tx
        .execute("DELETE FROM person_negatives WHERE person_id = $1", &[&person_id])
        .await
        .map_err(q("erase negatives"))?;
    // A reviewed row keeps its person against the engine's later writes; with the person gone it
    // must not: a row still being written is then refused like any other of an erased person.
    // (One review per row: the rows updated are the reviews deleted.)
    removed.reviews = tx
        .execute(
            "WITH gone AS (DELETE FROM detection_reviews WHERE person_id = $1 RETURNING detection_id)
             UPDATE detections SET review = NULL WHERE id IN (SELECT detection_id FROM gone)",
            &[&person_id],
        )
        .await
        .map_err(q("erase reviews"))?;
    // Their appearances leave any unknown identity they were grouped into, and an identity named as
    // them goes: the person's appearances must not come back as a stranger's.
    tx.execute(
        "UPDATE detections SET unknown_id = NULL WHERE person_id = $1 AND unknown_id IS NOT NULL",
        &[&person_id],
    )
    .await
    .map_err(q("ungroup appearances"))?;
    tx.execute("DELETE FROM unknown_identities WHERE named_person_id = $1", &[&person_id])
        .await
        .map_err(q("erase named unknown identities"))?;
    tx.execute("DELETE FROM persons WHERE id = $1", &[&person_id]).await.map_err(q("erase person"))?;

    // The pictures, before the commit (see the module's text).
    if !stems.is_empty() {
        let Some(snapshots) = snapshots else { return Err(ErasureError::NoSnapshotStore(stems.len())) };
        let stems_len = stems.len() as u64;
        let (faces, frames) = remove_pictures(snapshots.clone(), stems, scope).await?;
        snapshots_not_found = stems_len - faces;
        removed.face_snapshots = faces;
        removed.frame_snapshots = frames;
    }
    let summary = serde_json::to_value(&removed).unwrap_or_default();
    let row = tx
        .query_one(
            "INSERT INTO erasures (person_id, scope, removed, requested_by) VALUES ($1, $2, $3, $4)
             RETURNING id, erased_at",
            &[&person_id, &scope.as_str(), &summary, &requested_by],
        )
        .await
        .map_err(q("record the erasure"))?;
    tx.commit().await.map_err(q("commit erasure"))?;
    Ok(Some(Erasure {
        id: row.get(0),
        person_id,
        scope,
        removed,
        detections_unlinked,
        snapshots_not_found,
        requested_by: requested_by.to_string(),
        erased_at: row.get(1),
    }))
}

/// Rows refused after their person was erased (an appearance still open at the erasure, written when
/// it ended: the person was gone, so the database refused it into `detections_dead_letter`) are
/// deleted with their pictures; answers how many. Run by every retention sweep.
pub async fn remove_leftovers(store: &Store, snapshots: Option<&Arc<SnapshotStore>>) -> Result<u64, ErasureError> {
    let q = |context: &'static str| move |source| StorageError::Query { context, source };
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(q("begin removing erased leftovers"))?;
    let stems: Vec<Option<String>> = tx
        .query(
            "DELETE FROM detections_dead_letter d USING erasures e
             WHERE d.detection->>'person_id' = e.person_id::text
             RETURNING d.detection->>'snapshot_path'",
            &[],
        )
        .await
        .map_err(q("remove erased leftovers"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let n = stems.len() as u64;
    let stems: Vec<String> = stems.into_iter().flatten().collect();
    if !stems.is_empty() {
        let Some(snapshots) = snapshots else { return Err(ErasureError::NoSnapshotStore(stems.len())) };
        remove_pictures(snapshots.clone(), stems, ErasureScope::All).await?;
    }
    tx.commit().await.map_err(q("commit removing erased leftovers"))?;
    Ok(n)
}

/// (face pictures, context frames) deleted, on the blocking pool.
async fn remove_pictures(
    snapshots: Arc<SnapshotStore>,
    stems: Vec<String>,
    scope: ErasureScope,
) -> Result<(u64, u64), ErasureError> {
    tokio::task::spawn_blocking(move || {
        let (mut faces, mut frames) = (0, 0);
        let remove = |stem: &str, kind| match snapshots.remove_pictures(stem, &[kind]) {
            Ok(removed) => Ok(u64::from(removed)),
            // Not a path of the snapshot tree (a row written by hand): no file of ours to delete.
            Err(SnapshotError::BadReference(_)) => Ok(0),
            Err(e) => Err(e),
        };
        for stem in &stems {
            faces += remove(stem, SnapshotKind::Face)?;
            if scope == ErasureScope::All {
                frames += remove(stem, SnapshotKind::Frame)?;
            }
        }
        Ok((faces, frames))
    })
    .await
    .map_err(|e| ErasureError::Interrupted(e.to_string()))?
    .map_err(ErasureError::Snapshots)
}
