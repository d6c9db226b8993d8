//! Cameras with a substream (`detect_url`): detection and tracking run on the 640×360 substream, and
//! faces are cropped from the 1280×720 main stream's keyframes. Both streams of one clip, from files
//! and from GStreamer's RTSP server: appearances carry main-stream snapshots; the main stream stopped
//! leaves the camera on its substream and comes back; the substream stopped makes the camera decode
//! its main stream; a substream of another aspect ratio, or a crop, is refused when the camera is added.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use actix_web::{test, web, App};
use panoptes_actors::camera::CameraState;
use panoptes_actors::main_stream::{StreamMode, TimeSource};
use panoptes_actors::scheduler::{CameraReport, ListCameraStatus};
use panoptes_engine::enrollment::{enroll_photo, EnrollmentPolicy};
use panoptes_engine::snapshot::{SnapshotKind, SnapshotStore};
use panoptes_engine::storage::{CameraOptions, Detection, DetectionFilter, NewCamera, Store};
use serde_json::{json, Value};

/// A 1280×720 clip of 3 s of an empty scene, then 2 s of a face (~200 px), a keyframe every 0.5 s;
/// looped, each pass is a new appearance (the face is gone for longer than a track lives). And its
/// 640×360 substream.
fn clip_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let main = common::visits_clip(dir, "visits.h264", 3.0, 2.0);
    let sub = common::rendition(&main, "scale=640:360:flags=area", "visits-360.h264");
    (main, sub)
}

async fn report(engine: &panoptes::Engine, id: i64) -> Option<CameraReport> {
    engine.scheduler().send(ListCameraStatus).await.ok()?.into_iter().find(|r| r.id == id)
}

async fn paired_camera(store: &Store, name: &str, url: &str, detect: &str) -> i64 {
    let options = CameraOptions { stall_timeout_secs: Some(2.0), ..CameraOptions::default() };
    let camera = NewCamera {
        name,
        url,
        analysis_fps: 5.0,
        enabled: true,
        transport: Default::default(),
        options: &options,
        detect_url: Some(detect),
    };
    store.insert_camera(&camera).await.unwrap().id
}

async fn enrol_obama(engine: &panoptes::Engine) -> i64 {
    let mut p = common::pipeline();
    let obama = engine.store().create_person("Barack Obama", &json!({})).await.unwrap();
    let bytes = common::photo_bytes("obama.jpg");
    enroll_photo(&mut p, engine.store(), engine.gallery(), &EnrollmentPolicy::default(), obama.id, &bytes)
        .await
        .unwrap();
    obama.id
}

/// The newest appearance of `person` on `camera` whose snapshot is a main-stream crop (its frame
/// picture is main-sized).
async fn main_stream_appearance(store: &Store, snapshots: &SnapshotStore, camera: i64, person: i64) -> Detection {
    common::eventually(
        "an appearance of the enrolled person with a main-stream snapshot",
        Duration::from_secs(90),
        || async {
            let filter = DetectionFilter { camera_id: Some(camera), ..DetectionFilter::default() };
            let rows = store.list_detections(&filter, None, 20).await.unwrap();
            rows.into_iter().find(|d| {
                d.person_id == Some(person)
                    && d.snapshot_path
                        .as_deref()
                        .and_then(|s| snapshots.read(s, SnapshotKind::Frame).ok())
                        .is_some_and(|jpeg| image::load_from_memory(&jpeg).map(|i| i.width() == 1280).unwrap_or(false))
            })
        },
        |d| d.is_some(),
    )
    .await
    .unwrap()
}

#[actix_web::test]
async fn a_file_pair_detects_on_the_substream_and_keeps_main_stream_snapshots() {
    let db = common::fresh_database().await;
    let dir = common::temp_dir("substream-files");
    let (main, sub) = clip_pair(&dir);
    let mut settings = common::engine_settings(&db, "substream-files");
    settings.snapshots.context_max_side = 4096; // frame snapshots at their own size
    let snapshots = SnapshotStore::new(&settings.snapshots).unwrap();
    let engine = common::start_engine(settings).await;
    let obama = enrol_obama(&engine).await;
    let id = paired_camera(engine.store(), "paired", &common::path_str(&main), &common::path_str(&sub)).await;

    let row = main_stream_appearance(engine.store(), &snapshots, id, obama).await;
    // The box is in the main stream's pixels: the face is ~200 px there (~100 in the substream).
    assert!(row.bbox.width > 120.0, "{:?}", row.bbox);
    let r = report(&engine, id).await.unwrap();
    let d = r.decoder.unwrap();
    eprintln!("{d:?}");
    assert_eq!(d.stream_mode, StreamMode::Paired);
    assert_eq!(d.time_source, Some(TimeSource::Pts), "file pairs are related by their clip positions");
    assert!(d.main_keyframes_decoded > 0 && d.main_embeddings > 0, "{d:?}");
    // Only the substream is decoded whole: the main stream's pictures decoded are its keyframes.
    let main_status = r.main_status.unwrap();
    assert!(main_status.frames_received >= 5 * d.main_keyframes_decoded, "{main_status:?} {d:?}");
    engine.shutdown().await;
}

#[actix_web::test]
async fn an_rtsp_pair_recognises_from_the_main_stream_and_survives_either_stream_stopping() {
    let db = common::fresh_database().await;
    let dir = common::temp_dir("substream-rtsp");
    let (main_clip, sub_clip) = clip_pair(&dir);
    let main_server = common::RtspServer::start(&main_clip, 10);
    let main_port = main_server.port;
    let sub_server = common::RtspServer::start(&sub_clip, 10);
    let sub_port = sub_server.port;
    let mut settings = common::engine_settings(&db, "substream-rtsp");
    settings.snapshots.context_max_side = 4096;
    let snapshots = SnapshotStore::new(&settings.snapshots).unwrap();
    let engine = common::start_engine(settings).await;
    let obama = enrol_obama(&engine).await;
    let id = paired_camera(engine.store(), "paired", &main_server.url(), &sub_server.url()).await;

    // GStreamer sends RTCP sender reports on both streams: the pair is related by them.
    let r = common::eventually(
        "paired on RTCP time",
        Duration::from_secs(60),
        || report(&engine, id),
        |r| {
            r.as_ref()
                .and_then(|r| r.decoder)
                .is_some_and(|d| d.stream_mode == StreamMode::Paired && d.time_source == Some(TimeSource::Rtcp))
        },
    )
    .await;
    eprintln!("{:?}", r.unwrap().decoder);
    main_stream_appearance(engine.store(), &snapshots, id, obama).await;

    // The main stream stops: the camera runs on its substream alone, and says so.
    drop(main_server);
    let r = common::eventually(
        "on the substream alone",
        Duration::from_secs(30),
        || report(&engine, id),
        |r| {
            r.as_ref().is_some_and(|r| {
                r.decoder.is_some_and(|d| d.stream_mode == StreamMode::DetectOnly)
                    && r.main_status
                        .as_ref()
                        .is_some_and(|m| m.state != CameraState::Streaming && m.last_error.is_some())
            })
        },
    )
    .await
    .unwrap();
    let sampled = r.decoder.unwrap().sampled;
    let r = common::eventually(
        "still analysing the substream",
        Duration::from_secs(20),
        || report(&engine, id),
        |r| r.as_ref().and_then(|r| r.decoder).is_some_and(|d| d.sampled > sampled + 10),
    )
    .await
    .unwrap();
    let decoded = r.decoder.unwrap().main_keyframes_decoded;
    let view = camera_view(&engine, id).await;
    assert_eq!(view["status"]["stream_mode"], "detect_only", "{view}");
    assert!(view["status"]["main_stream"]["last_error"].is_string(), "{view}");

    // It comes back (on the same port): paired again, its keyframes decoded again.
    let main_server = common::RtspServer::start_on(&main_clip, 10, main_port);
    common::eventually(
        "paired again",
        Duration::from_secs(60),
        || report(&engine, id),
        |r| {
            r.as_ref()
                .and_then(|r| r.decoder)
                .is_some_and(|d| d.stream_mode == StreamMode::Paired && d.main_keyframes_decoded > decoded)
        },
    )
    .await;

    // The substream stops: the main stream is decoded and analysed instead.
    drop(sub_server);
    let r = common::eventually(
        "on the main stream",
        Duration::from_secs(30),
        || report(&engine, id),
        |r| r.as_ref().and_then(|r| r.decoder).is_some_and(|d| d.stream_mode == StreamMode::MainOnly),
    )
    .await
    .unwrap();
    let d = r.decoder.unwrap();
    common::eventually(
        "main-stream pictures analysed",
        Duration::from_secs(20),
        || report(&engine, id),
        |r| {
            r.as_ref().and_then(|r| r.decoder).is_some_and(|n| n.sampled > d.sampled + 10 && n.decoded > d.decoded + 20)
        },
    )
    .await;
    // And back when the substream returns.
    let _sub_server = common::RtspServer::start_on(&sub_clip, 10, sub_port);
    common::eventually(
        "paired once more",
        Duration::from_secs(60),
        || report(&engine, id),
        |r| r.as_ref().and_then(|r| r.decoder).is_some_and(|d| d.stream_mode == StreamMode::Paired),
    )
    .await;
    drop(main_server);
    engine.shutdown().await;
}

/// The camera as `GET /api/v1/cameras/{id}` shows it (status from the scheduler's board, republished
/// every second).
async fn camera_view(engine: &panoptes::Engine, id: i64) -> Value {
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let app = test::init_service(App::new().app_data(engine.api_state()).configure(panoptes_api::configure)).await;
    let req = test::TestRequest::get().uri(&format!("/api/v1/cameras/{id}")).to_request();
    test::call_and_read_body_json(&app, req).await
}

#[actix_web::test]
async fn a_substream_of_another_view_is_refused_when_the_camera_is_added() {
    let (store, _) = common::fresh_store().await;
    let media = common::temp_dir("substream-media");
    let (main, sub) = clip_pair(&media);
    let four_by_three = common::rendition(&main, "scale=640:480", "four-by-three.h264");
    let crop = common::rendition(&main, "crop=640:360:320:180", "crop.h264");
    let config = panoptes_api::ApiConfig { media_root: common::path_str(&media), ..Default::default() };
    let p = common::pipeline();
    let gallery = common::gallery_for(&store, &p).await;
    let state = web::Data::new(panoptes_api::AppState::new(store.clone(), gallery, config).unwrap());
    let app = test::init_service(App::new().app_data(state).configure(panoptes_api::configure)).await;
    let add = |name: &str, detect: &Path| {
        test::TestRequest::post().uri("/api/v1/cameras").set_json(json!({
            "name": name, "url": common::path_str(&main), "detect_url": common::path_str(detect)
        }))
    };
    let call = |req: test::TestRequest| {
        let app = &app;
        async move {
            let resp = test::call_service(app, req.to_request()).await;
            let status = resp.status().as_u16();
            (status, serde_json::from_slice::<Value>(&test::read_body(resp).await).unwrap_or(Value::Null))
        }
    };
    let started = Instant::now();
    let (s, e) = call(add("4:3", &four_by_three)).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("streams_mismatch")), "{e}");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.contains("640×480") && message.contains("1280×720"), "{message}");
    let (s, e) = call(add("crop", &crop)).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("streams_mismatch")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("scene"), "{e}");
    let (s, e) = call(add("itself", &main)).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_detect_url")), "{e}");
    let (s, e) = call(
        test::TestRequest::post()
            .uri("/api/v1/cameras")
            .set_json(json!({"name": "mixed", "url": "rtsp://10.0.0.9/main", "detect_url": common::path_str(&sub)})),
    )
    .await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_detect_url")), "{e}");
    assert!(store.list_cameras().await.unwrap().is_empty(), "a refused camera was stored");

    // The right pair is added, listed with its substream, and can lose it again.
    let (s, cam) = call(add("paired", &sub)).await;
    assert_eq!(s, 201, "{cam}");
    assert_eq!(cam["detect_url"].as_str(), Some(common::path_str(&std::fs::canonicalize(&sub).unwrap()).as_str()));
    eprintln!("three pairs checked in {:?}", started.elapsed());
    let id = cam["id"].as_i64().unwrap();
    // Changing the substream to a crop is refused as well; removing it is not.
    let patch = |body: Value| test::TestRequest::patch().uri(&format!("/api/v1/cameras/{id}")).set_json(body);
    let (s, e) = call(patch(json!({"detect_url": common::path_str(&crop)}))).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("streams_mismatch")), "{e}");
    let (s, cam) = call(patch(json!({"detect_url": ""}))).await;
    assert_eq!((s, &cam["detect_url"]), (200, &Value::Null), "{cam}");
}
