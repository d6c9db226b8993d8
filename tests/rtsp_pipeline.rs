//! The whole streaming engine on RTSP cameras served by GStreamer's RTSP server (Debian packages):
//! scheduler → camera → decoder → inference (real models) → matcher → sink → PostgreSQL.
//!
//! Seven cameras at once: the enrolled person (Baseline), a stranger, the enrolled person again as a
//! High-profile clip with B-frames and as H.265, a stream whose H.264 slices are random bytes, one
//! whose H.265 slices are, and a Motion-JPEG camera. The enrolled person is detected on all three of
//! their cameras, the stranger never, the random streams hurt nobody, the MJPEG camera is
//! `unsupported` with its codec named, and cameras whose servers (H.264 and H.265) are killed and
//! restarted 5 s later go `backoff`, then `streaming`, and their detections resume.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use actix::prelude::*;
use panoptes_actors::camera::CameraState;
use panoptes_actors::scheduler::{CameraReport, ListCameraStatus, Scheduler};
use panoptes_engine::enrollment::{enroll_photo, EnrollmentPolicy};
use panoptes_engine::storage::Store;
use rand::{Rng, SeedableRng};

/// SPS and PPS of a real clip followed by 200 "slices" of random bytes: a stream every layer accepts
/// as H.264 until the decoder meets the slice data.
fn random_slice_stream(real: &Path) -> PathBuf {
    let bytes = std::fs::read(real).unwrap();
    // Keep everything before the first IDR slice (NAL type 5): SPS, PPS, SEI.
    let idr = (0..bytes.len() - 4)
        .find(|&i| bytes[i..i + 3] == [0, 0, 1] && bytes[i + 3] & 0x1f == 5)
        .expect("an IDR slice in the clip");
    let mut out = bytes[..idr].to_vec();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for i in 0..200 {
        out.extend_from_slice(&[0, 0, 1, if i % 10 == 0 { 0x65 } else { 0x41 }]);
        // Never a zero byte, so no start code or emulation sequence appears inside the payload.
        out.extend((0..rng.gen_range(500..5000)).map(|_| rng.gen_range(1..=255u8)));
    }
    let path = common::temp_dir("random-h264").join("random.h264");
    std::fs::write(&path, out).unwrap();
    path
}

/// The same for H.265: the clip's parameter sets (VPS, SPS, PPS, SEI) followed by random "slices"
/// (IDR every tenth, TRAIL_R otherwise).
fn random_h265_stream(real: &Path) -> PathBuf {
    let bytes = std::fs::read(real).unwrap();
    let first_slice = (0..bytes.len() - 4)
        .find(|&i| bytes[i..i + 3] == [0, 0, 1] && (bytes[i + 3] >> 1) & 0x3f < 32)
        .expect("a slice in the clip");
    let mut out = bytes[..first_slice].to_vec();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for i in 0..200 {
        let t: u8 = if i % 10 == 0 { 19 } else { 1 };
        out.extend_from_slice(&[0, 0, 1, t << 1, 1]);
        out.extend((0..rng.gen_range(500..5000)).map(|_| rng.gen_range(1..=255u8)));
    }
    let path = common::temp_dir("random-h265").join("random.h265");
    std::fs::write(&path, out).unwrap();
    path
}

async fn report(s: &Addr<Scheduler>, id: i64) -> Option<CameraReport> {
    s.send(ListCameraStatus).await.unwrap().into_iter().find(|r| r.id == id)
}

fn state(r: &Option<CameraReport>) -> Option<CameraState> {
    r.as_ref().and_then(|r| r.status.as_ref()).map(|s| s.state)
}

async fn rows(store: &Store, camera: i64) -> usize {
    store.detections_for_camera(camera, 100).await.unwrap().len()
}

#[actix_web::test]
async fn rtsp_cameras_detect_the_enrolled_person_survive_garbage_and_recover_from_a_server_restart() {
    let (store, db) = common::fresh_store().await;
    let mut p = common::pipeline();
    let gallery = common::gallery_for(&store, &p).await;
    let obama = store.create_person("Barack Obama", &serde_json::json!({})).await.unwrap();
    let policy = EnrollmentPolicy::default();
    enroll_photo(&mut p, &store, &gallery, &policy, obama.id, &common::photo_bytes("obama.jpg")).await.unwrap();

    let baseline = ["-profile:v", "baseline", "-g", "10"];
    let obama_clip = common::h264_clip(&common::photo("obama2.jpg"), 3, &baseline, "rtsp-obama");
    let biden_clip = common::h264_clip(&common::photo("biden.jpg"), 3, &baseline, "rtsp-biden");
    let bframes = ["-profile:v", "high", "-bf", "3", "-g", "20"];
    let high_clip = common::h264_clip(&common::photo("obama3.jpg"), 3, &bframes, "rtsp-high");
    let random_clip = random_slice_stream(&biden_clip);
    let h265_clip = common::h265_clip(&common::photo("obama2.jpg"), 3, 10, "rtsp-obama.h265");
    let random_h265_clip = random_h265_stream(&h265_clip);
    let obama_server = common::RtspServer::start(&obama_clip, 10);
    let obama_port = obama_server.port;
    let h265_server = common::RtspServer::start(&h265_clip, 10);
    let h265_port = h265_server.port;
    let random_h265_server = common::RtspServer::start(&random_h265_clip, 10);
    let mjpeg_server = common::RtspServer::start(Path::new("mjpeg:"), 10);
    let biden_server = common::RtspServer::start(&biden_clip, 10);
    let high_server = common::RtspServer::start(&high_clip, 10);
    let random_server = common::RtspServer::start(&random_clip, 10);

    let mut settings = common::engine_settings(&db, "rtsp-test");
    // A short cooldown, so that the appearance after the outage is a new event.
    settings.streaming.cooldown_secs = 2;
    let engine = common::start_engine(settings).await;
    let scheduler = engine.scheduler().clone();

    let added = Instant::now();
    let cam_obama = store.create_camera("lobby", &obama_server.url(), 5.0, true).await.unwrap().id;
    let cam_biden = store.create_camera("gate", &biden_server.url(), 5.0, true).await.unwrap().id;
    let cam_high = store.create_camera("hall", &high_server.url(), 5.0, true).await.unwrap().id;
    let cam_random = store.create_camera("noise", &random_server.url(), 5.0, true).await.unwrap().id;
    let cam_h265 = store.create_camera("h265", &h265_server.url(), 5.0, true).await.unwrap().id;
    let cam_random_h265 = store.create_camera("noise-h265", &random_h265_server.url(), 5.0, true).await.unwrap().id;
    let cam_mjpeg = store.create_camera("old", &mjpeg_server.url(), 5.0, true).await.unwrap().id;

    common::eventually(
        "a detection of the enrolled person",
        Duration::from_secs(30),
        || rows(&store, cam_obama),
        |n| *n > 0,
    )
    .await;
    eprintln!("first detection row {:?} after the camera row was inserted", added.elapsed());
    common::eventually(
        "a detection on the High-profile camera",
        Duration::from_secs(30),
        || rows(&store, cam_high),
        |n| *n > 0,
    )
    .await;
    let found = store.detections_for_camera(cam_high, 10).await.unwrap();
    assert_eq!(found[0].0, Some(obama.id), "B-frame clip: the right person");
    common::eventually(
        "a detection on the H.265 camera",
        Duration::from_secs(30),
        || rows(&store, cam_h265),
        |n| *n > 0,
    )
    .await;
    let found = store.detections_for_camera(cam_h265, 10).await.unwrap();
    assert_eq!(found[0].0, Some(obama.id), "H.265: the right person");

    // Motion JPEG: the camera says which codec it offers and waits, instead of retrying every second.
    let mjpeg = common::eventually(
        "the MJPEG camera is unsupported",
        Duration::from_secs(30),
        || report(&scheduler, cam_mjpeg),
        |r| state(r) == Some(CameraState::Unsupported),
    )
    .await;
    let why = mjpeg.and_then(|r| r.status).and_then(|s| s.last_error).unwrap_or_default();
    assert!(why.contains("video/jpeg"), "{why}");

    // The random stream: its decoder counts corrupt data and nothing else is disturbed.
    let noise = common::eventually(
        "random slices reach the decoder",
        Duration::from_secs(30),
        || report(&scheduler, cam_random),
        |r| r.as_ref().and_then(|r| r.decoder).is_some_and(|d| d.corrupt + d.decoded > 0),
    )
    .await;
    eprintln!("random-slice camera: {:?}", noise.as_ref().map(|r| (&r.status, &r.decoder)));
    let noise = common::eventually(
        "random H.265 slices reach the decoder",
        Duration::from_secs(30),
        || report(&scheduler, cam_random_h265),
        |r| r.as_ref().and_then(|r| r.decoder).is_some_and(|d| d.corrupt + d.decoded > 0),
    )
    .await;
    eprintln!("random H.265 camera: {:?}", noise.as_ref().map(|r| (&r.status, &r.decoder)));
    assert_eq!(state(&report(&scheduler, cam_obama).await), Some(CameraState::Streaming));
    assert_eq!(state(&report(&scheduler, cam_high).await), Some(CameraState::Streaming));

    // Kill the enrolled person's H.264 and H.265 camera servers; restart them 5 s later on the same ports.
    let before = (rows(&store, cam_obama).await, rows(&store, cam_h265).await);
    drop(obama_server);
    drop(h265_server);
    let killed = Instant::now();
    for cam in [cam_obama, cam_h265] {
        common::eventually(
            "backoff after the server died",
            Duration::from_secs(30),
            || report(&scheduler, cam),
            |r| state(r) == Some(CameraState::Backoff),
        )
        .await;
    }
    actix::clock::sleep(Duration::from_secs(5).saturating_sub(killed.elapsed())).await;
    let _obama_server = common::RtspServer::start_on(&obama_clip, 10, obama_port);
    let _h265_server = common::RtspServer::start_on(&h265_clip, 10, h265_port);
    for cam in [cam_obama, cam_h265] {
        let r = common::eventually(
            "streaming again",
            Duration::from_secs(60),
            || report(&scheduler, cam),
            |r| state(r) == Some(CameraState::Streaming),
        )
        .await;
        assert!(r.and_then(|r| r.status).is_some_and(|s| s.reconnects >= 1));
    }
    common::eventually("detections resume", Duration::from_secs(30), || rows(&store, cam_obama), |n| *n > before.0)
        .await;
    common::eventually(
        "H.265 detections resume",
        Duration::from_secs(30),
        || rows(&store, cam_h265),
        |n| *n > before.1,
    )
    .await;

    assert_eq!(rows(&store, cam_biden).await, 0, "the stranger is never detected as anyone");
    assert_eq!(state(&report(&scheduler, cam_biden).await), Some(CameraState::Streaming));
    engine.shutdown().await;
}
