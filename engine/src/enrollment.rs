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
    #[error(
        "the face is turned {yaw:.0}° away from the camera (at most {max:.0}°): enroll a photo that faces the camera"
    )]
    FaceTurned { yaw: f32, max: f32 },
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
            EnrollError::FaceTurned { .. } => "face_turned",
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
    /// The face box in the photo as sent (before any downscaling).
    pub face_box: crate::geometry::BBox,
    /// The best similarity of this face to the person's faces enrolled before it (`None`: the first).
    pub similarity_to_others: Option<f32>,
    /// Set by [`Enrolled::check_agreement`] when the face does not match the person's others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl Enrolled {
    /// A face that would not match the person's other faces at `threshold` may be someone else
    /// (a wrong photo, a namesake): it is enrolled, and said so.
    pub fn check_agreement(&mut self, threshold: f32) {
        if let Some(s) = self.similarity_to_others.filter(|s| *s < threshold) {
            self.warning = Some(format!(
                "this face is far from the person's other photos (best similarity {s:.2}, below the match threshold {threshold:.2}): is it the same person?"
            ));
        }
    }
}

/// Photos are analysed at most this large (longest side): enough for an enrollment face, and it
/// bounds the cost of a 12-megapixel phone photo.
pub const ANALYSIS_MAX_SIDE: u32 = 800;
/// The kept copy of an enrollment photo is a JPEG of at most this many bytes.
pub const KEPT_PHOTO_MAX_BYTES: usize = 200 * 1024;

/// A photo analysed and accepted for enrollment, not yet stored (the CPU part, run off the async
/// executor; [`store_enrollment`] does the I/O).
pub struct PreparedFace {
    /// The model that computed `embedding`.
    pub model: crate::embed::ModelId,
    pub embedding: Vec<f32>,
    pub face_box: crate::geometry::BBox,
    pub det_score: f32,
    pub source_sha256: String,
    /// The downscaled photo as JPEG (≤ [`KEPT_PHOTO_MAX_BYTES`]), for re-enrollment with a future model.
    pub kept_jpeg: Vec<u8>,
}

/// Decodes, downscales and analyses a photo and checks it against the policy (the minimum face size
/// applies to the photo as sent, not to the downscaled copy).
pub fn prepare_enrollment(
    pipeline: &mut FacePipeline,
    policy: &EnrollmentPolicy,
    bytes: &[u8],
) -> Result<PreparedFace, EnrollError> {
    let original = pipeline.decode(bytes).map_err(PipelineError::from)?;
    let (image, scale) = crate::image_resize::fit_within(&original, ANALYSIS_MAX_SIDE).map_err(|message| {
        EnrollError::Pipeline(PipelineError::Model(crate::runtime::ModelError::Inference { model: "resize", message }))
    })?;
    let faces = pipeline.analyze(&image).map_err(PipelineError::from)?;
    let scaled_policy = EnrollmentPolicy { min_face_px: policy.min_face_px * scale, ..policy.clone() };
    let face = select_face(&faces, &scaled_policy).map_err(|e| match e {
        EnrollError::FaceTooSmall { width, min } => {
            EnrollError::FaceTooSmall { width: width / scale, min: min / scale }
        }
        other => other,
    })?;
    if let Some(yaw) = face.aligned.yaw_degrees.filter(|y| pipeline.too_turned(*y)) {
        return Err(EnrollError::FaceTurned { yaw: yaw.abs(), max: pipeline.max_yaw_degrees() });
    }
    let b = face.face.bbox;
    Ok(PreparedFace {
        model: pipeline.model().clone(),
        embedding: face.embedding.clone(),
        face_box: crate::geometry::BBox {
            x: b.x / scale,
            y: b.y / scale,
            width: b.width / scale,
            height: b.height / scale,
        },
        det_score: face.face.score,
        source_sha256: Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect(),
        kept_jpeg: crate::image_resize::jpeg_at_most(&image, KEPT_PHOTO_MAX_BYTES),
    })
}

/// Stores a prepared face for `person_id` (embedding and kept photo) and adds it to the live gallery;
/// a face far from the person's others is stored with a warning.
pub async fn store_enrollment(
    store: &Store,
    gallery: &std::sync::RwLock<Gallery>,
    person_id: i64,
    face: &PreparedFace,
) -> Result<Enrolled, EnrollError> {
    let model = &face.model;
    let (similarity_to_others, threshold) = {
        let g = gallery.read().unwrap_or_else(|p| p.into_inner());
        (g.best_score_for(model, person_id, &face.embedding), g.judgement().match_threshold)
    };
    let id = store
        .add_embedding(&NewEmbedding {
            person_id,
            model,
            vector: &face.embedding,
            source_sha256: &face.source_sha256,
            face_box: face.face_box,
            det_score: face.det_score,
        })
        .await?;
    if let Some(id) = id {
        store.add_person_photo(person_id, id, &face.source_sha256, &face.kept_jpeg).await?;
        // A poisoned lock only means another thread panicked mid-update of plain data: keep serving.
        let mut g = gallery.write().unwrap_or_else(|p| p.into_inner());
        // The gallery may have switched models while the photo was analysed: the re-embedding job
        // gives the photo a vector of the new model; this one is stored but not indexed.
        if g.model() == model {
            if let Err(e) = g.insert(id, person_id, &face.embedding) {
                tracing::error!(embedding_id = id, error = %e, "stored embedding rejected by the gallery");
            }
        }
    }
    let mut enrolled = Enrolled {
        embedding_id: id,
        source_sha256: face.source_sha256.clone(),
        det_score: face.det_score,
        face_box: face.face_box,
        similarity_to_others,
        warning: None,
    };
    enrolled.check_agreement(threshold);
    if let Some(w) = &enrolled.warning {
        tracing::warn!(person_id, embedding_id = enrolled.embedding_id, "{w}");
    }
    Ok(enrolled)
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
    // Embed with the gallery's model, whichever the pipeline was loaded with.
    let model = gallery.read().unwrap_or_else(|p| p.into_inner()).model().clone();
    pipeline.follow(&model).map_err(PipelineError::from)?;
    let face = prepare_enrollment(pipeline, policy, bytes)?;
    store_enrollment(store, gallery, person_id, &face).await
}

/// The embedding of a kept enrollment photo with the pipeline's model (re-embedding after a model
/// change): the photo was accepted once, so only its one face is asked for.
pub fn embed_kept_photo(pipeline: &mut FacePipeline, jpeg: &[u8]) -> Result<AnalyzedFace, EnrollError> {
    let image = pipeline.decode(jpeg).map_err(PipelineError::from)?;
    let mut faces = pipeline.analyze(&image).map_err(PipelineError::from)?;
    match faces.len() {
        0 => Err(EnrollError::NoFace),
        1 => Ok(faces.remove(0)),
        n => Err(EnrollError::SeveralFaces(n)),
    }
}
