//! An engine's API as an operator drives it, for the tests of review and search: the real engine
//! (the assembly `panoptes serve` runs) with an admin and a viewer key, unknown faces recorded, and
//! cameras playing clips from its media root.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{test, App};
use panoptes_api::config::{ApiKeyConfig, Role};
use panoptes_engine::storage::{Detection, DetectionFilter, Store};
use serde_json::{json, Value};

pub const ADMIN: &str = "admin-secret-0123456789";
pub const VIEWER: &str = "viewer-secret-0123456789";
pub const BOUNDARY: &str = "panoptes-operator-boundary";

pub fn keys() -> Vec<ApiKeyConfig> {
    let key = |name: &str, role, key: &str| ApiKeyConfig {
        name: name.into(),
        role: Some(role),
        key: key.into(),
        key_sha256: String::new(),
    };
    vec![key("ops", Role::Admin, ADMIN), key("guard", Role::Viewer, VIEWER)]
}

pub async fn call<S>(app: &S, req: test::TestRequest) -> (StatusCode, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let resp = test::call_service(app, req.to_request()).await;
    let status = resp.status();
    let body = test::read_body(resp).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

pub fn as_admin(r: test::TestRequest) -> test::TestRequest {
    r.insert_header(("X-API-Key", ADMIN))
}

pub fn as_viewer(r: test::TestRequest) -> test::TestRequest {
    r.insert_header(("X-API-Key", VIEWER))
}

/// Enrols `name` from one photo through the API; answers the person's id.
pub async fn enroll<S>(app: &S, name: &str, photo: &str) -> i64
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let bytes = super::photo_bytes(photo);
    let mut body =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n{name}\r\n").into_bytes();
    body.extend(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"photos\"; filename=\"{photo}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
            .bytes(),
    );
    body.extend_from_slice(&bytes);
    body.extend(format!("\r\n--{BOUNDARY}--\r\n").bytes());
    let req = test::TestRequest::post()
        .uri("/api/v1/persons")
        .insert_header(("Content-Type", format!("multipart/form-data; boundary={BOUNDARY}")))
        .set_payload(body);
    let (s, r) = call(app, as_admin(req)).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    r["person"]["id"].as_i64().expect("person id")
}

/// Adds a camera playing `clip` (copied into the media root as `file`); answers its id.
pub async fn add_camera<S>(app: &S, media: &Path, clip: &Path, name: &str, file: &str) -> i64
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    std::fs::copy(clip, media.join(file)).expect("copy the clip into the media root");
    let req = test::TestRequest::post().uri("/api/v1/cameras").set_json(json!({"name": name, "url": file}));
    let (s, cam) = call(app, as_admin(req)).await;
    assert_eq!(s, StatusCode::CREATED, "{cam}");
    cam["id"].as_i64().expect("camera id")
}

pub async fn delete_camera<S>(app: &S, id: i64)
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let (s, r) = call(app, as_admin(test::TestRequest::delete().uri(&format!("/api/v1/cameras/{id}")))).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{r}");
}

/// The first appearance on `camera` that `wanted` accepts, waiting for it up to two minutes (a busy
/// machine runs the models slowly).
pub async fn appearance(store: &Store, camera: i64, what: &str, wanted: impl Fn(&Detection) -> bool) -> Detection {
    let deadline = Instant::now() + Duration::from_secs(120);
    let filter = DetectionFilter { camera_id: Some(camera), ..DetectionFilter::default() };
    loop {
        let rows = store.list_detections(&filter, None, 50).await.expect("list detections");
        if let Some(d) = rows.iter().find(|d| wanted(d)) {
            return d.clone();
        }
        assert!(Instant::now() < deadline, "no {what} on camera {camera} within 120 s: {rows:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The API of a running engine, as `serve` mounts it.
pub async fn app(
    engine: &panoptes::Engine,
) -> impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error> {
    test::init_service(
        App::new()
            .app_data(engine.api_state())
            .wrap(actix_web::middleware::from_fn(panoptes_api::guard::guard))
            .configure(panoptes_api::configure),
    )
    .await
}

/// The engine with keys, unknown faces recorded, and the media root the cameras play from.
pub async fn engine(node: &str) -> (panoptes::Engine, PathBuf) {
    let db = super::fresh_database().await;
    let mut settings = super::engine_settings(&db, node);
    settings.api.keys = keys();
    settings.streaming.record_unknown = true;
    let media = PathBuf::from(&settings.api.media_root);
    (super::start_engine(settings).await, media)
}

pub fn clip_of(photo: &Path, tag: &str) -> PathBuf {
    super::h264_clip(photo, 3, &["-profile:v", "baseline", "-g", "10"], tag)
}
