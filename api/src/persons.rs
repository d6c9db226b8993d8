//! `/api/v1/persons`: enrollment from uploaded photos (multipart), listing, lookup, update and delete.
//! Enrollment is all-or-nothing per request: every photo is analysed before anything is stored, so a
//! refused photo leaves no half-enrolled person behind.

use std::sync::Arc;

use actix_multipart::Multipart;
use actix_web::{web, HttpRequest, HttpResponse};
use panoptes_engine::enrollment::{prepare_enrollment, store_enrollment, Enrolled, PreparedFace};
use panoptes_engine::erasure::{erase_person, ErasureError, ErasureScope};
use panoptes_engine::storage::Person;
use serde::{Deserialize, Serialize};

use crate::analyzer::run_blocking;
use crate::auth::requester;
use crate::error::{valid_name, ApiError};
use crate::multipart::{self, Upload};
use crate::AppState;

#[derive(Debug, Serialize)]
pub struct EnrollResponse {
    pub person: Person,
    /// Faces added now (a photo already enrolled for this person adds none).
    pub faces_enrolled: usize,
    pub photos: Vec<Enrolled>,
}

fn check_metadata(v: &serde_json::Value) -> Result<(), ApiError> {
    if !v.is_object() {
        return Err(ApiError::unprocessable("invalid_metadata", "metadata must be a JSON object"));
    }
    // PostgreSQL's jsonb cannot hold U+0000 (found by schemathesis: it surfaced as a 503).
    if has_nul(v) {
        return Err(ApiError::unprocessable("invalid_metadata", "metadata may not contain the character U+0000"));
    }
    Ok(())
}

fn has_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(has_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Analyses every photo (on the blocking pool); the first refusal names the photo and the reason.
async fn prepare_all(state: &web::Data<AppState>, files: Vec<Upload>) -> Result<Vec<PreparedFace>, ApiError> {
    if files.is_empty() {
        return Err(ApiError::unprocessable("no_photo", "at least one photo file is required (field \"photos\")"));
    }
    let Some(_) = &state.analyzer else {
        return Err(ApiError::Unavailable("face analysis is not loaded in this process".into()));
    };
    let st = state.clone();
    let model = state.serving().0;
    let results = run_blocking(move || {
        let Some(analyzer) = &st.analyzer else { return Vec::new() };
        files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                analyzer
                    .with_pipeline(&model, |p| Ok(prepare_enrollment(p, &st.policy, &f.bytes)?))
                    .map_err(|e| (f.label(i), e))
            })
            .collect::<Vec<_>>()
    })
    .await?;
    let mut prepared = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(face) => prepared.push(face),
            Err((label, e)) => {
                return Err(match e {
                    ApiError::Unprocessable { code, message } => {
                        ApiError::Unprocessable { code, message: format!("{label}: {message}") }
                    }
                    ApiError::PayloadTooLarge(m) => ApiError::PayloadTooLarge(format!("{label}: {m}")),
                    other => other,
                })
            }
        }
    }
    Ok(prepared)
}

async fn store_all(state: &AppState, person_id: i64, faces: &[PreparedFace]) -> Result<Vec<Enrolled>, ApiError> {
    let mut out = Vec::with_capacity(faces.len());
    for f in faces {
        out.push(store_enrollment(&state.store, &state.gallery, person_id, f).await?);
    }
    Ok(out)
}

pub async fn create(state: web::Data<AppState>, payload: Multipart) -> Result<HttpResponse, ApiError> {
    let form = multipart::read(payload, state.config.upload_limit_bytes).await?;
    let name = valid_name(form.texts.get("name").map(String::as_str).unwrap_or_default())?;
    let metadata = match form.texts.get("metadata") {
        Some(m) if !m.trim().is_empty() => serde_json::from_str(m)
            .map_err(|e| ApiError::unprocessable("invalid_metadata", format!("metadata is not JSON: {e}")))?,
        _ => serde_json::json!({}),
    };
    check_metadata(&metadata)?;
    let groups = match form.texts.get("groups") {
        Some(g) => valid_groups(g.split(',').map(str::trim).filter(|g| !g.is_empty()))?,
        None => Vec::new(),
    };
    let prepared = prepare_all(&state, form.files).await?;
    let person = state.store.create_person_in_groups(&name, &metadata, &groups).await?;
    let photos = match store_all(&state, person.id, &prepared).await {
        Ok(p) => p,
        Err(e) => {
            // Do not leave a person without faces behind.
            let _ = state.store.delete_person(person.id).await;
            state.gallery.write().unwrap_or_else(|p| p.into_inner()).remove_person(person.id);
            return Err(e);
        }
    };
    let person = state.store.person(person.id).await?.unwrap_or(person);
    tracing::info!(person_id = person.id, faces = photos.len(), "person enrolled through the API");
    let faces_enrolled = photos.iter().filter(|p| p.embedding_id.is_some()).count();
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/persons/{}", person.id)))
        .json(EnrollResponse { person, faces_enrolled, photos }))
}

pub async fn add_faces(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    payload: Multipart,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    state.store.person(id).await?.ok_or(ApiError::NotFound { what: "person", id })?;
    let form = multipart::read(payload, state.config.upload_limit_bytes).await?;
    let prepared = prepare_all(&state, form.files).await?;
    let photos = store_all(&state, id, &prepared).await?;
    state.caches.persons.invalidate(&id);
    let person = state.store.person(id).await?.ok_or(ApiError::NotFound { what: "person", id })?;
    let faces_enrolled = photos.iter().filter(|p| p.embedding_id.is_some()).count();
    Ok(HttpResponse::Created().json(EnrollResponse { person, faces_enrolled, photos }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub search: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub async fn list(state: web::Data<AppState>, q: web::Query<ListQuery>) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(50);
    let offset = q.offset.unwrap_or(0);
    if !(1..=1000).contains(&limit) || offset < 0 {
        return Err(ApiError::bad_request("invalid_query", "limit must be 1..=1000 and offset ≥ 0"));
    }
    let search = q.search.as_deref().filter(|s| !s.is_empty());
    let items = state.store.list_persons(search, limit, offset).await?;
    let total = state.store.count_persons(search).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "total": total, "limit": limit, "offset": offset })))
}

/// A person by id, from the cache when possible.
pub async fn lookup(state: &AppState, id: i64) -> Result<Arc<Person>, ApiError> {
    if let Some(p) = state.caches.person(id) {
        return Ok(p);
    }
    let p = Arc::new(state.store.person(id).await?.ok_or(ApiError::NotFound { what: "person", id })?);
    state.caches.persons.insert(id, p.clone());
    Ok(p)
}

pub async fn get(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(&*lookup(&state, id.into_inner()).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonUpdate {
    pub name: Option<String>,
    pub metadata: Option<serde_json::Value>,
    /// Replaces the person's groups (alert rules pick persons by group).
    pub groups: Option<Vec<String>>,
}

/// Groups as stored: trimmed, each 1 to 64 printable characters, each once (without regard to case).
fn valid_groups<'a>(groups: impl Iterator<Item = &'a str>) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = Vec::new();
    for (i, g) in groups.enumerate() {
        let g = g.trim();
        if !panoptes_engine::alerts::is_group_name(g) {
            return Err(ApiError::unprocessable(
                "invalid_groups",
                format!("groups[{i}] must be 1 to 64 printable characters"),
            ));
        }
        if !out.iter().any(|o| o.to_lowercase() == g.to_lowercase()) {
            out.push(g.to_string());
        }
    }
    if out.len() > 100 {
        return Err(ApiError::unprocessable("invalid_groups", "at most 100 groups"));
    }
    Ok(out)
}

pub async fn update(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<PersonUpdate>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let name = match &body.name {
        Some(n) => Some(valid_name(n)?),
        None => None,
    };
    if let Some(m) = &body.metadata {
        check_metadata(m)?;
    }
    let groups = body.groups.as_ref().map(|g| valid_groups(g.iter().map(String::as_str))).transpose()?;
    let p = state
        .store
        .update_person(id, name.as_deref(), body.metadata.as_ref(), groups.as_deref())
        .await?
        .ok_or(ApiError::NotFound { what: "person", id })?;
    state.caches.persons.invalidate(&id);
    if groups.is_some() {
        crate::alert_rules::reload(&state).await;
    }
    Ok(HttpResponse::Ok().json(p))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// `biometrics` (default) or `all`.
    pub erase: Option<ErasureScope>,
}

/// Erases a person (see `panoptes_engine::erasure`) and answers what was removed.
pub async fn delete(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    q: web::Query<DeleteQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let scope = q.erase.unwrap_or_default();
    // Out of the live gallery first, so no new appearance names them while their data goes (if the
    // erasure fails, the gallery's sync with the database brings them back within seconds).
    let in_gallery = state.gallery.write().unwrap_or_else(|p| p.into_inner()).remove_person(id);
    let erasure = erase_person(&state.store, state.snapshots.as_ref(), id, scope, &requester(&req)).await.map_err(
        |e| match e {
            ErasureError::Storage(s) => s.into(),
            other => ApiError::Unavailable(panoptes_engine::error_chain::error_chain(&other)),
        },
    )?;
    state.caches.persons.invalidate(&id);
    let Some(erasure) = erasure else { return Err(ApiError::NotFound { what: "person", id }) };
    tracing::info!(
        person_id = id,
        erasure_id = erasure.id,
        scope = scope.as_str(),
        embeddings_in_gallery = in_gallery,
        requested_by = %erasure.requested_by,
        "person erased through the API"
    );
    Ok(HttpResponse::Ok().json(erasure))
}
