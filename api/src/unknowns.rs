//! Unknown identities (`panoptes_engine::unknowns`): `GET /api/v1/unknowns` (the newest first:
//! appearances, first and last seen, cameras, best face), `GET /api/v1/unknowns/{id}`, and
//! `POST /api/v1/unknowns/{id}/name` with `{"name": "…"}` (a new person) or `{"person_id": N}` (merged
//! into an existing person): each of the identity's faces that passes the enrolment checks is
//! enrolled for the person, its appearance confirmed as theirs (as `confirm` does), so the engine
//! recognises them from then on. Naming needs the admin role.

use actix_web::{web, HttpRequest, HttpResponse};
use panoptes_engine::review::ReviewError;
use panoptes_engine::storage::unknowns::{MergeOutcome, UnknownIdentity};
use serde::{Deserialize, Serialize};

use crate::auth::requester;
use crate::error::{valid_name, ApiError};
use crate::review::enroll_appearance;
use crate::AppState;

/// Faces enrolled at most when an identity is named: the best ones.
const MAX_FACES: usize = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Identities older than this one (the `next_before` of the previous page).
    before: Option<i64>,
    limit: Option<i64>,
    /// `true`: the identities already named instead.
    named: Option<bool>,
}

#[derive(Debug, Serialize)]
struct IdentityView {
    #[serde(flatten)]
    identity: UnknownIdentity,
    /// The best face's picture (`null`: no snapshot).
    best_face_url: Option<String>,
}

fn view(identity: UnknownIdentity) -> IdentityView {
    let best_face_url = identity.best_detection_id.map(|d| format!("/api/v1/detections/{d}/snapshot.jpg?kind=face"));
    IdentityView { identity, best_face_url }
}

pub async fn list(state: web::Data<AppState>, q: web::Query<ListQuery>) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", "limit must be between 1 and 500"));
    }
    let items = state.store.list_unknowns(q.before, limit, q.named.unwrap_or(false)).await?;
    let next_before = (items.len() as i64 == limit).then(|| items.last().map(|u| u.id)).flatten();
    let items: Vec<IdentityView> = items.into_iter().map(view).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_before": next_before })))
}

pub async fn get(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let identity = state.store.unknown(id).await?.ok_or(ApiError::NotFound { what: "unknown identity", id })?;
    Ok(HttpResponse::Ok().json(view(identity)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    name: Option<String>,
    person_id: Option<i64>,
}

#[derive(Debug, Serialize)]
struct Skipped {
    detection_id: i64,
    code: &'static str,
    message: String,
}

pub async fn name(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let body: NameBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("invalid JSON body: {e}")))?;
    let identity = state.store.unknown(id).await?.ok_or(ApiError::NotFound { what: "unknown identity", id })?;
    if let Some(person) = identity.named_person_id {
        return Err(ApiError::Conflict {
            code: "already_named",
            message: format!("unknown identity {id} was already named (person {person})"),
        });
    }
    let actor = requester(&req);
    // Who it becomes: a new person (refused if the name is taken: merge with person_id instead), or
    // one that exists.
    let (person_id, created) = match (body.name, body.person_id) {
        (Some(name), None) => {
            let name = valid_name(&name)?;
            if let Some(existing) = state.store.person_named(&name).await? {
                return Err(ApiError::Conflict {
                    code: "name_taken",
                    message: format!(
                        "a person named {name:?} exists (person {existing}); to merge into them, send {{\"person_id\": {existing}}}"
                    ),
                });
            }
            let metadata = serde_json::json!({ "from_unknown": id });
            (state.store.create_person(&name, &metadata).await?.id, true)
        }
        (None, Some(person_id)) => {
            state.store.person(person_id).await?.ok_or(ApiError::NotFound { what: "person", id: person_id })?;
            (person_id, false)
        }
        _ => {
            return Err(ApiError::unprocessable(
                "name_or_person_required",
                "send {\"name\": \"…\"} for a new person or {\"person_id\": N} to merge into one",
            ))
        }
    };

    let mut enrolled = Vec::new();
    let mut skipped = Vec::new();
    for d in state.store.unknown_members(id).await?.into_iter().take(MAX_FACES) {
        match enroll_appearance(&state, &d, person_id, &actor).await {
            Ok(e) => enrolled.push(serde_json::json!({ "detection_id": d.id, "embedding_id": e.embedding_id })),
            // A face the checks refuse (too small, unclear, no snapshot kept) is left unknown.
            Err(e @ (ApiError::Unprocessable { .. } | ApiError::Conflict { .. } | ApiError::NotFound { .. })) => {
                skipped.push(Skipped { detection_id: d.id, code: e.code(), message: e.to_string() })
            }
            Err(e) => return Err(e),
        }
    }
    if enrolled.is_empty() {
        if created {
            // Nothing of the identity made it: the new person would stand without a face.
            if let Err(e) = state.store.delete_person(person_id).await {
                tracing::warn!(person_id, error = %e, "a person created for a refused naming could not be removed");
            }
        }
        return Err(ApiError::unprocessable(
            "no_enrollable_face",
            format!(
                "none of unknown identity {id}'s faces passed the enrolment checks: {}",
                skipped.iter().map(|s| format!("{} ({})", s.detection_id, s.code)).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let details = serde_json::json!({ "person_id": person_id, "created": created, "enrolled": enrolled.len() });
    if !state.store.mark_unknown_named(id, person_id, &actor, details).await? {
        return Err(ReviewError::ChangedMeanwhile(id).into());
    }
    state.caches.persons.invalidate(&person_id);
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "unknown_id": id,
        "person_id": person_id,
        "created": created,
        "enrolled": enrolled,
        "skipped": skipped,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeBody {
    into: i64,
}

/// `POST /api/v1/unknowns/{id}/merge` with `{"into": N}`: the operator says two unknown identities
/// are one stranger. Identity `id`'s appearances join `N`, `id` is deleted, and the answer is `N` as
/// it is now.
pub async fn merge(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let body: MergeBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("invalid JSON body (expected {{\"into\": N}}): {e}"))
    })?;
    if body.into == id {
        return Err(ApiError::unprocessable(
            "same_identity",
            format!("unknown identity {id} cannot be merged into itself"),
        ));
    }
    let actor = requester(&req);
    match state.store.merge_unknowns(id, body.into, &actor).await? {
        MergeOutcome::Merged { appearances } => {
            tracing::info!(from = id, into = body.into, appearances, by = %actor, "unknown identities merged");
        }
        MergeOutcome::NotFound(missing) => return Err(ApiError::NotFound { what: "unknown identity", id: missing }),
        MergeOutcome::Named(named) => {
            return Err(ApiError::Conflict {
                code: "already_named",
                message: format!("unknown identity {named} was already named: it is a person's now"),
            })
        }
        MergeOutcome::OtherModel => {
            return Err(ApiError::Conflict {
                code: "other_model",
                message: format!("unknown identities {id} and {} were grouped by different embedders", body.into),
            })
        }
    }
    let into = body.into;
    let identity = state.store.unknown(into).await?.ok_or(ApiError::NotFound { what: "unknown identity", id: into })?;
    Ok(HttpResponse::Ok().json(view(identity)))
}
