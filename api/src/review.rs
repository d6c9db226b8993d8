//! An operator's review of appearances (`panoptes_engine::review`): `POST /api/v1/detections/{id}/confirm`
//! (optionally `{"person_id": N}`), `POST /api/v1/detections/{id}/reject`, `DELETE
//! /api/v1/detections/{id}/review` to undo either, and `GET /api/v1/audit`, the trail of who did
//! which. Changing the engine's judgement needs the admin role, reading the trail too.

use actix_web::{web, HttpRequest, HttpResponse};
use panoptes_engine::enrollment::prepare_enrollment;
use panoptes_engine::review::{self, ReviewError};
use serde::{Deserialize, Serialize};

use crate::analyzer::run_blocking;
use crate::auth::requester;
use crate::error::ApiError;
use crate::AppState;

impl From<ReviewError> for ApiError {
    fn from(e: ReviewError) -> Self {
        let message = e.to_string();
        match e {
            ReviewError::NotFound(id) => ApiError::NotFound { what: "detection", id },
            ReviewError::PersonNotFound(id) => ApiError::NotFound { what: "person", id },
            ReviewError::PersonRequired(_) => ApiError::unprocessable("person_required", message),
            ReviewError::Enroll(e) => e.into(),
            ReviewError::Storage(s) => s.into(),
            other => ApiError::Conflict { code: other.code(), message },
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    /// Who the appearance is; by default the person the engine matched it to.
    person_id: Option<i64>,
}

#[derive(Debug, Serialize)]
struct Reviewed {
    detection_id: i64,
    review: &'static str,
    person_id: i64,
    /// The face a confirmation enrolled (`null`: it was enrolled already).
    #[serde(skip_serializing_if = "Option::is_none")]
    embedding_id: Option<i64>,
    /// Set when the face is far from the person's other faces.
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
    /// The negative a rejection added.
    #[serde(skip_serializing_if = "Option::is_none")]
    negative_id: Option<i64>,
}

pub async fn confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let body: ConfirmBody = if body.iter().all(u8::is_ascii_whitespace) {
        ConfirmBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("invalid_json", format!("invalid JSON body: {e}")))?
    };
    let d = review::reviewable(&state.store, id).await?;
    let person_id = body.person_id.or(d.person_id).ok_or(ReviewError::PersonRequired(id))?;
    state.store.person(person_id).await?.ok_or(ReviewError::PersonNotFound(person_id))?;
    let enrolled = enroll_appearance(&state, &d, person_id, &requester(&req)).await?;
    state.caches.persons.invalidate(&person_id);
    Ok(HttpResponse::Ok().json(Reviewed {
        detection_id: id,
        review: "confirmed",
        person_id,
        embedding_id: enrolled.embedding_id,
        warning: enrolled.warning,
        negative_id: None,
    }))
}

pub async fn reject(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let (person_id, negative_id) = review::reject(&state.store, &state.gallery, id, &requester(&req)).await?;
    Ok(HttpResponse::Ok().json(Reviewed {
        detection_id: id,
        review: "rejected",
        person_id,
        embedding_id: None,
        warning: None,
        negative_id: Some(negative_id),
    }))
}

pub async fn undo(state: web::Data<AppState>, req: HttpRequest, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let undone = review::undo(&state.store, &state.gallery, id, &requester(&req)).await?;
    state.caches.persons.invalidate(&undone.person_id);
    // The appearance is again who the engine had said before the review.
    let person_id = undone.previous_person_id;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "undone": undone, "person_id": person_id })))
}

/// Confirms appearance `d` as `person_id` (see `review::confirm`): its face picture goes through the
/// enrolment checks and is enrolled. Naming an unknown identity does this for each of its faces.
pub(crate) async fn enroll_appearance(
    state: &web::Data<AppState>,
    d: &panoptes_engine::storage::Detection,
    person_id: i64,
    actor: &str,
) -> Result<panoptes_engine::enrollment::Enrolled, ApiError> {
    let snapshots = state.snapshots.clone();
    let picture = {
        let d = d.clone();
        run_blocking(move || review::face_picture(snapshots.as_deref(), &d)).await??
    };
    let st = state.clone();
    let model = state.serving().0;
    let face = run_blocking(move || match &st.analyzer {
        Some(analyzer) => analyzer.with_pipeline(&model, |p| Ok(prepare_enrollment(p, &st.policy, &picture)?)),
        None => Err(ApiError::Unavailable("face analysis is not loaded in this process".into())),
    })
    .await??;
    Ok(review::confirm(&state.store, &state.gallery, d, person_id, &face, actor).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries older than this one (the `next_before` of the previous page).
    before: Option<i64>,
    limit: Option<i64>,
}

pub async fn audit(state: web::Data<AppState>, q: web::Query<AuditQuery>) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", "limit must be between 1 and 1000"));
    }
    let entries = state.store.list_audit(q.before, limit).await?;
    let next_before = (entries.len() as i64 == limit).then(|| entries.last().map(|e| e.id)).flatten();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "entries": entries, "next_before": next_before })))
}
