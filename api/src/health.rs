//! `/healthz` (the process answers) and `/readyz` (database reachable, models and gallery loaded).

use actix_web::{web, HttpResponse};

use crate::error::ApiError;
use crate::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.store.ping().await?;
    let (size, model) = {
        let g = state.gallery.read().unwrap_or_else(|p| p.into_inner());
        (g.len(), g.model().to_string())
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "ready",
        "database": "ok",
        "embedder": model,
        "gallery_embeddings": size,
    })))
}
