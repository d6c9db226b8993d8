//! The control API against a real PostgreSQL, the real models and (for live events) the real
//! streaming engine on a file-source camera.

mod common;

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::http::StatusCode;
use actix_web::{test, web, App};
use panoptes_api::config::{ApiKeyConfig, Role};
use panoptes_api::{ApiConfig, AppState};
use serde_json::{json, Value};

const BOUNDARY: &str = "panoptes-test-boundary";

/// A multipart/form-data body: text fields, then files.
fn multipart(texts: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (name, value) in texts {
        b.extend(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").bytes());
    }
    for (name, filename, data) in files {
        b.extend(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .bytes(),
        );
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    b.extend(format!("--{BOUNDARY}--\r\n").bytes());
    b
}

fn multipart_request(path: &str, body: Vec<u8>) -> test::TestRequest {
    test::TestRequest::post()
        .uri(path)
        .insert_header(("Content-Type", format!("multipart/form-data; boundary={BOUNDARY}")))
        .set_payload(body)
}

async fn state_with(config: ApiConfig) -> (AppState, panoptes_engine::storage::Store) {
    let (store, _) = common::fresh_store().await;
    (state_on(&store, config).await, store)
}

/// An API state on `store` with the real models, its stored keys read as at start.
async fn state_on(store: &panoptes_engine::storage::Store, config: ApiConfig) -> AppState {
    let p = common::pipeline();
    let gallery = common::gallery_for(store, &p).await;
    let mut state = AppState::new(store.clone(), gallery, config).unwrap();
    state.analyzer = panoptes_api::analyzer::Analyzer::new(vec![p]);
    state.keys.reload(store).await.expect("read stored keys");
    state
}

/// A configured key holding `key` in plain text.
fn api_key(name: &str, role: Role, key: &str) -> ApiKeyConfig {
    ApiKeyConfig { name: name.into(), role: Some(role), key: key.into(), key_sha256: String::new() }
}

macro_rules! app {
    ($state:expr) => {
        test::init_service(
            App::new()
                .app_data($state.clone())
                .wrap(actix_web::middleware::from_fn(panoptes_api::guard::guard))
                .configure(panoptes_api::configure),
        )
        .await
    };
}

/// Status and JSON body (Null when the body is not JSON).
async fn call<S, B>(app: &S, req: test::TestRequest) -> (StatusCode, Value)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: MessageBody,
{
    let resp = test::call_service(app, req.to_request()).await;
    let status = resp.status();
    let body = test::read_body(resp).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error code>")
}

#[actix_web::test]
async fn cameras_crud_and_every_bad_request_gets_its_own_json_error() {
    let media = common::temp_dir("api-media");
    let clip = common::h264_clip(&common::photo("obama.jpg"), 1, &["-profile:v", "baseline"], "api-cam");
    std::fs::copy(&clip, media.join("door.h264")).unwrap();
    let config = ApiConfig { media_root: common::path_str(&media), ..ApiConfig::default() };
    let (state, _) = state_with(config).await;
    let state = web::Data::new(state);
    let app = app!(state);

    let (s, cam) = call(
        &app,
        test::TestRequest::post().uri("/api/v1/cameras").set_json(json!({
            "name": "front door", "url": "rtsp://admin:hunter2@10.0.0.7:554/stream1", "analysis_fps": 4.0
        })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{cam}");
    let id = cam["id"].as_i64().unwrap();
    assert!(!cam["url"].as_str().unwrap().contains("hunter2"), "credentials leaked: {cam}");
    let (s, file_cam) = call(
        &app,
        test::TestRequest::post().uri("/api/v1/cameras").set_json(json!({"name": "file", "url": "door.h264"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{file_cam}");

    let (s, list) = call(&app, test::TestRequest::get().uri("/api/v1/cameras")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains("hunter2"));
    let (s, one) = call(&app, test::TestRequest::get().uri(&format!("/api/v1/cameras/{id}"))).await;
    assert_eq!((s, one["analysis_fps"].as_f64()), (StatusCode::OK, Some(4.0)));
    let (s, patched) = call(
        &app,
        test::TestRequest::patch().uri(&format!("/api/v1/cameras/{id}")).set_json(json!({"enabled": false})),
    )
    .await;
    assert_eq!((s, patched["enabled"].as_bool()), (StatusCode::OK, Some(false)), "{patched}");
    // A motion mask is stored with the camera and shown back; a camera has none by default.
    assert_eq!(one["options"], json!({"motion_mask": []}), "{one}");
    let mask = json!({"motion_mask": [{"x": 0.75, "y": 0.0, "width": 0.25, "height": 0.2}]});
    let (s, patched) =
        call(&app, test::TestRequest::patch().uri(&format!("/api/v1/cameras/{id}")).set_json(json!({"options": mask})))
            .await;
    assert_eq!((s, &patched["options"]), (StatusCode::OK, &mask), "{patched}");
    for bad in [
        json!({"motion_mask": [{"x": 0.5, "y": 0.5, "width": 0.0, "height": 0.2}]}),
        json!({"motion_mask": [{"x": 1.5, "y": 0.0, "width": 0.1, "height": 0.1}]}),
    ] {
        let (s, e) = call(
            &app,
            test::TestRequest::patch().uri(&format!("/api/v1/cameras/{id}")).set_json(json!({"options": bad})),
        )
        .await;
        assert_eq!((s, code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_motion_mask"), "{bad}: {e}");
        assert!(e["error"]["message"].as_str().unwrap().contains("motion_mask[0]"), "{e}");
    }
    let (s, e) = call(
        &app,
        test::TestRequest::patch()
            .uri(&format!("/api/v1/cameras/{id}"))
            .set_json(json!({"options": {"motion_mask": [], "sensitivity": 3}})),
    )
    .await;
    assert_eq!((s, code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"), "{e}");
    let (_, one) = call(&app, test::TestRequest::get().uri(&format!("/api/v1/cameras/{id}"))).await;
    assert_eq!(one["options"], mask, "a refused change left the stored mask alone");
    // Stream options: a stall timeout within 1–600 s, and whether a file loops.
    for bad in [json!(0.5), json!(601), json!(-3)] {
        let (s, e) = call(
            &app,
            test::TestRequest::patch()
                .uri(&format!("/api/v1/cameras/{id}"))
                .set_json(json!({"options": {"stall_timeout_secs": bad}})),
        )
        .await;
        assert_eq!((s, code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_stall_timeout"), "{bad}: {e}");
    }
    let (s, e) = call(
        &app,
        test::TestRequest::patch().uri(&format!("/api/v1/cameras/{id}")).set_json(json!({"options": {"loop": "no"}})),
    )
    .await;
    assert_eq!((s, code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"), "{e}");
    // A retention of its own: whole days, 1 to 3650.
    for (bad, expected) in [
        (json!(0), "invalid_retention_days"),
        (json!(3651), "invalid_retention_days"),
        (json!(-1), "invalid_field"),
        (json!(1.5), "invalid_field"),
        (json!("90"), "invalid_field"),
    ] {
        let (s, e) = call(
            &app,
            test::TestRequest::patch()
                .uri(&format!("/api/v1/cameras/{id}"))
                .set_json(json!({"options": {"retention_days": bad}})),
        )
        .await;
        assert_eq!((s, code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, expected), "{bad}: {e}");
    }
    let stream = json!({"motion_mask": [], "stall_timeout_secs": 30.0, "loop": false, "retention_days": 14});
    let (s, patched) = call(
        &app,
        test::TestRequest::patch().uri(&format!("/api/v1/cameras/{id}")).set_json(json!({"options": stream})),
    )
    .await;
    assert_eq!((s, &patched["options"]), (StatusCode::OK, &stream), "{patched}");
    let (s, _) = call(&app, test::TestRequest::delete().uri(&format!("/api/v1/cameras/{id}"))).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, e) = call(&app, test::TestRequest::get().uri(&format!("/api/v1/cameras/{id}"))).await;
    assert_eq!((s, code(&e)), (StatusCode::NOT_FOUND, "not_found"));

    let outside = common::h264_clip(&common::photo("obama.jpg"), 1, &[], "outside");
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (json!({"name": "x", "url": "http://cam/stream"}), StatusCode::UNPROCESSABLE_ENTITY, "unsupported_camera_url"),
        (json!({"name": "x", "url": "rtsp://"}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_camera_url"),
        (
            json!({"name": "x", "url": common::path_str(&outside)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "path_outside_media_root",
        ),
        (json!({"name": "x", "url": "../../etc/passwd"}), StatusCode::UNPROCESSABLE_ENTITY, "path_outside_media_root"),
        (json!({"name": "x", "url": "missing.h264"}), StatusCode::UNPROCESSABLE_ENTITY, "file_not_found"),
        (json!({"name": "", "url": "rtsp://h/s"}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_name"),
        (
            json!({"name": "x", "url": "rtsp://h/s", "analysis_fps": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_analysis_fps",
        ),
        (
            json!({"name": "x", "url": "rtsp://h/s", "analysis_fps": "fast"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (json!({"name": "x", "url": "rtsp://h/s", "colour": "red"}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        (json!({"name": "file", "url": "rtsp://h/s"}), StatusCode::CONFLICT, "name_taken"),
    ];
    for (body, status, expected) in cases {
        let (s, e) = call(&app, test::TestRequest::post().uri("/api/v1/cameras").set_json(&body)).await;
        assert_eq!((s, code(&e)), (status, expected), "{body}: {e}");
        assert!(e["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let raw = |body: &'static str| {
        test::TestRequest::post()
            .uri("/api/v1/cameras")
            .insert_header(("Content-Type", "application/json"))
            .set_payload(body)
    };
    let (s, e) = call(&app, raw("{\"name\": ")).await;
    assert_eq!((s, code(&e)), (StatusCode::BAD_REQUEST, "invalid_json"));
    let (s, e) = call(&app, raw(Box::leak("x".repeat(70_000).into_boxed_str()))).await;
    assert_eq!((s, code(&e)), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
    let (s, e) = call(&app, test::TestRequest::get().uri("/api/v1/cameras/abc")).await;
    assert_eq!((s, code(&e)), (StatusCode::BAD_REQUEST, "invalid_path"));
    let (s, e) = call(&app, test::TestRequest::get().uri("/api/v1/nothing")).await;
    assert_eq!((s, code(&e)), (StatusCode::NOT_FOUND, "no_such_route"));
    let (s, e) = call(&app, test::TestRequest::put().uri("/api/v1/cameras")).await;
    assert_eq!((s, code(&e)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    let resp = test::call_service(&app, test::TestRequest::put().uri("/api/v1/cameras/7").to_request()).await;
    assert_eq!(resp.headers().get("allow").and_then(|v| v.to_str().ok()), Some("GET, PATCH, DELETE"));
    let (s, e) = call(&app, test::TestRequest::get().uri("/api/v1/detections?limit=0")).await;
    assert_eq!((s, code(&e)), (StatusCode::BAD_REQUEST, "invalid_query"));
    let (s, e) = call(&app, test::TestRequest::get().uri("/api/v1/detections?cursor=zzz")).await;
    assert_eq!((s, code(&e)), (StatusCode::BAD_REQUEST, "invalid_cursor"));

    // Every documented route is registered (no 404 "no_such_route" for any of them).
    for (method, path) in panoptes_api::routes::ROUTES {
        let uri = path.replace("{id}", "999999");
        let req = test::TestRequest::default().method(panoptes_api::routes::method(method)).uri(&uri);
        let resp = test::call_service(&app, req.to_request()).await;
        let status = resp.status();
        if *path == "/api/v1/events" {
            assert_eq!(status, StatusCode::OK); // an endless stream: not read
            continue;
        }
        let body: Value = serde_json::from_slice(&test::read_body(resp).await).unwrap_or(Value::Null);
        assert!(
            code(&body) != "no_such_route" && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {status} {body}"
        );
    }
    let (s, doc) = call(&app, test::TestRequest::get().uri("/api/v1/openapi.json")).await;
    assert_eq!((s, doc["openapi"].as_str()), (StatusCode::OK, Some("3.0.3")));
}

#[actix_web::test]
async fn enrollment_identify_and_each_refusal() {
    let (state, store) = state_with(ApiConfig::default()).await;
    let state = web::Data::new(state);
    let app = app!(state);
    let obama = common::photo_bytes("obama.jpg");
    let body = multipart(
        &[("name", "Barack Obama"), ("metadata", "{\"team\": \"blue\"}")],
        &[("photos", "obama.jpg", &obama)],
    );
    let (s, r) = call(&app, multipart_request("/api/v1/persons", body)).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["faces_enrolled"], 1);
    let person_id = r["person"]["id"].as_i64().unwrap();
    assert_eq!(r["person"]["metadata"]["team"], "blue");

    let identify = |name: &str| {
        multipart_request("/api/v1/identify", multipart(&[], &[("photo", name, &common::photo_bytes(name))]))
    };
    let (s, r) = call(&app, identify("obama2.jpg")).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let top = &r["faces"][0]["matches"][0];
    assert_eq!((top["person_id"].as_i64(), top["name"].as_str()), (Some(person_id), Some("Barack Obama")));
    assert!(top["score"].as_f64().unwrap() >= 0.55);
    let (_, r) = call(&app, identify("biden.jpg")).await;
    assert_eq!(r["faces"].as_array().unwrap().len(), 1);
    assert!(r["faces"][0]["matches"].as_array().unwrap().is_empty(), "biden matched: {r}");

    // More faces for a person: another photo of him agrees with the first; a photo of someone else
    // is enrolled (the operator decides) but flagged.
    let body = multipart(&[("name", "Agreement check")], &[("photos", "obama.jpg", &obama)]);
    let (s, r) = call(&app, multipart_request("/api/v1/persons", body)).await;
    assert_eq!((s, &r["photos"][0]["similarity_to_others"]), (StatusCode::CREATED, &json!(null)), "{r}");
    let checked = r["person"]["id"].as_i64().unwrap();
    let add = |name: &str| {
        let photo = common::photo_bytes(name);
        multipart_request(&format!("/api/v1/persons/{checked}/faces"), multipart(&[], &[("photos", name, &photo)]))
    };
    let (s, r) = call(&app, add("obama3.jpg")).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let agrees = &r["photos"][0];
    assert!(agrees["similarity_to_others"].as_f64().unwrap() >= 0.55 && agrees.get("warning").is_none(), "{r}");
    let (s, r) = call(&app, add("biden.jpg")).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let odd = &r["photos"][0];
    assert!(odd["similarity_to_others"].as_f64().unwrap() < 0.55, "{r}");
    assert!(odd["warning"].as_str().is_some_and(|w| w.contains("same person")), "{r}");
    let (s, r) = call(&app, test::TestRequest::delete().uri(&format!("/api/v1/persons/{checked}"))).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!((r["removed"]["embeddings"].as_i64(), r["removed"]["photos"].as_i64()), (Some(3), Some(3)), "{r}");

    // Each invalid enrollment: its own 422 (or 413), and no person left behind.
    let small = {
        let img = image::load_from_memory(&obama).unwrap().resize(160, 160, image::imageops::FilterType::Triangle);
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    };
    let truncated = obama[..obama.len() / 2].to_vec();
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        ("hanks.png", common::photo_bytes("Tom_Hanks_54745.png"), StatusCode::UNPROCESSABLE_ENTITY, "no_face"),
        ("t1.jpg", common::photo_bytes("t1.jpg"), StatusCode::UNPROCESSABLE_ENTITY, "several_faces"),
        ("small.jpg", small, StatusCode::UNPROCESSABLE_ENTITY, "face_too_small"),
        ("half.jpg", truncated, StatusCode::UNPROCESSABLE_ENTITY, "truncated_image"),
        (
            "noise.bin",
            (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_image_format",
        ),
        ("empty.jpg", Vec::new(), StatusCode::UNPROCESSABLE_ENTITY, "empty_image"),
        ("huge.jpg", vec![0xFF; 11 * 1024 * 1024], StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
    ];
    for (name, bytes, status, expected) in cases {
        let (s, e) = call(
            &app,
            multipart_request("/api/v1/persons", multipart(&[("name", "Nobody")], &[("photos", name, &bytes)])),
        )
        .await;
        assert_eq!((s, code(&e)), (status, expected), "{name}: {e}");
    }
    let (s, e) = call(&app, multipart_request("/api/v1/persons", multipart(&[("name", "Nobody")], &[]))).await;
    assert_eq!((s, code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "no_photo"));
    let (_, list) = call(&app, test::TestRequest::get().uri("/api/v1/persons?search=nobody")).await;
    assert_eq!(list["total"], 0, "a refused enrollment left a person behind: {list}");

    // Metadata PostgreSQL cannot store is refused up front (it once surfaced as a 503).
    let nul = json!({"metadata": {"badge": "a\u{0}b"}});
    let (s, e) =
        call(&app, test::TestRequest::patch().uri(&format!("/api/v1/persons/{person_id}")).set_json(nul)).await;
    assert_eq!((s, code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_metadata"), "{e}");

    // Delete takes the person out of the live gallery at once.
    let (s, r) = call(&app, test::TestRequest::delete().uri(&format!("/api/v1/persons/{person_id}"))).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["scope"], "biometrics", "{r}");
    let (_, r) = call(&app, identify("obama2.jpg")).await;
    assert!(r["faces"][0]["matches"].as_array().unwrap().is_empty(), "deleted person still matches: {r}");
    assert!(store.person(person_id).await.unwrap().is_none());
}

/// A test photo re-encoded as lossless WebP (what browsers and phones often send).
fn webp_of(name: &str) -> Vec<u8> {
    let img = image::load_from_memory(&common::photo_bytes(name)).unwrap().to_rgb8();
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out)
        .encode(img.as_raw(), img.width(), img.height(), image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

#[actix_web::test]
async fn webp_photos_enroll_and_identify_with_the_same_limits_and_errors() {
    let (state, _) = state_with(ApiConfig::default()).await;
    let state = web::Data::new(state);
    let app = app!(state);
    let obama = webp_of("obama.jpg");
    assert_eq!(&obama[..4], b"RIFF");
    let (s, r) = call(
        &app,
        multipart_request(
            "/api/v1/persons",
            multipart(&[("name", "Barack Obama")], &[("photos", "obama.webp", &obama)]),
        ),
    )
    .await;
    assert_eq!((s, &r["faces_enrolled"]), (StatusCode::CREATED, &json!(1)), "{r}");
    let probe = webp_of("obama2.jpg");
    let (s, r) =
        call(&app, multipart_request("/api/v1/identify", multipart(&[], &[("photo", "o2.webp", &probe)]))).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["faces"][0]["matches"][0]["name"], "Barack Obama", "{r}");
    let cut = probe[..probe.len() / 3].to_vec();
    let (s, e) =
        call(&app, multipart_request("/api/v1/identify", multipart(&[], &[("photo", "cut.webp", &cut)]))).await;
    assert_eq!((s, code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "corrupt_image"), "{e}");
    let group = webp_of("t1.jpg");
    let (s, e) = call(
        &app,
        multipart_request("/api/v1/persons", multipart(&[("name", "Group")], &[("photos", "t1.webp", &group)])),
    )
    .await;
    assert_eq!((s, code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "several_faces"), "{e}");
}

#[actix_web::test]
async fn verify_compares_two_photos_or_a_photo_and_a_person() {
    let (state, _) = state_with(ApiConfig::default()).await;
    let state = web::Data::new(state);
    let app = app!(state);
    let photo = |name: &str| common::photo_bytes(name);
    let verify = |files: &[(&str, &str, &[u8])], texts: &[(&str, &str)]| {
        multipart_request("/api/v1/verify", multipart(texts, files))
    };
    let (o1, o2, biden) = (photo("obama.jpg"), photo("obama2.jpg"), photo("biden.jpg"));
    let (s, same) = call(&app, verify(&[("photo_a", "a.jpg", &o1), ("photo_b", "b.jpg", &o2)], &[])).await;
    assert_eq!(s, StatusCode::OK, "{same}");
    assert_eq!(same["is_match"], true, "{same}");
    assert!(same["similarity"].as_f64().unwrap() >= same["threshold"].as_f64().unwrap());
    assert_eq!(same["face_a"]["faces_in_photo"], 1);
    let (_, other) = call(&app, verify(&[("photo_a", "a.jpg", &o1), ("photo_b", "b.jpg", &biden)], &[])).await;
    assert_eq!(other["is_match"], false, "{other}");
    assert!(other["similarity"].as_f64().unwrap() < 0.5);

    // Against an enrolled person: the best of their faces.
    let (_, enrolled) = call(
        &app,
        multipart_request("/api/v1/persons", multipart(&[("name", "Barack Obama")], &[("photos", "o.jpg", &o1)])),
    )
    .await;
    let id = enrolled["person"]["id"].as_i64().unwrap().to_string();
    let (s, v) = call(&app, verify(&[("photo", "p.jpg", &o2)], &[("person_id", &id)])).await;
    assert_eq!((s, &v["is_match"], &v["person_faces"]), (StatusCode::OK, &json!(true), &json!(1)), "{v}");
    let (_, v) = call(&app, verify(&[("photo", "p.jpg", &biden)], &[("person_id", &id)])).await;
    assert_eq!(v["is_match"], false, "{v}");
    // A group photo: the largest face is compared, and the answer says there were more.
    let (s, v) = call(&app, verify(&[("photo_a", "a.jpg", &o1), ("photo_b", "t1.jpg", &photo("t1.jpg"))], &[])).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["face_b"]["faces_in_photo"].as_u64().unwrap() > 1, "{v}");

    // Bad input, each with its reason.
    let noise: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let hanks = photo("Tom_Hanks_54745.png");
    /// Files, text fields, expected status and error code.
    type Case<'a> = (Vec<(&'a str, &'a str, &'a [u8])>, Vec<(&'a str, &'a str)>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (vec![("photo_a", "a.jpg", &o1)], vec![], StatusCode::UNPROCESSABLE_ENTITY, "no_photo"),
        (vec![("photo", "p.jpg", &o1)], vec![], StatusCode::UNPROCESSABLE_ENTITY, "no_photo"),
        (vec![], vec![("person_id", &id)], StatusCode::UNPROCESSABLE_ENTITY, "no_photo"),
        (
            vec![("photo", "p.jpg", &o1)],
            vec![("person_id", "seven")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_person_id",
        ),
        (vec![("photo", "p.jpg", &o1)], vec![("person_id", "999999")], StatusCode::NOT_FOUND, "not_found"),
        (
            vec![("photo_a", "a.jpg", &o1), ("photo_b", "n.bin", &noise)],
            vec![],
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_image_format",
        ),
        (
            vec![("photo_a", "h.png", &hanks), ("photo_b", "b.jpg", &o2)],
            vec![],
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_face",
        ),
    ];
    for (files, texts, status, expected) in cases {
        let (s, e) = call(&app, verify(&files, &texts)).await;
        assert_eq!((s, code(&e)), (status, expected), "{e}");
    }
    let (_, e) = call(&app, verify(&[("photo_a", "h.png", &hanks), ("photo_b", "b.jpg", &o2)], &[])).await;
    assert!(e["error"]["message"].as_str().unwrap().starts_with("photo_a:"), "names the photo: {e}");
}

/// A client that gives up while the camera list is being rebuilt (its request future is dropped
/// half-way) must not leave the rebuild marked as running: the list would then never be rebuilt.
#[actix_web::test]
async fn a_camera_list_request_abandoned_half_way_does_not_freeze_the_list() {
    let (store, url) = common::fresh_store().await;
    let state = state_on(&store, ApiConfig::default()).await;
    let state = web::Data::new(state);
    let app = app!(state);
    store.create_camera("first", "rtsp://127.0.0.1/a", 5.0, false).await.unwrap();
    let (_, list) = call(&app, test::TestRequest::get().uri("/api/v1/cameras")).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    store.create_camera("second", "rtsp://127.0.0.1/b", 5.0, false).await.unwrap();
    actix::clock::sleep(panoptes_api::cache::CAMERA_LIST_TTL).await;

    // Hold the cameras table so the rebuild waits on the database, and give up on that request.
    let locker = panoptes_engine::storage::connect_client(&url).await.unwrap();
    locker.batch_execute("BEGIN; LOCK TABLE cameras IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let abandoned = tokio::time::timeout(
        Duration::from_millis(500),
        test::call_service(&app, test::TestRequest::get().uri("/api/v1/cameras").to_request()),
    )
    .await;
    assert!(abandoned.is_err(), "the request should have been waiting on the lock");
    locker.batch_execute("COMMIT").await.unwrap();

    let mut seen = 0;
    for _ in 0..30 {
        let (_, list) = call(&app, test::TestRequest::get().uri("/api/v1/cameras")).await;
        seen = list["items"].as_array().unwrap().len();
        if seen == 2 {
            break;
        }
        actix::clock::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(seen, 2, "the camera list stayed frozen after an abandoned rebuild");
}

#[actix_web::test]
async fn keys_roles_and_rate_limits() {
    let config = ApiConfig {
        keys: vec![
            api_key("ops", Role::Admin, "admin-secret-0123456789"),
            api_key("wall", Role::Viewer, "viewer-secret-0123456789"),
        ],
        rate_limit_per_second: 0.5,
        rate_limit_burst: 5.0,
        ..ApiConfig::default()
    };
    let (state, _) = state_with(config).await;
    let state = web::Data::new(state);
    let app = app!(state);
    let get = || test::TestRequest::get().uri("/api/v1/cameras");
    let post = || test::TestRequest::post().uri("/api/v1/cameras").set_json(json!({"name": "a", "url": "rtsp://h/s"}));

    let (s, e) = call(&app, get()).await;
    assert_eq!((s, code(&e)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let (s, e) = call(&app, get().insert_header(("Authorization", "Bearer wrong-key-0123456789"))).await;
    assert_eq!((s, code(&e)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let (s, _) = call(&app, get().insert_header(("X-API-Key", "viewer-secret-0123456789"))).await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = call(&app, post().insert_header(("Authorization", "Bearer viewer-secret-0123456789"))).await;
    assert_eq!((s, code(&e)), (StatusCode::FORBIDDEN, "forbidden"));
    let (s, _) = call(&app, post().insert_header(("Authorization", "Bearer admin-secret-0123456789"))).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = call(&app, test::TestRequest::get().uri("/healthz")).await;
    assert_eq!(s, StatusCode::OK, "probes stay open");

    // The admin key has used 2 of its 5; the 4th request from now on is refused with Retry-After.
    let mut refused = None;
    for _ in 0..5 {
        let resp =
            test::call_service(&app, get().insert_header(("X-API-Key", "admin-secret-0123456789")).to_request()).await;
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = resp.headers().get("Retry-After").and_then(|v| v.to_str().ok()).map(str::to_string);
            break;
        }
    }
    let retry: u64 = refused.expect("a 429 within the burst").parse().unwrap();
    assert!((1..=2).contains(&retry));
    // Other keys have their own bucket.
    let (s, _) = call(&app, get().insert_header(("X-API-Key", "viewer-secret-0123456789"))).await;
    assert_eq!(s, StatusCode::OK);

    // Without a valid key the bucket is the client's address: one address is limited, another is not.
    let from = |ip: &str| get().peer_addr(format!("{ip}:40000").parse().unwrap());
    let mut limited = false;
    for _ in 0..10 {
        let (s, _) = call(&app, from("192.0.2.7")).await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    assert!(limited, "an address without a key is rate limited");
    let (s, _) = call(&app, from("192.0.2.8")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "another address has its own bucket");
}

/// Two API states on one database stand for two nodes (or one node before and after a restart).
async fn key_state(store: &panoptes_engine::storage::Store, keys: Vec<ApiKeyConfig>) -> web::Data<AppState> {
    web::Data::new(state_on(store, ApiConfig { keys, ..ApiConfig::default() }).await)
}

#[actix_web::test]
async fn keys_created_through_the_api_are_stored_as_digests_and_revoked_everywhere() {
    let (store, url) = common::fresh_store().await;
    let db = panoptes_engine::storage::connect_client(&url).await.expect("connect");
    let admin = api_key("ops", Role::Admin, "admin-secret-0123456789");
    let node_a = key_state(&store, vec![admin.clone()]).await;
    let node_b = key_state(&store, vec![admin]).await;
    let (a, b) = (app!(node_a), app!(node_b));
    let as_admin = |r: test::TestRequest| r.insert_header(("X-API-Key", "admin-secret-0123456789"));
    let new_key = |body: Value| as_admin(test::TestRequest::post().uri("/api/v1/keys").set_json(body));

    let (s, created) = call(&a, new_key(json!({"name": "wall screen", "role": "viewer"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().expect("the key is in the creation answer").to_string();
    assert!(key.starts_with("pnp_") && key.len() == 68, "{key}");
    assert_eq!(created["role"], "viewer");

    // The database holds the key's SHA-256 digest and nothing from which the key can be read back.
    let rows = db
        .query("SELECT row_to_json(k)::text, key_sha256 = sha256(convert_to($1, 'UTF8')) FROM api_keys k", &[&key])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let (row_text, digest_matches): (String, bool) = (rows[0].get(0), rows[0].get(1));
    assert!(digest_matches, "the stored digest is the key's SHA-256");
    assert!(!row_text.contains(&key) && !row_text.contains(&key[4..]), "the key itself is stored: {row_text}");
    // Nor does any listing show it.
    let (s, list) = call(&a, as_admin(test::TestRequest::get().uri("/api/v1/keys"))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert!(!list.to_string().contains(&key[4..]) && list["items"][0].get("key").is_none(), "{list}");

    // The new key works with its role, on this node at once and on the other after its re-read.
    let with = |k: &str, r: test::TestRequest| r.insert_header(("Authorization", format!("Bearer {k}")));
    let cameras = || test::TestRequest::get().uri("/api/v1/cameras");
    assert_eq!(call(&a, with(&key, cameras())).await.0, StatusCode::OK);
    let post = test::TestRequest::post().uri("/api/v1/cameras").set_json(json!({"name": "x", "url": "rtsp://h/s"}));
    assert_eq!(code(&call(&a, with(&key, post)).await.1), "forbidden");
    assert_eq!(code(&call(&a, with(&key, test::TestRequest::get().uri("/api/v1/keys"))).await.1), "forbidden");
    assert_eq!(call(&b, with(&key, cameras())).await.0, StatusCode::UNAUTHORIZED, "node B has not re-read yet");
    node_b.keys.reload(&store).await.unwrap();
    assert_eq!(call(&b, with(&key, cameras())).await.0, StatusCode::OK);

    // Refusals: a taken name, an unknown role, a name with a control character.
    let (s, e) = call(&a, new_key(json!({"name": "wall screen", "role": "admin"}))).await;
    assert_eq!((s, code(&e)), (StatusCode::CONFLICT, "name_taken"));
    let (s, e) = call(&a, new_key(json!({"name": "root", "role": "superuser"}))).await;
    assert_eq!((s, code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"));
    let (s, e) = call(&a, new_key(json!({"name": "bad\u{0}name", "role": "viewer"}))).await;
    assert_eq!((s, code(&e)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_name"));

    // Revoked: refused here at once, there after its re-read; a second revocation finds nothing.
    let id = created["id"].as_i64().unwrap();
    let delete = || as_admin(test::TestRequest::delete().uri(&format!("/api/v1/keys/{id}")));
    assert_eq!(call(&a, delete()).await.0, StatusCode::NO_CONTENT);
    assert_eq!(call(&a, with(&key, cameras())).await.0, StatusCode::UNAUTHORIZED);
    node_b.keys.reload(&store).await.unwrap();
    assert_eq!(call(&b, with(&key, cameras())).await.0, StatusCode::UNAUTHORIZED);
    let (s, e) = call(&a, delete()).await;
    assert_eq!((s, code(&e)), (StatusCode::NOT_FOUND, "not_found"));
}

#[actix_web::test]
async fn the_first_stored_key_closes_an_open_api() {
    let (store, _) = common::fresh_store().await;
    let state = key_state(&store, Vec::new()).await;
    let app = app!(state);
    let cameras = || test::TestRequest::get().uri("/api/v1/cameras");
    assert_eq!(call(&app, cameras()).await.0, StatusCode::OK, "no keys at all: open");
    let access = || test::TestRequest::get().uri("/api/v1/access");
    assert_eq!(call(&app, access()).await.1, json!({"open": true}));
    let (s, created) =
        call(&app, test::TestRequest::post().uri("/api/v1/keys").set_json(json!({"name": "first", "role": "admin"})))
            .await;
    assert_eq!(s, StatusCode::CREATED);
    let key = created["key"].as_str().unwrap();
    assert_eq!(code(&call(&app, cameras()).await.1), "unauthorized", "a stored key closes the API");
    assert_eq!(call(&app, access()).await, (StatusCode::OK, json!({"open": false})), "asked without a key");
    assert_eq!(call(&app, cameras().insert_header(("X-API-Key", key))).await.0, StatusCode::OK);
    // A restarted node reads the key back and stays closed.
    let restarted = key_state(&store, Vec::new()).await;
    let app = app!(restarted);
    assert_eq!(call(&app, cameras()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&app, cameras().insert_header(("X-API-Key", key))).await.0, StatusCode::OK);
}

/// Every route in the table, whatever its handler does: no key is refused (401) unless the route is
/// a probe; a viewer key is refused (403) on writes and on key management, and let through elsewhere.
#[actix_web::test]
async fn every_route_enforces_its_role() {
    let (store, _) = common::fresh_store().await;
    let state = key_state(
        &store,
        vec![
            api_key("ops", Role::Admin, "admin-secret-0123456789"),
            api_key("wall", Role::Viewer, "viewer-secret-0123456789"),
        ],
    )
    .await;
    let app = app!(state);
    // Probes, the document, and whether a key is needed (the console asks before sign-in).
    let open = ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json", "/api/v1/access"];
    for &(method, path) in panoptes_api::routes::ROUTES {
        let uri = path.replace("{id}", "1");
        let request = || {
            test::TestRequest::default()
                .method(actix_web::http::Method::from_bytes(method.as_bytes()).unwrap())
                .uri(&uri)
        };
        // Status only: the live-event stream's body never ends.
        let status = |r: test::TestRequest| {
            let app = &app;
            async move { test::call_service(app, r.to_request()).await.status() }
        };
        let s = status(request()).await;
        if open.contains(&path) {
            assert!(s.is_success(), "{method} {path} is a probe: {s}");
            continue;
        }
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path} without a key");
        let s = status(request().insert_header(("X-API-Key", "viewer-secret-0123456789"))).await;
        let reads = ["/api/v1/identify", "/api/v1/verify", "/api/v1/search"];
        let admin_only =
            method != "GET" && !reads.contains(&path) || path.starts_with("/api/v1/keys") || path == "/api/v1/audit";
        if admin_only {
            assert_eq!(s, StatusCode::FORBIDDEN, "{method} {path} with a viewer key");
        } else {
            assert!(
                s != StatusCode::UNAUTHORIZED && s != StatusCode::FORBIDDEN,
                "{method} {path} with a viewer key: {s}"
            );
        }
        let s = status(request().insert_header(("X-API-Key", "admin-secret-0123456789"))).await;
        assert!(s != StatusCode::UNAUTHORIZED && s != StatusCode::FORBIDDEN, "{method} {path} with the admin key: {s}");
    }
}

#[actix_web::test]
async fn live_event_clients_sse_and_websocket_receive_a_detection_from_a_file_camera() {
    let db = common::fresh_database().await;
    let settings = common::engine_settings(&db, "sse");
    let media = std::path::PathBuf::from(&settings.api.media_root);
    let clip = common::h264_clip(&common::photo("obama2.jpg"), 2, &["-profile:v", "baseline", "-g", "10"], "sse");
    std::fs::copy(&clip, media.join("lobby.h264")).unwrap();
    let engine = common::start_engine(settings).await;
    let state = engine.api_state();
    let app = app!(state);

    let obama = common::photo_bytes("obama.jpg");
    let (s, r) = call(
        &app,
        multipart_request("/api/v1/persons", multipart(&[("name", "Barack Obama")], &[("photos", "o.jpg", &obama)])),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");

    // The same API on a real socket, for a WebSocket client.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let ws_state = state.clone();
    let server = actix_web::HttpServer::new(move || {
        App::new()
            .app_data(ws_state.clone())
            .wrap(actix_web::middleware::from_fn(panoptes_api::guard::guard))
            .configure(panoptes_api::configure)
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    let mut ws = websocket_connect(port, "/api/v1/events/ws?matches_only=true").await;
    let resp =
        test::call_service(&app, test::TestRequest::get().uri("/api/v1/events?matches_only=true").to_request()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers().get("content-type").unwrap(), "text/event-stream");
    let mut body = Box::pin(resp.into_body());

    let (s, cam) = call(
        &app,
        test::TestRequest::post().uri("/api/v1/cameras").set_json(json!({"name": "lobby", "url": "lobby.h264"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{cam}");
    let event = common::first_sse_event(&mut body, Duration::from_secs(60)).await;
    assert_eq!(event["camera_id"], cam["id"]);
    assert_eq!(event["person_name"], "Barack Obama");
    assert!(event["score"].as_f64().unwrap() >= 0.55);

    let ws_event: Value = serde_json::from_str(&websocket_text(&mut ws).await).unwrap();
    assert_eq!((&ws_event["camera_id"], &ws_event["person_name"]), (&cam["id"], &json!("Barack Obama")));
    // The event names the row it becomes: a client opens it, and its snapshot, by that id.
    let id = event["id"].as_i64().unwrap_or_else(|| panic!("the live event carries no detection id: {event}"));
    assert_eq!(ws_event["id"], event["id"]);
    let mut row = Value::Null;
    for _ in 0..50 {
        let (s, r) = call(&app, test::TestRequest::get().uri(&format!("/api/v1/detections/{id}"))).await;
        if s == StatusCode::OK {
            row = r;
            break;
        }
        actix::clock::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((&row["id"], &row["camera_id"]), (&json!(id), &cam["id"]), "{row}");
    let resp = test::call_service(
        &app,
        test::TestRequest::get().uri(&format!("/api/v1/detections/{id}/snapshot.jpg")).to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK, "the detection's snapshot is served");
    assert!(test::read_body(resp).await.starts_with(&[0xFF, 0xD8]), "a JPEG");

    // Live status is republished every second: it reaches "streaming" shortly.
    let uri = format!("/api/v1/cameras/{}", cam["id"]);
    let mut state_seen = Value::Null;
    for _ in 0..50 {
        let (_, live) = call(&app, test::TestRequest::get().uri(&uri)).await;
        state_seen = live["status"]["state"].clone();
        if state_seen == "streaming" {
            assert!(live["status"]["frames_decoded"].as_u64().unwrap() > 0, "{live}");
            break;
        }
        actix::clock::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(state_seen, "streaming");
    // The live snapshot: the frame with a green (recognised) box drawn on it.
    let resp = test::call_service(
        &app,
        test::TestRequest::get().uri(&format!("/api/v1/cameras/{}/snapshot.jpg", cam["id"])).to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let jpeg = test::read_body(resp).await;
    let img = image::load_from_memory(&jpeg).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (1280, 720));
    let green = img.pixels().filter(|p| p[1] > 170 && p[0] < 90 && p[2] < 120).count();
    assert!(green > 200, "no recognised-face box drawn ({green} green pixels)");

    let (s, stats) = call(&app, test::TestRequest::get().uri("/api/v1/admin/stats")).await;
    assert_eq!((s, stats["gallery_embeddings"].as_u64()), (StatusCode::OK, Some(1)));
    engine.shutdown().await;
}

/// A minimal WebSocket client handshake over a real socket.
async fn websocket_connect(port: u16, path: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "WebSocket handshake refused: {head}");
    s
}

/// The next text frame from the server (unmasked, as servers send), skipping pings.
async fn websocket_text(s: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let mut h = [0u8; 2];
            s.read_exact(&mut h).await.unwrap();
            let mut len = u64::from(h[1] & 0x7f);
            if len == 126 {
                len = u64::from(s.read_u16().await.unwrap());
            } else if len == 127 {
                len = s.read_u64().await.unwrap();
            }
            let mut payload = vec![0u8; len as usize];
            s.read_exact(&mut payload).await.unwrap();
            match h[0] & 0x0f {
                0x1 => return String::from_utf8(payload).unwrap(),
                0x8 => panic!("server closed the WebSocket: {:?}", String::from_utf8_lossy(&payload)),
                _ => continue,
            }
        }
    })
    .await
    .expect("no WebSocket message within 60 s")
}

#[actix_web::test]
async fn webhooks_deliver_events_and_retry_a_failing_receiver() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    // A receiver that answers 500 to the first POST and 200 afterwards, keeping what it got.
    let hits = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(Mutex::new(Vec::<Value>::new()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (h, b) = (hits.clone(), bodies.clone());
    let receiver = actix_web::HttpServer::new(move || {
        let (h, b) = (h.clone(), b.clone());
        App::new().route(
            "/hook",
            web::post().to(move |body: web::Json<Value>| {
                let (h, b) = (h.clone(), b.clone());
                async move {
                    b.lock().unwrap().push(body.into_inner());
                    if h.fetch_add(1, Ordering::SeqCst) == 0 {
                        actix_web::HttpResponse::InternalServerError().finish()
                    } else {
                        actix_web::HttpResponse::NoContent().finish()
                    }
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(receiver);

    let mut config = ApiConfig::default();
    config.webhooks.urls = vec![format!("http://127.0.0.1:{port}/hook")];
    let (state, store) = state_with(config).await;
    let person = store.create_person("Ada", &json!({})).await.unwrap();
    let state = web::Data::new(state);
    panoptes_api::webhooks::spawn(state.clone());
    actix::clock::sleep(Duration::from_millis(100)).await; // the dispatcher subscribes
    let event = |person_id| {
        let bbox = panoptes_engine::geometry::BBox { x: 1.0, y: 2.0, width: 30.0, height: 30.0 };
        panoptes_engine::storage::NewDetection::single(7, chrono::Utc::now(), person_id, 0.8, 0.9, bbox)
    };
    state.events.send(event(None).into()).unwrap(); // unknown face: not sent (matches only)
    state.events.send(event(Some(person.id)).into()).unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while state.webhooks.stats().delivered < 1 {
        assert!(std::time::Instant::now() < deadline, "not delivered: {:?}", state.webhooks.stats());
        actix::clock::sleep(Duration::from_millis(100)).await;
    }
    let stats = state.webhooks.stats();
    assert_eq!((stats.delivered, stats.retries, stats.failed, stats.dropped), (1, 1, 0, 0));
    let got = bodies.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "one failed attempt and one retry: {got:?}");
    assert_eq!((&got[1]["person_name"], &got[1]["camera_id"]), (&json!("Ada"), &json!(7)));

    // With an alert rule in force the rules decide, `matches_only` no longer: an unknown face at the
    // back door goes out (with the rule's name), Ada at camera 7 no more.
    let rule: panoptes_engine::alerts::RuleSpec = serde_json::from_value(
        json!({"name": "Stranger at the back door", "who": "unknown", "camera_ids": [8], "outputs": ["webhooks"]}),
    )
    .unwrap();
    let rule = panoptes_engine::alerts::AlertRule {
        id: Some(1),
        source: panoptes_engine::alerts::RuleSource::Api,
        spec: rule,
        updated_at: None,
        updated_by: None,
    };
    state.rules.replace(panoptes_engine::alerts::RuleBook::new(jiff::tz::TimeZone::UTC, "UTC".into(), vec![rule]));
    let at = |camera, person_id| {
        let bbox = panoptes_engine::geometry::BBox { x: 1.0, y: 2.0, width: 30.0, height: 30.0 };
        panoptes_engine::storage::NewDetection::single(camera, chrono::Utc::now(), person_id, 0.8, 0.9, bbox)
    };
    state.events.send(at(7, Some(person.id)).into()).unwrap();
    state.events.send(at(8, None).into()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while state.webhooks.stats().delivered < 2 {
        assert!(std::time::Instant::now() < deadline, "not delivered: {:?}", state.webhooks.stats());
        actix::clock::sleep(Duration::from_millis(100)).await;
    }
    let got = bodies.lock().unwrap().clone();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!((&got[2]["camera_id"], &got[2]["person_id"]), (&json!(8), &Value::Null), "{got:?}");
    assert_eq!(got[2]["alerts"], json!([{"id": 1, "name": "Stranger at the back door"}]));
}

#[actix_web::test]
async fn tls_serves_https_with_a_self_signed_certificate_and_refuses_bad_files() {
    let dir = common::temp_dir("api-tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl (Debian's openssl package)");
    assert!(status.success());
    let tls = panoptes_api::tls::server_config(&common::path_str(&cert), &common::path_str(&key)).unwrap().unwrap();

    let (state, _) = state_with(ApiConfig::default()).await;
    let state = web::Data::new(state);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let s = state.clone();
    let server = actix_web::HttpServer::new(move || {
        App::new()
            .app_data(s.clone())
            .wrap(actix_web::middleware::from_fn(panoptes_api::guard::guard))
            .configure(panoptes_api::configure)
    })
    .workers(1)
    .listen_rustls_0_23(listener, tls)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);

    let curl = move |args: Vec<String>| {
        web::block(move || std::process::Command::new("curl").args(["-s", "-m", "10"]).args(args).output().unwrap())
    };
    let ok = curl(vec!["--cacert".into(), common::path_str(&cert), format!("https://127.0.0.1:{port}/api/v1/cameras")])
        .await
        .unwrap();
    assert!(ok.status.success(), "https request failed: {}", String::from_utf8_lossy(&ok.stderr));
    let body: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert!(body["items"].is_array(), "{body}");
    // Without trusting the certificate, or over plain HTTP, nothing is served.
    let untrusted = curl(vec![format!("https://127.0.0.1:{port}/healthz")]).await.unwrap();
    assert!(!untrusted.status.success());
    let plain = curl(vec![format!("http://127.0.0.1:{port}/healthz")]).await.unwrap();
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("ok"));

    // Bad configurations are named.
    use panoptes_api::tls::{server_config, TlsError};
    assert!(matches!(server_config(&common::path_str(&cert), ""), Err(TlsError::Incomplete)));
    assert!(matches!(server_config("/nonexistent.pem", &common::path_str(&key)), Err(TlsError::Read { .. })));
    assert!(matches!(
        server_config(&common::path_str(&key), &common::path_str(&key)),
        Err(TlsError::NoCertificate { .. })
    ));
    assert!(matches!(server_config(&common::path_str(&cert), &common::path_str(&cert)), Err(TlsError::NoKey { .. })));
}
