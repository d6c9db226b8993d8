//! `POST /api/v1/search`: stored appearances of every camera and time, known and unknown, ranked by
//! how like a face they are (`panoptes_engine::search`). The face is a photo showing exactly one
//! face (multipart, field `photo`), or a stored appearance's face (JSON `{"detection_id": N}`).
//! Filters and paging are in the query string, the same for both: `camera_id=1,2`, `since`, `until`,
//! `min_score`, `limit`, `cursor` (a photo search's next page sends the photo again). Each search is
//! written to the audit trail: searching people by their face is worth a record of who did.

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use panoptes_engine::geometry::BBox;
use panoptes_engine::search::{self, Cursor, SearchError, SearchRequest};
use serde::{Deserialize, Serialize};

use crate::analyzer::{analyze_photo, in_photo_pixels};
use crate::auth::requester;
use crate::error::ApiError;
use crate::multipart;
use crate::AppState;

/// A JSON body names one appearance: anything larger is not one.
const JSON_LIMIT: usize = 4096;

impl From<SearchError> for ApiError {
    fn from(e: SearchError) -> Self {
        let message = e.to_string();
        match e {
            SearchError::BadCursor(_) => ApiError::bad_request("invalid_cursor", message),
            SearchError::OtherModel { .. } => ApiError::Conflict { code: "other_model", message },
            SearchError::Index(_) => ApiError::unprocessable("invalid_face", message),
            SearchError::NotReady => ApiError::Unavailable(message),
            SearchError::Storage(s) => s.into(),
            SearchError::Task(m) => ApiError::Internal(m),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Comma-separated camera ids (absent: every camera).
    camera_id: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    min_score: Option<f32>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ByAppearance {
    detection_id: i64,
}

#[derive(Debug, Serialize)]
struct HitView {
    detection_id: i64,
    score: f32,
    camera_id: Option<i64>,
    detected_at: DateTime<Utc>,
    last_seen_at: Option<DateTime<Utc>>,
    person_id: Option<i64>,
    person_name: Option<String>,
    decision: Option<String>,
    unknown_id: Option<i64>,
    detection_url: String,
    snapshot_url: Option<String>,
}

/// The face searched for, as the answer describes it.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum QueryFace {
    Photo {
        #[serde(rename = "box")]
        bbox: BBox,
        det_score: f32,
    },
    Detection {
        detection_id: i64,
    },
}

fn parse_cameras(list: &str) -> Result<Vec<i64>, ApiError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>().map_err(|_| {
                ApiError::bad_request("invalid_query", format!("camera_id must be comma-separated integers, got {s:?}"))
            })
        })
        .collect()
}

pub async fn search(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<SearchQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit must be 1..=500"));
    }
    let min_score = q.min_score.unwrap_or(-1.0);
    if !(-1.0..=1.0).contains(&min_score) {
        return Err(ApiError::bad_request("invalid_query", "min_score must be between -1 and 1"));
    }
    if let (Some(a), Some(b)) = (q.since, q.until) {
        if a > b {
            return Err(ApiError::bad_request("invalid_query", "since must not be after until"));
        }
    }
    let cameras = q.camera_id.as_deref().map(parse_cameras).transpose()?.unwrap_or_default();
    let after = q.cursor.as_deref().map(str::parse::<Cursor>).transpose()?;
    let Some(index) = state.search.clone() else {
        return Err(ApiError::Unavailable("search is not running in this process".into()));
    };
    let (model, _) = state.serving();

    let multipart_body = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"));
    let (query, face, target) = if multipart_body {
        let form = multipart::read(Multipart::new(req.headers(), payload), state.config.upload_limit_bytes).await?;
        let Some(photo) = form.files.into_iter().next() else {
            return Err(ApiError::unprocessable("no_photo", "a photo file is required (field \"photo\")"));
        };
        let (mut faces, scale) = analyze_photo(&state, &model, photo.bytes).await?;
        let f = match faces.len() {
            0 => return Err(ApiError::unprocessable("no_face", "no face was found in the photo")),
            1 => faces.remove(0),
            n => {
                return Err(ApiError::unprocessable(
                    "several_faces",
                    format!("the photo shows {n} faces; search takes a photo of one face (crop it)"),
                ))
            }
        };
        let bbox = in_photo_pixels(f.face.bbox, scale);
        (f.embedding, QueryFace::Photo { bbox, det_score: f.face.score }, "photo".to_string())
    } else {
        let body = read_limited(payload, JSON_LIMIT).await?;
        let by: ByAppearance = serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(
                "invalid_json",
                format!("expected a photo (multipart, field \"photo\") or {{\"detection_id\": N}}: {e}"),
            )
        })?;
        let id = by.detection_id;
        let Some(stored) = state.store.appearance_face(id).await? else {
            return Err(match state.store.get_detection(id).await? {
                None => ApiError::NotFound { what: "detection", id },
                Some(_) => ApiError::Conflict {
                    code: "no_stored_face",
                    message: format!("detection {id} keeps no face (its face expired, or it was never embedded)"),
                },
            });
        };
        if stored.model != model {
            return Err(ApiError::Conflict {
                code: "other_model",
                message: format!(
                    "detection {id}'s face was embedded with {}, the engine now searches {}",
                    stored.model, model
                ),
            });
        }
        (stored.vector, QueryFace::Detection { detection_id: id }, format!("detection:{id}"))
    };

    let request = SearchRequest { model, query, cameras, from: q.since, until: q.until, min_score, after, limit };
    let page = search::search(&state.store, &index, &request).await?;
    state
        .store
        .record_search(
            &requester(&req),
            &target,
            serde_json::json!({ "hits": page.hits.len(), "cameras": request.cameras, "min_score": min_score }),
        )
        .await?;

    let person_ids: Vec<i64> = page.hits.iter().filter_map(|h| h.person_id).collect();
    let names: std::collections::HashMap<i64, String> = if person_ids.is_empty() {
        Default::default()
    } else {
        state.store.person_names(&person_ids).await?.into_iter().collect()
    };
    let hits: Vec<HitView> = page
        .hits
        .iter()
        .map(|h| HitView {
            detection_id: h.detection_id,
            score: h.score,
            camera_id: h.camera_id,
            detected_at: h.detected_at,
            last_seen_at: h.last_seen_at,
            person_id: h.person_id,
            person_name: h.person_id.and_then(|p| names.get(&p).cloned()),
            decision: h.decision.clone(),
            unknown_id: h.unknown_id,
            detection_url: format!("/api/v1/detections/{}", h.detection_id),
            snapshot_url: h.has_snapshot.then(|| format!("/api/v1/detections/{}/snapshot.jpg", h.detection_id)),
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "query": face,
        "model": request.model.to_string(),
        "hits": hits,
        "next_cursor": page.next_cursor,
        "searched": page.searched,
        "rescored": page.rescored,
    })))
}

/// The request body, refused past `limit` bytes.
async fn read_limited(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(format!(
                "a JSON search body is at most {limit} bytes; send a photo as multipart/form-data"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
