//! Retention of detections on a real PostgreSQL with real snapshot files: recognised appearances
//! expire after `storage.detection_retention_days` (or their camera's `options.retention_days`),
//! unknown faces after `storage.unknown_retention_days`, rows of deleted cameras after the default;
//! each goes with its snapshot files, in batches of `storage.retention_batch_rows`; recent rows and
//! their files stay, and day directories that can hold only orphaned pictures go. The sweep runs in
//! the assembled engine at start.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use image::RgbImage;
use panoptes_engine::geometry::BBox;
use panoptes_engine::retention::{sweep, RetentionConfig, RetentionCounters};
use panoptes_engine::snapshot::{SnapshotConfig, SnapshotKind, SnapshotStore};
use panoptes_engine::storage::{CameraOptions, CameraPatch, ExpiredScope, NewDetection, Store};

const FACE: BBox = BBox { x: 100.0, y: 80.0, width: 60.0, height: 60.0 };

fn days_ago(now: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    now - chrono::Duration::days(days)
}

fn snapshot_store(tag: &str) -> (Arc<SnapshotStore>, std::path::PathBuf) {
    let dir = common::temp_dir(tag);
    let config = SnapshotConfig { dir: common::path_str(&dir), ..SnapshotConfig::default() };
    (Arc::new(SnapshotStore::new(&config).unwrap()), dir)
}

/// One appearance with its snapshot; answers (row id, snapshot stem).
async fn appearance(
    store: &Store,
    snapshots: &SnapshotStore,
    camera: i64,
    person: Option<i64>,
    at: DateTime<Utc>,
) -> (i64, String) {
    let stem = snapshots.write(camera, at, &RgbImage::new(320, 240), &FACE).unwrap();
    let row =
        NewDetection { snapshot_path: Some(stem.clone()), ..NewDetection::single(camera, at, person, 0.8, 0.9, FACE) };
    (store.insert_detections(&[row]).await.unwrap()[0], stem)
}

async fn with_retention(store: &Store, camera: i64, days: u32) {
    let options = CameraOptions { retention_days: Some(days), ..CameraOptions::default() };
    store.update_camera(camera, &CameraPatch { options: Some(options), ..CameraPatch::default() }).await.unwrap();
}

#[tokio::test]
async fn unknowns_expire_sooner_cameras_override_and_files_go_with_their_rows() {
    let (store, _) = common::fresh_store().await;
    let (snapshots, dir) = snapshot_store("retention-policy");
    let now = Utc::now();
    let person = store.create_person("Regular Visitor", &serde_json::json!({})).await.unwrap().id;
    let plain = store.create_camera("plain", "rtsp://192.0.2.1/a", 5.0, false).await.unwrap().id;
    let short = store.create_camera("short", "rtsp://192.0.2.1/b", 5.0, false).await.unwrap().id;
    let long = store.create_camera("long", "rtsp://192.0.2.1/c", 5.0, false).await.unwrap().id;
    let gone = store.create_camera("gone", "rtsp://192.0.2.1/d", 5.0, false).await.unwrap().id;
    with_retention(&store, short, 7).await;
    with_retention(&store, long, 365).await;

    // (camera, known?, age in days, expected to stay)
    let cases = [
        (plain, true, 100, false),
        (plain, true, 60, true),
        (plain, false, 40, false),
        (plain, false, 20, true),
        (short, true, 10, false),
        (short, false, 10, false),
        (short, true, 5, true),
        (short, false, 5, true),
        (long, true, 200, true),
        (long, true, 400, false),
        (long, false, 40, false),
        (long, false, 20, true),
        (gone, true, 100, false),
        (gone, true, 60, true),
        (gone, false, 40, false),
    ];
    let mut rows = Vec::new();
    for (camera, known, age, stays) in cases {
        let (id, stem) = appearance(&store, &snapshots, camera, known.then_some(person), days_ago(now, age)).await;
        rows.push((id, stem, stays, format!("camera {camera}, known {known}, {age} days")));
    }
    // A deleted camera's rows stay, unlinked, under the default retention.
    assert!(store.delete_camera(gone).await.unwrap());
    // Pictures whose rows never were written: a day past every retention (the longest: 365 days on
    // "long"), and one within it.
    let orphan = |days: i64| {
        let day = days_ago(now, days).format("%Y-%m-%d").to_string();
        let folder = dir.join(&day).join("cam-99");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("120000.000-1.face.jpg"), b"orphan").unwrap();
        dir.join(day)
    };
    let (orphan_old, orphan_recent) = (orphan(500), orphan(200));

    let counters = RetentionCounters::default();
    let config = RetentionConfig { retention_batch_rows: 2, retention_pause_ms: 0, ..RetentionConfig::default() };
    let report = sweep(&store, Some(&snapshots), &config, now, &counters).await.unwrap();

    let expired = rows.iter().filter(|r| !r.2).count() as u64;
    assert_eq!((report.detections, report.snapshots), (expired, expired), "{report:?}");
    assert_eq!(counters.stats().detections, expired);
    for (id, stem, stays, what) in &rows {
        let row = store.get_detection(*id).await.unwrap();
        assert_eq!(row.is_some(), *stays, "row of {what}");
        for kind in [SnapshotKind::Face, SnapshotKind::Frame] {
            assert_eq!(snapshots.read(stem, kind).is_ok(), *stays, "{kind:?} picture of {what}");
        }
    }
    assert!(!orphan_old.exists(), "a day past every retention holds only orphans");
    assert!(orphan_recent.exists(), "a day within the longest retention may hold live pictures");
    // The orphans' day, and the day of the 400-day-old row (emptied with the row).
    assert_eq!(report.snapshot_days, 2);

    // Nothing is left to do: a second sweep deletes nothing.
    let again = sweep(&store, Some(&snapshots), &config, now, &counters).await.unwrap();
    assert_eq!((again.detections, again.snapshots, again.snapshot_days), (0, 0, 0));
}

#[tokio::test]
async fn expired_rows_go_in_small_batches_that_resume_where_the_last_stopped() {
    let (store, url) = common::fresh_store().await;
    let (snapshots, _) = snapshot_store("retention-batches");
    let camera = store.create_camera("busy", "rtsp://192.0.2.1/a", 5.0, false).await.unwrap().id;
    let now = Utc::now();
    // 2,500 expired unknown faces (runs of 10 share one timestamp: ties are broken by id), 500
    // recent ones; 30 more expired with real snapshot files (younger than the 2,500), 5 recent ones.
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .execute(
            "INSERT INTO detections (camera_id, detected_at, score, box_x, box_y, box_w, box_h)
             SELECT $1, $2::timestamptz - make_interval(mins => i / 10), 0.3, 1, 1, 10, 10
             FROM generate_series(1, 2500) i",
            &[&camera, &days_ago(now, 40)],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO detections (camera_id, detected_at, score, box_x, box_y, box_w, box_h)
             SELECT $1, $2::timestamptz - make_interval(mins => i), 0.3, 1, 1, 10, 10 FROM generate_series(1, 500) i",
            &[&camera, &days_ago(now, 2)],
        )
        .await
        .unwrap();
    let mut expired_stems = Vec::new();
    for i in 0..30 {
        let at = days_ago(now, 31) - chrono::Duration::minutes(i);
        expired_stems.push(appearance(&store, &snapshots, camera, None, at).await.1);
    }
    let mut recent_stems = Vec::new();
    for i in 0..5 {
        recent_stems.push(appearance(&store, &snapshots, camera, None, days_ago(now, 1 + i)).await.1);
    }
    let count = || common::count_rows(&url, "SELECT count(*) FROM detections", &[]);
    assert_eq!(count().await, 3035);

    // One statement deletes one batch, oldest first, and no more.
    let cutoff = days_ago(now, 30);
    let scope = ExpiredScope { camera_id: Some(camera), unknown_only: true, before: cutoff, after: None };
    let batch = store.delete_expired_detections(&scope, 100).await.unwrap();
    assert_eq!(batch.len(), 100);
    assert!(batch.iter().all(|r| r.detected_at < cutoff && r.snapshot_path.is_none()));
    assert_eq!(count().await, 2935);
    let newest_deleted = batch.iter().map(|r| r.detected_at).max().unwrap();
    let older_left =
        common::count_rows(&url, "SELECT count(*) FROM detections WHERE detected_at < $1", &[&newest_deleted]).await;
    assert_eq!(older_left, 0, "the batch took the oldest rows");

    let counters = RetentionCounters::default();
    let config = RetentionConfig { retention_batch_rows: 100, retention_pause_ms: 0, ..RetentionConfig::default() };
    let report = sweep(&store, Some(&snapshots), &config, now, &counters).await.unwrap();
    assert_eq!((report.detections, report.snapshots), (2430, 30), "{report:?}");
    assert_eq!(count().await, 505, "the recent rows stay");
    assert!(expired_stems.iter().all(|s| snapshots.read(s, SnapshotKind::Face).is_err()), "an expired picture stayed");
    assert!(recent_stems.iter().all(|s| snapshots.read(s, SnapshotKind::Face).is_ok()), "a recent picture went");
}

/// The engine as `serve` assembles it sweeps at start, and `/metrics` counts what it deleted.
#[actix_web::test]
async fn the_assembled_engine_sweeps_at_start_and_counts_in_metrics() {
    let db = common::fresh_database().await;
    let store = Store::connect(&db, 2).await.unwrap();
    let camera = store.create_camera("door", "rtsp://192.0.2.1/a", 5.0, false).await.unwrap().id;
    let now = Utc::now();
    let mut settings = common::engine_settings(&db, "retention");
    let snapshots = SnapshotStore::new(&settings.snapshots).unwrap();
    let (old, old_stem) = appearance(&store, &snapshots, camera, None, days_ago(now, 31)).await;
    let (new, new_stem) = appearance(&store, &snapshots, camera, None, days_ago(now, 29)).await;
    settings.storage.retention_pause_ms = 0;
    let engine = common::start_engine(settings).await;
    let state = engine.api_state();
    common::eventually(
        "the first sweep",
        Duration::from_secs(30),
        || async { state.retention.stats().detections },
        |n| *n == 1,
    )
    .await;
    assert!(store.get_detection(old).await.unwrap().is_none());
    assert!(store.get_detection(new).await.unwrap().is_some());
    assert!(
        snapshots.read(&old_stem, SnapshotKind::Face).is_err() && snapshots.read(&new_stem, SnapshotKind::Face).is_ok()
    );

    let app =
        actix_web::test::init_service(actix_web::App::new().app_data(state.clone()).configure(panoptes_api::configure))
            .await;
    let body =
        actix_web::test::call_and_read_body(&app, actix_web::test::TestRequest::get().uri("/metrics").to_request())
            .await;
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("panoptes_retention_deleted_total{kind=\"detections\"} 1"), "{text}");
    assert!(text.contains("panoptes_retention_deleted_total{kind=\"snapshots\"} 1"), "{text}");
    engine.shutdown().await;
}

/// The embedding of an appearance's best face goes after `storage.appearance_face_retention_days`
/// even when its row stays; fresher ones stay.
#[tokio::test]
async fn appearance_faces_expire_sooner_than_their_rows() {
    let (store, url) = common::fresh_store().await;
    let now = Utc::now();
    let person = store.create_person("Regular Visitor", &serde_json::json!({})).await.unwrap().id;
    let camera = store.create_camera("plain", "rtsp://192.0.2.1/a", 5.0, false).await.unwrap().id;
    let face = panoptes_engine::track::TrackEmbedding {
        model: panoptes_engine::embed::ModelId { name: "sface".into(), version: "test".into() },
        quality: 0.5,
        vector: vec![0.5f32; 128].into(),
    };
    let mut ids = Vec::new();
    for age in [40, 20] {
        let row = NewDetection {
            face: Some(Arc::new(face.clone())),
            ..NewDetection::single(camera, days_ago(now, age), Some(person), 0.8, 0.9, FACE)
        };
        ids.push(store.insert_detections(&[row]).await.unwrap()[0]);
    }
    assert!(store.appearance_face(ids[0]).await.unwrap().is_some());

    let config = RetentionConfig { retention_batch_rows: 1, retention_pause_ms: 0, ..RetentionConfig::default() };
    let report = sweep(&store, None, &config, now, &RetentionCounters::default()).await.unwrap();
    assert_eq!((report.detections, report.appearance_faces), (0, 1), "{report:?}");
    assert!(store.get_detection(ids[0]).await.unwrap().is_some(), "the 40-day-old row stays (90 days)");
    assert!(store.appearance_face(ids[0]).await.unwrap().is_none(), "its face went after 30 days");
    assert_eq!(store.appearance_face(ids[1]).await.unwrap().map(|f| f.vector.len()), Some(128));
    let kept =
        common::count_rows(&url, "SELECT count(*) FROM appearance_faces WHERE detection_id = $1", &[&ids[1]]).await;
    assert_eq!(kept, 1);
}
