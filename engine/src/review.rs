//! Identity decisions by an operator: confirming an appearance as a person teaches the gallery that
//! face (its best face's picture goes through the usual enrolment checks and is enrolled, photo kept
//! for future models); rejecting a match makes the face one of the person's negatives (see
//! `crate::gallery`: from then on a face closer to it than to the person's enrolled faces is not
//! matched to them) and the appearance unknown. Either can be undone. Each action is recorded with
//! who did it in the audit trail, in the same transaction; the appearance keeps the reviewed person
//! even when the engine writes it again (it may still be going on).

use std::sync::RwLock;

use crate::enrollment::{store_enrollment, EnrollError, Enrolled, PreparedFace};
use crate::gallery::Gallery;
use crate::snapshot::{SnapshotKind, SnapshotStore};
use crate::storage::{Detection, ReviewRecord, StorageError, Store};

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("appearance {0} not found")]
    NotFound(i64),
    #[error("appearance {id} is already {review}; undo that review first")]
    AlreadyReviewed { id: i64, review: String },
    #[error("appearance {0} changed while it was being reviewed (the engine judged it again); look again")]
    ChangedMeanwhile(i64),
    #[error("appearance {0} has no review to undo")]
    NotReviewed(i64),
    #[error("appearance {0} is of an unknown face: say who it is with person_id")]
    PersonRequired(i64),
    #[error("person {0} not found")]
    PersonNotFound(i64),
    #[error("appearance {0} is not matched to anyone: there is no match to reject")]
    NotMatched(i64),
    #[error("appearance {0} has no stored face (none was kept, or it has expired)")]
    NoStoredFace(i64),
    #[error("the appearance's face cannot be enrolled: {0}")]
    Enroll(#[source] EnrollError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ReviewError {
    /// A stable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            ReviewError::NotFound(_) => "detection_not_found",
            ReviewError::AlreadyReviewed { .. } => "already_reviewed",
            ReviewError::ChangedMeanwhile(_) => "changed_meanwhile",
            ReviewError::NotReviewed(_) => "not_reviewed",
            ReviewError::PersonRequired(_) => "person_required",
            ReviewError::PersonNotFound(_) => "person_not_found",
            ReviewError::NotMatched(_) => "not_matched",
            ReviewError::NoStoredFace(_) => "no_stored_face",
            ReviewError::Enroll(e) => e.code(),
            ReviewError::Storage(_) => "storage",
        }
    }
}

/// Appearance `id`, if it exists and stands as the engine judged it.
pub async fn reviewable(store: &Store, id: i64) -> Result<Detection, ReviewError> {
    let d = store.get_detection(id).await?.ok_or(ReviewError::NotFound(id))?;
    if let Some(review) = &d.review {
        return Err(ReviewError::AlreadyReviewed { id, review: review.clone() });
    }
    Ok(d)
}

/// The picture of an appearance's best face, to enrol: its snapshot's face crop, set in a grey
/// border as wide as itself. The crop is tight (30 % around the box), and the detector scores a face
/// that fills the picture well below the same face in its frame: 0.68 for a clearly detected face
/// in `tests/review.rs`, which the enrolment's 0.75 check refused.
pub fn face_picture(snapshots: Option<&SnapshotStore>, d: &Detection) -> Result<Vec<u8>, ReviewError> {
    let (Some(snapshots), Some(stem)) = (snapshots, d.snapshot_path.as_deref()) else {
        return Err(ReviewError::NoStoredFace(d.id));
    };
    let unreadable = |e: &dyn std::fmt::Display| {
        tracing::info!(detection_id = d.id, error = %e, "an appearance's face picture could not be read");
        ReviewError::NoStoredFace(d.id)
    };
    let jpeg = snapshots.read(stem, SnapshotKind::Face).map_err(|e| unreadable(&e))?;
    let crop = image::load_from_memory(&jpeg).map_err(|e| unreadable(&e))?.to_rgb8();
    let (w, h) = crop.dimensions();
    let mut framed = image::RgbImage::from_pixel(w * 2, h * 2, image::Rgb([128, 128, 128]));
    image::imageops::replace(&mut framed, &crop, i64::from(w / 2), i64::from(h / 2));
    crate::image_resize::jpeg(&framed, 95).map_err(|e| unreadable(&e))
}

/// Confirms appearance `d` as `person_id` with its face, prepared for enrolment by the caller
/// (after [`face_picture`]): the face is enrolled, and the appearance is theirs.
pub async fn confirm(
    store: &Store,
    gallery: &RwLock<Gallery>,
    d: &Detection,
    person_id: i64,
    face: &PreparedFace,
    actor: &str,
) -> Result<Enrolled, ReviewError> {
    let enrolled = store_enrollment(store, gallery, person_id, face).await.map_err(|e| match e {
        EnrollError::Storage(s) => ReviewError::Storage(s),
        other => ReviewError::Enroll(other),
    })?;
    let recorded = store.record_confirmation(d.id, person_id, enrolled.embedding_id, actor).await;
    match recorded {
        Ok(true) => {}
        Ok(false) => {
            // Reviewed meanwhile. The same confirmation (a double click) stands with this face, which
            // it may have enrolled as well: keep it. Any other review stands without it.
            let standing = store.review_of(d.id).await?;
            if !standing.is_some_and(|r| r.action == "confirm" && r.person_id == person_id) {
                forget_face(store, gallery, enrolled.embedding_id).await?;
            }
            return Err(already_reviewed(store, d.id).await);
        }
        Err(e) => {
            // Not recorded: the face must not stay enrolled without its review and audit entry.
            if let Err(again) = forget_face(store, gallery, enrolled.embedding_id).await {
                tracing::error!(detection_id = d.id, error = %again, "a face enrolled by a failed confirmation could not be removed");
            }
            return Err(e.into());
        }
    }
    tracing::info!(detection_id = d.id, person_id, embedding_id = enrolled.embedding_id, actor, "appearance confirmed");
    Ok(enrolled)
}

/// Rejects the match of appearance `id`: its best face becomes a negative of the person it was
/// matched to, and the appearance is unknown. Answers the person and the negative's id.
pub async fn reject(store: &Store, gallery: &RwLock<Gallery>, id: i64, actor: &str) -> Result<(i64, i64), ReviewError> {
    let d = reviewable(store, id).await?;
    let person_id = d.person_id.ok_or(ReviewError::NotMatched(id))?;
    let face = store.appearance_face(id).await?.ok_or(ReviewError::NoStoredFace(id))?;
    let Some(negative_id) = store.record_rejection(id, person_id, &face, actor).await? else {
        return Err(already_reviewed(store, id).await);
    };
    let mut g = write(gallery);
    // A face of another model (the gallery switched since) waits for the index of its model.
    if g.model() == &face.model {
        if let Err(e) = g.insert_negative(negative_id, person_id, &face.vector) {
            tracing::error!(negative_id, error = %e, "a stored negative was refused by the gallery");
        }
    }
    tracing::info!(detection_id = id, person_id, negative_id, actor, "appearance rejected");
    Ok((person_id, negative_id))
}

/// Undoes the review standing on appearance `id`.
pub async fn undo(store: &Store, gallery: &RwLock<Gallery>, id: i64, actor: &str) -> Result<ReviewRecord, ReviewError> {
    store.get_detection(id).await?.ok_or(ReviewError::NotFound(id))?;
    let (review, removed) = store.undo_review(id, actor).await?.ok_or(ReviewError::NotReviewed(id))?;
    forget(gallery, removed);
    if let Some(n) = review.negative_id {
        write(gallery).remove_negative(n);
    }
    tracing::info!(detection_id = id, action = %review.action, actor, "review undone");
    Ok(review)
}

/// Removes a face a confirmation enrolled but does not stand on.
async fn forget_face(store: &Store, gallery: &RwLock<Gallery>, embedding_id: Option<i64>) -> Result<(), ReviewError> {
    if let Some(e) = embedding_id {
        forget(gallery, store.remove_enrolled_face(e).await?);
    }
    Ok(())
}

/// Takes removed embeddings out of the live gallery.
fn forget(gallery: &RwLock<Gallery>, embeddings: Vec<i64>) {
    let mut g = write(gallery);
    for e in embeddings {
        g.remove_embedding(e);
    }
}

/// Why a review was not recorded after the checks passed: another review came first, or the
/// engine judged the appearance again meanwhile.
async fn already_reviewed(store: &Store, id: i64) -> ReviewError {
    match store.get_detection(id).await {
        Ok(Some(Detection { review: Some(review), .. })) => ReviewError::AlreadyReviewed { id, review },
        Ok(Some(_)) => ReviewError::ChangedMeanwhile(id),
        Err(_) => ReviewError::AlreadyReviewed { id, review: "reviewed".into() },
        Ok(None) => ReviewError::NotFound(id),
    }
}

/// A poisoned lock only means another thread panicked mid-update of plain data: keep serving.
fn write(gallery: &RwLock<Gallery>) -> std::sync::RwLockWriteGuard<'_, Gallery> {
    gallery.write().unwrap_or_else(|p| p.into_inner())
}
