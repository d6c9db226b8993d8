//! `/api/v1/admin`: engine figures for operators, and cache control.

use actix_web::{web, HttpResponse};
use panoptes_actors::scheduler::GetSchedulerStats;
use panoptes_actors::sink::GetSinkStats;

use crate::error::ApiError;
use crate::AppState;

pub async fn stats(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (scheduler, sink) = match &state.engine {
        Some(e) => (e.scheduler.send(GetSchedulerStats).await.ok(), e.sink.send(GetSinkStats).await.ok()),
        None => (None, None),
    };
    let (gallery, model, judgement) = {
        let g = state.gallery.read().unwrap_or_else(|p| p.into_inner());
        (g.len(), g.model().to_string(), g.judgement())
    };
    let switch = state.embedder_switch.as_ref().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone());
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "gallery_embeddings": gallery,
        "gallery_model": model,
        "judgement": judgement,
        "embedder_switch": switch,
        "scheduler": scheduler,
        "detection_sink": sink,
        "cache": state.caches.stats(),
        "live_event_subscribers": state.events.receiver_count(),
        "webhooks": state.webhooks.stats(),
    })))
}

pub async fn clear_cache(state: web::Data<AppState>) -> HttpResponse {
    state.caches.clear();
    HttpResponse::NoContent().finish()
}
