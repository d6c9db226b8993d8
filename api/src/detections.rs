//! `/api/v1/detections`: newest first, filtered, with keyset pagination (`next_cursor` names the last
//! row returned; a page costs the same however deep it is), and the snapshots of each detection.

use actix_web::{web, HttpResponse};
use base64::Engine;
use chrono::{DateTime, Utc};
use panoptes_engine::snapshot::{SnapshotError, SnapshotKind};
use panoptes_engine::storage::{Detection, DetectionCursor, DetectionFilter};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub camera_id: Option<i64>,
    pub person_id: Option<i64>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// `true`: recognised appearances only; `false`: unknown ones only.
    pub recognized: Option<bool>,
    /// `false`: appearances no review stands on (the console's review queue); `true`: reviewed ones.
    pub reviewed: Option<bool>,
    /// One unknown identity's appearances.
    pub unknown_id: Option<i64>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A detection as listed: its fields plus where its snapshot is served (explicit fields rather than
/// `#[serde(flatten)]`, which buffers every row through an intermediate map).
#[derive(Debug, Serialize)]
struct DetectionView {
    id: i64,
    camera_id: Option<i64>,
    detected_at: DateTime<Utc>,
    last_seen_at: Option<DateTime<Utc>>,
    person_id: Option<i64>,
    score: f32,
    best_score: Option<f32>,
    det_score: Option<f32>,
    bbox: panoptes_engine::geometry::BBox,
    frames: i32,
    snapshot_path: Option<String>,
    snapshot_url: Option<String>,
    /// Why the appearance is who it is: decision, embeddings used, runner-up person and score.
    evidence: panoptes_engine::storage::AppearanceEvidence,
    /// `confirmed` or `rejected` while an operator's review stands on it.
    review: Option<String>,
    /// The unknown identity the appearance was grouped into.
    unknown_id: Option<i64>,
}

impl From<Detection> for DetectionView {
    fn from(d: Detection) -> Self {
        DetectionView {
            snapshot_url: d.snapshot_path.as_ref().map(|_| format!("/api/v1/detections/{}/snapshot.jpg", d.id)),
            id: d.id,
            camera_id: d.camera_id,
            detected_at: d.detected_at,
            last_seen_at: d.last_seen_at,
            person_id: d.person_id,
            score: d.score,
            best_score: d.best_score,
            det_score: d.det_score,
            bbox: d.bbox,
            frames: d.frames,
            snapshot_path: d.snapshot_path,
            evidence: d.evidence,
            review: d.review,
            unknown_id: d.unknown_id,
        }
    }
}

#[derive(Debug, Serialize)]
struct DetectionPage {
    items: Vec<DetectionView>,
    next_cursor: Option<String>,
}

/// Cursors are opaque to clients: base64url of "<microseconds since epoch>:<id>".
pub fn encode_cursor(c: &DetectionCursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}:{}", c.detected_at.timestamp_micros(), c.id))
}

pub fn decode_cursor(s: &str) -> Result<DetectionCursor, ApiError> {
    let bad = || ApiError::bad_request("invalid_cursor", "cursor is not one this API returned");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (micros, id) = text.split_once(':').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let id: i64 = id.parse().map_err(|_| bad())?;
    let detected_at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    Ok(DetectionCursor { detected_at, id })
}

pub async fn list(state: web::Data<AppState>, q: web::Query<ListQuery>) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit must be 1..=1000"));
    }
    let cursor = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let filter = DetectionFilter {
        camera_id: q.camera_id,
        person_id: q.person_id,
        since: q.since,
        until: q.until,
        recognized: q.recognized,
        reviewed: q.reviewed,
        unknown_id: q.unknown_id,
    };
    let rows = state.store.list_detections(&filter, cursor, limit).await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|d| encode_cursor(&DetectionCursor { detected_at: d.detected_at, id: d.id })))
        .flatten();
    let items: Vec<DetectionView> = rows.into_iter().map(DetectionView::from).collect();
    Ok(HttpResponse::Ok().json(DetectionPage { items, next_cursor }))
}

pub async fn get(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let d = state.store.get_detection(id).await?.ok_or(ApiError::NotFound { what: "detection", id })?;
    Ok(HttpResponse::Ok().json(DetectionView::from(d)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotQuery {
    /// `face` (the crop, default) or `frame` (the downscaled context frame).
    pub kind: Option<String>,
}

pub async fn snapshot(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    q: web::Query<SnapshotQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let kind = match q.kind.as_deref() {
        None | Some("face") => SnapshotKind::Face,
        Some("frame") => SnapshotKind::Frame,
        Some(other) => {
            return Err(ApiError::bad_request("invalid_query", format!("kind must be face or frame, not {other:?}")))
        }
    };
    let d = state.store.get_detection(id).await?.ok_or(ApiError::NotFound { what: "detection", id })?;
    let Some(stem) = d.snapshot_path else {
        return Err(ApiError::NotFound { what: "snapshot of detection", id });
    };
    let Some(store) = state.snapshots.clone() else {
        return Err(ApiError::Unavailable("snapshots are disabled in this process".into()));
    };
    let bytes = actix_web::web::block(move || store.read(&stem, kind))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| match e {
            SnapshotError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ApiError::NotFound { what: "snapshot file (expired?) of detection", id }
            }
            other => ApiError::Internal(other.to_string()),
        })?;
    Ok(HttpResponse::Ok().content_type("image/jpeg").body(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c =
            DetectionCursor { detected_at: DateTime::from_timestamp_micros(1_763_800_000_123_456).unwrap(), id: 42 };
        assert_eq!(decode_cursor(&encode_cursor(&c)).unwrap(), c);
        for bad in ["", "!!", "Ojo", "eHl6"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
