//! `/api/v1/keys`: API keys kept in PostgreSQL. The key is generated here, returned once in the
//! creation answer, and only its SHA-256 digest is stored; every node re-reads the digests within
//! seconds, this one at once.

use actix_web::{web, HttpResponse};
use panoptes_engine::storage::StoredApiKey;
use serde::{Deserialize, Serialize};

use crate::config::Role;
use crate::error::{valid_name, ApiError};
use crate::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    pub role: Role,
}

/// The creation answer: the stored key plus the key itself, which is never shown again.
#[derive(Debug, Serialize)]
struct CreatedKey {
    #[serde(flatten)]
    stored: StoredApiKey,
    key: String,
}

/// Stored keys change rarely and must take effect at once: re-read them after each change here.
async fn reload(state: &AppState) {
    if let Err(e) = state.keys.reload(&state.store).await {
        tracing::warn!(error = %e, "could not re-read API keys after a change; the periodic re-read will");
    }
}

pub async fn create(state: web::Data<AppState>, body: web::Json<NewKey>) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let name = valid_name(&b.name)?;
    let was_open = state.keys.is_open();
    let (key, digest) = crate::auth::generate_key();
    let stored = state.store.create_api_key(&name, b.role.as_str(), &digest).await.map_err(|e| {
        if e.is_unique_violation() {
            ApiError::Conflict { code: "name_taken", message: format!("an API key named {name:?} already exists") }
        } else {
            e.into()
        }
    })?;
    reload(&state).await;
    tracing::info!(key_id = stored.id, key = %stored.name, role = %stored.role, "API key created");
    if was_open && !state.keys.is_open() {
        tracing::warn!("the API was open; from now on every request needs a key");
    }
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/keys/{}", stored.id)))
        .insert_header(("Cache-Control", "no-store"))
        .json(CreatedKey { stored, key }))
}

pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let items = state.store.list_api_keys().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

pub async fn delete(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if !state.store.delete_api_key(id).await? {
        return Err(ApiError::NotFound { what: "API key", id });
    }
    reload(&state).await;
    tracing::info!(key_id = id, "API key revoked");
    if state.keys.is_empty() && !state.keys.is_open() {
        tracing::warn!(
            listen = %state.config.listen,
            "the last API key was revoked; on this address the API now refuses every request until a key is \
             configured or created with `panoptes keys create`"
        );
    }
    Ok(HttpResponse::NoContent().finish())
}
