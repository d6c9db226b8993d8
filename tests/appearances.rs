//! Appearances end to end on the real engine and models: a person walking towards a file camera is one
//! detection row, completed when they leave, whose box and snapshot are the largest face of the walk;
//! a person in view for only one second at 80 px is still recognised.

mod common;

use std::time::{Duration, Instant};

use common::scenes::{background, encode_camera_clip, head, scene};
use panoptes_engine::enrollment::{enroll_photo, EnrollmentPolicy};
use panoptes_engine::frame::YuvFrame;
use panoptes_engine::snapshot::{SnapshotKind, SnapshotStore};
use panoptes_engine::storage::{Detection, DetectionFilter, Store};

async fn rows(store: &Store, camera_id: i64) -> Vec<Detection> {
    let filter = DetectionFilter { camera_id: Some(camera_id), ..DetectionFilter::default() };
    store.list_detections(&filter, None, 10).await.unwrap()
}

#[actix_web::test]
async fn a_walk_through_is_one_appearance_with_its_largest_face_and_a_one_second_glimpse_is_recognised() {
    let (store, db) = common::fresh_store().await;
    let mut p = common::pipeline();
    let gallery = common::gallery_for(&store, &p).await;
    let obama = store.create_person("Barack Obama", &serde_json::json!({})).await.unwrap();
    enroll_photo(&mut p, &store, &gallery, &EnrollmentPolicy::default(), obama.id, &common::photo_bytes("obama.jpg"))
        .await
        .unwrap();

    // The walk: 1 s of an empty corridor, 3 s of Obama (another photo than the enrolled one) walking
    // towards the camera, his face growing from 80 to 150 px, then 2 s without him. 10 fps.
    let bg = background(&p);
    let dir = common::temp_dir("appearances");
    let mut walk = Vec::new();
    let mut largest = (0.0f32, None);
    for i in 0..60i64 {
        let frame = if (10..40).contains(&i) {
            let k = (i - 10) as f32 / 29.0;
            let h = head(&mut p, "obama2.jpg", 80.0 + 70.0 * k);
            let img = scene(&bg, &[(&h, 200 + 15 * (i - 10), 150)], i as u32);
            largest = (80.0 + 70.0 * k, Some(img.clone()));
            img
        } else {
            scene(&bg, &[], i as u32)
        };
        walk.push(frame);
    }
    // The largest face as the detector measures it in the walk's last frame with him.
    let last = YuvFrame::from_rgb(&largest.1.take().unwrap());
    let largest_px = {
        let faces = p.detector().detect(&last.to_rgb()).unwrap();
        assert_eq!(faces.len(), 1);
        faces[0].bbox.width
    };
    eprintln!("largest face of the walk: {largest_px:.0} px (pasted at {:.0} px)", largest.0);
    let walk_clip = encode_camera_clip(walk, &dir, "walk");

    // The glimpse: 2 s empty, 1 s of an 80 px face standing nearly still, 3 s empty.
    let small = head(&mut p, "obama2.jpg", 80.0);
    let glimpse: Vec<_> = (0..60i64)
        .map(|i| {
            if (20..30).contains(&i) {
                scene(&bg, &[(&small, 700 + 3 * (i - 20), 300)], i as u32)
            } else {
                scene(&bg, &[], i as u32)
            }
        })
        .collect();
    let glimpse_clip = encode_camera_clip(glimpse, &dir, "glimpse");

    let cam_walk = store.create_camera("corridor", &common::path_str(&walk_clip), 5.0, true).await.unwrap();
    let cam_glimpse = store.create_camera("side door", &common::path_str(&glimpse_clip), 5.0, true).await.unwrap();
    let settings = common::engine_settings(&db, "appearances");
    let snapshots = SnapshotStore::new(&settings.snapshots).unwrap();
    let engine = common::start_engine(settings).await;

    // The walk's row is written as soon as he is recognised, then completed when he has left (the
    // first completion is the first walk's: later walks reopen and complete it again).
    let start = Instant::now();
    let (mut first_seen, mut completed, mut glimpse_rows) = (None::<Detection>, None::<Detection>, Vec::new());
    while completed.is_none() || glimpse_rows.is_empty() {
        let r = rows(&store, cam_walk.id).await;
        if first_seen.is_none() && !r.is_empty() {
            eprintln!("walk: row written after {:?}: {:?}", start.elapsed(), r[0]);
            first_seen = Some(r[0].clone());
        }
        if completed.is_none() {
            completed = r.iter().find(|d| d.last_seen_at.is_some()).cloned();
        }
        if glimpse_rows.is_empty() {
            glimpse_rows = rows(&store, cam_glimpse.id).await;
            if !glimpse_rows.is_empty() {
                eprintln!("glimpse: row written after {:?}", start.elapsed());
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "walk rows {r:?}, completed {completed:?}, glimpse rows {glimpse_rows:?}"
        );
        actix::clock::sleep(Duration::from_millis(50)).await;
    }
    let completed = completed.unwrap();
    eprintln!("walk: completed after {:?}: {completed:?}", start.elapsed());
    let first_seen = first_seen.unwrap();
    assert_eq!(completed.id, first_seen.id, "the completed appearance is the row first written");
    assert_eq!(completed.person_id, Some(obama.id));
    let last_seen = completed.last_seen_at.unwrap();
    let span = (last_seen - completed.detected_at).num_milliseconds();
    assert!((1500..=3600).contains(&span), "the walk lasted 3 s; the appearance spans {span} ms");
    assert!(completed.frames >= 8, "seen in {} analysed frames of 15", completed.frames);
    assert!(completed.best_score.unwrap() >= completed.score);
    // The best face is the largest: the walk ends at ~150 px, it began at 80.
    let w = completed.bbox.width;
    assert!(w >= 0.85 * largest_px, "the appearance kept a {w:.0} px face; the largest was {largest_px:.0} px");
    let stem = completed.snapshot_path.clone().expect("the appearance has a snapshot");
    let face = p.analyze_bytes(&snapshots.read(&stem, SnapshotKind::Face).unwrap()).unwrap();
    assert_eq!(face.len(), 1, "the snapshot's face crop holds one face");
    let best = gallery.read().unwrap().search(p.model(), &face[0].embedding, 1).unwrap();
    assert_eq!(best[0].person_id, obama.id);

    // The 1 s glimpse at 80 px is recognised, on its first showing (the clip loops every 6 s).
    assert_eq!(glimpse_rows[0].person_id, Some(obama.id), "{glimpse_rows:?}");
    let offset =
        (glimpse_rows[0].detected_at - chrono::Utc::now()).num_milliseconds() + start.elapsed().as_millis() as i64;
    eprintln!("glimpse: {:?}, first seen {offset} ms after the engine started", glimpse_rows[0]);
    assert!(offset < 6000, "the glimpse was recognised only on a later showing ({offset} ms in)");

    // The clips loop: he walks through again 3 s later, within the cooldown — still one appearance.
    actix::clock::sleep(Duration::from_secs(7)).await;
    engine.shutdown().await;
    let walk_rows = rows(&store, cam_walk.id).await;
    assert_eq!(walk_rows.len(), 1, "one appearance for walks within the cooldown: {walk_rows:?}");
    assert!(walk_rows[0].frames > completed.frames, "the second walk joined the appearance");
    assert_eq!(rows(&store, cam_glimpse.id).await.len(), 1);
}

/// Someone standing in view of a camera before they are enrolled (a receptionist at the lobby camera):
/// their track settles as unknown and stops being embedded; once they are enrolled — through another
/// gallery on the same database, as the CLI or another engine would, which this engine follows — the
/// same track is embedded again and recognised, without them having to leave and come back.
#[actix_web::test]
async fn a_stranger_in_view_who_is_then_enrolled_is_recognised_without_leaving() {
    use panoptes_actors::scheduler::GetSchedulerStats;
    let (store, db) = common::fresh_store().await;
    let clip = common::h264_clip(&common::photo("obama2.jpg"), 4, &["-profile:v", "baseline", "-g", "10"], "still");
    let cam = store.create_camera("reception", &common::path_str(&clip), 5.0, true).await.unwrap();
    let engine = common::start_engine(common::engine_settings(&db, "enrolled-in-view")).await;
    let workers = || async { engine.scheduler().send(GetSchedulerStats).await.unwrap().workers };
    let settled =
        common::eventually("the stranger's track has used its embeddings", Duration::from_secs(30), workers, |w| {
            w.iter().map(|w| w.embeddings).sum::<u64>() >= 5
        })
        .await;
    assert!(rows(&store, cam.id).await.is_empty(), "nobody is enrolled yet");
    let tracks_before: u64 = settled.iter().map(|w| w.tracks_started).sum();

    // Enrolled elsewhere: the engine's gallery follows the database within its sync interval (5 s).
    let mut p = common::pipeline();
    let other_gallery = common::gallery_for(&store, &p).await;
    let obama = store.create_person("Barack Obama", &serde_json::json!({})).await.unwrap();
    let policy = EnrollmentPolicy::default();
    enroll_photo(&mut p, &store, &other_gallery, &policy, obama.id, &common::photo_bytes("obama.jpg")).await.unwrap();
    let found =
        common::eventually("recognised in view", Duration::from_secs(20), || rows(&store, cam.id), |r| !r.is_empty())
            .await;
    assert_eq!(found[0].person_id, Some(obama.id));
    let tracks_after: u64 = workers().await.iter().map(|w| w.tracks_started).sum();
    assert_eq!(tracks_after, tracks_before, "the same track was recognised, not a new one");
    engine.shutdown().await;
}
