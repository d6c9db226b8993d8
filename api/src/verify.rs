//! `POST /api/v1/verify`: are these the same person? Two photos (`photo_a`, `photo_b`), or one photo
//! and an enrolled person (`photo` and `person_id`): the cosine similarity of the faces' embeddings
//! and whether it clears the match threshold. Each photo is read like an identify photo (same limits
//! and errors); when it shows several faces, the largest is compared and the answer says how many
//! there were. Nothing is stored.

use actix_multipart::Multipart;
use actix_web::{web, HttpResponse};
use panoptes_engine::embed::{cosine, ModelId};
use panoptes_engine::geometry::BBox;
use panoptes_engine::pipeline::AnalyzedFace;
use serde::Serialize;

use crate::analyzer::{analyze_photo, in_photo_pixels};
use crate::error::ApiError;
use crate::multipart::{self, Upload};
use crate::AppState;

#[derive(Debug, Serialize)]
struct PhotoFace {
    #[serde(rename = "box")]
    bbox: BBox,
    det_score: f32,
    /// Faces found in the photo (the largest is compared).
    faces_in_photo: usize,
}

#[derive(Debug, Serialize)]
struct Verdict {
    similarity: f32,
    is_match: bool,
    threshold: f32,
    face_a: PhotoFace,
    #[serde(skip_serializing_if = "Option::is_none")]
    face_b: Option<PhotoFace>,
    #[serde(skip_serializing_if = "Option::is_none")]
    person_id: Option<i64>,
    /// The person's enrolled faces compared (the best similarity counts).
    #[serde(skip_serializing_if = "Option::is_none")]
    person_faces: Option<usize>,
}

pub async fn verify(state: web::Data<AppState>, payload: Multipart) -> Result<HttpResponse, ApiError> {
    let form = multipart::read(payload, state.config.upload_limit_bytes).await?;
    let mut photos = form.files;
    let take =
        |photos: &mut Vec<Upload>, field: &str| photos.iter().position(|f| f.field == field).map(|i| photos.remove(i));
    let person_id = match form.texts.get("person_id") {
        Some(t) => Some(t.trim().parse::<i64>().map_err(|_| {
            ApiError::unprocessable("invalid_person_id", format!("person_id must be an integer, got {t:?}"))
        })?),
        None => None,
    };
    let (a, b) = match person_id {
        Some(_) => {
            let a = take(&mut photos, "photo").ok_or_else(|| {
                ApiError::unprocessable("no_photo", "with person_id, a photo file is required (field \"photo\")")
            })?;
            (a, None)
        }
        None => {
            let a = take(&mut photos, "photo_a");
            let b = take(&mut photos, "photo_b");
            match (a, b) {
                (Some(a), Some(b)) => (a, Some(b)),
                _ => return Err(ApiError::unprocessable(
                    "no_photo",
                    "two photo files (fields \"photo_a\" and \"photo_b\"), or a photo and a person_id, are required",
                )),
            }
        }
    };
    if state.analyzer.is_none() {
        return Err(ApiError::Unavailable("face analysis is not loaded in this process".into()));
    }
    let (model, judgement) = state.serving();
    let face_a = largest_face(&state, &model, a, "photo_a").await?;
    let threshold = judgement.match_threshold;
    let verdict = match (b, person_id) {
        (Some(b), _) => {
            let face_b = largest_face(&state, &model, b, "photo_b").await?;
            let similarity = cosine(&face_a.0.embedding, &face_b.0.embedding);
            Verdict {
                similarity,
                is_match: similarity >= threshold,
                threshold,
                face_a: face_a.1,
                face_b: Some(face_b.1),
                person_id: None,
                person_faces: None,
            }
        }
        (None, Some(id)) => {
            state.store.person(id).await?.ok_or(ApiError::NotFound { what: "person", id })?;
            let enrolled = state.store.embeddings_of_person(id, &model).await?;
            if enrolled.is_empty() {
                return Err(ApiError::unprocessable(
                    "person_has_no_faces",
                    format!("person {id} has no enrolled face for the running model {model}"),
                ));
            }
            let similarity = enrolled.iter().map(|v| cosine(&face_a.0.embedding, v)).fold(f32::NEG_INFINITY, f32::max);
            Verdict {
                similarity,
                is_match: similarity >= threshold,
                threshold,
                face_a: face_a.1,
                face_b: None,
                person_id: Some(id),
                person_faces: Some(enrolled.len()),
            }
        }
        (None, None) => unreachable!("a second photo or a person id was required above"),
    };
    Ok(HttpResponse::Ok().json(verdict))
}

/// The largest face of an uploaded photo, or the reason there is none (naming the field).
async fn largest_face(
    state: &web::Data<AppState>,
    model: &ModelId,
    photo: Upload,
    field: &'static str,
) -> Result<(AnalyzedFace, PhotoFace), ApiError> {
    let (faces, scale) = analyze_photo(state, model, photo.bytes).await.map_err(|e| in_field(e, field))?;
    let count = faces.len();
    let Some(face) = faces.into_iter().max_by(|x, y| x.face.bbox.area().total_cmp(&y.face.bbox.area())) else {
        return Err(ApiError::unprocessable("no_face", format!("{field}: no face found in the photo")));
    };
    let b = face.face.bbox;
    let view = PhotoFace { bbox: in_photo_pixels(b, scale), det_score: face.face.score, faces_in_photo: count };
    Ok((face, view))
}

/// The error with the photo's field named in its message.
fn in_field(e: ApiError, field: &str) -> ApiError {
    match e {
        ApiError::Unprocessable { code, message } => {
            ApiError::Unprocessable { code, message: format!("{field}: {message}") }
        }
        ApiError::PayloadTooLarge(m) => ApiError::PayloadTooLarge(format!("{field}: {m}")),
        other => other,
    }
}
