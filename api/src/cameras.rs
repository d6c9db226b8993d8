//! `/api/v1/cameras`: configuration in PostgreSQL (the scheduler starts and stops pipelines from it
//! within a second) joined with the live status of the pipelines running on this node.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use actix_web::{web, HttpResponse};
use panoptes_actors::main_stream::{StreamMode, TimeSource};
use panoptes_actors::scheduler::CameraReport;
use panoptes_engine::source::camera_url::{is_rtsp, redact, CameraUrl};
use panoptes_engine::source::rtsp::RtspTransport;
use panoptes_engine::storage::{Camera, CameraOptions, CameraPatch, NewCamera as NewCameraRow};
use serde::{Deserialize, Serialize};

use crate::error::{valid_name, ApiError};
use crate::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCamera {
    pub name: String,
    pub url: String,
    pub analysis_fps: Option<f32>,
    pub enabled: Option<bool>,
    pub transport: Option<RtspTransport>,
    pub options: Option<CameraOptions>,
    /// A substream of the same view (lower resolution) to detect and track on; `url` is then read at
    /// its keyframes for recognition and snapshots.
    pub detect_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraUpdate {
    pub name: Option<String>,
    pub url: Option<String>,
    pub analysis_fps: Option<f32>,
    pub enabled: Option<bool>,
    pub transport: Option<RtspTransport>,
    pub options: Option<CameraOptions>,
    /// `""` removes the substream.
    pub detect_url: Option<String>,
}

/// What the API shows of a camera: the URL without credentials, and live status when it runs here.
#[derive(Debug, Serialize)]
pub struct CameraView {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub analysis_fps: f32,
    pub enabled: bool,
    pub transport: RtspTransport,
    pub options: CameraOptions,
    /// Without credentials.
    pub detect_url: Option<String>,
    pub status: Option<LiveStatus>,
}

#[derive(Debug, Serialize)]
pub struct LiveStatus {
    pub state: panoptes_actors::camera::CameraState,
    pub fps: f32,
    pub analysis_fps_in_force: f32,
    pub frames_received: u64,
    /// File cameras: frames the source delivered late (it fell behind its own rate).
    pub frames_late: u64,
    pub frames_decoded: u64,
    /// Non-reference pictures not decoded (no analysis was due).
    pub frames_skipped: u64,
    /// Samples taken at the analysis rate.
    pub frames_sampled: u64,
    /// Samples in which nothing moved: the detector did not run.
    pub frames_gated: u64,
    pub frames_dropped: u64,
    pub frames_corrupt: u64,
    pub reconnects: u64,
    pub last_error: Option<String>,
    pub worker: usize,
    /// How the camera's streams are used (`single` without a substream).
    pub stream_mode: StreamMode,
    /// Cameras with a substream: what relates the two streams' pictures in time.
    pub time_source: Option<TimeSource>,
    /// Cameras with a substream: the main stream (the fields above are the substream's).
    pub main_stream: Option<MainStreamStatus>,
}

#[derive(Debug, Serialize)]
pub struct MainStreamStatus {
    pub state: panoptes_actors::camera::CameraState,
    pub fps: f32,
    pub frames_received: u64,
    pub keyframes_decoded: u64,
    pub reconnects: u64,
    /// Faces embedded from its pictures.
    pub main_embeddings: u64,
    pub last_error: Option<String>,
}

fn view(c: Camera, report: Option<&CameraReport>) -> CameraView {
    let status = report.and_then(|r| {
        let s = r.status.as_ref()?;
        let d = r.decoder.unwrap_or_default();
        Some(LiveStatus {
            state: s.state,
            fps: s.fps,
            analysis_fps_in_force: r.analysis_fps,
            frames_received: s.frames_received,
            frames_late: s.frames_late,
            frames_decoded: d.decoded,
            frames_skipped: d.skipped,
            frames_sampled: d.sampled,
            frames_gated: d.gated,
            frames_dropped: s.frames_dropped + d.dropped_for_inference,
            frames_corrupt: d.corrupt,
            reconnects: s.reconnects,
            last_error: match d.stream_mode {
                StreamMode::Mismatch => Some(
                    "the main stream's aspect ratio differs from the substream's: it is ignored (see the log)".into(),
                ),
                _ => s.last_error.clone(),
            },
            worker: r.worker,
            stream_mode: d.stream_mode,
            time_source: d.time_source,
            main_stream: r.main_status.as_ref().map(|m| MainStreamStatus {
                state: m.state,
                fps: m.fps,
                frames_received: m.frames_received,
                keyframes_decoded: d.main_keyframes_decoded,
                reconnects: m.reconnects,
                main_embeddings: d.main_embeddings,
                last_error: m.last_error.clone(),
            }),
        })
    });
    CameraView {
        id: c.id,
        name: c.name,
        url: redact(&c.url),
        analysis_fps: c.analysis_fps,
        enabled: c.enabled,
        transport: c.transport,
        options: c.options,
        detect_url: c.detect_url.as_deref().map(redact),
        status,
    }
}

/// Live status from the scheduler's board (republished every second; no actor round trip).
fn live(state: &AppState) -> std::sync::Arc<Vec<CameraReport>> {
    state.engine.as_ref().map(|e| e.camera_status.get()).unwrap_or_default()
}

fn check_options(o: &CameraOptions) -> Result<(), ApiError> {
    if let Some((i, _)) = o.motion_mask.iter().enumerate().find(|(_, m)| !m.is_valid()) {
        return Err(ApiError::unprocessable(
            "invalid_motion_mask",
            format!("options.motion_mask[{i}]: x, y, width and height are fractions of the frame (0 to 1), width and height above 0"),
        ));
    }
    if o.motion_mask.len() > 64 {
        return Err(ApiError::unprocessable("invalid_motion_mask", "options.motion_mask holds at most 64 regions"));
    }
    if let Some(secs) = o.stall_timeout_secs {
        if !(secs.is_finite() && (1.0..=600.0).contains(&secs)) {
            return Err(ApiError::unprocessable(
                "invalid_stall_timeout",
                format!("options.stall_timeout_secs must be between 1 and 600 seconds, got {secs}"),
            ));
        }
    }
    if let Some(days) = o.retention_days {
        let max = CameraOptions::MAX_RETENTION_DAYS;
        if !(1..=max).contains(&days) {
            return Err(ApiError::unprocessable(
                "invalid_retention_days",
                format!("options.retention_days must be between 1 and {max} days, got {days}"),
            ));
        }
    }
    Ok(())
}

fn check_fps(fps: f32) -> Result<(), ApiError> {
    if !(fps.is_finite() && fps > 0.0 && fps <= 60.0) {
        return Err(ApiError::unprocessable(
            "invalid_analysis_fps",
            format!("analysis_fps must be in (0, 60], got {fps}"),
        ));
    }
    Ok(())
}

/// rtsp:// and rtsps:// URLs (parsed, host required), or an existing file under the media root.
fn check_url(state: &AppState, url: &str) -> Result<String, ApiError> {
    if is_rtsp(url) {
        CameraUrl::parse(url).map_err(|e| ApiError::unprocessable("invalid_camera_url", e.to_string()))?;
        return Ok(url.to_string());
    }
    if url.contains("://") {
        return Err(ApiError::unprocessable(
            "unsupported_camera_url",
            "camera URLs must be rtsp://, rtsps:// or a file path under the media root",
        ));
    }
    let Some(root) = &state.media_root else {
        return Err(ApiError::unprocessable(
            "file_cameras_disabled",
            "file cameras are disabled (api.media_root is empty)",
        ));
    };
    let path = Path::new(url);
    let path = if path.is_absolute() { path.to_path_buf() } else { root.join(path) };
    match std::fs::canonicalize(&path) {
        Ok(p) if p.starts_with(root) && p.is_file() => Ok(p.to_string_lossy().into_owned()),
        Ok(p) if p.starts_with(root) => Err(ApiError::unprocessable("invalid_camera_url", "the path is not a file")),
        Ok(_) => Err(ApiError::unprocessable(
            "path_outside_media_root",
            format!("file cameras must lie under {}", root.display()),
        )),
        Err(_) => Err(ApiError::unprocessable("file_not_found", format!("no such file: {url}"))),
    }
}

/// A substream URL: valid as a camera URL, and of the main stream's kind (both RTSP, or both files).
fn check_detect_url(state: &AppState, main: &str, detect: &str) -> Result<String, ApiError> {
    let checked = check_url(state, detect).map_err(|e| match e {
        ApiError::Unprocessable { message, .. } => {
            ApiError::unprocessable("invalid_detect_url", format!("detect_url: {message}"))
        }
        other => other,
    })?;
    if is_rtsp(main) != is_rtsp(&checked) {
        return Err(ApiError::unprocessable(
            "invalid_detect_url",
            "detect_url and url must both be RTSP streams of one camera, or both files",
        ));
    }
    if checked == main {
        return Err(ApiError::unprocessable("invalid_detect_url", "detect_url is the main stream itself"));
    }
    Ok(checked)
}

/// How long adding a camera with a substream waits for each stream's first keyframe.
const STREAM_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// Whether the two streams show one view, from their first pictures: another aspect ratio, or
/// another scene (a crop), is refused. A stream that cannot be read now is not held against the
/// camera (cameras are often added before they are installed): the camera's status reports it.
async fn check_stream_pair(main: &str, detect: &str, transport: RtspTransport) -> Result<(), ApiError> {
    use panoptes_engine::stream_pair::first_picture::first_picture;
    // Raw files play at the engine's file rate; only their first keyframe matters here.
    let (m, d) = tokio::join!(
        first_picture(main, transport, 10.0, STREAM_PROBE_TIMEOUT),
        first_picture(detect, transport, 10.0, STREAM_PROBE_TIMEOUT)
    );
    let (m, d) = match (m, d) {
        (Ok(m), Ok(d)) => (m, d),
        (m, d) => {
            for e in [m.err(), d.err()].into_iter().flatten() {
                tracing::warn!(error = %e, "cannot check the camera's two streams now; the camera's status will report it");
            }
            return Ok(());
        }
    };
    panoptes_engine::stream_pair::check_pair((&m).into(), (&d).into())
        .map(|_| ())
        .map_err(|e| ApiError::unprocessable("streams_mismatch", e.to_string()))
}

fn conflict_or(e: panoptes_engine::storage::StorageError, name: &str) -> ApiError {
    if e.is_unique_violation() {
        ApiError::Conflict { code: "name_taken", message: format!("a camera named {name:?} already exists") }
    } else {
        e.into()
    }
}

pub async fn create(state: web::Data<AppState>, body: web::Json<NewCamera>) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let name = valid_name(&b.name)?;
    let fps = b.analysis_fps.unwrap_or(5.0);
    check_fps(fps)?;
    let url = check_url(&state, &b.url)?;
    let options = b.options.unwrap_or_default();
    check_options(&options)?;
    let transport = b.transport.unwrap_or_default();
    let detect_url = match b.detect_url.as_deref() {
        Some(d) => Some(check_detect_url(&state, &url, d)?),
        None => None,
    };
    if let Some(d) = &detect_url {
        check_stream_pair(&url, d, transport).await?;
    }
    let new = NewCameraRow {
        name: &name,
        url: &url,
        analysis_fps: fps,
        enabled: b.enabled.unwrap_or(true),
        transport,
        options: &options,
        detect_url: detect_url.as_deref(),
    };
    let cam = state.store.insert_camera(&new).await.map_err(|e| conflict_or(e, &name))?;
    state.caches.invalidate_cameras();
    tracing::info!(camera_id = cam.id, url = %redact(&cam.url), "camera added through the API");
    Ok(HttpResponse::Created().insert_header(("Location", format!("/api/v1/cameras/{}", cam.id))).json(view(cam, None)))
}

pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let now = Instant::now();
    if let Some(body) = state.caches.camera_list(now) {
        return Ok(HttpResponse::Ok().content_type("application/json").body(body));
    }
    // Expired: one request rebuilds, concurrent ones get the previous list (at most ~1 s older)
    // instead of all hitting the database and the scheduler at once.
    let rebuild = state.caches.begin_camera_list_rebuild();
    if rebuild.is_none() {
        if let Some(body) = state.caches.last_good_camera_list() {
            return Ok(HttpResponse::Ok().content_type("application/json").body(body));
        }
    }
    let result = rebuild_list(&state, now).await;
    drop(rebuild);
    result
}

async fn rebuild_list(state: &AppState, now: Instant) -> Result<HttpResponse, ApiError> {
    let cameras = match state.store.list_cameras().await {
        Ok(c) => c,
        Err(e) => {
            return match state.caches.last_good_camera_list() {
                Some(body) => Ok(HttpResponse::Ok()
                    .content_type("application/json")
                    .insert_header(("X-Panoptes-Stale", "database unavailable"))
                    .body(body)),
                None => Err(e.into()),
            }
        }
    };
    let live = live(state);
    let by_id: HashMap<i64, &CameraReport> = live.iter().map(|r| (r.id, r)).collect();
    let items: Vec<CameraView> = cameras
        .into_iter()
        .map(|c| {
            let r = by_id.get(&c.id).copied();
            view(c, r)
        })
        .collect();
    let body = bytes::Bytes::from(
        serde_json::to_vec(&serde_json::json!({ "items": items })).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    state.caches.store_camera_list(now, body.clone());
    Ok(HttpResponse::Ok().content_type("application/json").body(body))
}

pub async fn get(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let cam = state.store.camera(id).await?.ok_or(ApiError::NotFound { what: "camera", id })?;
    let live = live(&state);
    Ok(HttpResponse::Ok().json(view(cam, live.iter().find(|r| r.id == id))))
}

pub async fn update(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<CameraUpdate>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let b = body.into_inner();
    let name = b.name.as_deref().map(valid_name).transpose()?;
    if let Some(f) = b.analysis_fps {
        check_fps(f)?;
    }
    let url = match &b.url {
        Some(u) => Some(check_url(&state, u)?),
        None => None,
    };
    if let Some(o) = &b.options {
        check_options(o)?;
    }
    let detect_url = match (&url, &b.detect_url, &b.transport) {
        (None, None, None) => None,
        _ => {
            // The pair as it will be: a new main stream, substream or transport is checked again.
            let current = state.store.camera(id).await?.ok_or(ApiError::NotFound { what: "camera", id })?;
            let main = url.clone().unwrap_or(current.url);
            let detect = match b.detect_url.as_deref() {
                Some("") => Some(None),
                Some(d) => Some(Some(check_detect_url(&state, &main, d)?)),
                None => None,
            };
            if let Some(d) = detect.clone().unwrap_or(current.detect_url) {
                check_stream_pair(&main, &d, b.transport.unwrap_or(current.transport)).await?;
            }
            detect
        }
    };
    let patch = CameraPatch {
        name: name.clone(),
        url,
        analysis_fps: b.analysis_fps,
        enabled: b.enabled,
        transport: b.transport,
        options: b.options,
        detect_url,
    };
    let cam = state
        .store
        .update_camera(id, &patch)
        .await
        .map_err(|e| conflict_or(e, name.as_deref().unwrap_or_default()))?
        .ok_or(ApiError::NotFound { what: "camera", id })?;
    state.caches.invalidate_cameras();
    Ok(HttpResponse::Ok().json(view(cam, None)))
}

pub async fn delete(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if !state.store.delete_camera(id).await? {
        return Err(ApiError::NotFound { what: "camera", id });
    }
    state.caches.invalidate_cameras();
    tracing::info!(camera_id = id, "camera removed through the API");
    Ok(HttpResponse::NoContent().finish())
}

/// The camera's newest analysed frame with face boxes (green: recognised, red: unknown) and names.
pub async fn snapshot(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let latest = state.engine.as_ref().and_then(|e| e.latest_frames.get(id));
    let Some(latest) = latest else {
        state.store.camera(id).await?.ok_or(ApiError::NotFound { what: "camera", id })?;
        // Not a server fault: the camera is disabled, still connecting, or analysed on another node.
        return Err(ApiError::NotFound { what: "analysed frame of camera", id });
    };
    let ids: Vec<i64> = latest.faces.iter().filter_map(|f| f.person_id).collect();
    let names: HashMap<i64, String> = if ids.is_empty() {
        HashMap::new()
    } else {
        state.store.person_names(&ids).await.unwrap_or_default().into_iter().collect()
    };
    let analysed_at = latest.analysed_at.to_rfc3339();
    let jpeg = crate::analyzer::run_blocking(move || {
        let mut img = latest.frame.to_rgb();
        for f in &latest.faces {
            let colour = if f.person_id.is_some() { crate::annotate::KNOWN } else { crate::annotate::UNKNOWN };
            crate::annotate::draw_box(&mut img, &f.bbox, colour, 3);
            let label = match f.person_id.and_then(|p| names.get(&p)) {
                Some(n) => format!("{n} {:.2}", f.score),
                None => "unknown".to_string(),
            };
            crate::annotate::draw_label(&mut img, f.bbox.x, f.bbox.y, &label, colour);
        }
        panoptes_engine::image_resize::jpeg_at_most(&img, 500 * 1024)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Panoptes-Analysed-At", analysed_at))
        .body(jpeg))
}
