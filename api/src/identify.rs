//! `POST /api/v1/identify`: every face in an uploaded photo with its best gallery matches. Nothing is
//! stored.

use actix_multipart::Multipart;
use actix_web::{web, HttpResponse};
use panoptes_engine::geometry::BBox;
use panoptes_engine::image_resize::fit_within;
use serde::Serialize;

use crate::analyzer::run_blocking;
use crate::error::ApiError;
use crate::multipart;
use crate::AppState;

/// Photos are analysed at most this large; boxes are given in the photo's own pixels.
const IDENTIFY_MAX_SIDE: u32 = 1920;

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
    if state.analyzer.is_none() {
        return Err(ApiError::Unavailable("face analysis is not loaded in this process".into()));
    }
    let st = state.clone();
    let (model, judgement) = state.serving();
    let model_used = model.clone();
    let analysed = run_blocking(move || {
        let Some(analyzer) = &st.analyzer else { return Err(ApiError::Unavailable("no analyzer".into())) };
        analyzer.with_pipeline(&model_used, |p| {
            let image = p.decode(&photo.bytes)?;
            let (small, scale) = fit_within(&image, IDENTIFY_MAX_SIDE).map_err(ApiError::Internal)?;
            let faces = p.analyze(&small)?;
            Ok((faces, scale))
        })
    })
    .await??;
    let (faces, scale) = analysed;
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
                bbox: BBox { x: b.x / scale, y: b.y / scale, width: b.width / scale, height: b.height / scale },
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
