//! `POST /api/v1/identify`: every face in an uploaded photo with its best gallery matches. Nothing is
//! stored.

use actix_multipart::Multipart;
use actix_web::{web, HttpResponse};
use panoptes_engine::geometry::BBox;
use serde::Serialize;

use crate::analyzer::{analyze_photo, in_photo_pixels};
use crate::error::ApiError;
use crate::multipart;
use crate::AppState;

#[derive(Debug, Serialize)]
pub struct MatchView {
    pub person_id: i64,
    pub name: Option<String>,
    pub score: f32,
}

#[derive(Debug, Serialize)]
pub struct FaceView {
    #[serde(rename = "box")]
    pub bbox: BBox,
    pub det_score: f32,
    /// The best gallery score, whether or not it clears the threshold.
    pub best_score: Option<f32>,
    /// Matches at or above the threshold, best first (at most top_k).
    pub matches: Vec<MatchView>,
}

pub async fn identify(state: web::Data<AppState>, payload: Multipart) -> Result<HttpResponse, ApiError> {
    let form = multipart::read(payload, state.config.upload_limit_bytes).await?;
    let Some(photo) = form.files.into_iter().next() else {
        return Err(ApiError::unprocessable("no_photo", "a photo file is required (field \"photo\")"));
    };
    let (model, judgement) = state.serving();
    let (faces, scale) = analyze_photo(&state, &model, photo.bytes).await?;
    let threshold = judgement.match_threshold;
    let mut views = Vec::with_capacity(faces.len());
    let mut person_ids = Vec::new();
    {
        let gallery = state.gallery.read().unwrap_or_else(|p| p.into_inner());
        for f in &faces {
            let found = gallery.search(&model, &f.embedding, state.top_k).unwrap_or_default();
            let b = f.face.bbox;
            let matches: Vec<MatchView> = found
                .iter()
                .filter(|m| m.score >= threshold)
                .map(|m| MatchView { person_id: m.person_id, name: None, score: m.score })
                .collect();
            person_ids.extend(matches.iter().map(|m| m.person_id));
            views.push(FaceView {
                bbox: in_photo_pixels(b, scale),
                det_score: f.face.score,
                best_score: found.first().map(|m| m.score),
                matches,
            });
        }
    }
    if !person_ids.is_empty() {
        let names: std::collections::HashMap<i64, String> =
            state.store.person_names(&person_ids).await.unwrap_or_default().into_iter().collect();
        for v in &mut views {
            for m in &mut v.matches {
                m.name = names.get(&m.person_id).cloned();
            }
        }
    }
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "faces": views, "threshold": threshold, "model": model.to_string() })))
}
