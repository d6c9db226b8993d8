//! The streaming pipeline end to end on real components: file-source cameras showing real faces →
//! camera → decoder → inference (real models) → matcher (+ encrypted snapshots) → sink → PostgreSQL.

mod common;

use std::time::{Duration, Instant};

use panoptes_actors::sink::GetSinkStats;
use panoptes_engine::enrollment::{enroll_photo, EnrollmentPolicy};
use panoptes_engine::snapshot::{SnapshotKind, SnapshotStore};
use panoptes_engine::storage::DetectionFilter;

#[actix_web::test]
async fn an_enrolled_person_on_camera_produces_one_detection_and_a_stranger_none() {
    let (store, db) = common::fresh_store().await;
    let mut enroll_pipeline = common::pipeline();
    let gallery = common::gallery_for(&store, &enroll_pipeline).await;
    let obama = store.create_person("Barack Obama", &serde_json::json!({})).await.unwrap();
    enroll_photo(
        &mut enroll_pipeline,
        &store,
        &gallery,
        &EnrollmentPolicy::default(),
        obama.id,
        &common::photo_bytes("obama.jpg"),
    )
    .await
    .unwrap();

    let obama_clip =
        common::h264_clip(&common::photo("obama2.jpg"), 3, &["-profile:v", "baseline", "-g", "10"], "e2e-obama");
    let biden_clip =
        common::h264_clip(&common::photo("biden.jpg"), 3, &["-profile:v", "baseline", "-g", "10"], "e2e-biden");
    let cam_obama = store.create_camera("lobby", &common::path_str(&obama_clip), 5.0, true).await.unwrap();
    let cam_biden = store.create_camera("gate", &common::path_str(&biden_clip), 5.0, true).await.unwrap();

    let mut settings = common::engine_settings(&db, "e2e");
    settings.snapshots.encryption_key = "7f".repeat(32);
    let snapshot_dir = std::path::PathBuf::from(&settings.snapshots.dir);
    let snapshots = SnapshotStore::new(&settings.snapshots).unwrap();
    let engine = common::start_engine(settings).await;

    let start = Instant::now();
    let first = loop {
        let rows = store.detections_for_camera(cam_obama.id, 10).await.unwrap();
        if !rows.is_empty() {
            break rows;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no detection row for the enrolled person");
        actix::clock::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("first detection row after {:?}", start.elapsed());
    assert_eq!(first[0].0, Some(obama.id));
    assert!(first[0].1 >= 0.55);

    // Keep streaming a while: the continuous appearance stays one event; the stranger yields none.
    actix::clock::sleep(Duration::from_secs(3)).await;
    assert_eq!(store.detections_for_camera(cam_obama.id, 10).await.unwrap().len(), 1);
    assert!(store.detections_for_camera(cam_biden.id, 10).await.unwrap().is_empty());
    let stats = engine.sink().send(GetSinkStats).await.unwrap();
    assert_eq!((stats.written, stats.overflow), (1, 0));

    // The event carries its snapshot: encrypted on disk, and the decrypted face crop shows Obama.
    let filter = DetectionFilter { camera_id: Some(cam_obama.id), ..DetectionFilter::default() };
    let rows = store.list_detections(&filter, None, 10).await.unwrap();
    let stem = rows[0].snapshot_path.clone().expect("the detection has a snapshot");
    let on_disk = std::fs::read(snapshot_dir.join(format!("{stem}.face.jpg.enc"))).unwrap();
    assert!(!on_disk.starts_with(&[0xFF, 0xD8]), "snapshot stored in the clear");
    let face_jpeg = snapshots.read(&stem, SnapshotKind::Face).unwrap();
    let frame_jpeg = snapshots.read(&stem, SnapshotKind::Frame).unwrap();
    let mut p = common::pipeline();
    let frame = p.decode(&frame_jpeg).unwrap();
    assert!(frame.width().max(frame.height()) <= 640, "context frame downscaled: {}x{}", frame.width(), frame.height());
    let faces = p.analyze_bytes(&face_jpeg).unwrap();
    assert_eq!(faces.len(), 1, "the face crop holds one face");
    let best = gallery.read().unwrap().search(p.model(), &faces[0].embedding, 1).unwrap();
    assert_eq!(best[0].person_id, obama.id);
    assert!(best[0].score >= 0.55, "snapshot face matches at {}", best[0].score);
    engine.shutdown().await;
}
