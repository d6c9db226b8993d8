//! Enrollment: a photo must show exactly one face, large and clear enough to be a reliable reference.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::gallery::Gallery;
use crate::pipeline::{AnalyzedFace, FacePipeline, PipelineError};
use crate::storage::{NewEmbedding, StorageError, Store};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnrollmentPolicy {
    /// Smallest accepted face width, in pixels of the photo.
    pub min_face_px: f32,
    /// Smallest accepted detection score.
    pub min_score: f32,
}

impl Default for EnrollmentPolicy {
    fn default() -> Self {
        Self { min_face_px: 80.0, min_score: 0.75 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("no face found in the photo")]
    NoFace,
    #[error("{0} faces found in the photo; an enrollment photo must show exactly one")]
    SeveralFaces(usize),
    #[error("the face is {width:.0} px wide, smaller than the {min:.0} px required")]
    FaceTooSmall { width: f32, min: f32 },
    #[error("the face is unclear (detection score {score:.2}, at least {min:.2} required)")]
    LowScore { score: f32, min: f32 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl EnrollError {
    pub fn code(&self) -> &'static str {
        match self {
            EnrollError::Pipeline(PipelineError::Image(e)) => e.code(),
            EnrollError::Pipeline(PipelineError::Model(_)) => "inference_failed",
            EnrollError::NoFace => "no_face",
            EnrollError::SeveralFaces(_) => "several_faces",
            EnrollError::FaceTooSmall { .. } => "face_too_small",
            EnrollError::LowScore { .. } => "face_unclear",
            EnrollError::Storage(_) => "storage_unavailable",
        }
    }
}

/// The one face to enroll, or why the photo is refused.
pub fn select_face<'a>(faces: &'a [AnalyzedFace], policy: &EnrollmentPolicy) -> Result<&'a AnalyzedFace, EnrollError> {
    let face = match faces {
        [] => return Err(EnrollError::NoFace),
        [one] => one,
        many => return Err(EnrollError::SeveralFaces(many.len())),
    };
    if face.face.bbox.width < policy.min_face_px {
        return Err(EnrollError::FaceTooSmall { width: face.face.bbox.width, min: policy.min_face_px });
    }
    if face.face.score < policy.min_score {
        return Err(EnrollError::LowScore { score: face.face.score, min: policy.min_score });
    }
    Ok(face)
}

/// What one enrolled photo produced.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Enrolled {
    /// `None` when this exact photo was already enrolled for the person.
    pub embedding_id: Option<i64>,
    pub source_sha256: String,
    pub det_score: f32,
}

/// Analyses a photo, stores its embedding for `person_id` and adds it to the live gallery.
pub async fn enroll_photo(
    pipeline: &mut FacePipeline,
    store: &Store,
    gallery: &std::sync::RwLock<Gallery>,
    policy: &EnrollmentPolicy,
    person_id: i64,
    bytes: &[u8],
) -> Result<Enrolled, EnrollError> {
    let faces = pipeline.analyze_bytes(bytes)?;
    let face = select_face(&faces, policy)?;
    let sha: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    let id = store
        .add_embedding(&NewEmbedding {
            person_id,
            model: pipeline.model(),
            vector: &face.embedding,
            source_sha256: &sha,
            face_box: face.face.bbox,
            det_score: face.face.score,
        })
        .await?;
    if let Some(id) = id {
        // A poisoned lock only means another thread panicked mid-update of plain data: keep serving.
        let mut g = gallery.write().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = g.insert(id, person_id, &face.embedding) {
            tracing::error!(embedding_id = id, error = %e, "stored embedding rejected by the gallery");
        }
    }
    Ok(Enrolled { embedding_id: id, source_sha256: sha, det_score: face.face.score })
}

/// Builds the gallery for the pipeline's model from the database.
pub async fn load_gallery(store: &Store, pipeline: &FacePipeline) -> Result<Gallery, StorageError> {
    let model = pipeline.model().clone();
    let rows = store.embeddings_for_model(&model).await?;
    let mut gallery = Gallery::new(model.clone(), crate::embed::EMBEDDING_DIM);
    for r in rows {
        if let Err(e) = gallery.insert(r.id, r.person_id, &r.vector) {
            tracing::warn!(embedding_id = r.id, error = %e, "skipping a stored embedding");
        }
    }
    let foreign = store.count_foreign_embeddings(&model).await?;
    if foreign > 0 {
        tracing::warn!(count = foreign, model = %model, "embeddings of other models are stored and ignored; re-enroll those persons");
    }
    Ok(gallery)
}
